"""`scaling` (the paper's Figure 6): does a task vector improve when averaged over more examples?

For r = 1..R, the vector is the mean task-token state of r separate 5-shot prompts (n = 5r
examples seen in all), with examples drawn without replacement from the validation split
(seeded), so the n examples are n distinct items: an R (--max_r) that needs more items than a
task's validation split holds is refused, naming the largest R that fits, rather than repeating
items and counting them again; with and without the instruction vector (the ensemble: their
mean). It is patched into every test query at the session's layer and scored
case-insensitively, as the paper's ensemble study is; mean and std over the seeds, and paired
bootstrap 95% intervals over seeds and test items (harness/intervals.py) for each curve point
and for the differences the claims rest on (r = max against r = 1; ensemble against examples).
The per-item 0/1 scores are kept in the JSON (`item_scores`, [seeds][items] per task and
variant), so the intervals can be drawn again.

This is not `--n_shot 30`: one prompt of 30 examples is a different quantity (a longer context,
not an average of short ones). The plot shows the average of r five-shot prompts.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .. import engine
from ..errors import ConfigError
from ..intervals import analysis_intervals, bracket, estimates, stored_scores
from ..items import TaskData
from .common import Session, mean_std

SHOTS = 5
VARIANTS = ("examples", "ensemble")  # the examples vector alone, and averaged with the instruction


def _pool(data: Mapping[str, TaskData], task: str) -> list[dict]:
    """The task's validation items, each once (by id), in the split's order."""
    seen: set[str] = set()
    pool = []
    for record in data[task].splits["validation"]:
        if record["id"] not in seen:
            seen.add(record["id"])
            pool.append(record)
    return pool


def _too_few(task: str, n_items: int, r_max: int) -> str | None:
    """Why `r_max` prompts of SHOTS distinct examples do not fit in `n_items`, or None."""
    if n_items < SHOTS:
        return (
            f"scaling: task {task} has {n_items} distinct validation items, fewer than the "
            f"{SHOTS} of one {SHOTS}-shot prompt; leave it out of --tasks"
        )
    if SHOTS * r_max > n_items:
        return (
            f"--max_r {r_max} needs {SHOTS * r_max} distinct validation items per task "
            f"({SHOTS} per prompt, none repeated), but task {task} has {n_items}: use "
            f"--max_r {n_items // SHOTS} or less"
        )
    return None


def check_max_r(data: Mapping[str, TaskData], r_max: int) -> None:
    """`r_max` prompts of SHOTS distinct examples each fit in every task's validation split:
    else a ConfigError naming --max_r, the items there are and the largest --max_r that fits
    (the task with the fewest items decides)."""
    sizes = {task: len(_pool(data, task)) for task in data}
    task = min(sizes, key=lambda t: sizes[t])
    problem = _too_few(task, sizes[task], r_max)
    if problem:
        raise ConfigError(problem)


def check(data: Mapping[str, TaskData], options: Mapping[str, Any]) -> None:
    """The options against the tasks' items, before the model loads (`cmd_analyze`)."""
    check_max_r(data, _max_r(options))


def _max_r(options: Mapping[str, Any]) -> int:
    return int(options.get("max_r") or 6)


def _prompts(session: Session, task: str, seed: int, r_max: int) -> list:
    """r_max five-shot prompts whose examples are all different items (`check_max_r`)."""
    ctx = session.context("text_examples")
    items = _pool(session.data, task)
    problem = _too_few(task, len(items), r_max)
    if problem:  # `run` refuses first; here too, so that no caller repeats items
        raise ConfigError(problem)
    rng = random.Random(f"scaling:{seed}:{task}")
    order = rng.sample(items, len(items))
    prompts = []
    for r in range(r_max):
        chosen = order[r * SHOTS : (r + 1) * SHOTS]
        prompts.append(
            session.adapter.example_prompt([(ctx.spec_input(d), d["output"]) for d in chosen])
        )
    return prompts


def _hits(
    session: Session, ctx: Any, task: str, vectors: torch.Tensor, layer: int
) -> tuple[list[str], np.ndarray]:
    """The test items' ids and the 0/1 score of each item under each of `vectors` ([k, d])
    patched at `layer` ([k, items]), one prefix pass for all."""
    items = ctx.items(task, "test")
    queries = [ctx.query_prompt(q) for q in items]
    ids = engine.patch_variants(session.adapter, queries, vectors, layer)
    hits = [ctx.score_tokens(task, items, col.tolist(), queries)["lenient"] for col in ids.T]
    return [r["id"] for r in items], np.array(hits, dtype=float)


def differences(r_max: int) -> list[tuple[str, str]]:
    """The claims: more prompts help the examples vector (r = max against r = 1), and adding
    the instruction vector helps or hurts it (ensemble against examples, at r = 1 and max)."""
    pairs = [(f"ensemble r={r}", f"examples r={r}") for r in sorted({1, r_max})]
    if r_max > 1:
        pairs.insert(0, (f"examples r={r_max}", "examples r=1"))
    return pairs


def run(session: Session) -> tuple[dict[str, Any], Any, str]:
    r_max = _max_r(session.options)
    check_max_r(session.data, r_max)  # before the layer sweep (`check` did, before the model)
    layer = session.layer()
    la = layer["layer"]
    rs = list(range(1, r_max + 1))
    ctx = session.context("text_examples", case_insensitive=True)
    seeds = list(session.config.seeds)
    names = [f"{variant} r={r}" for r in rs for variant in VARIANTS]
    scores: dict[str, dict[str, np.ndarray]] = {}  # task -> variant name -> [seeds, items]
    doc_ids: dict[str, list[str]] = {}
    for task in session.progress("scaling"):
        instruction = engine.extract_task_vector(
            session.adapter,
            [session.adapter.instruction_prompt(session.data[task].instruction)],
            session.config.batch_size,
        )[la]
        vectors = []  # every seed's vector of every name, in that order, patched in one pass
        for seed in seeds:
            states = engine.capture_task_states(
                session.adapter, _prompts(session, task, seed, r_max), session.config.batch_size
            )[:, la]
            for r in rs:
                vector = states[:r].mean(0)
                vectors += [vector, (vector + instruction) / 2]
        doc_ids[task], hits = _hits(session, ctx, task, torch.stack(vectors), la)
        per_seed = hits.reshape(len(seeds), len(names), -1)
        scores[task] = {name: per_seed[:, j] for j, name in enumerate(names)}
    pairs = differences(r_max)
    intervals = analysis_intervals(scores, pairs)
    curves = {}
    for variant in VARIANTS:
        by_task = {t: [float(scores[t][f"{variant} r={r}"].mean()) for r in rs] for t in scores}
        # The average over tasks per seed, then mean and std over seeds.
        stats = [
            mean_std(np.mean([scores[t][f"{variant} r={r}"].mean(axis=1) for t in scores], axis=0))
            for r in rs
        ]
        curves[variant] = {
            "mean": [m for m, _ in stats],
            "std": [s for _, s in stats],
            "by_task": by_task,
            "interval": [intervals["average"][f"{variant} r={r}"] for r in rs],
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
        "intervals": intervals,
        "item_scores": {"doc_ids": doc_ids, "by_task": stored_scores(scores)},
    }
    point = estimates(scores, pairs)["average"]
    lines = [f"patch at layer {la}: vector from r {SHOTS}-shot prompts (case-insensitive)"]
    lines.append(
        f"mean ±std over seeds {', '.join(map(str, seeds))} [paired 95% interval], avg over tasks"
    )
    lines.append(f"{'r (n)':8} {'examples':>28} {'+instruction':>28}")
    for i, r in enumerate(rs):
        cells = [
            f"{c['mean'][i]:.2f} ±{c['std'][i]:.2f} {bracket(c['interval'][i])}"
            for c in (curves["examples"], curves["ensemble"])
        ]
        lines.append(f"{f'{r} ({SHOTS * r})':8} {cells[0]:>28} {cells[1]:>28}")
    for a, b in pairs:
        name = f"{a} - {b}"
        lines.append(
            f"{name:30} {point[name]:+.2f} {bracket(intervals['average'][name], signed=True)}"
        )

    def figure(path: Any) -> None:
        from .plots import lines_figure

        xs = result["n_examples"]
        lines_figure(
            {v: (xs, curves[v]["mean"]) for v in VARIANTS},
            path,
            f"{session.config.model}: averaging r {SHOTS}-shot prompts (layer {la})",
            "examples seen (5r)",
            "test accuracy, avg (95% interval)",
            bands={
                v: (
                    [lo for lo, _ in curves[v]["interval"]],
                    [hi for _, hi in curves[v]["interval"]],
                )
                for v in VARIANTS
            },
        )

    return result, figure, "\n".join(lines)
