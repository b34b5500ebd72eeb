"""`vlm-tv-eval analyze NAME`: the paper's analyses (Section 5, appendices A.2, A.3, A.5, A.8).

Each analysis is a module with `run(session) -> (result, figure, table)`; this file names them,
parses the command line (the run's own flags plus a few of the analysis's), and writes
`<output_path>/<model>/analysis/<name>.json` and `.png`. The JSON records the analysis's
identity (its name, the options it reads, the run's flags: `common.identity`); a file there of
another identity is refused before the model loads, naming the file, and one of the same
identity is replaced. Modules are imported only when their analysis is asked for, so `--help`
stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from typing import Any

from benchmark import ANALYSES as ANALYSIS_NAMES
from benchmark.flags import spellings

from ..arguments import add_run_arguments, config_from_args
from ..config import RunConfig
from ..errors import ConfigError
from ..prepare import check_run, load_run_data
from .options import OPTIONS

# name -> (module, one line for --help), for every name of `benchmark.ANALYSES`
ANALYSES: dict[str, tuple[str, str]] = {
    "logit-lens": (
        "lens",
        "layer-by-layer read-out at the task token (Figures 8, 12-15, Tables 6, 13)",
    ),
    "tsne": (
        "tsne",
        "context embeddings vs task vectors, t-SNE and silhouettes (Figure 2)",
    ),
    "scaling": ("scaling", "vectors averaged over r = 1..6 five-shot prompts (Figure 6)"),
    "noise": ("noise", "instruction patch with s = 0, 1, 2 character swaps (Table 9)"),
    "overhead": ("overhead", "time and memory: N=30 prompt vs patched query vs query (Table 7)"),
    "cosine": (
        "cosine",
        "cosine similarity of task vectors across specs, layers and tasks (no paper figure)",
    ),
    "spec-curves": (
        "specs",
        "patch accuracy per layer for each spec and where the instruction is read",
    ),
}


if tuple(ANALYSES) != ANALYSIS_NAMES:  # one list of analyses: benchmark.ANALYSES
    raise RuntimeError("harness.analysis.ANALYSES must name benchmark.ANALYSES, in order")

if tuple(OPTIONS) != ANALYSIS_NAMES:
    raise RuntimeError("harness.analysis.OPTIONS must name benchmark.ANALYSES, in order")

# Modules an analysis imports beyond the core install (the `analysis` extra).
_NEEDS = {"tsne": ("matplotlib", "sklearn")}


def analyze_arguments(parser: argparse.ArgumentParser) -> None:
    """`vlm-tv-eval analyze`'s command line: NAME, the run's own flags, the analyses' options."""
    parser.description = (
        "The paper's analyses, on a run given by the run's own flags; writes "
        "<output_path>/<model>/analysis/<NAME>.json and .png (the same flags replace their own "
        "file; other flags that change the numbers are refused there: give another "
        "--output_path). NAME is one of:\n\n"
    )
    parser.description += "\n".join(f"  {name:12} {about}" for name, (_, about) in ANALYSES.items())
    parser.add_argument("name", metavar="NAME", help="which analysis: " + ", ".join(ANALYSES))
    add_run_arguments(parser)
    p = parser.add_argument_group("analysis options")

    def flag(name: str, **kwargs: Any) -> None:
        p.add_argument(*spellings(name), **kwargs)

    flag(
        "--runs",
        type=int,
        default=None,
        help="logit-lens: example sets (default: 100); overhead: timed forwards (default: 10)",
    )
    flag("--points", type=int, default=30, help="tsne: points per (task, spec)")
    flag(
        "--instruction_points",
        default="vector",
        choices=("vector", "query"),
        help="tsne: the patched instruction vector (the paper's) or instruction + a query",
    )
    flag(
        "--max_r",
        type=int,
        default=6,
        help="scaling: up to r five-shot prompts, 5r distinct validation items (at most a "
        "task's validation items / 5)",
    )
    flag("--swaps", default="0,1,2", help="noise: swap counts s")
    flag(
        "--swap_scope",
        default="instruction",
        choices=("instruction", "word"),
        help="noise: s swaps per instruction (the paper's) or in every word",
    )
    flag("--n_context", type=int, default=30, help="overhead: examples in the prompt")
    flag(
        "--context",
        default="short",
        choices=("short", "dense"),
        help="overhead: the task's items as examples, or dense descriptions (~150 tokens each, "
        "as the paper's Table 7)",
    )


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The analysis options of parsed arguments, checked."""
    for flag in ("runs", "points", "max_r", "n_context"):
        _positive(f"--{flag}", getattr(args, flag))
    try:
        swaps = sorted({int(s) for s in args.swaps.split(",") if s.strip()})
    except ValueError:
        raise ConfigError(
            f"--swaps: expected comma-separated integers, got {args.swaps!r}"
        ) from None
    if not swaps or min(swaps) < 0:
        raise ConfigError(f"--swaps: expected counts >= 0, got {args.swaps!r}")
    return {
        "runs": args.runs,
        "points": args.points,
        "max_r": args.max_r,
        "swaps": swaps,
        "swap_scope": args.swap_scope,
        "instruction_points": args.instruction_points,
        "n_context": args.n_context,
        "context": args.context,
    }


def _read(args: argparse.Namespace) -> tuple[str, RunConfig, dict[str, Any], bool]:
    """(analysis name, RunConfig, analysis options, whether --spec was given), checked."""
    if args.name not in ANALYSES:
        raise ConfigError(f"unknown analysis {args.name!r}; known: {', '.join(ANALYSES)}")
    return args.name, config_from_args(args), _options(args), args.spec is not None


def parse(argv: Sequence[str]) -> tuple[str, RunConfig, dict[str, Any], bool]:
    """`_read` of `analyze`'s arguments as a list (NAME first)."""
    parser = argparse.ArgumentParser(prog="vlm-tv-eval analyze")
    analyze_arguments(parser)
    return _read(parser.parse_args(list(argv)))


def cmd_analyze(args: argparse.Namespace) -> int:
    name, config, options, spec_given = _read(args)
    check_run(config)
    missing = [m for m in _NEEDS.get(name, ("matplotlib",)) if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"{name} needs {', '.join(missing)}; pip install 'vlm-tv-eval[analysis]'")
    # Here, not at the top: the analyses import torch, and `--help` must not.
    from ..adapters import load_adapter
    from .common import Session, check_output, identity, json_path, timed, write_outputs

    try:
        data = load_run_data(config)  # bad tasks or --data fail before the model loads
        module = importlib.import_module(f".{ANALYSES[name][0]}", __name__)
        if hasattr(module, "check"):  # options the items cannot serve, also before it loads
            module.check(data, options)
        # another setting's file where this one would go: refused before minutes of work
        check_output(json_path(config, name), identity(name, config, options, spec_given))
        adapter = load_adapter(config.model, config.model_args, config)
        # Analyses compare specs: on a VLM given --data, image examples are one of them, so
        # the items come with their images even when the run's own spec is text.
        if adapter.supports_images and config.data is not None and not config.uses_images:
            data = load_run_data(dataclasses.replace(config, spec="image_examples"))
        session = Session(config, dict(data), adapter, options, spec_given)
        (result, figure, table), seconds = timed(lambda: module.run(session))
        path, png = write_outputs(session, name, result, figure, seconds)
    except KeyboardInterrupt:
        print(
            "\ninterrupted; task vectors and the layer sweep made so far are cached",
            file=sys.stderr,
        )
        return 130
    print(table)
    print(f"{name}: {seconds:.0f} s; {path}" + (f" and {png}" if png else ""))
    return 0
