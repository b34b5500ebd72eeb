"""Bad input ends in a one-line error that names the problem and the fix (exit 2, no
traceback), before any model loads; inputs that would quietly change the experiment are
refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from examples import run_results

from harness import evaluator
from harness.cli import main


def _task_file(path, pairs, instruction=None):
    lines = [json.dumps({"instruction": instruction})] if instruction else []
    lines += [json.dumps({"input": x, "output": y}) for x, y in pairs]
    path.write_text("\n".join(lines) + "\n")
    return path


PAIRS = [(f"word{i}", f"answer{i}") for i in range(10)]


@pytest.fixture
def no_model_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(evaluator, "load_adapter", refuse)


def _cases(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    same_name = [_task_file(d / "task.jsonl", PAIRS) for d in (a, b)]
    dup = _task_file(tmp_path / "dup.jsonl", [*PAIRS, ("Word3", "other")])
    # "Zürich" composed (NFC) on line 11, decomposed (NFD: u + U+0308) on line 12
    nfd = _task_file(tmp_path / "nfd.jsonl", [*PAIRS, ("Z\u00fcrich", "a"), ("Zu\u0308rich ", "b")])
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes('{"input": "caf\xe9", "output": "x"}\n'.encode("latin-1"))
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    return [
        (["--model_args", "pretrained=/models/x"], "would ignore pretrained"),
        (["--model_args", "load_in_4bit=true"], "would ignore load_in_4bit"),
        (["--model_args", "dtype=float64"], "dtype 'float64' is not one of"),
        (["--model_args", "colour=blue"], "colour"),
        (["--model_args", "novalue"], "is not key=value"),
        (["--device", "cuda"], "CUDA is not available"),
        (["--device", "bogus"], "--device 'bogus'"),
        (["--model", "hf:/no/such/checkpoint"], "does not exist"),
        (["--output_path", str(a_file)], "is a file"),
        (["--seeds", "1,1"], "repeats a seed"),
        (["--tasks", str(a)], "is a folder"),
        (["--tasks", ",".join(map(str, same_name)), "--n_shot", "2"], "two tasks are named"),
        (["--tasks", str(dup)], "repeats line 4"),
        (["--tasks", str(nfd)], "nfd.jsonl:12: input 'Zu\u0308rich ' repeats line 11"),
        (["--tasks", str(latin1)], "not UTF-8"),
        (["--tasks", "override_text", "--layer_from", str(tmp_path / "none.json")], "--layer_from"),
        (["--max_new_tokens", "0", "--tasks", "override_text"], "--max_new_tokens"),
    ]


def test_bad_inputs_are_one_line_errors_before_any_model_loads(tmp_path, capsys, no_model_load):
    failures = []
    for argv, message in _cases(tmp_path):
        code = main(argv)
        err = capsys.readouterr().err
        if code != 2 or message not in err or "Traceback" in err:
            failures.append((argv, code, err[-300:]))
    assert not failures, failures


def test_a_prompt_longer_than_the_context_is_refused_before_the_run(
    tiny_llama_path, tmp_path, capsys
):
    long = [(f"{i} " + "word " * 200, f"answer{i}") for i in range(14)]
    task = _task_file(tmp_path / "long.jsonl", long)
    args = ["--model", f"hf:{tiny_llama_path}", "--tasks", str(task), "--n_shot", "3"]
    assert main([*args, "--output_path", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "context of 1024" in err and "lower --n_shot" in err
    assert "tokens long" in err  # the long items are named too
    assert not list((tmp_path / "out").glob("*/*/parts/*/*.json"))


def test_demos_follow_the_files_content_not_its_name(tiny_llama_path, tmp_path):
    one = _task_file(tmp_path / "first.jsonl", PAIRS)
    two = _task_file(tmp_path / "second.jsonl", PAIRS)
    common = ["--model", f"hf:{tiny_llama_path}", "--seeds", "0", "--n_shot", "2"]
    common += ["--methods", "majority,prompt"]
    docs = []
    for task in (one, two):
        out = tmp_path / task.stem
        assert main([*common, "--tasks", str(task), "--output_path", str(out)]) == 0
        (results,) = run_results(out)["results"].values()
        docs.append(results)
    assert docs[0] == docs[1]


def test_a_read_only_output_path_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    """Root ignores permissions here, so the answer the OS would give is injected."""
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode)
    )
    monkeypatch.setattr(evaluator, "load_adapter", lambda *a, **k: pytest.fail("model loaded"))
    code = main(["--output_path", str(locked / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and f"{locked} is not writable" in err and "Traceback" not in err
    assert not (locked / "runs").exists()
