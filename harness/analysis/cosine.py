"""`cosine`: how alike are task vectors made from different specifications? Not a figure of the
paper: its cosines (Table 3) are between an LLM's vectors and its VLM's, which a run with
`--source_model` records (`transfer`) and this command gives with `--source_model` too.

Per layer: the cosine between each task's vectors of two specs (text examples vs instruction,
vs image examples where the model takes images), averaged over tasks and seeds. At the session's
layer: a task x task matrix for each spec pair (the diagonal is matched tasks, the rest
mismatched; the paper's mismatched LLM-VLM average is .58). With `--source_model`, the same
for the source model's vectors against the evaluated model's (LLM -> VLM).

Raw cosines of residual-stream states share a large common direction, so mismatched pairs are
far from 0; the matched-minus-mismatched gap is the informative number and is reported too.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

import torch

from benchmark import uses_examples

from ..adapters import load_adapter
from ..context import EvalContext
from ..vectors import task_vector
from .common import Session


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)


def _vectors(session: Session, spec: str) -> dict[str, torch.Tensor]:
    """task -> [n_seeds, n_layers, d] (one row for the instruction: it has no seed)."""
    seeds = session.config.seeds if uses_examples(spec) else session.config.seeds[:1]
    return {t: torch.stack([session.vector(t, s, spec) for s in seeds]) for t in session.tasks}


def _source_vectors(session: Session) -> dict[str, torch.Tensor]:
    config = session.config
    source = load_adapter(config.source_model, config.source_model_args, config)
    ctx = EvalContext(config, session.data, source, vectors=lambda t, s: None)  # type: ignore[arg-type]
    return {
        t: torch.stack([task_vector(source, ctx, t, s) for s in config.seeds])
        for t in session.tasks
    }


def _pair_stats(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], layer: int
) -> dict[str, Any]:
    tasks = list(a)
    per_task = {t: _cos(a[t].mean(0), b[t].mean(0)).tolist() for t in tasks}
    n_layers = len(next(iter(per_task.values())))
    matrix = [[float(_cos(a[r].mean(0)[layer], b[c].mean(0)[layer])) for c in tasks] for r in tasks]
    matched = statistics.fmean(matrix[i][i] for i in range(len(tasks)))
    off = [matrix[i][j] for i in range(len(tasks)) for j in range(len(tasks)) if i != j]
    mismatched = statistics.fmean(off) if off else None
    pairs_apart = [(r, c) for r in tasks for c in tasks if r != c]
    return {
        "per_task": per_task,
        "mean": [statistics.fmean(per_task[t][la] for t in tasks) for la in range(n_layers)],
        "mismatched_per_layer": [
            statistics.fmean(
                float(_cos(a[r].mean(0)[la], b[c].mean(0)[la])) for r, c in pairs_apart
            )
            for la in range(n_layers)
        ]
        if pairs_apart
        else None,
        "matrix": matrix,
        "matched": matched,
        "mismatched": mismatched,
        "gap": None if mismatched is None else matched - mismatched,
    }


def _curves(pairs: dict[str, dict[str, Any]]) -> dict[str, list[float]]:
    """Per layer: each cross-spec pair on the same task, and every pair on different tasks
    (a spec against itself on the same task is 1 everywhere, so it is left out)."""
    out = {}
    for name, p in pairs.items():
        first, second = name.split(" vs ")
        if first != second:
            out[f"{name}, same task"] = p["mean"]
        if p["mismatched_per_layer"] is not None:
            out[f"{name}, different tasks"] = p["mismatched_per_layer"]
    return out


def run(session: Session) -> tuple[dict[str, Any], Any, str]:
    layer = session.layer()
    la = layer["layer"]
    specs = session.specs(["text_examples", "instruction", "image_examples"])
    vectors = {spec: _vectors(session, spec) for spec in specs}
    pairs: dict[str, dict[str, Any]] = {}
    for s1 in specs:  # a spec against itself: tasks apart from each other
        pairs[f"{s1} vs {s1}"] = _pair_stats(vectors[s1], vectors[s1], la)
    for s1, s2 in itertools.combinations(specs, 2):
        pairs[f"{s1} vs {s2}"] = _pair_stats(vectors[s1], vectors[s2], la)
    if session.config.source_model and "text_examples" in vectors:
        source = _source_vectors(session)
        pairs[f"{session.config.source_model} vs {session.config.model}"] = _pair_stats(
            source, vectors["text_examples"], la
        )
    result = {
        "layer": layer,
        "tasks": session.tasks,
        "per_layer": {name: p["mean"] for name, p in pairs.items()},
        "per_layer_mismatched": {name: p["mismatched_per_layer"] for name, p in pairs.items()},
        "per_task": {name: p["per_task"] for name, p in pairs.items()},
        "task_matrix": {
            name: {
                "matrix": p["matrix"],
                "matched": p["matched"],
                "mismatched": p["mismatched"],
                "gap": p["gap"],
            }
            for name, p in pairs.items()
        },
        "paper": {"mismatched_llm_vlm": 0.58, "llava_llm_vlm": 0.95, "idefics2_llm_vlm": 0.89},
    }
    lines = [f"cosine of task vectors at layer {la} (matched = same task, mismatched = different)"]
    lines.append(f"{'pair':42} {'matched':>8} {'mismatched':>11} {'gap':>6}")
    for name, p in pairs.items():
        first, second = name.split(" vs ")
        own = first == second
        matched = "-" if own else f"{p['matched']:.2f}"
        mis = "-" if p["mismatched"] is None else f"{p['mismatched']:.2f}"
        gap = "-" if p["gap"] is None or own else f"{p['gap']:.2f}"
        lines.append(f"{name:42} {matched:>8} {mis:>11} {gap:>6}")
    lines.append("a spec against itself: matched is 1 by construction, so only mismatched is shown")

    def figure(path: Any) -> None:
        from .plots import heatmap_figure

        cross = {
            n: p for n, p in pairs.items() if n.split(" vs ")[0] != n.split(" vs ")[1]
        } or pairs
        heatmap_figure(
            {n: (session.tasks, session.tasks, p["matrix"]) for n, p in cross.items()},
            path,
            f"{session.config.model}: cosine of task vectors at layer {la} (rows: first spec)",
            curves=_curves(pairs),
        )

    return result, figure, "\n".join(lines)
