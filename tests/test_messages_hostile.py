"""Hostile inputs to the newer surfaces (`judge`, overriding runs, `--model gguf:`, `validate`,
`vlm-tv-leaderboard add`, `--data`, task files), each ending in ONE line that names the
problem, the file and the fix, with a non-zero exit status and no traceback."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from harness import evaluator
from harness.cli import main
from leaderboard.cli import main as leaderboard_main

JUDGE_URL = "http://127.0.0.1:9/v1"


@pytest.fixture
def no_model_load(monkeypatch):
    monkeypatch.setattr(evaluator, "load_adapter", lambda *a, **k: pytest.fail("model loaded"))


def _one_line(capsys, code: int, want: int, *words: str) -> str:
    """The command exited `want` with one error line on stderr, its last, holding every one of
    `words` (a run's progress lines, "run folder: ...", may come before it)."""
    err = capsys.readouterr().err.strip()
    assert code == want, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    lines = err.splitlines()
    assert [line for line in lines if line.startswith("vlm-tv-")] == lines[-1:], err
    for word in words:
        assert word in lines[-1], err
    return lines[-1]


def _run(tmp_path: Path, *argv: str) -> list[str]:
    return [*argv, "--output_path", str(tmp_path / "runs"), "--limit", "4", "--seeds", "0"]


# -- vlm-tv-eval judge RUN_DIR --------------------------------------------------------------


def _overriding_run(folder: Path, tasks: list[str] | None = None) -> Path:
    folder.mkdir(parents=True)
    config = {"tasks": tasks or ["override_text"], "methods": ["original"], "n_shot": 5}
    doc = {"config": {**config, "spec": "instruction"}, "seeds": [0]}
    (folder / "pending_results.json").write_text(json.dumps(doc))
    return folder


def test_judge_given_a_results_file_says_to_give_its_folder(tmp_path, capsys):
    run = _overriding_run(tmp_path / "run")
    code = main(["judge", str(run / "pending_results.json"), "--judge_base_url", JUDGE_URL])
    _one_line(capsys, code, 2, "pending_results.json is a file, not a run folder", str(run))


def test_judge_given_a_missing_folder_says_it_does_not_exist(tmp_path, capsys):
    code = main(["judge", str(tmp_path / "nowhere"), "--judge_base_url", JUDGE_URL])
    _one_line(capsys, code, 2, "nowhere does not exist", "give the run folder")


def test_judge_given_a_first_token_run_says_only_overriding_runs_are_judged(tmp_path, capsys):
    run = _overriding_run(tmp_path / "run", ["country_capital"])
    code = main(["judge", str(run), "--judge_base_url", JUDGE_URL])
    _one_line(capsys, code, 2, "is not an overriding run", "--tasks override_text")


def test_judge_names_the_missing_generations_file_and_the_fix(tmp_path, capsys):
    run = _overriding_run(tmp_path / "run")
    code = main(["judge", str(run), "--judge_base_url", JUDGE_URL])
    _one_line(capsys, code, 2, "generations_override-text.jsonl missing", "rerun the run")


# -- --judge_base_url ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, why",
    [
        ("http://", "names no host"),
        ("localhost:8000", "has no http:// or https://"),
        ("ftp://x", "uses ftp://"),
        ("http://[::1", "is not a URL"),
        ("http://host:99999/v1", "is not a URL"),
        ("http://a b/v1", "holds a space"),
    ],
)
def test_a_malformed_judge_url_is_one_line_naming_the_flag(tmp_path, capsys, url, why):
    argv = _run(tmp_path, "--tasks", "override_text", "--judge_base_url", url)
    code = main(argv)
    _one_line(capsys, code, 2, f"--judge_base_url {url!r} {why}", "http://127.0.0.1:8000/v1")


# -- --model gguf:PATH ---------------------------------------------------------------------


def _gguf(path: Path, blob: bytes) -> Path:
    path.write_bytes(blob)
    return path


# Cut inside the 24-byte header; and a whole header whose metadata is cut off.
CUT_HEADER = b"GGUF" + struct.pack("<I", 3)
CUT_METADATA = b"GGUF" + struct.pack("<IQQ", 3, 10**6, 5)


@pytest.mark.parametrize("blob", [CUT_HEADER, CUT_METADATA], ids=["header", "metadata"])
def test_a_truncated_gguf_is_one_line_saying_so(tmp_path, capsys, blob):
    gguf = _gguf(tmp_path / "cut.gguf", blob)
    code = main(_run(tmp_path, "--model", f"gguf:{gguf}", "--tasks", "country_capital"))
    _one_line(capsys, code, 2, "cut.gguf", "truncated or damaged", "download or convert it again")


def test_a_truncated_gguf_is_named_when_its_layers_are_counted(tmp_path, capsys):
    gguf = _gguf(tmp_path / "cut.gguf", CUT_METADATA)
    argv = _run(tmp_path, "--model", f"gguf:{gguf}", "--tasks", "country_capital", "--layer", "1")
    _one_line(capsys, main(argv), 2, "cut.gguf", "truncated or damaged", "download")


# -- files: a BOM, a task file's bad lines ---------------------------------------------------


def test_validate_names_a_byte_order_mark_and_the_fix(tmp_path, capsys):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"kind": "results"}).encode())
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert f"{path}: $: starts with a UTF-8 byte-order mark" in err
    assert "save the file as UTF-8 without a BOM" in err


def test_a_task_file_without_outputs_is_one_line_with_the_line_format(
    tmp_path, capsys, no_model_load
):
    task = tmp_path / "noout.jsonl"
    task.write_text("".join(json.dumps({"input": f"w{i}"}) + "\n" for i in range(8)))
    code = main(_run(tmp_path, "--tasks", str(task)))
    err = _one_line(capsys, code, 2, "noout.jsonl:1: missing or empty output", '"output": "..."')
    assert "and 5 more" in err


# -- --data -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p.mkdir() or (p / "notes.txt").write_text("hi"), "is not a folder vlm-tv-build"),
        (lambda p: p.write_text("hi"), "is a file, not a built dataset folder"),
        (lambda p: None, "does not exist"),
    ],
    ids=["not-a-build", "file", "missing"],
)
def test_data_that_is_not_a_build_is_named(tmp_path, capsys, no_model_load, make, words):
    data = tmp_path / "data"
    make(data)
    code = main(_run(tmp_path, "--tasks", "country_capital", "--data", str(data)))
    _one_line(capsys, code, 2, f"--data {data} {words}", "vlm-tv-build cross-modal --out DIR")


# -- vlm-tv-leaderboard add ------------------------------------------------------------------


def _add(tmp_path: Path, results: Path) -> list[str]:
    root = ["--root", str(tmp_path / "lb"), "--init"]
    return ["add", *root, "--name", "Tiny", "--submitted-by", "me", str(results)]


def test_add_given_a_run_folder_names_its_results_file(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text("{}")
    code = leaderboard_main(_add(tmp_path, run))
    _one_line(
        capsys, code, 2, "run is a run folder", f"give the results file in it, {run}/results.json"
    )


@pytest.mark.parametrize("given", ["folder", "file"])
def test_add_given_pending_results_says_to_judge_first(tmp_path, capsys, given):
    run = _overriding_run(tmp_path / "run")
    path = run if given == "folder" else run / "pending_results.json"
    code = leaderboard_main(_add(tmp_path, path))
    _one_line(capsys, code, 2, "not judged yet", f"vlm-tv-eval judge {run}", "results.json")


def test_add_of_an_invalid_results_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"kind": "results"}))
    code = leaderboard_main(_add(tmp_path, path))
    _one_line(
        capsys,
        code,
        1,
        f"{path} is not a valid results file: {path}: $:",
        f"vlm-tv-eval validate {path}",
        "add takes a results.json written by vlm-tv-eval",
    )
