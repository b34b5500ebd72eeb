"""`vlm-tv-eval`: the subcommands (argparse), the run, and one line for what went wrong.

vlm-tv-eval [run] [--model NAME ...]       run an evaluation (no arguments: the main job)
vlm-tv-eval validate PATH...               check files, or a run folder file by file
vlm-tv-eval ls tasks|models|methods        list what is registered
vlm-tv-eval judge RUN_DIR                  judge an overriding run's generations
vlm-tv-eval analyze NAME ...               the paper's analyses (logit-lens, tsne, scaling, ...)

`run` is the default command, as in lm-eval: with no arguments, or a flag first, the arguments
are the run's (`vlm-tv-eval --model x` is `vlm-tv-eval run --model x`). Every problem the user
can fix is a `HarnessError`, raised where it is found and printed here, once, as one line; the
exit status is then 2. Building the parser imports no torch, so every `--help` is fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from benchmark.flags import HelpFormatter

from .analysis import analyze_arguments, cmd_analyze
from .arguments import config_from_args, run_arguments
from .commands import (
    cmd_judge,
    cmd_ls,
    cmd_validate,
    judge_arguments,
    ls_arguments,
    validate_arguments,
)
from .errors import HarnessError
from .prepare import prepare
from .store import RunStore


def cmd_run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    data = prepare(config)
    store = RunStore(config, data)
    print(f"run folder: {store.dir}", file=sys.stderr)
    # Here, not at the top: `validate`, `ls` and `--help` never import torch.
    from .evaluator import evaluate
    from .results import overriding_table, summary_table

    try:
        with store.locked():  # a second identical run stops here instead of redoing the work
            doc = evaluate(config, data, store)
    except HarnessError:
        store.discard_if_unused()  # refused before any work: no empty run folder left behind
        raise
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; finished units are kept in {store.parts}. Run the same command "
            "again to resume.",
            file=sys.stderr,
        )
        return 130
    if doc is None:  # another process of an `accelerate launch` writes the results
        return 0
    if config.overriding:
        print(overriding_table(doc))
        where = doc.pop("path")
        if where.endswith("pending_results.json"):
            print(
                f"generations written; no numbers until judged: vlm-tv-eval judge {store.dir} "
                "--judge gpt-4o-2024-08-06 (or --judge_base_url URL)"
            )
        else:
            print(f"results: {where}")
        return 0
    print(summary_table(doc))
    transfer = doc.get("transfer")
    if transfer:
        print(
            f"LLM->VLM from {transfer['source_model']} at layer {transfer['layer']}: cosine "
            f"{transfer['mean_cosine']:.2f} (mismatched tasks "
            f"{transfer.get('mean_mismatched_cosine', float('nan')):.2f})"
        )
    sel = doc.get("layer_selection")
    # The run's total over all its calls (a resumed run's earlier calls included), not this
    # call's: the time line above gives both.
    total = doc["timings"].get("total", 0)
    spent = f"total {total:.0f} s over all the run's calls"
    where = store.dir / "results.json"
    if sel:
        print(f"layer {sel['layer']} ({sel['mode']}); {spent}; results: {where}")
    else:
        print(f"{spent}; results: {where}")
    return 0


Handler = Callable[[argparse.Namespace], int]
# name -> (one line for --help, what declares its flags, what runs it), in --help's order.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {
    "run": (
        "evaluate task vectors (the default command: `vlm-tv-eval --model X` runs it)",
        run_arguments,
        cmd_run,
    ),
    "validate": ("check files, or a run folder file by file", validate_arguments, cmd_validate),
    "ls": ("list the registered tasks, models or methods", ls_arguments, cmd_ls),
    "judge": ("judge an overriding run's generations and score it", judge_arguments, cmd_judge),
    "analyze": ("the paper's analyses (logit-lens, tsne, ...)", analyze_arguments, cmd_analyze),
}


def build_parser() -> argparse.ArgumentParser:
    """`vlm-tv-eval` and its subcommands, each with its flags, help and defaults."""
    parser = argparse.ArgumentParser(
        prog="vlm-tv-eval",
        description="Evaluate cross-modal task vectors in VLMs, check the files it writes, and "
        "run the paper's analyses.",
        epilog="Without a command, or with a flag first, the arguments are `run`'s: "
        "`vlm-tv-eval` runs the main job, `vlm-tv-eval --model X` is `vlm-tv-eval run --model "
        "X`. `vlm-tv-eval COMMAND --help` lists a command's flags; each flag of two words "
        "answers to --flag_name and --flag-name.",
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", required=True
    )
    for name, (about, declare, handler) in COMMANDS.items():
        sub = commands.add_parser(
            name,
            help=about,
            description=about,  # each command's own `declare` may say more
            formatter_class=HelpFormatter,
        )
        declare(sub)
        sub.set_defaults(handler=handler)
    return parser


def with_command(argv: Sequence[str]) -> list[str]:
    """The arguments with `run` put first where no command is named: none at all, or a flag
    first (other than -h/--help, which asks for the list of commands)."""
    argv = list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        return ["run", *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(with_command(sys.argv[1:] if argv is None else argv))
    try:
        return args.handler(args)
    except HarnessError as exc:
        prog = "vlm-tv-eval" if args.command == "run" else f"vlm-tv-eval {args.command}"
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `vlm-tv-eval ls tasks | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # Ctrl-C while torch imports or the data loads: nothing to keep
        print("\nvlm-tv-eval: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
