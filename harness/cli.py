"""`vlm-tv-eval`: evaluate a model, validate files, list what is registered.

vlm-tv-eval [--model NAME ...]      run an evaluation (no arguments: the main job)
vlm-tv-eval validate FILE...        check files against the schema their kind names
vlm-tv-eval ls tasks|models         list registered tasks or model adapters
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from benchmark import TASKS, kinds, validate_file

SUBCOMMANDS = ("validate", "ls")


def cmd_validate(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="vlm-tv-eval validate",
        description="Check files against the JSON Schema their kind names (a 'kind' field, or "
        "samples_*.jsonl / verdicts*.jsonl by name, or --kind). Prints every error with the "
        "JSON path of the bad field; exit status 1 on any error.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--kind", choices=kinds(), help="schema to use for every file")
    args = parser.parse_args(argv)
    failed = 0
    for name in args.files:
        errors = validate_file(name, kind=args.kind)
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
    parser.add_argument("what", choices=["tasks", "models"])
    args = parser.parse_args(argv)
    if args.what == "tasks":
        print(f"{'task':20} {'family':12} {'source':10} {'scoring':12} instruction")
        for t in TASKS.values():
            print(f"{t.id:20} {t.family:12} {t.source:10} {t.scoring:12} {t.instruction}")
        return 0
    from . import adapters

    for name, desc in adapters.describe_adapters():
        print(f"{name:20} {desc}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "validate":
        return cmd_validate(argv[1:])
    if argv and argv[0] == "ls":
        return cmd_ls(argv[1:])
    from .run import cmd_run

    return cmd_run(argv)


if __name__ == "__main__":
    sys.exit(main())
