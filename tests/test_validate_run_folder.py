"""`vlm-tv-eval validate RUN_DIR`: a fresh run folder passes file by file; a damaged one fails
naming the file and what is wrong with it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from examples import good

from harness.cli import main


@pytest.fixture(scope="module")
def fresh_run(tiny_llama_path, tmp_path_factory) -> Path:
    """The folder a short run of a tiny model leaves (samples logged)."""
    out = tmp_path_factory.mktemp("runs")
    argv = ["--model", f"hf:{tiny_llama_path}", "--tasks", "country_capital", "--limit", "4"]
    argv += ["--seeds", "0,1", "--n_shot", "2", "--log_samples", "--output_path", str(out)]
    assert main(argv) == 0
    (folder,) = (p.parent for p in out.glob("*/*/results.json"))
    return folder


@pytest.fixture
def run(fresh_run, tmp_path) -> Path:
    """A copy of the fresh run folder, to damage."""
    copy = tmp_path / fresh_run.name
    shutil.copytree(fresh_run, copy)
    return copy


def test_a_fresh_run_folder_is_valid(fresh_run, capsys):
    assert main(["validate", str(fresh_run)]) == 0
    out = capsys.readouterr().out
    for name in ("results.json", "config.json", "state.json", "samples_country-capital.jsonl"):
        assert f"{fresh_run / name}: ok" in out
    assert f"{fresh_run / 'parts'} (" in out and "unit(s)): ok" in out


def _json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _first_unit(run: Path) -> Path:
    return next(p for p in sorted((run / "parts").rglob("*.json")) if "prompt" in p.name)


def _edit_unit(run: Path) -> str:
    _json(_first_unit(run), lambda d: d["data"].update(edited=True))
    return "does not match the checksum"


def _move_unit(run: Path) -> str:
    unit = _first_unit(run)
    unit.rename(unit.with_name("prompt-s9.json"))
    return "but its path names"


def _config_type(run: Path) -> str:
    _json(run / "config.json", lambda d: d.update(n_shot="2"))
    return "$.n_shot: '2' is not an integer"


def _config_field(run: Path) -> str:
    _json(run / "config.json", lambda d: d.update(shots=2))
    return "$.shots: not a field of the run config"


def _config_other_run(run: Path) -> str:
    _json(run / "config.json", lambda d: d.update(n_shot=3))
    return "$.n_shot: 3, but results.json records 2"


def _state(run: Path) -> str:
    _json(run / "state.json", lambda d: d.update(created="yesterday"))
    return "$.created: 'yesterday' is not a 'date-time'"


def _state_timing(run: Path) -> str:
    _json(run / "state.json", lambda d: d["timings"].update(load=-1))
    return "$.timings.load: -1 is not seconds"


def _results(run: Path) -> str:
    _json(run / "results.json", lambda d: d["results"]["country_capital"]["patch"].update(acc=2))
    return "$.results.country_capital.patch.acc"


def _samples(run: Path) -> str:
    path = run / "samples_country-capital.jsonl"
    path.write_text(path.read_text() + "{broken\n")
    return "not valid JSON"


def _config_fifo(run: Path) -> str:
    (run / "config.json").unlink()
    os.mkfifo(run / "config.json")  # a read would block: it must be named, never opened
    return "is a FIFO, not a regular file"


# (case, damage, the file named, how many files fail): broken samples fail results.json too,
# which is checked against the rows beside it.
DAMAGE = [
    ("unit edited", _edit_unit, "parts/country-capital/prompt-s0.json", 1),
    ("unit moved", _move_unit, "parts/country-capital/prompt-s9.json", 1),
    ("config type", _config_type, "config.json", 1),
    ("config field", _config_field, "config.json", 1),
    ("config of another run", _config_other_run, "config.json", 1),
    ("config a fifo", _config_fifo, "config.json", 1),
    ("state created", _state, "state.json", 1),
    ("state timing", _state_timing, "state.json", 1),
    ("results", _results, "results.json", 1),
    ("samples line", _samples, "samples_country-capital.jsonl", 2),
]


@pytest.mark.parametrize(("case", "damage", "name", "failing"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_run_folder_fails_naming_the_file(run, capsys, case, damage, name, failing):
    message = damage(run)
    assert main(["validate", str(run)]) == 1
    err = capsys.readouterr().err
    line = next((x for x in err.splitlines() if x.startswith(f"{run / name}")), "")
    assert message in line, err
    assert err.splitlines()[-1].startswith(f"{failing} of "), err


def test_files_the_run_does_not_write_are_named_not_failed(run, capsys):
    (run / "notes.txt").write_text("mine")
    assert main(["validate", str(run)]) == 0
    assert f"{run / 'notes.txt'}: not checked" in capsys.readouterr().out


def test_a_folder_that_is_no_run_folder_is_refused_with_the_fix(tmp_path, capsys):
    assert main(["validate", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path}: $: is a folder but not a run folder" in err
    assert "give a run folder (<output_path>/<model>/<run-id>)" in err


def test_kind_does_not_apply_to_a_folder(fresh_run, capsys):
    assert main(["validate", "--kind", "results", str(fresh_run)]) == 2
    assert "--kind results applies to files" in capsys.readouterr().err


def _pending(folder: Path, task: str, method: str) -> Path:
    """A results document as an overriding run leaves it before its judge: the entries
    without their numbers."""
    doc = good("results")
    doc["config"].update(tasks=[task], methods=[method], spec="instruction")
    doc.pop("layer_selection")
    doc["results"] = {task: {method: {"n": 10, "split": "test", "seeded": False}}}
    folder.mkdir()
    (folder / "pending_results.json").write_text(json.dumps(doc))
    return folder


def test_pending_results_may_wait_for_their_judge(tmp_path, capsys):
    folder = _pending(tmp_path / "run", "override_semantic", "original")
    assert main(["validate", str(folder)]) == 0
    assert f"{folder / 'pending_results.json'}: ok" in capsys.readouterr().out


def test_pending_results_are_otherwise_held_to_the_results_schema(tmp_path, capsys):
    # A first-token task never waits for a judge: its entry must have its numbers.
    folder = _pending(tmp_path / "first-token", "country_capital", "patch")
    assert main(["validate", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "pending_results.json: $.results.country_capital.patch: 'acc' is a required" in err
    # Waiting for a judge excuses the missing numbers only.
    folder = _pending(tmp_path / "bad-n", "override_semantic", "original")
    _json(folder / "pending_results.json", lambda d: d["results"]["override_semantic"]["original"]
          .update(n=0))  # fmt: skip
    assert main(["validate", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "$.results.override_semantic.original.n" in err and "'acc'" not in err
