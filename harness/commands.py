"""The subcommands other than a run: `validate` files and run folders, `ls` what is known,
`judge` a run folder.

Each is `<name>_arguments(parser)`, which declares its flags on the subcommand's parser, and
`cmd_<name>(args) -> exit status`; `cli.py` wires them into `vlm-tv-eval`'s subcommands and
prints the HarnessError any of them raises. None imports torch at module level, so `validate`,
`ls` and every `--help` stay fast on any machine.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from benchmark import TASKS, kinds, validate_file
from benchmark.flags import spellings
from benchmark.reading import file_problem
from benchmark.strict_json import SchemaError

from .adapters import describe_adapters
from .errors import ConfigError
from .methods import get_method, method_names
from .overriding.judge import DEFAULT_JUDGE
from .run_folder import Checked, check_run_folder, is_run_folder, not_a_run_folder, unchecked_files
from .store import folder_lock


def _validate_one(name: str, kind: str | None) -> list[Checked]:
    """What one argument holds, checked: a file against its schema, a run folder file by file
    (`run_folder`). A FIFO or device is named as such and never opened (a FIFO would block the
    read, /dev/zero would never end). A missing file is validate_file's."""
    path = Path(name)
    if path.is_dir():
        if kind is not None:
            raise ConfigError(f"--kind {kind} applies to files; {name} is a folder: leave it out")
        return (
            check_run_folder(path)
            if is_run_folder(path)
            else [Checked(name, [not_a_run_folder(path)])]
        )
    problem = file_problem(path) if os.path.lexists(name) else None
    if problem:
        return [Checked(name, [SchemaError("$", f"{problem}; give a .json or .jsonl file", name)])]
    return [Checked(name, validate_file(name, kind=kind))]


def validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Check files against the JSON Schema their kind names (a 'kind' field, or "
        "samples_*.jsonl / verdicts*.jsonl / generations_*.jsonl by name, or --kind), and run "
        "folders file by file (results, pending results, config, state, rows, parts/). Prints "
        "every error with the JSON path of the bad field; exit status 1 on any error."
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="a .json or .jsonl file, or a run folder"
    )
    parser.add_argument(
        "--kind",
        choices=kinds(),
        default=None,
        help="schema to use for every file (default: each file's own kind)",
    )


def cmd_validate(args: argparse.Namespace) -> int:
    checked = [c for name in args.paths for c in _validate_one(name, args.kind)]
    for item in checked:
        for err in item.errors:
            print(err, file=sys.stderr)
        if not item.errors:
            print(f"{item.name}: ok")
    folders = [Path(p) for p in args.paths if Path(p).is_dir() and is_run_folder(Path(p))]
    for other in (f for folder in folders for f in unchecked_files(folder)):
        print(f"{other}: not checked (vlm-tv-eval does not write it)")
    failed = sum(1 for c in checked if c.errors)
    if failed:
        print(f"{failed} of {len(checked)} file(s) invalid", file=sys.stderr)
    return 1 if failed else 0


def ls_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "List what is registered: tasks, models (adapters) or methods."
    parser.add_argument("what", choices=["tasks", "models", "methods"], help="what to list")


def cmd_ls(args: argparse.Namespace) -> int:
    if args.what == "tasks":
        print(f"{'task':20} {'family':12} {'source':10} {'scoring':12} instruction")
        for t in TASKS.values():
            print(f"{t.id:20} {t.family:12} {t.source:10} {t.scoring:12} {t.instruction}")
    elif args.what == "models":
        for name, desc in describe_adapters():
            print(f"{name:20} {desc}")
    else:
        for name in method_names():
            method = get_method(name)
            needs = "task vector + layer" if method.needs_vector else "-"
            print(f"{name:20} {needs:20} {method.context('text_examples', 5)}")
    return 0


def judge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Judge an overriding run's logged generations (generations_<task>.jsonl) and write "
        "verdicts_<task>.jsonl and results.json. Verdicts are cached by (judge, prompt): a rerun "
        "asks again only what failed."
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder the run printed")
    parser.add_argument(
        *spellings("--judge"),
        default=None,
        help=f"a dated snapshot (default: {DEFAULT_JUDGE}); the key is read from "
        "OPENAI_API_KEY only",
    )
    parser.add_argument(
        *spellings("--judge_base_url"),
        default=None,
        help="any OpenAI-compatible server (vLLM, llama.cpp, Ollama, Azure) instead of OpenAI "
        "(default: OpenAI's API)",
    )


def cmd_judge(args: argparse.Namespace) -> int:
    """Judge (or re-judge) the generations an overriding run logged, and score the run."""
    # Here, not at the top: scoring imports torch (through the results module), and
    # `judge --help` must not.
    from .overriding.scoring import judge_run_dir
    from .results import overriding_table

    if Path(args.run_dir).is_dir():
        with folder_lock(Path(args.run_dir)):
            doc, path = judge_run_dir(args.run_dir, args.judge, args.judge_base_url)
    else:  # judge_run_dir says what is wrong with it
        doc, path = judge_run_dir(args.run_dir, args.judge, args.judge_base_url)
    print(overriding_table(doc))
    if path.name == "pending_results.json":
        print(
            f"some answers could not be judged (see judge failures): no number yet; {path} "
            "keeps the run. Run the same command again: judged answers come from the cache."
        )
        return 1
    print(f"results: {path}")
    return 0
