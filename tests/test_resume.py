"""Resume trusts only what this run wrote: a unit from another run, another code version, other
items, or edited by hand is recomputed with a warning naming the file."""

from __future__ import annotations

import json

import pytest
from examples import run_results

import harness.store as store_module
from harness.cli import main


def _args(tiny_llama_path, out):
    return [
        "--model", f"hf:{tiny_llama_path}", "--tasks", "country_capital", "--limit", "4",
        "--seeds", "0", "--n_shot", "2", "--output_path", str(out),
    ]  # fmt: skip


def _stable(doc):
    doc = json.loads(json.dumps(doc))
    for key in ("timings", "created"):
        doc.pop(key)
    doc["config"].pop("output_path")
    return doc


@pytest.fixture
def first_run(tiny_llama_path, tmp_path):
    out = tmp_path / "run"
    assert main(_args(tiny_llama_path, out)) == 0
    (parts,) = out.glob("*/*/parts")
    return out, parts, run_results(out)


def test_a_clean_rerun_reuses_every_unit_and_keeps_created(
    first_run, tiny_llama_path, computed, capsys
):
    out, _, first = first_run
    assert main(_args(tiny_llama_path, out)) == 0
    again = run_results(out)
    assert computed == [] and "warning" not in capsys.readouterr().err
    assert again["created"] == first["created"]
    # Timings add up over the run's invocations (the second one loaded the model again).
    assert again["timings"]["load"] > first["timings"]["load"]
    assert again["timings"]["prompt"] == first["timings"]["prompt"]


def test_a_hand_edited_unit_is_recomputed(first_run, tiny_llama_path, computed, capsys):
    out, parts, first = first_run
    path = parts / "country-capital" / "prompt-s0.json"
    unit = json.loads(path.read_text())
    unit["data"]["lenient"] = [True] * len(unit["data"]["lenient"])  # a better number, by hand
    path.write_text(json.dumps(unit))
    assert main(_args(tiny_llama_path, out)) == 0
    err = capsys.readouterr().err
    assert str(path) in err and "checksum" in err
    assert computed == ["country-capital/prompt-s0"]
    assert _stable(run_results(out)) == _stable(first)


@pytest.mark.parametrize(
    "damage,reason",
    [
        (lambda u: u.update(run_id="text_examples-000000000000"), "another run"),
        (lambda u: u.update(items="0" * 64), "other items"),
        (lambda u: u.pop("checksum"), "not a unit"),
        (lambda u: u.clear(), "not a unit"),
    ],
)
def test_a_unit_that_is_not_this_runs_is_recomputed(
    first_run, tiny_llama_path, computed, capsys, damage, reason
):
    out, parts, first = first_run
    path = parts / "country-capital" / "no_context.json"
    unit = json.loads(path.read_text())
    damage(unit)
    path.write_text(json.dumps(unit))
    assert main(_args(tiny_llama_path, out)) == 0
    assert reason in capsys.readouterr().err
    assert computed == ["country-capital/no_context"]
    assert _stable(run_results(out)) == _stable(first)


def test_a_damaged_unit_file_is_recomputed(first_run, tiny_llama_path, computed, capsys):
    out, parts, first = first_run
    path = parts / "country-capital" / "majority-s0.json"
    path.write_text('{"unit": "count')
    assert main(_args(tiny_llama_path, out)) == 0
    assert "unreadable" in capsys.readouterr().err
    assert computed == ["country-capital/majority-s0"]
    assert _stable(run_results(out)) == _stable(first)


def test_units_of_other_code_are_not_reused(first_run, tiny_llama_path, computed, monkeypatch):
    out, _, first = first_run
    monkeypatch.setattr(store_module, "code_version", lambda: "0123456789abcdef")
    assert main(_args(tiny_llama_path, out)) == 0
    assert len(computed) == 5  # the sweep and the four methods, all again
    assert _stable(run_results(out)) == _stable(first)
