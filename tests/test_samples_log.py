"""`--log_samples` rows a researcher can read: the prompt as the model saw it, the input, the
target, the raw continuation and the scored prediction; a row that does not change with the
seed is written once, and the results' consistency checks still hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny_vlms

from benchmark import validate, validate_file
from harness.cli import main
from harness.items import sha256


def _rows(out: Path, task: str) -> tuple[dict, list[dict]]:
    (samples,) = out.glob(f"*/*/samples_{task}.jsonl")
    doc = json.loads((samples.parent / "results.json").read_text())
    return doc, [json.loads(line) for line in samples.read_text().splitlines()]


@pytest.fixture(scope="module")
def logged(tiny_llama_path, tmp_path_factory) -> tuple[Path, dict, list[dict]]:
    out = tmp_path_factory.mktemp("logged")
    args = ["--model", f"hf:{tiny_llama_path}", "--tasks", "country_capital", "--limit", "4"]
    args += ["--seeds", "0,1", "--n_shot", "2", "--log_samples", "--output_path", str(out)]
    assert main(args) == 0
    doc, rows = _rows(out, "country-capital")
    (run,) = {p.parent for p in out.glob("*/*/results.json")}
    return run, doc, rows


def test_a_row_holds_the_prompt_input_target_and_raw_continuation(logged):
    _, _, rows = logged
    assert all(validate(r, "sample") == [] for r in rows)
    for row in rows:
        assert sha256(row["prompt"]) == row["prompt_hash"]  # the very prompt the model saw
        assert row["input"] in row["prompt"]
        assert row["prompt"].rstrip().endswith("A:")
    prompt = next(r for r in rows if r["method"] == "prompt" and r["seed"] == 1)
    # Two demos with their answers before the query: the prompt, not only its hash.
    assert prompt["prompt"].count("\nA: ") == 2
    assert prompt["prompt"].endswith(f"Q: {prompt['input']}\nA:")
    for row in rows:
        if row["method"] == "majority":  # no model answered: a demo label, no continuation
            assert "continuation" not in row
        else:  # the first token as decoded, unstripped: what lenient and strict scored
            assert row["continuation"] == row["prediction"]
    patch = next(r for r in rows if r["method"] == "patch")
    assert patch["prompt"] == f"Q: {patch['input']}\nA:" and isinstance(patch["layer"], int)


def test_rows_that_do_not_change_with_the_seed_are_written_once(logged):
    run, doc, rows = logged
    ids = [r["doc_id"] for r in rows if r["method"] == "no_context"]
    assert len(ids) == len(set(ids)) == 4  # once per item, not once per seed
    once = [r for r in rows if r["method"] == "no_context"]
    assert all(r["seeded"] is False and r["seed"] == 0 for r in once)
    for method in ("prompt", "patch", "majority"):  # these draw demos per seed
        mine = [r for r in rows if r["method"] == method]
        assert sorted(r["seed"] for r in mine) == [0] * 4 + [1] * 4
        assert not any("seeded" in r for r in mine)
    # The checks that read the rows take a once-written row as every seed's.
    assert validate_file(run / "results.json") == []


def test_a_once_written_row_that_disagrees_with_the_results_is_caught(logged, tmp_path):
    import shutil

    run = Path(shutil.copytree(logged[0], tmp_path / "run"))
    samples = run / "samples_country-capital.jsonl"
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    first = next(r for r in rows if r["method"] == "no_context")
    dropped = [r for r in rows if r is not first]
    samples.write_text("".join(json.dumps(r) + "\n" for r in dropped))
    errors = [str(e) for e in validate_file(run / "results.json")]
    assert any("no_context.n: 4 items per seed" in e and "3 row(s) for seed 0" in e for e in errors)


def test_an_image_query_logs_its_placeholder_never_pixels(tmp_path):
    model = tiny_vlms.build_llava(tmp_path / "llava")
    data = str(tiny_vlms.write_image_dataset(tmp_path / "built", ["food_color"]))
    argv = ["--model", f"hf-vlm:{model}", "--query", "image", "--data", data, "--log_samples"]
    argv += ["--tasks", "food_color", "--limit", "2", "--seeds", "0", "--n_shot", "2"]
    assert main([*argv, "--output_path", str(tmp_path / "out")]) == 0
    _, rows = _rows(tmp_path / "out", "food-color")
    row = next(r for r in rows if r["method"] == "no_context")
    assert "<image>" in row["prompt"] and sha256(row["prompt"]) == row["prompt_hash"]
    assert len(row["image_sha256"]) == 64 and len(row["prompt"]) < 200  # no pixel data
    assert all(validate(r, "sample") == [] for r in rows)
