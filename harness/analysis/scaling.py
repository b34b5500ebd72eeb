"""`scaling` (the paper's Figure 6): does a task vector improve when averaged over more examples?

For r = 1..R, the vector is the mean task-token state of r separate 5-shot prompts (n = 5r
examples seen in all), with examples drawn without replacement from the validation split
(seeded); with and without the instruction vector (the ensemble: their mean). It is patched into
every test query at the session's layer and scored case-insensitively, as the paper's ensemble
study is; mean and std over the seeds.

This is not `--n_shot 30`: one prompt of 30 examples is a different quantity (a longer context,
not an average of short ones). The plot shows the average of r five-shot prompts.
"""

from __future__ import annotations

import random
import statistics
from typing import Any

import torch

from .. import engine
from .common import Session, accuracies, mean_std

SHOTS = 5


def _prompts(session: Session, task: str, seed: int, r_max: int) -> list:
    """r_max five-shot prompts whose examples are all different (as far as the split allows)."""
    ctx = session.context("text_examples")
    items = list(session.data[task].splits["validation"])
    if len(items) < SHOTS:
        raise ValueError(f"task {task}: {len(items)} validation items, fewer than {SHOTS}")
    rng = random.Random(f"scaling:{seed}:{task}")
    order = rng.sample(items, len(items))
    prompts = []
    for r in range(r_max):
        chosen = [order[(r * SHOTS + k) % len(order)] for k in range(SHOTS)]
        prompts.append(
            session.adapter.example_prompt([(ctx.spec_input(d), d["output"]) for d in chosen])
        )
    return prompts


def _accuracies(
    session: Session, ctx: Any, task: str, vectors: torch.Tensor, layer: int
) -> list[float]:
    """Test accuracy of each of `vectors` ([k, d]) patched at `layer`, one prefix pass for all."""
    items = ctx.items(task, "test")
    queries = [ctx.query_prompt(q) for q in items]
    ids = engine.patch_variants(session.adapter, queries, vectors, layer)
    return accuracies(ctx, task, items, ids, queries)


def run(session: Session) -> tuple[dict[str, Any], Any, str]:
    layer = session.layer()
    la = layer["layer"]
    r_max = int(session.options.get("max_r") or 6)
    rs = list(range(1, r_max + 1))
    ctx = session.context("text_examples", case_insensitive=True)
    seeds = list(session.config.seeds)
    per: dict[str, dict[str, list[list[float]]]] = {}  # variant -> task -> [r][seed]
    for variant in ("examples", "ensemble"):
        per[variant] = {t: [[] for _ in rs] for t in session.tasks}
    for task in session.progress("scaling"):
        instruction = engine.extract_task_vector(
            session.adapter,
            [session.adapter.instruction_prompt(session.data[task].instruction)],
            session.config.batch_size,
        )[la]
        variants = []  # (variant, r index, vector) for every seed, patched in one pass
        for seed in seeds:
            states = engine.capture_task_states(
                session.adapter, _prompts(session, task, seed, r_max), session.config.batch_size
            )[:, la]
            for i, r in enumerate(rs):
                vector = states[:r].mean(0)
                variants += [("examples", i, vector), ("ensemble", i, (vector + instruction) / 2)]
        accs = _accuracies(session, ctx, task, torch.stack([v for _, _, v in variants]), la)
        for (variant, i, _), acc in zip(variants, accs, strict=True):
            per[variant][task][i].append(acc)
    curves = {}
    for variant, by_task in per.items():
        task_means = {t: [statistics.fmean(v) for v in runs] for t, runs in by_task.items()}
        # The average over tasks per seed, then mean and std over seeds.
        avg_seed = [
            [statistics.fmean(by_task[t][i][k] for t in by_task) for k in range(len(seeds))]
            for i in range(len(rs))
        ]
        stats = [mean_std(v) for v in avg_seed]
        curves[variant] = {
            "mean": [m for m, _ in stats],
            "std": [s for _, s in stats],
            "by_task": task_means,
        }
    result = {
        "layer": layer,
        "r": rs,
        "n_examples": [SHOTS * r for r in rs],
        "quantity": f"mean task-token state of r separate {SHOTS}-shot prompts (not one "
        f"{SHOTS}r-shot prompt); case-insensitive lenient test accuracy of patch",
        "examples": curves["examples"],
        "ensemble": curves["ensemble"],
        "seeds": seeds,
    }
    lines = [f"patch at layer {la}: vector from r {SHOTS}-shot prompts (case-insensitive)"]
    lines.append(f"{'r (n)':10} {'examples':>14} {'+instruction':>14}")
    for i, r in enumerate(rs):
        e, n = curves["examples"], curves["ensemble"]
        lines.append(
            f"{r} ({SHOTS * r}){'':5} {e['mean'][i]:7.2f} ±{e['std'][i]:.2f}"
            f"   {n['mean'][i]:7.2f} ±{n['std'][i]:.2f}"
        )

    def figure(path: Any) -> None:
        from .plots import lines_figure

        lines_figure(
            {
                "examples": (
                    result["n_examples"],
                    curves["examples"]["mean"],
                    curves["examples"]["std"],
                ),
                "ensemble": (
                    result["n_examples"],
                    curves["ensemble"]["mean"],
                    curves["ensemble"]["std"],
                ),
            },
            path,
            f"{session.config.model}: averaging r {SHOTS}-shot prompts (layer {la})",
            "examples seen (5r)",
            "test accuracy (avg over tasks)",
        )

    return result, figure, "\n".join(lines)
