"""The run's command-line flags, after lmms-eval and lm-eval (`--model`, `--model_args`,
`--tasks`, ...), turned into a `RunConfig` with the tasks' own defaults and a preset applied.
`vlm-tv-eval`, `vlm-tv-eval analyze` and the speed benchmark all read a run this way."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from benchmark import CROSS_MODAL_TASKS, FIRST_TOKEN_METHODS, QUERIES, SPECS, TASKS
from benchmark.flags import HelpFormatter, spellings
from benchmark.scoring import SCORES

from .config import OVERRIDE_LAYERS, RunConfig
from .errors import ConfigError
from .items import DEMO_DRAWS
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


RUN_DESCRIPTION = (
    "Evaluate cross-modal task vectors. With no flags: the main job (smollm2-135m, the six "
    "cross-modal tasks, text examples -> text queries, all four methods, seeds 0,1,2, the layer "
    "chosen on validation). Every flag also answers to its dashed spelling (--model-args)."
)


def _flag(group: Any, flag: str, **kwargs: Any) -> None:
    """One flag under both spellings, `--flag_name` and `--flag-name` (`benchmark.flags`)."""
    group.add_argument(*spellings(flag), **kwargs)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The run's flags on `p`: `vlm-tv-eval run`, and `analyze`, which reads a run the same
    way. A default of None means "the tasks' own" or "the model's", as each help says."""
    d = RunConfig()
    _flag(p, "--model", default=d.model, help="adapter name (see `ls models`) or hf:<repo>")
    _flag(
        p,
        "--model_args",
        default="",
        help="k=v,... e.g. pretrained=PATH,revision=R,dtype=bfloat16,load_in_4bit=true",
    )
    _flag(
        p,
        "--tasks",
        default="all",
        help="comma-separated task ids (see `ls tasks`), `all` (the six cross-modal tasks), or "
        "a path to your own JSONL task file",
    )
    _flag(
        p,
        "--spec",
        default=None,
        choices=SPECS,
        help="how the task is specified (default: text_examples; instruction for the image "
        "overriding sets)",
    )
    _flag(
        p,
        "--query",
        default=None,
        choices=QUERIES,
        help="query modality (default: text; image for the VQA tasks); image queries (and "
        "--spec image_examples) need a VLM and --data",
    )
    _flag(
        p,
        "--data",
        default=None,
        help="the built cross-modal dataset with images: a folder written by `vlm-tv-build` "
        "or a Hub dataset id (datasets.load_dataset); default: none, text tasks only",
    )
    _flag(
        p,
        "--source_model",
        default=None,
        help="extract task vectors in this model (e.g. the VLM's base LLM) and patch them into "
        "--model at the same layer (default: none, --model's own vectors)",
    )
    _flag(p, "--source_model_args", default="", help="k=v,... for --source_model")
    _flag(p, "--n_shot", type=int, default=None, help=f"demos per prompt (default: {d.n_shot})")
    seeds = ",".join(map(str, d.seeds))
    _flag(p, "--seeds", type=_int_list, default=None, help=f"comma-separated (default: {seeds})")
    _flag(
        p,
        "--score",
        default=d.score,
        choices=SCORES,
        help="first_token (the paper's rule) or whole_answer: also generate each answer "
        "greedily to its first newline and score it against the whole label",
    )
    _flag(
        p,
        "--demo_draw",
        default=None,
        choices=DEMO_DRAWS,
        help="per_query (default: seeded by seed, task and query id) or authors (the paper "
        "code's numpy stream, by position in the split)",
    )
    _flag(
        p,
        "--preset",
        default=None,
        choices=PRESETS,
        help="paper: the authors' setting (their layer, 4-bit NF4 with fp16 compute, template "
        "paper, N=5, seeds 1,2,3 drawn as their code draws) for every flag not given; "
        "departures are recorded (default: none)",
    )
    _flag(
        p,
        "--methods",
        default=None,
        help="comma-separated, see `ls methods` (default: the tasks' own: no_context,majority,"
        "prompt,patch; original,system_prompt,instruction_patch for overriding tasks)",
    )
    _flag(
        p,
        "--limit",
        type=int,
        default=None,
        help="items per split, for quick runs (default: every item; a limited run is not ranked)",
    )
    _flag(
        p,
        "--layer",
        type=int,
        default=None,
        help="patch at this layer (default: the layer best on the validation split)",
    )
    _flag(
        p,
        "--template",
        default=None,
        help="paper | spaced | model (each example its own chat turn, the paper's Table 10) | "
        "model_one_turn (the whole prompt in one user turn); default: the adapter's",
    )
    _flag(
        p,
        "--case_insensitive",
        action="store_true",
        help="compare answers with labels ignoring case",
    )
    _flag(
        p,
        "--instruction",
        default=None,
        help="instruction for a custom task file (default: the file's first line, if it is "
        '{"instruction": ...})',
    )
    _flag(p, "--batch_size", type=int, default=d.batch_size, help="prompts per forward pass")
    _flag(p, "--device", default=d.device, help="auto (cuda if available), cpu, cuda:N")
    _flag(
        p,
        "--output_path",
        default=d.output_path,
        help="runs are written to OUTPUT_PATH/<model>/<spec>-<hash>/",
    )
    _flag(
        p,
        "--log_samples",
        action="store_true",
        help="write every scored item to samples_<task>.jsonl beside results.json",
    )
    o = p.add_argument_group("overriding tasks (free-form answers, judged)")
    _flag(o, "--max_new_tokens", type=int, default=d.max_new_tokens, help="answer length cap")
    _flag(
        o,
        "--layer_from",
        default=None,
        metavar="RESULTS_JSON",
        help="patch at the layer a previous run of the same model chose (default: see "
        "--override_layer)",
    )
    _flag(
        o,
        "--override_layer",
        default=d.override_layer,
        choices=OVERRIDE_LAYERS,
        help="without --layer or --layer_from: main (the model's main layer, chosen as the "
        "main job chooses it, on the six tasks' validation sweep) or target (the layer best at "
        "the overriding target on override_text's validation split)",
    )
    _flag(
        o,
        "--judge",
        default=None,
        help="judge model, a dated snapshot (default when judging: gpt-4o-2024-08-06); the key "
        "is read from OPENAI_API_KEY only",
    )
    _flag(
        o,
        "--judge_base_url",
        default=None,
        help="any OpenAI-compatible server (vLLM, llama.cpp, Ollama, Azure) instead of OpenAI "
        "(default: OpenAI's API)",
    )


def run_arguments(parser: argparse.ArgumentParser) -> None:
    """`vlm-tv-eval run`'s command line: what a run is, and its flags."""
    parser.description = RUN_DESCRIPTION
    add_run_arguments(parser)


def run_parser() -> argparse.ArgumentParser:
    """A parser of the run's flags alone (`parse_run_config`)."""
    p = argparse.ArgumentParser(prog="vlm-tv-eval run", formatter_class=HelpFormatter)
    run_arguments(p)
    return p


def _tasks_default(tasks: Sequence[str], name: str, otherwise: Any) -> Any:
    """A setting the tasks' rows agree on (their methods, default spec or query), else
    `otherwise`; a task file counts as a task whose setting is `otherwise`."""
    own = {getattr(TASKS[t], name) if t in TASKS else otherwise for t in tasks}
    return own.pop() if len(own) == 1 else otherwise


def parse_run_config(argv: Sequence[str]) -> RunConfig:
    """The RunConfig of a run's flags (the speed job and tests build runs this way)."""
    return config_from_args(run_parser().parse_args(argv))


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig of parsed run flags: the tasks' own defaults for what was left open, then
    the preset for what is still open."""
    tasks = CROSS_MODAL_TASKS if args.tasks == "all" else _names(args.tasks)
    d = RunConfig()
    config = RunConfig(
        model=args.model,
        model_args=_model_args(args.model_args),
        tasks=tasks,
        spec=args.spec or _tasks_default(tasks, "default_spec", d.spec),
        query=args.query or _tasks_default(tasks, "default_query", d.query),
        n_shot=d.n_shot if args.n_shot is None else args.n_shot,
        seeds=d.seeds if args.seeds is None else tuple(args.seeds),
        demo_draw=args.demo_draw or d.demo_draw,
        score=args.score,
        methods=(
            _names(args.methods)
            if args.methods is not None
            else _tasks_default(tasks, "methods", FIRST_TOKEN_METHODS)
        ),
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
        override_layer=args.override_layer,
        judge=args.judge,
        judge_base_url=args.judge_base_url,
    )
    given = {
        "layer": args.layer,
        "template": args.template,
        "n_shot": args.n_shot,
        "seeds": None if args.seeds is None else tuple(args.seeds),
        "demo_draw": args.demo_draw,
        "model_args": config.model_args,
        "source_model_args": config.source_model_args,
    }
    return apply_preset(config, args.preset, given)
