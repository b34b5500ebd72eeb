"""The subcommands other than a run: `validate` files, `ls` what is known, `judge` a run folder.

Each is `cmd_<name>(argv) -> exit status`; `cli.main` dispatches on the first argument and
prints the HarnessError any of them raises. None imports torch at module level, so `validate`
and `ls` stay fast on any machine.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark import TASKS, kinds, validate_file
from benchmark.strict_json import SchemaError

from .adapters import describe_adapters
from .items import file_problem
from .methods import get_method, method_names
from .store import folder_lock


def _validate_one(name: str, kind: str | None) -> list[SchemaError]:
    """The file's schema errors; a folder, FIFO or device is named as such and never opened (a
    FIFO would block the read, /dev/zero would never end). A missing file is validate_file's."""
    problem = file_problem(Path(name)) if os.path.lexists(name) else None
    if problem:
        return [SchemaError("$", f"{problem}; give a .json or .jsonl file", name)]
    return validate_file(name, kind=kind)


def cmd_validate(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="vlm-tv-eval validate",
        description="Check files against the JSON Schema their kind names (a 'kind' field, or "
        "samples_*.jsonl / verdicts*.jsonl / generations_*.jsonl by name, or --kind). Prints "
        "every error with the JSON path of the bad field; exit status 1 on any error.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--kind", choices=kinds(), help="schema to use for every file")
    args = parser.parse_args(argv)
    failed = 0
    for name in args.files:
        errors = _validate_one(name, args.kind)
        if errors:
            failed += 1
            for err in errors:
                print(err, file=sys.stderr)
        else:
            print(f"{name}: ok")
    if failed:
        print(f"{failed} of {len(args.files)} file(s) invalid", file=sys.stderr)
    return 1 if failed else 0


def cmd_ls(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlm-tv-eval ls")
    parser.add_argument("what", choices=["tasks", "models", "methods"])
    args = parser.parse_args(argv)
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


def cmd_judge(argv: Sequence[str]) -> int:
    """Judge (or re-judge) the generations an overriding run logged, and score the run."""
    # Here, not at the top: scoring imports torch (through the results module).
    from .overriding.scoring import judge_run_dir
    from .results import overriding_table

    parser = argparse.ArgumentParser(
        prog="vlm-tv-eval judge",
        description="Judge an overriding run's logged generations (generations_<task>.jsonl) and "
        "write verdicts_<task>.jsonl and results.json. Verdicts are cached by (judge, prompt): "
        "a rerun asks again only what failed.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument(
        "--judge", default=None, help="a dated snapshot (default gpt-4o-2024-08-06)"
    )
    parser.add_argument("--judge_base_url", default=None)
    args = parser.parse_args(argv)
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
