"""Methods are registered plug-ins: one from outside the package runs through the CLI, and each
built-in declares honestly what it needs, what the model saw and whether the seed matters."""

from __future__ import annotations

import json

import pytest
from examples import run_results

from benchmark import validate
from harness import engine
from harness.cli import main
from harness.methods import _METHODS, get_method, register_method
from harness.store import RunStore


@pytest.fixture
def toy_method():
    """A method a researcher writes in their own code: the prompt baseline with the query
    asked twice. Unregistered again after the test."""
    calls = []

    @register_method("query_twice", context="the query, twice")
    def query_twice(ctx, task, seed, layer):
        calls.append((task, seed, layer))
        items = ctx.items(task, "test")
        prompts = [ctx.adapter.query_prompt(f"{r['input']}, {r['input']}") for r in items]
        ids = engine.first_tokens(ctx.adapter, prompts, ctx.config.batch_size)
        return ctx.score_tokens(task, items, ids.tolist(), prompts)

    yield calls
    del _METHODS["query_twice"]


def _args(tiny_llama_path, out, *extra):
    return [
        "--model", f"hf:{tiny_llama_path}", "--tasks", "country_capital", "--limit", "4",
        "--n_shot", "2", "--seeds", "0,1", "--output_path", str(out), *extra,
    ]  # fmt: skip


def test_a_method_registered_outside_the_package_runs_through_the_cli(
    toy_method, tiny_llama_path, tmp_path, capsys
):
    args = _args(tiny_llama_path, tmp_path, "--methods", "no_context,query_twice", "--log_samples")
    assert main(args) == 0
    doc = run_results(tmp_path)
    assert validate(doc, "results") == []
    toy = doc["results"]["country_capital"]["query_twice"]
    assert toy["n"] == 4 and len(toy["per_seed"]) == 2 and toy["context"] == "the query, twice"
    assert "layer" not in toy  # it declared no task vector, so no sweep ran
    assert "layer_selection" not in doc
    assert toy_method == [("country_capital", 0, None), ("country_capital", 1, None)]
    (samples,) = tmp_path.glob("*/*/samples_*.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert {r["method"] for r in rows} == {"no_context", "query_twice"}
    assert all(validate(r, "sample") == [] for r in rows)
    assert "query_twice" in capsys.readouterr().out  # in the summary table

    assert main(["ls", "methods"]) == 0
    assert "query_twice" in capsys.readouterr().out


def test_unknown_method_lists_the_registered_ones(capsys):
    assert main(["--methods", "vibes"]) == 2
    err = capsys.readouterr().err
    assert "unknown method 'vibes'" in err and "no_context" in err and "patch" in err


def test_method_ids_must_fit_the_results_schema():
    with pytest.raises(ValueError, match="must match"):
        register_method("Bad-Id")(lambda *a: None)


def test_builtins_declare_what_they_need():
    patch, prompt, majority = get_method("patch"), get_method("prompt"), get_method("majority")
    assert patch.needs_vector and not prompt.needs_vector
    assert prompt.needs_demos("text_examples") and not prompt.needs_demos("instruction")
    assert majority.needs_demos("instruction")
    # An instruction vector (and the instruction prompt) is the same for every seed.
    assert patch.seeded("text_examples") and not patch.seeded("instruction")
    assert not get_method("no_context").seeded("text_examples")


def test_instruction_spec_runs_its_own_prompt_and_each_instruction_unit_once(
    tiny_llama_path, tmp_path, monkeypatch
):
    computed = []
    real_unit = RunStore.unit
    monkeypatch.setattr(
        RunStore,
        "unit",
        lambda self, n, c, items: real_unit(self, n, lambda: (computed.append(n), c())[1], items),
    )
    assert main(_args(tiny_llama_path, tmp_path, "--spec", "instruction", "--log_samples")) == 0
    doc = run_results(tmp_path)
    res = doc["results"]["country_capital"]
    # One sweep and one patch unit for two seeds; majority still draws demos per seed.
    assert sorted(n.split("/")[1] for n in computed) == sorted(
        ["sweep", "no_context", "prompt", f"patch-L{res['patch']['layer']}",
         "majority-s0", "majority-s1"]
    )  # fmt: skip
    assert res["patch"]["seeded"] is False and res["prompt"]["seeded"] is False
    assert res["patch"]["per_seed"][0] == res["patch"]["per_seed"][1]
    assert res["prompt"]["context"] == "the instruction, then the query"
    assert "demos" in res["majority"]["context"]
    # The prompt baseline is the instruction followed by the query, not text examples.
    (samples,) = tmp_path.glob("*/*/samples_*.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    from harness.adapters import make_adapter
    from harness.items import sha256

    adapter = make_adapter(f"hf:{tiny_llama_path}")
    item = next(r for r in rows if r["method"] == "prompt")
    from benchmark import load_task

    record = next(r for r in load_task("country_capital", "test") if r["id"] == item["doc_id"])
    expected = adapter.query_prompt(
        record["input"], instruction="The capital city of the country:"
    ).text
    assert expected == f"The capital city of the country:\n\nQ: {record['input']}\nA:"
    assert item["prompt_hash"] == sha256(expected)


def test_ensemble_prompt_puts_the_instruction_before_the_examples(tiny_adapter):
    prompt = tiny_adapter.example_prompt(
        [("France", "Paris"), ("Peru", "Lima")], query="Japan", instruction="Capitals:"
    )
    assert prompt.text == "Capitals:\n\nQ: France\nA: Paris\n\nQ: Peru\nA: Lima\n\nQ: Japan\nA:"
    assert prompt.text[prompt.task_char] == ":"
    assert prompt.text[prompt.task_char + 1 :].startswith(" Lima")
