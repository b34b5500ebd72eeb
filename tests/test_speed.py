"""The speed script's work counts (not its timings: those are printed, never asserted)."""

from __future__ import annotations

from harness.speed import _tokens, layer_gflop_per_token, matmul_gflops


def test_the_floor_counts_one_layer_of_non_embedding_weights_per_token(tiny_adapter):
    model = tiny_adapter.model
    layer = model.model.layers[0]
    per_layer = sum(p.numel() for p in layer.parameters())
    # tiny Llama: decoder layers plus the final norm; embeddings and head are left out
    expected = 2 * (per_layer * tiny_adapter.num_layers + model.model.norm.weight.numel())
    got = layer_gflop_per_token(model, tiny_adapter.num_layers) * 1e9 * tiny_adapter.num_layers
    assert abs(got - expected) < 1e-3 * expected


def test_tokens_up_to_the_task_token_leave_out_the_last_answer(tiny_adapter):
    prompt = tiny_adapter.example_prompt([("France", "Paris"), ("Peru", "Lima")])
    whole = _tokens(tiny_adapter, [prompt])
    batch = tiny_adapter.encode([prompt])
    assert whole == batch.input_ids.shape[1]
    assert _tokens(tiny_adapter, [prompt], up_to_task=True) == int(batch.task_index[0]) + 1 < whole


def test_the_matmul_rate_is_a_positive_number():
    assert matmul_gflops(64, 64, 64, repeats=2) > 0
