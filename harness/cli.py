"""`vlm-tv-eval`: dispatch to a subcommand or run an evaluation, and print what went wrong.

vlm-tv-eval [--model NAME ...]      run an evaluation (no arguments: the main job)
vlm-tv-eval validate FILE...        check files against the schema their kind names
vlm-tv-eval ls tasks|models|methods list what is registered
vlm-tv-eval judge RUN_DIR           judge an overriding run's generations
vlm-tv-eval analyze NAME ...        the paper's analyses (logit-lens, tsne, scaling, ...)

Every problem the user can fix is a `HarnessError`, raised where it is found and printed here,
once, as one line; the exit status is then 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .analysis import cmd_analyze
from .arguments import parse_run_config
from .commands import cmd_judge, cmd_ls, cmd_validate
from .errors import HarnessError
from .prepare import prepare
from .store import RunStore


def cmd_run(argv: Sequence[str]) -> int:
    config = parse_run_config(argv)
    data = prepare(config)
    store = RunStore(config, data)
    print(f"run folder: {store.dir}", file=sys.stderr)
    # Here, not at the top: `validate`, `ls` and `--help` never import torch.
    from .evaluator import evaluate
    from .results import overriding_table, summary_table

    try:
        with store.locked():  # a second identical run stops here instead of redoing the work
            doc = evaluate(config, data, store)
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
    total = doc["timings"].get("total", 0)
    where = store.dir / "results.json"
    if sel:
        print(f"layer {sel['layer']} ({sel['mode']}); total {total:.0f} s; results: {where}")
    else:
        print(f"total {total:.0f} s; results: {where}")
    return 0


SUBCOMMANDS = {
    "validate": cmd_validate,
    "ls": cmd_ls,
    "judge": cmd_judge,
    "analyze": cmd_analyze,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    try:
        if command:
            return SUBCOMMANDS[command](argv[1:])
        return cmd_run(argv)
    except HarnessError as exc:
        prog = f"vlm-tv-eval {command}" if command else "vlm-tv-eval"
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
