"""The speed script's work counts (not its timings: those are printed, never asserted)."""

from __future__ import annotations

from harness.floor import layer_gflop_per_token, matmul_gflops, prompt_tokens


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
    whole = prompt_tokens(tiny_adapter, [prompt])
    batch = tiny_adapter.encode([prompt])
    assert whole == batch.input_ids.shape[1]
    up_to_task = prompt_tokens(tiny_adapter, [prompt], up_to_task=True)
    assert up_to_task == int(batch.task_index[0]) + 1 < whole


def test_the_matmul_rate_is_a_positive_number():
    assert matmul_gflops(64, 64, 64, repeats=2) > 0


def test_main_job_work_counts_each_phase_as_documented(tiny_adapter):
    """Adding a seed adds its spec prompts (to their task tokens) and, per validation query,
    the layers above every patched layer; to the test queries only the layers above the
    chosen one; the queries' own tokens are counted once whatever the number of seeds."""
    from harness.config import RunConfig
    from harness.items import sample_demos
    from harness.prepare import load_run_data
    from harness.speed_job import main_job_work

    n_layers = tiny_adapter.num_layers
    one = RunConfig(model="hf:tiny", tasks=("country_capital",), seeds=(0,), limit=4, n_shot=2)
    two = RunConfig(model="hf:tiny", tasks=("country_capital",), seeds=(0, 1), limit=4, n_shot=2)
    data = load_run_data(one)
    w1 = main_job_work(one, data, tiny_adapter, layer=1)
    w2 = main_job_work(two, data, tiny_adapter, layer=1)
    task = data["country_capital"]
    items = task.splits["validation"][:4]
    demos = [
        sample_demos(task.splits["validation"], q, 2, 1, task.demo_key or "country_capital")
        for q in items
    ]
    demos = [[(d["input"], d["output"]) for d in row] for row in demos]
    specs = [tiny_adapter.example_prompt(d) for d in demos]
    above = n_layers * (n_layers - 1) // 2
    spec_tokens = prompt_tokens(tiny_adapter, specs, True)
    assert w2["sweep"] - w1["sweep"] == spec_tokens * n_layers + 4 * above
    assert w2["no_context+patch"] - w1["no_context+patch"] == 4 * (n_layers - 2)
    queries = [
        tiny_adapter.query_prompt(r["input"]) for r in data["country_capital"].splits["test"][:4]
    ]
    query_tokens = prompt_tokens(tiny_adapter, queries)
    assert w1["no_context+patch"] == query_tokens * n_layers + 4 * (n_layers - 2)
    assert w2["prompt"] > w1["prompt"] > 0


def test_answer_rows_count_one_vocabulary_read_per_answer():
    from harness.config import RunConfig
    from harness.prepare import load_run_data
    from harness.speed_job import answer_rows

    config = RunConfig(
        model="hf:tiny", tasks=("country_capital", "food_color"), seeds=(0, 1), limit=4
    )
    rows = answer_rows(config, load_run_data(config), n_layers=5)
    # Per task: 4 validation queries x 2 seeds x 5 layers; 4 test queries, plain and per seed;
    # 4 prompts per seed.
    assert rows == {"sweep": 2 * 40, "no_context+patch": 2 * 12, "prompt": 2 * 8}
