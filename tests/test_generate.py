"""Free-form generation: greedy, batched, KV-cached, patched in the prompt pass only."""

from __future__ import annotations

import pytest
import torch

from harness import generation
from harness.hooks import Intervention, patched


def _prompts(adapter):
    return [
        adapter.query_prompt("France"),
        adapter.example_prompt([("Peru", "Lima"), ("Chile", "Santiago")], query="Japan"),
        adapter.query_prompt("Kingdom of Norway"),
    ]


@torch.inference_mode()
def _naive(adapter, prompt, n, vector=None, layer=None):
    """One row, no padding, no cache: the whole sequence through the model at every step. The
    patch sits at the prompt's last token in every pass, which is what a cache of the patched
    prompt pass amounts to."""
    ids = adapter.encode([prompt]).input_ids[0].tolist()
    last = len(ids) - 1
    out = []
    for _ in range(n):
        ivs = [] if vector is None else [Intervention(layer, torch.tensor([0]), last, vector)]
        with patched(adapter.layers, ivs):
            logits = adapter.model(input_ids=torch.tensor([ids])).logits[0, -1]
        token = int(logits.argmax())
        if token == adapter.tokenizer.eos_token_id:
            break
        ids.append(token)
        out.append(token)
    return adapter.tokenizer.decode(out)


def test_generation_equals_a_full_forward_per_token(tiny_adapter):
    prompts = _prompts(tiny_adapter)
    fast = generation.generate(tiny_adapter, prompts, max_new_tokens=6, stop=())
    assert fast == [_naive(tiny_adapter, p, 6) for p in prompts]
    assert all(fast)


def test_batched_equals_unbatched(tiny_adapter):
    prompts = _prompts(tiny_adapter)
    together = generation.generate(tiny_adapter, prompts, max_new_tokens=8, batch_size=8)
    alone = [generation.generate(tiny_adapter, [p], max_new_tokens=8)[0] for p in prompts]
    assert together == alone


def test_patch_changes_the_continuation_through_the_prompt_pass_only(tiny_adapter):
    prompts = _prompts(tiny_adapter)
    torch.manual_seed(1)
    vector = torch.randn(tiny_adapter.hidden_size) * 8
    clean = generation.generate(tiny_adapter, prompts, max_new_tokens=6, stop=())
    hot = generation.generate(
        tiny_adapter, prompts, max_new_tokens=6, vector=vector, layer=1, stop=()
    )
    assert hot != clean
    assert hot == [_naive(tiny_adapter, p, 6, vector, 1) for p in prompts]


def test_tokens_before_the_patched_position_are_untouched(tiny_adapter):
    prompts = _prompts(tiny_adapter)
    seen = []

    def record(_module, _args, output):
        if not seen:  # the prompt pass only
            seen.append((output if torch.is_tensor(output) else output[0]).clone())

    def prompt_pass_output(vector):
        seen.clear()
        handle = tiny_adapter.layers[-1].register_forward_hook(record)
        try:
            generation.generate(tiny_adapter, prompts, 2, vector=vector, layer=1, batch_size=8)
        finally:
            handle.remove()
        return seen[0]

    clean = prompt_pass_output(None)
    hot = prompt_pass_output(torch.randn(tiny_adapter.hidden_size) * 8)
    assert torch.allclose(hot[:, :-1], clean[:, :-1], atol=1e-5)
    assert not torch.allclose(hot[:, -1], clean[:, -1])


def test_stop_strings_cut_the_answer(tiny_adapter):
    prompts = _prompts(tiny_adapter)
    full = generation.generate(tiny_adapter, prompts, max_new_tokens=10, stop=())
    # Stop at a piece of text the model actually produced: the answer ends right before it.
    assert len(full[0]) >= 4
    piece = full[0][2:4]
    cut = generation.generate(tiny_adapter, prompts[:1], max_new_tokens=10, stop=(piece,))[0]
    assert cut == full[0][: full[0].find(piece)]


def test_patching_needs_a_layer(tiny_adapter):
    with pytest.raises(ValueError, match="layer"):
        generation.generate(tiny_adapter, _prompts(tiny_adapter), 2, vector=torch.zeros(64))
