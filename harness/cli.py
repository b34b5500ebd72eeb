"""`vlm-tv-eval`: every subcommand's arguments, and what each prints.

vlm-tv-eval [--model NAME ...]      run an evaluation (no arguments: the main job)
vlm-tv-eval validate FILE...        check files against the schema their kind names
vlm-tv-eval ls tasks|models|methods list what is registered
vlm-tv-eval judge RUN_DIR           judge an overriding run's generations
vlm-tv-eval analyze NAME ...        the paper's analyses (logit-lens, tsne, scaling, ...)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from benchmark import (
    CROSS_MODAL_TASKS,
    FIRST_TOKEN_METHODS,
    QUERIES,
    SPECS,
    TASKS,
)

from .commands import cmd_judge, cmd_ls, cmd_validate
from .config import ConfigError, RunConfig
from .presets import PRESETS, apply_preset


def _model_args(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise ConfigError(f"--model_args: {part!r} is not key=value")
        key, value = (s.strip() for s in part.split("=", 1))
        out[key] = value.lower() == "true" if value.lower() in ("true", "false") else value
    return out


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def run_parser() -> argparse.ArgumentParser:
    d = RunConfig()
    p = argparse.ArgumentParser(
        prog="vlm-tv-eval",
        description="Evaluate cross-modal task vectors. With no arguments: the main job "
        "(smollm2-135m, six tasks, text examples -> text queries, all methods, 3 seeds, sweep). "
        "Also: `vlm-tv-eval validate FILE...`, `vlm-tv-eval ls tasks|models|methods`, "
        "`vlm-tv-eval judge RUN_DIR`, `vlm-tv-eval analyze NAME` (the paper's analyses).",
    )
    p.add_argument("--model", default=d.model, help="adapter name (see `ls models`) or hf:<repo>")
    p.add_argument(
        "--model_args",
        default="",
        help="k=v,... e.g. pretrained=PATH,revision=R,dtype=bfloat16,load_in_4bit=true",
    )
    p.add_argument(
        "--tasks",
        default="all",
        help="comma-separated task ids, `all`, or a path to your own JSONL task file",
    )
    p.add_argument(
        "--spec",
        default=None,
        choices=SPECS,
        help="how the task is specified (default: text_examples; instruction for the image "
        "overriding sets)",
    )
    p.add_argument(
        "--query",
        default=None,
        choices=QUERIES,
        help="query modality (default: text; image for the VQA tasks); image queries (and "
        "--spec image_examples) need a VLM and --data",
    )
    p.add_argument(
        "--data",
        default=None,
        help="the built cross-modal dataset with images: a folder written by `vlm-tv-build` "
        "or a Hub dataset id (datasets.load_dataset)",
    )
    p.add_argument(
        "--source_model",
        default=None,
        help="extract task vectors in this model (e.g. the VLM's base LLM) and patch them into "
        "--model at the same layer",
    )
    p.add_argument("--source_model_args", default="", help="k=v,... for --source_model")
    p.add_argument("--n_shot", type=int, default=None, help=f"demos (default {d.n_shot})")
    p.add_argument("--seeds", type=_int_list, default=None, help="e.g. 0,1,2 (the default)")
    p.add_argument(
        "--preset",
        default=None,
        choices=PRESETS,
        help="paper: the authors' setting (their layer, 4-bit NF4 with fp16 compute, template "
        "paper, N=5, seeds 0,1,2) for every flag not given; departures are recorded",
    )
    p.add_argument(
        "--methods",
        default=None,
        help="see `vlm-tv-eval ls methods` (default: the tasks' own: no_context,majority,prompt,"
        "patch; original,system_prompt,instruction_patch for overriding tasks)",
    )
    p.add_argument("--limit", type=int, default=None, help="items per split (quick runs)")
    p.add_argument(
        "--layer",
        type=int,
        default=None,
        help="patch at this layer instead of choosing it on validation",
    )
    p.add_argument(
        "--template",
        default=None,
        help="paper | spaced | model (each example its own chat turn, the paper's Table 10) | "
        "model_one_turn (the whole prompt in one user turn); default: the adapter's",
    )
    p.add_argument("--case_insensitive", action="store_true")
    p.add_argument("--instruction", default=None, help="instruction for a custom task file")
    p.add_argument("--batch_size", type=int, default=d.batch_size)
    p.add_argument("--device", default=d.device, help="auto (cuda if available), cpu, cuda:N")
    p.add_argument("--output_path", default=d.output_path)
    p.add_argument("--log_samples", action="store_true")
    o = p.add_argument_group("overriding tasks (free-form answers, judged)")
    o.add_argument("--max_new_tokens", type=int, default=d.max_new_tokens)
    o.add_argument(
        "--layer_from",
        default=None,
        metavar="RESULTS_JSON",
        help="patch at the layer a previous run of the same model chose",
    )
    o.add_argument(
        "--judge",
        default=None,
        help="judge model, a dated snapshot (default when judging: gpt-4o-2024-08-06); the key "
        "is read from OPENAI_API_KEY only",
    )
    o.add_argument(
        "--judge_base_url",
        default=None,
        help="any OpenAI-compatible server (vLLM, llama.cpp, Ollama, Azure) instead of OpenAI",
    )
    return p


def _default_methods(tasks: Sequence[str]) -> tuple[str, ...]:
    """The tasks' own methods when they agree (custom files: the first-token methods)."""
    own = {TASKS[t].methods if t in TASKS else FIRST_TOKEN_METHODS for t in tasks}
    return own.pop() if len(own) == 1 else FIRST_TOKEN_METHODS


def _default_spec(tasks: Sequence[str]) -> str:
    """Image overriding sets are set up by their image and question: their spec is the
    overriding instruction. Everything else defaults to text examples."""
    image_sets = all(t in TASKS and TASKS[t].source in ("vqav2", "okvqa") for t in tasks)
    overriding = all(t in TASKS and TASKS[t].family == "overriding" for t in tasks)
    return "instruction" if tasks and overriding and image_sets else "text_examples"


def _default_query(tasks: Sequence[str]) -> str:
    """The VQA subsets are questions about images: the paper queries them with the image."""
    vqa = all(t in TASKS and TASKS[t].family == "vqa" for t in tasks)
    return "image" if tasks and vqa else "text"


def parse_run_config(argv: Sequence[str]) -> RunConfig:
    args = run_parser().parse_args(argv)
    tasks = CROSS_MODAL_TASKS if args.tasks == "all" else _names(args.tasks)
    d = RunConfig()
    config = RunConfig(
        model=args.model,
        model_args=_model_args(args.model_args),
        tasks=tasks,
        spec=args.spec or _default_spec(tasks),
        query=args.query or _default_query(tasks),
        n_shot=d.n_shot if args.n_shot is None else args.n_shot,
        seeds=d.seeds if args.seeds is None else tuple(args.seeds),
        methods=_names(args.methods) if args.methods is not None else _default_methods(tasks),
        limit=args.limit,
        layer=args.layer,
        template=args.template,
        case_insensitive=args.case_insensitive,
        instruction=args.instruction,
        batch_size=args.batch_size,
        device=args.device,
        output_path=args.output_path,
        log_samples=args.log_samples,
        data=args.data,
        source_model=args.source_model,
        source_model_args=_model_args(args.source_model_args),
        max_new_tokens=args.max_new_tokens,
        layer_from=args.layer_from,
        judge=args.judge,
        judge_base_url=args.judge_base_url,
    )
    given = {
        "layer": args.layer,
        "template": args.template,
        "n_shot": args.n_shot,
        "seeds": None if args.seeds is None else tuple(args.seeds),
        "model_args": config.model_args,
        "source_model_args": config.source_model_args,
    }
    return apply_preset(config, args.preset, given)


def cmd_run(argv: Sequence[str]) -> int:
    # Imported here so that `vlm-tv-eval validate` and `ls tasks` never import torch.
    from .data import load_run_data
    from .evaluator import evaluate
    from .judge import JudgeConfigError
    from .results import overriding_table, summary_table
    from .store import RunStore

    try:
        config = parse_run_config(argv)
        config.validate()
        data = load_run_data(config)
        store = RunStore(config, data)
    except ConfigError as exc:
        print(f"vlm-tv-eval: error: {exc}", file=sys.stderr)
        return 2
    print(f"run folder: {store.dir}", file=sys.stderr)
    try:
        with store.locked():  # a second identical run stops here instead of redoing the work
            doc = evaluate(config, data, store)
    except (ConfigError, JudgeConfigError) as exc:  # bad folder, busy folder, judge, Hub
        print(f"vlm-tv-eval: error: {exc}", file=sys.stderr)
        return 2
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


def cmd_analyze(argv: Sequence[str]) -> int:
    from .analysis import cmd_analyze as analyze  # torch is imported only when an analysis runs

    return analyze(argv)


SUBCOMMANDS = {  # commands.py, analysis/
    "validate": cmd_validate,
    "ls": cmd_ls,
    "judge": cmd_judge,
    "analyze": cmd_analyze,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return SUBCOMMANDS[argv[0]](argv[1:])
        return cmd_run(argv)
    except BrokenPipeError:  # `vlm-tv-eval ls tasks | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # Ctrl-C while torch imports or the data loads: nothing to keep
        print("\nvlm-tv-eval: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
