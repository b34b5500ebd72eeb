"""Task overriding end to end: override_text from the pools on a tiny LM, an image set on a tiny
Idefics2, the judge (a loopback OpenAI-compatible server) in the run and as its own stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import JUDGE_TEST_KEY

from benchmark import validate
from harness.cli import main
from harness.overriding.data import CONFLICTS, load_override_text

KEY = JUDGE_TEST_KEY  # the key the judge_server fixture sets


def _run_dir(out: Path) -> Path:
    (config,) = out.glob("*/*/config.json")
    return config.parent


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_override_text_pairs_each_task_with_its_pools_other_task():
    data = load_override_text()
    assert len(data.splits["validation"]) == 6 * 30 and len(data.splits["test"]) == 6 * 100
    first = data.splits["test"][:6]  # interleaved: --limit 6 takes one item per direction
    assert {r["direction"] for r in first} == {f"{a}>{b}" for a, b in CONFLICTS.items()}
    france = {r["direction"]: r for r in data.splits["test"] if r["input"] == "France"}
    capital = france["country_capital>country_currency"]
    assert (capital["question_answer"], capital["output"]) == ("Paris", "Euro")
    assert capital["override"] == "The last word of the official currency of the country:"
    currency = france["country_currency>country_capital"]
    assert (currency["question_answer"], currency["output"]) == ("Euro", "Paris")


def _text_args(tiny_llama_path, out, *extra):
    return [
        "--model", f"hf:{tiny_llama_path}", "--tasks", "override_text", "--limit", "6",
        "--seeds", "0,1", "--n_shot", "2", "--max_new_tokens", "4",
        "--output_path", str(out), *extra,
    ]  # fmt: skip


def test_override_text_runs_the_three_methods_and_scores_by_exact_match(
    tiny_llama_path, tmp_path, capsys
):
    assert main(_text_args(tiny_llama_path, tmp_path)) == 0
    run = _run_dir(tmp_path)
    doc = json.loads((run / "results.json").read_text())
    assert validate(doc, "results") == []
    res = doc["results"]["override_text"]
    assert list(res) == ["original", "system_prompt", "instruction_patch"]
    assert doc["layer_selection"]["mode"] == "sweep"
    assert res["instruction_patch"]["layer"] == doc["layer_selection"]["layer"]
    assert doc["judge"] is None and all("judged" not in r for r in res.values())
    rows = _rows(run / "generations_override-text.jsonl")
    assert len(rows) == 3 * 2 * 6
    for method, r in res.items():
        mine = [x for x in rows if x["method"] == method]
        for i, seed in enumerate((0, 1)):
            hits = [x["exact_override"] for x in mine if x["seed"] == seed]
            assert r["per_seed"][i] == sum(hits) / len(hits)
    patch = [x for x in rows if x["method"] == "instruction_patch"]
    assert {x["question2"].split(":")[0] for x in patch} >= {"The capital city of the country"}
    out = capsys.readouterr().out
    assert "instruction_patch" in out and "still original" in out


def test_the_judge_runs_in_the_same_command_and_is_counted(
    tiny_llama_path, tmp_path, judge_server, capsys
):
    args = _text_args(
        tiny_llama_path, tmp_path, "--judge", "local-judge", "--judge_base_url", judge_server.url
    )
    assert main(args) == 0
    run = _run_dir(tmp_path)
    doc = json.loads((run / "results.json").read_text())
    assert validate(doc, "results") == []
    assert doc["judge"] == {"model": "local-judge", "temperature": 0, "base_url": judge_server.url}
    verdicts = _rows(run / "verdicts_override-text.jsonl")
    assert len(verdicts) == 3 * 2 * 6
    assert all(validate(v, "judge_verdict") == [] for v in verdicts)
    rows = _rows(run / "generations_override-text.jsonl")
    for method, r in doc["results"]["override_text"].items():
        assert r["judged"] + r["judge_failures"] == 12
        # The fake judge answers A (question 1) unless told otherwise: never a success.
        assert r["judge_acc"] == 0.0
        exact = [x["exact_override"] for x in rows if x["method"] == method]
        assert r["judge_agreement"] == sum(not e for e in exact) / len(exact)
    assert "failed" in capsys.readouterr().out
    for path in run.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="ignore"), path


def test_judging_later_reuses_the_generations_and_asks_each_prompt_once(
    tiny_llama_path, tmp_path, judge_server, capsys
):
    assert main(_text_args(tiny_llama_path, tmp_path)) == 0
    run = _run_dir(tmp_path)
    judge = ["judge", str(run), "--judge", "local-judge", "--judge_base_url", judge_server.url]
    assert main(judge) == 0
    asked = judge_server.total()
    assert asked > 0
    doc = json.loads((run / "results.json").read_text())
    assert doc["results"]["override_text"]["original"]["judged"] == 12
    assert main(judge) == 0  # judged before: answered from the cache
    assert judge_server.total() == asked


def _overriding_set(root: Path) -> Path:
    from collections import Counter

    from PIL import Image

    from builders.layout import write_configs
    from builders.overriding import features, make_card

    rows = [
        {
            "id": f"semantic_{i}",
            "setting": "semantic",
            "image": Image.new("RGB", (40, 30), (40 * i, 10, 200 - 30 * i)),
            "question": "What color is the umbrella?",
            "override": "What is in the bowl?",
            "question_answer": "red",
            "override_answer": "soup",
            "image_id": i,
            "source": "test",
        }
        for i in range(4)
    ]
    by_config = {"override_semantic": {"test": rows}}
    card = make_card(by_config, {"override_semantic": Counter()}, seed=0, sources={})
    return write_configs(root, by_config, features(), card)


def test_an_image_set_waits_for_its_judge_then_gets_numbers(
    tmp_path, judge_server, capsys, tmp_path_factory
):
    import tiny_vlms

    vlm = tiny_vlms.build_idefics2(tmp_path_factory.mktemp("idefics2"))
    data = _overriding_set(tmp_path / "data")
    args = [
        "--model", "idefics2", "--model_args", f"pretrained={vlm}", "--tasks",
        "override_semantic", "--data", str(data), "--layer", "1", "--seeds", "0,1",
        "--max_new_tokens", "3", "--output_path", str(tmp_path / "out"),
    ]  # fmt: skip
    assert main(args) == 0
    run = _run_dir(tmp_path / "out")
    assert not (run / "results.json").exists()  # no judge yet, so no number
    assert (run / "pending_results.json").is_file()
    assert "no numbers until judged" in capsys.readouterr().out
    rows = _rows(run / "generations_override-semantic.jsonl")
    # The image set is set up by the image and its question: one seed-independent run.
    assert len(rows) == 3 * 2 * 4 and {r["question2"] for r in rows} == {"What is in the bowl?"}

    assert main(["judge", str(run), "--judge", "x", "--judge_base_url", judge_server.url]) == 0
    doc = json.loads((run / "results.json").read_text())
    assert validate(doc, "results") == [] and not (run / "pending_results.json").exists()
    patch = doc["results"]["override_semantic"]["instruction_patch"]
    assert patch["layer"] == 1 and patch["seeded"] is False
    assert patch["acc"] == 0.0 and patch["judged"] == 8 and patch["judge_failures"] == 0
    assert doc["config"]["spec"] == "instruction"
    assert "demo.ipynb" in doc["config"]["override_vector"]  # which read position was used


def test_an_image_set_patches_at_the_main_layer_chosen_on_the_text_pools(
    tmp_path, tmp_path_factory
):
    """Without --layer an image set (no labels to sweep) patches at the model's main layer,
    chosen on the six tasks' shipped text pools: its build holds none of their items."""
    import tiny_vlms

    from benchmark import CROSS_MODAL_TASKS, best_layer

    vlm = tiny_vlms.build_idefics2(tmp_path_factory.mktemp("idefics2"))
    args = [
        "--model", "idefics2", "--model_args", f"pretrained={vlm}", "--tasks",
        "override_semantic", "--data", str(_overriding_set(tmp_path / "data")), "--limit", "2",
        "--seeds", "0", "--n_shot", "1", "--max_new_tokens", "2",
        "--output_path", str(tmp_path / "out"),
    ]  # fmt: skip
    assert main(args) == 0
    pending = json.loads((_run_dir(tmp_path / "out") / "pending_results.json").read_text())
    chosen = pending["layer_selection"]
    assert chosen["source"] == "six-task validation sweep"
    assert list(chosen["validation_curve"]) == list(CROSS_MODAL_TASKS)
    assert chosen["layer"] == best_layer(chosen["mean_curve"])
    rows = _rows(_run_dir(tmp_path / "out") / "generations_override-semantic.jsonl")
    assert {r["layer"] for r in rows if r["method"] == "instruction_patch"} == {chosen["layer"]}


def test_the_overriding_question_is_written_and_read_as_the_authors_demo_does(
    tmp_path_factory, monkeypatch
):
    """demo.ipynb, Instruction Conflict: the query is `Q:<image>{question}?\nA:` (no space
    after the image), and the patched question loses its `?`, gains `:` and is read there."""
    import tiny_vlms
    from PIL import Image

    from harness.adapters import make_adapter
    from harness.overriding import methods

    assert methods.override_instruction("What is the green vegetable?") == (
        "What is the green vegetable:"
    )
    assert methods.override_instruction("The color of the food:") == "The color of the food:"
    assert methods.override_instruction("Put your answer in quotes.") == (
        "Put your answer in quotes.:"  # format_prompt's rule: the instruction, then ":"
    )
    adapter = make_adapter(
        "idefics2", pretrained=str(tiny_vlms.build_idefics2(tmp_path_factory.mktemp("i2")))
    )
    adapter.load()
    image = Image.new("RGB", (40, 30))
    query = adapter.query_prompt((image, "What is on top of the meat?"))
    assert query.text == "Q:<image>What is on top of the meat?\nA:" and len(query.images) == 1
    seen = []

    def capture(adapter, prompts, batch_size=32, sharing=False):
        seen.extend(prompts)
        return torch.zeros(len(prompts), adapter.num_layers, adapter.hidden_size)

    monkeypatch.setattr(methods.engine, "capture_task_states", capture)
    methods.instruction_vectors(adapter, ["What is the green vegetable?"], 8)
    (prompt,) = seen
    assert prompt.text == "What is the green vegetable:" and prompt.task_char is None
    ids = adapter.encode([prompt]).input_ids[0].tolist()
    assert adapter.tokenizer.convert_ids_to_tokens(ids)[-1] == ":"  # read at the ":"


@pytest.mark.parametrize(
    "extra,message",
    [
        (
            ["--tasks", "override_semantic", "--data", "x", "--model", "idefics2"]
            + ["--override_layer", "target"],
            "--layer_from",
        ),
        (["--override_layer", "target"], "overriding tasks only"),
        (["--tasks", "override_text", "--override_layer", "target", "--layer", "1"], "one of them"),
        (["--tasks", "override_text,country_capital"], "run them separately"),
        (["--tasks", "override_text", "--methods", "patch"], "do not apply"),
        (["--tasks", "country_capital", "--methods", "original"], "do not apply"),
        (["--tasks", "override_text", "--judge", "gpt-4o"], "snapshot"),
    ],
)
def test_overriding_input_errors_before_any_model_loads(extra, message, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert main(extra) == 2
    assert message in capsys.readouterr().err


def test_layer_from_refuses_a_run_of_another_model(tiny_llama_path, tmp_path, capsys):
    other = tmp_path / "results.json"
    other.write_text(json.dumps({"model": {"name": "idefics2"}, "layer_selection": {"layer": 3}}))
    args = _text_args(tiny_llama_path, tmp_path / "out", "--layer_from", str(other))
    assert main(args) == 2
    assert "a layer does not carry over between models" in capsys.readouterr().err


def test_generation_rows_validate_and_a_bad_one_is_named(tmp_path, capsys):
    from examples import good

    from harness.cli import main as cli

    rows = [good("generation"), dict(good("generation"), exact_override="yes")]
    path = tmp_path / "generations_override-text.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert cli(["validate", str(path)]) == 1
    assert ":2: $.exact_override" in capsys.readouterr().err


def test_a_seed_with_no_judged_answer_gets_no_number():
    from harness.methods import get_method
    from harness.overriding.scoring import method_result
    from harness.results import entry_header

    rows = [{"doc_id": f"d{i}", "seed": s} for s in (0, 1) for i in range(2)]
    judge = {"model": "m", "temperature": 0, "prompt_hash": "0" * 64, "base_url": "http://x"}

    def verdict(row, choice):
        success = None if choice is None else choice in "BC"
        error = "APIConnectionError" if choice is None else None
        return {"item_id": row["doc_id"], "task": "override_semantic", "method": "original",
                "seed": row["seed"], "judge": judge, "choice": choice, "success": success,
                "error": error}  # fmt: skip

    def result(choices):
        verdicts = {
            ("override_semantic", "original", r["seed"], r["doc_id"]): verdict(r, c)
            for r, c in zip(rows, choices, strict=True)
        }
        header = entry_header(get_method("original"), "instruction", 5, None)
        return method_result("override_semantic", "original", rows, [0, 1], verdicts, header)

    ok = result(["B", None, "A", "C"])
    assert ok["acc"] == 2 / 3 and ok["judged"] == 3 and ok["judge_failures"] == 1
    assert ok["per_seed"] == [1.0, 0.5] and ok["acc_failures_as_misses"] == 0.5
    failed_seed = result(["B", "A", None, None])
    assert "acc" not in failed_seed and failed_seed["judge_failures"] == 2


# -- where the patch goes: the model's main layer by default, the target's on request ----------


def _selection(out: Path) -> tuple[dict, str]:
    doc = json.loads((_run_dir(out) / "results.json").read_text())
    assert validate(doc, "results") == []
    return doc, doc["run_id"]


def test_override_text_patches_at_the_main_jobs_layer_by_default(
    tiny_llama_path, tmp_path, monkeypatch
):
    """The default sweeps the six tasks as the main job does (same curves, same layer) and
    never sweeps the overriding target."""
    from benchmark import CROSS_MODAL_TASKS, best_layer
    from harness import evaluator

    def target_sweep(*args):
        raise AssertionError("the default must not choose the layer on the overriding target")

    monkeypatch.setattr(evaluator, "overriding_sweep", target_sweep)
    assert main(_text_args(tiny_llama_path, tmp_path / "override")) == 0
    doc, _ = _selection(tmp_path / "override")
    chosen = doc["layer_selection"]
    assert chosen["mode"] == "sweep" and chosen["source"] == "six-task validation sweep"
    assert list(chosen["validation_curve"]) == list(CROSS_MODAL_TASKS)
    assert chosen["layer"] == best_layer(chosen["mean_curve"])
    assert doc["results"]["override_text"]["instruction_patch"]["layer"] == chosen["layer"]
    assert doc["config"]["override_layer"] == "main"

    main_job = [
        "--model", f"hf:{tiny_llama_path}", "--limit", "6", "--seeds", "0,1", "--n_shot", "2",
        "--methods", "patch", "--output_path", str(tmp_path / "main"),
    ]  # fmt: skip
    assert main(main_job) == 0
    reference, _ = _selection(tmp_path / "main")
    for key in ("layer", "validation_curve", "mean_curve"):
        assert chosen[key] == reference["layer_selection"][key], key


def test_override_layer_target_chooses_on_the_target_and_is_another_run(
    tiny_llama_path, tmp_path, monkeypatch
):
    """--override_layer target is the earlier behaviour (the layer best at the overriding target
    on validation) under its own run id; a made-up target curve shows whose best layer is used."""
    from harness import evaluator

    n_layers = 4  # the tiny Llama's
    swept = []

    def target_sweep(ctx, task, seed):
        swept.append((task, seed))
        return {"acc": [0.0, 0.0, 0.0, 0.5], "acc_strict": [0.0] * n_layers}

    monkeypatch.setattr(evaluator, "overriding_sweep", target_sweep)
    assert main(_text_args(tiny_llama_path, tmp_path / "target", "--override_layer", "target")) == 0
    doc, target_id = _selection(tmp_path / "target")
    chosen = doc["layer_selection"]
    assert sorted(swept) == [("override_text", 0), ("override_text", 1)]
    assert chosen["layer"] == 3 and list(chosen["validation_curve"]) == ["override_text"]
    assert chosen["source"].startswith("override_text validation sweep")
    assert doc["results"]["override_text"]["instruction_patch"]["layer"] == 3

    assert main(_text_args(tiny_llama_path, tmp_path / "main")) == 0
    default, main_id = _selection(tmp_path / "main")
    assert len(swept) == 2  # the default swept the six tasks, not the target
    assert default["layer_selection"]["layer"] != 3  # the six tasks' best layer, not the target's
    assert main_id != target_id


def test_override_layer_is_part_of_an_overriding_runs_identity_only():
    """An overriding run made before --override_layer existed chose on the target: under
    `target` it keeps its id (and resumes), while the new default gets a new one. Runs whose
    layer is given, and runs of other tasks, keep their ids whatever the flag."""
    from harness.arguments import parse_run_config
    from harness.store import run_id

    def identity(*argv):
        return parse_run_config(list(argv)).identity()

    override = ("--tasks", "override_text")
    before = identity(*override, "--override_layer", "target")  # the earlier identity
    assert "override_layer" not in before
    assert identity(*override) == {**before, "override_layer": "main"}
    assert run_id(parse_run_config(list(override)), {}) != run_id(
        parse_run_config([*override, "--override_layer", "target"]), {}
    )
    assert "override_layer" not in identity(*override, "--layer", "3")
    assert "override_layer" not in identity(*override, "--layer_from", "x.json")
    assert "override_layer" not in identity()  # the main job


def test_an_unknown_override_layer_is_refused():
    from harness.config import RunConfig
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="use one of main, target"):
        RunConfig(tasks=("override_text",), override_layer="middle").validate()
