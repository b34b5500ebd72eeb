"""`vlm-tv-eval`'s shape: argparse subcommands with `run` the default, a fast `--help` that
shows every flag's default, one flag style in both CLIs, and a custom task file whose name
cannot be a task id refused in one line before any work."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import pytest

from harness import evaluator
from harness.arguments import parse_run_config
from harness.cli import COMMANDS, main, with_command

COMMAND_NAMES = ["run", "validate", "ls", "judge", "analyze"]


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's --help and usage errors
        return int(exc.code or 0)


@pytest.fixture
def no_model_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(evaluator, "load_adapter", refuse)


# --- subcommands -------------------------------------------------------------------------------


def test_help_lists_every_subcommand(capsys):
    assert _exit_code(["--help"]) == 0
    out = capsys.readouterr().out
    listed = [m[1] for line in out.splitlines() if (m := re.match(r"    ([a-z]+)  ", line))]
    assert listed == COMMAND_NAMES, out
    assert "vlm-tv-eval --model X" in out  # says that run is the default


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], ["run"]),
        (["--model", "x"], ["run", "--model", "x"]),
        (["--help"], ["--help"]),
        (["-h"], ["-h"]),
        (["run", "--model", "x"], ["run", "--model", "x"]),
        (["ls", "tasks"], ["ls", "tasks"]),
    ],
)
def test_run_is_the_default_command(argv, expected):
    assert with_command(argv) == expected


@pytest.mark.parametrize("prefix", [[], ["run"]])
def test_a_run_is_the_same_with_or_without_its_command(prefix, no_model_load, capsys):
    assert main([*prefix, "--model", "gpt-17"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vlm-tv-eval: error: unknown model 'gpt-17'"), err


def test_an_unknown_command_is_a_usage_error(capsys):
    assert _exit_code(["evaluate"]) == 2
    assert "invalid choice: 'evaluate'" in capsys.readouterr().err


# --- --help: fast, complete ---------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], *([c] for c in COMMAND_NAMES)])
def test_help_imports_no_torch(command):
    """Each --help in a fresh interpreter: no torch imported (the time is printed, not
    asserted: it depends on the machine)."""
    argv = [*command, "--help"]
    code = (
        "import sys, time\n"
        "start = time.perf_counter()\n"
        "from harness.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(f'{time.perf_counter() - start:.2f}', file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    print(f"vlm-tv-eval {' '.join(argv)}: {proc.stderr.strip().splitlines()[-1]} s")


def _flags(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def _command_parsers() -> dict[str, argparse.ArgumentParser]:
    out = {}
    for name, (_, declare, _) in COMMANDS.items():
        parser = argparse.ArgumentParser()
        declare(parser)
        out[name] = parser
    return out


def _leaderboard_parsers() -> dict[str, argparse.ArgumentParser]:
    from leaderboard.cli import _parser

    top = _parser()
    (sub,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    return {"leaderboard": top, **{f"leaderboard {n}": p for n, p in sub.choices.items()}}


def test_every_flag_has_help_and_says_its_default():
    """A default of None must be explained in the help (what leaving the flag out means);
    any other default is appended by the formatter."""
    missing = []
    for name, parser in _command_parsers().items():
        for action in _flags(parser):
            flag = action.option_strings[0] if action.option_strings else action.dest
            if not action.help:
                missing.append(f"{name} {flag}: no help")
            elif action.option_strings and action.default is None:
                if "default" not in action.help.lower():
                    missing.append(f"{name} {flag}: default None, and the help does not say")
    assert not missing, "\n".join(missing)


def test_help_shows_defaults_and_both_spellings_once(capsys):
    assert _exit_code(["run", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # as one line, whatever the wrapping
    assert "(default: 32)" in out  # --batch_size
    assert "--model_args, --model-args MODEL_ARGS" in out
    assert "(default: smollm2-135m)" in out


# --- one flag style in both CLIs ---------------------------------------------------------------


def _spelling_problems(parsers: dict[str, argparse.ArgumentParser]) -> list[str]:
    problems = []
    for name, parser in parsers.items():
        for action in _flags(parser):
            for flag in action.option_strings:
                name_ = flag[2:]
                if flag.startswith("--") and ("_" in name_ or "-" in name_):
                    under, dash = "--" + name_.replace("-", "_"), "--" + name_.replace("_", "-")
                    if not {under, dash} <= set(action.option_strings):
                        problems.append(f"{name} {flag}: not under both {under} and {dash}")
    return problems


def test_every_flag_of_two_words_takes_both_spellings():
    problems = _spelling_problems(_command_parsers()) + _spelling_problems(_leaderboard_parsers())
    assert not problems, "\n".join(problems)


def test_dashed_and_underscored_flags_make_the_same_run():
    under = ["--model_args", "dtype=float32", "--n_shot", "3", "--output_path", "out"]
    under += ["--source_model_args", "dtype=float32", "--case_insensitive", "--batch_size", "4"]
    dashed = [a.replace("_", "-") if a.startswith("--") else a for a in under]
    assert parse_run_config(dashed) == parse_run_config(under)
    assert parse_run_config(dashed).n_shot == 3


def test_the_leaderboard_takes_both_spellings(tmp_path):
    from leaderboard.cli import _parser

    common = ["add", "r.json", "--name", "n"]
    dashed = _parser().parse_args([*common, "--submitted-by", "me", "--model-card", "u"])
    under = _parser().parse_args([*common, "--submitted_by", "me", "--model_card", "u"])
    assert vars(dashed) == vars(under)
    assert (under.submitted_by, under.model_card) == ("me", "u")


# --- a custom task whose file name cannot be a task id ------------------------------------------


def test_a_task_file_whose_name_is_no_task_id_is_one_line_before_the_run(
    tmp_path, no_model_load, capsys
):
    task = tmp_path / "my opposites (v2).jsonl"
    words = [("hot", "cold"), ("up", "down"), ("big", "small"), ("wet", "dry"), ("old", "new")]
    task.write_text("\n".join(json.dumps({"input": a, "output": b}) for a, b in words))
    assert main(["--tasks", str(task), "--output_path", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert f"--tasks {task}" in err and "'custom:my opposites (v2)'" in err
    assert "rename the file (e.g. my_opposites_v2.jsonl)" in err
    assert "$." not in err and "does not match" not in err  # no schema path or pattern
    assert not (tmp_path / "out").exists()
