"""Prompt lengths are measured in the model's tokens, for every kind of prompt a run builds
(reliability, class 4): items short in characters but long in tokens, and a long --instruction,
are refused before any work, naming the task, the prompt and the fix."""

from __future__ import annotations

import json

import pytest

from harness.cli import main


def _task_file(path, pairs):
    path.write_text("".join(json.dumps({"input": x, "output": y}) + "\n" for x, y in pairs))
    return path


def _run(tiny_llama_path, tmp_path, task, *more):
    argv = ["--model", f"hf:{tiny_llama_path}", "--tasks", str(task), "--seeds", "0"]
    return main([*argv, "--output_path", str(tmp_path / "out"), *more])


def test_items_short_in_characters_but_long_in_tokens_are_refused(
    tiny_llama_path, tmp_path, capsys
):
    """Characters outside the tiny tokenizer's training corpus each cost several byte tokens:
    ~120 characters, ~400 tokens an item, so three examples and a query overflow its 1024."""
    rare = "".join(chr(0x4E00 + i) for i in range(120))
    pairs = [(f"{rare}{i}", f"a{i}") for i in range(14)]
    task = _task_file(tmp_path / "cjk.jsonl", pairs)
    assert all(len(x) + len(y) < 130 for x, y in pairs)  # the old check was blind to these
    assert _run(tiny_llama_path, tmp_path, task, "--n_shot", "3") == 2
    err = capsys.readouterr().err
    assert "longest examples prompt is" in err and "context of 1024" in err
    assert "lower --n_shot" in err and "Traceback" not in err
    assert "tokens long" in err  # the long items are named, in tokens
    # refused before any work: no run folder is left behind to look like a started run
    assert not list((tmp_path / "out").glob("*/*"))


def test_a_long_instruction_is_measured(tiny_llama_path, tmp_path, capsys):
    pairs = [(f"word{i}", f"answer{i}") for i in range(14)]
    task = _task_file(tmp_path / "short.jsonl", pairs)
    long = "Answer the question. " * 400
    code = _run(tiny_llama_path, tmp_path, task, "--spec", "instruction", "--instruction", long)
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert "longest instruction prompt is" in err and "shorten the instruction" in err


def test_generated_tokens_count_against_the_context(tiny_llama_path, tmp_path, capsys):
    """A whole-answer run generates after its prompt: the room it needs is counted too."""
    filler = " ".join(f"w{i}" for i in range(150))
    pairs = [(f"{filler} {i}", f"a{i}") for i in range(14)]
    task = _task_file(tmp_path / "gen.jsonl", pairs)
    args = ["--n_shot", "2", "--score", "whole_answer"]
    code = _run(tiny_llama_path, tmp_path, task, *args, "--max_new_tokens", "1000")
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert "generated)" in err and "context of 1024" in err


@pytest.mark.parametrize("spec", ["text_examples", "instruction"])
def test_prompts_that_fit_run(tiny_llama_path, tmp_path, spec):
    pairs = [(f"word{i}", f"answer{i}") for i in range(14)]
    task = _task_file(tmp_path / "fine.jsonl", pairs)
    args = ["--spec", spec, "--n_shot", "2", "--limit", "2", "--methods", "prompt"]
    args += ["--instruction", "Give the answer."]
    assert _run(tiny_llama_path, tmp_path, task, *args) == 0


def test_a_refused_run_keeps_a_folder_that_has_work_in_it(tiny_llama_path, tmp_path, capsys):
    """Only a folder this call made, with nothing computed in it, is removed on refusal."""
    pairs = [(f"word{i}", f"answer{i}") for i in range(14)]
    task = _task_file(tmp_path / "fine.jsonl", pairs)
    args = ["--n_shot", "2", "--limit", "2", "--methods", "prompt"]
    assert _run(tiny_llama_path, tmp_path, task, *args) == 0
    (folder,) = (tmp_path / "out").glob("*/*")
    from harness.config import RunConfig
    from harness.store import RunStore

    store = RunStore(RunConfig(output_path=str(tmp_path / "out")), {})
    store.dir = folder  # an existing run's folder, as a resumed call sees it
    store.discard_if_unused()
    assert (folder / "results.json").is_file()
