"""Prompts that begin alike run their common beginning once, and answer as the whole prompt does."""

from __future__ import annotations

import json

import pytest
import torch

import harness.methods.first_token as methods_module
from harness import engine, prefix
from harness.cli import main
from harness.hooks import captured
from harness.templates import get_template, render_examples, render_query

T = get_template("spaced")
PAIRS = [("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "Lima"), ("Kenya", "Nairobi")]


def test_groups_are_hand_checked():
    rows = [
        [1, 2, 3, 4, 5, 6],
        [1, 2, 3, 4, 5, 7],
        [1, 2, 3, 4, 9, 9],
        [8, 8, 8],
        [1, 2, 3, 4, 5, 6, 1],
    ]
    # Sorted: rows 0, 4, 1 share 5 tokens (row 0 keeps its last one); row 2 joins at 4 shared
    # tokens because 3 x 4 saved >= 2 x 5; row 3 shares nothing.
    assert prefix.shared_prefix_groups(rows) == [([0, 4, 1, 2], 4), ([3], 0)]


def test_a_member_that_would_cut_the_saving_starts_its_own_group():
    long = list(range(10, 20))
    rows = [long, long + [1], long[:4] + [99, 98]]
    # Rows 0 and 1 share 9 tokens (9 saved); with row 2 they would share 4 (2 x 4 = 8 saved).
    assert prefix.shared_prefix_groups(rows) == [([0, 1], 9), ([2], 0)]
    assert prefix.shared_prefix_groups(rows, min_shared=10) == [([0], 0), ([1], 0), ([2], 0)]


def _prompts():
    """Prompts sharing their first example, or their first two, or nothing, of varied lengths."""
    return [
        render_examples(T, PAIRS[:2], query="Norway"),
        render_examples(T, PAIRS[:3], query="Chile"),
        render_examples(T, [PAIRS[0], PAIRS[3]], query="Egypt"),
        render_examples(T, PAIRS[1:3], query="Spain"),
        render_examples(T, [PAIRS[1], PAIRS[3]], query="Chad"),
        render_examples(T, PAIRS[:2] + [PAIRS[3]], query="Italy"),
        render_query(T, "Peru"),
    ]


def test_token_rows_are_what_encode_feeds_the_model(tiny_adapter):
    prompts = _prompts()
    rows = tiny_adapter.token_rows(prompts)
    for p, row in zip(prompts, rows, strict=True):
        inputs = tiny_adapter.encode([p]).model_inputs
        assert inputs["input_ids"][0][inputs["attention_mask"][0].bool()].tolist() == row


@pytest.mark.parametrize("batch_size", [2, 32])
def test_logits_equal_each_whole_prompts_forward(tiny_adapter, batch_size):
    prompts = _prompts()
    rows = tiny_adapter.token_rows(prompts)
    groups = prefix.shared_prefix_groups(rows)
    assert sum(1 for _, n in groups if n) >= 2  # two groups share a beginning
    assert any(n == 0 for _, n in groups)  # and one prompt runs alone
    seen = []
    for batch, logits in prefix.last_logits_sharing_prefixes(tiny_adapter, rows, batch_size):
        for i, got in zip(batch, logits, strict=True):
            whole = tiny_adapter.model(**tiny_adapter.encode([prompts[i]]).model_inputs)
            assert torch.allclose(got, whole.logits[0, -1], atol=1e-5), i
            seen.append(i)
    assert sorted(seen) == list(range(len(prompts)))


def test_task_states_shared_equal_each_whole_prompts_forward(tiny_adapter):
    """Extraction with shared beginnings cuts each spec prompt at its task token: the states
    equal those a whole prompt's forward has at its task token (answer included)."""
    specs = [render_examples(T, PAIRS[:k]) for k in (2, 3, 4)] + [render_examples(T, PAIRS[1:])]
    cut = [
        r[: int(tiny_adapter.encode([p]).task_index[0]) + 1]
        for p, r in zip(specs, tiny_adapter.token_rows(specs), strict=True)
    ]
    assert max(n for _, n in prefix.shared_prefix_groups(cut)) >= 10
    got = engine.capture_task_states(tiny_adapter, specs, batch_size=2, sharing=True)
    for i, p in enumerate(specs):
        batch = tiny_adapter.encode([p])
        want: list = []
        with captured(tiny_adapter.layers, batch.task_index, want), torch.no_grad():
            tiny_adapter.model(**batch.model_inputs)
        assert torch.allclose(got[i], torch.cat(want), atol=1e-5), i


def test_first_tokens_shares_by_default_and_answers_the_same(tiny_adapter, monkeypatch):
    prompts = _prompts() * 2
    alone = engine.first_tokens(tiny_adapter, prompts, 4, sharing_prefixes=False)
    calls = []
    real = prefix.last_logits_sharing_prefixes
    monkeypatch.setattr(
        prefix, "last_logits_sharing_prefixes", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    assert torch.equal(engine.first_tokens(tiny_adapter, prompts, 4), alone) and calls == [1]


def test_a_sliding_window_shorter_than_a_prompt_turns_sharing_off(tiny_adapter, monkeypatch):
    monkeypatch.setattr(tiny_adapter.model.config, "sliding_window", 4, raising=False)
    monkeypatch.setattr(prefix, "last_logits_sharing_prefixes", pytest.fail)
    engine.first_tokens(tiny_adapter, _prompts(), 4)


def _args(tiny_llama_path, out, seeds="0,1,2"):
    return [
        "--model", f"hf:{tiny_llama_path}", "--tasks", "country_capital", "--limit", "6",
        "--seeds", seeds, "--n_shot", "2", "--methods", "prompt", "--output_path", str(out),
    ]  # fmt: skip


@pytest.fixture
def prompt_passes(monkeypatch):
    """How many prompts each call of the prompt method's engine pass was given."""
    sizes = []
    real = engine.first_tokens

    def counting(adapter, prompts, *args, **kwargs):
        sizes.append(len(prompts))
        return real(adapter, prompts, *args, **kwargs)

    monkeypatch.setattr(methods_module.engine, "first_tokens", counting)
    return sizes


def _preds(out):
    (parts,) = out.glob("*/*/parts")
    return {f.name: json.loads(f.read_text())["data"]["preds"] for f in parts.glob("*/prompt-*")}


def test_the_prompt_method_runs_a_tasks_seeds_together_and_only_those_pending(
    tiny_llama_path, tmp_path, prompt_passes
):
    out = tmp_path / "run"
    assert main(_args(tiny_llama_path, out)) == 0
    assert prompt_passes == [18]  # 3 seeds x 6 items, one pass
    together = _preds(out)
    assert sorted(together) == ["prompt-s0.json", "prompt-s1.json", "prompt-s2.json"]

    (unit,) = out.glob("*/*/parts/*/prompt-s1.json")
    unit.unlink()
    prompt_passes.clear()
    assert main(_args(tiny_llama_path, out)) == 0
    assert prompt_passes == [6]  # a resumed run computes the missing seed only
    assert _preds(out) == together

    alone = tmp_path / "alone"
    assert main(_args(tiny_llama_path, alone, seeds="1")) == 0
    assert _preds(alone) == {"prompt-s1.json": together["prompt-s1.json"]}


def test_smollm2_prompts_of_the_main_job_answer_as_whole_prompts():
    """The real default model on one unit's prompts: shared beginnings change no answer."""
    from harness.adapters import make_adapter
    from harness.arguments import parse_run_config
    from harness.context import EvalContext
    from harness.prepare import load_run_data

    config = parse_run_config(["--tasks", "food_color"])
    adapter = make_adapter(config.model)
    adapter.load()
    ctx = EvalContext(config, load_run_data(config), adapter, vectors=lambda t, s: None)
    items = ctx.items("food_color", "test")[:40]
    prompts = [ctx.spec_and_query_prompt("food_color", r, s) for s in (0, 1) for r in items]
    rows = adapter.token_rows(prompts)
    saved = sum((len(m) - 1) * n for m, n in prefix.shared_prefix_groups(rows))
    assert saved > 0.05 * sum(map(len, rows))
    for batch, logits in prefix.last_logits_sharing_prefixes(adapter, rows, batch_size=16):
        whole = adapter.model(**adapter.encode([prompts[i] for i in batch]).model_inputs)
        assert torch.allclose(logits, whole.logits[:, -1], atol=1e-3)
        assert torch.equal(logits.argmax(-1), whole.logits[:, -1].argmax(-1))


def test_a_tasks_seeds_vectors_are_extracted_together_and_cached(
    tiny_adapter, monkeypatch, tmp_path
):
    """One capture pass makes every seed's vector not yet cached, each equal to extracting it
    alone; a cached seed is not extracted again, and the instruction spec is left alone."""
    from harness import vectors
    from harness.config import RunConfig
    from harness.context import EvalContext
    from harness.prepare import load_run_data

    monkeypatch.setenv("VLM_TV_EVAL_CACHE", str(tmp_path))
    config = RunConfig(
        model="hf:tiny", tasks=("country_capital",), seeds=(0, 1, 2), limit=5, n_shot=2
    )
    ctx = EvalContext(config, load_run_data(config), tiny_adapter, vectors=lambda t, s: None)
    alone = {s: vectors.task_vector(tiny_adapter, ctx, "country_capital", s) for s in (0, 1, 2)}
    for f in (tmp_path / "vectors").rglob("*.safetensors"):
        f.unlink()
    vectors.task_vector(tiny_adapter, ctx, "country_capital", 1)  # seed 1 cached again

    calls = []
    real = engine.capture_task_states
    monkeypatch.setattr(
        vectors.engine,
        "capture_task_states",
        lambda a, p, *x, **k: calls.append(len(p)) or real(a, p, *x, **k),
    )
    vectors.extract_seeds_together(tiny_adapter, ctx, "country_capital", [0, 1, 2])
    assert calls == [10]  # seeds 0 and 2, 5 spec prompts each, in one pass
    for s in (0, 1, 2):
        got = vectors.task_vector(tiny_adapter, ctx, "country_capital", s)
        assert torch.allclose(got, alone[s], atol=1e-5), s
    assert calls == [10]  # every vector is now read from the cache

    instruction = EvalContext(
        RunConfig(model="hf:tiny", tasks=("country_capital",), spec="instruction", seeds=(0, 1)),
        ctx.data,
        tiny_adapter,
        vectors=lambda t, s: None,
    )
    vectors.extract_seeds_together(tiny_adapter, instruction, "country_capital", [0, 1])
    assert calls == [10]
