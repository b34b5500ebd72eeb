"""How sure a number is: paired bootstrap intervals over test items and seeds.

A task has 100 test items and three seeds; methods differ by .02-.04. An interval says which of
those differences the items can carry. Each replicate draws the seeds with replacement, then the
items with replacement, and the same draw serves every method, so a difference between two
methods is paired item by item (the draws of one replicate fall on the same queries); the
average over tasks draws each task's items independently. The interval is the 2.5th to 97.5th
percentile of the replicates (percentile bootstrap), from a generator seeded by the run, so a
results file always carries the same interval for the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

LEVEL = 0.95
REPLICATES = 2000
# The differences the paper's claims rest on, where both methods ran: (minuend, subtrahend).
DIFFERENCES = (("patch", "prompt"), ("patch", "no_context"))
RULE = (
    f"percentile bootstrap, {REPLICATES} replicates: seeds then test items drawn with "
    "replacement, the same draw for every method (paired); the average draws each task alike"
)

Scores = Mapping[str, np.ndarray]  # method -> [seeds, items] of 0/1 (or any per-item score)


def _draws(rng: np.random.Generator, n_seeds: int, n_items: int) -> tuple[np.ndarray, ...]:
    seeds = rng.integers(0, n_seeds, size=(REPLICATES, n_seeds))
    items = rng.integers(0, n_items, size=(REPLICATES, n_items))
    return seeds, items


def _replicates(scores: np.ndarray, seeds: np.ndarray, items: np.ndarray) -> np.ndarray:
    """The mean score of each replicate: [REPLICATES]."""
    picked = scores[seeds[:, :, None], items[:, None, :]]  # [replicates, seeds, items]
    return picked.mean(axis=(1, 2))


def _interval(values: np.ndarray) -> list[float]:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [round(float(low), 4), round(float(high), 4)]


def bootstrap_intervals(
    per_task: Mapping[str, Scores],
    seed: int = 0,
    differences: Sequence[tuple[str, str]] = DIFFERENCES,
) -> dict[str, dict]:
    """Intervals for every task's methods and their `differences` (a - b, where a task holds
    both; a run's are DIFFERENCES, an analysis names its own), and for the average over tasks:
    {"per_task": {task: {name: [low, high]}}, "average": {name: [low, high]}}. Every method of
    a task must hold the same seeds and items ([seeds, items])."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict] = {"per_task": {}, "average": {}}
    sums: dict[str, np.ndarray] = {}
    for task, scores in per_task.items():
        shapes = {np.asarray(s).shape for s in scores.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError(f"{task}: every method needs [seeds, items] scores of one shape")
        n_seeds, n_items = next(iter(shapes))
        seeds, items = _draws(rng, n_seeds, n_items)
        reps = {m: _replicates(np.asarray(s, dtype=float), seeds, items) for m, s in scores.items()}
        for a, b in differences:
            if a in reps and b in reps:
                reps[f"{a} - {b}"] = reps[a] - reps[b]
        out["per_task"][task] = {name: _interval(values) for name, values in reps.items()}
        for name, values in reps.items():
            sums[name] = sums.get(name, 0) + values
    shared = [n for n in sums if all(n in t for t in out["per_task"].values())]
    out["average"] = {name: _interval(sums[name] / len(per_task)) for name in shared}
    return out


def unit_scores(
    units: Mapping[tuple[str, str, int], Mapping[str, Sequence[Any]]],
    tasks: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int],
    key: str = "lenient",
) -> dict[str, dict[str, np.ndarray]]:
    """A run's per-item scores as bootstrap_intervals takes them, every unit's items put in
    the order of the task's first unit (by doc id), so the draws pair the same queries."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for t in tasks:
        order = list(units[t, methods[0], seeds[0]]["doc_ids"])
        out[t] = {}
        for m in methods:
            rows = []
            for s in seeds:
                unit = units[t, m, s]
                by_id = dict(zip(unit["doc_ids"], unit[key], strict=True))
                if set(by_id) != set(order):
                    raise ValueError(f"{t}/{m}/seed {s}: its items differ from {methods[0]}'s")
                rows.append([float(by_id[d]) for d in order])
            out[t][m] = np.array(rows)
    return out


def interval_block(
    units: Mapping[tuple[str, str, int], Mapping[str, Sequence[Any]]],
    tasks: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int],
) -> dict[str, Any]:
    """The `intervals` entry of a results file: on the lenient first-token scores, and under
    `--score whole_answer` on the exact whole answers too (`whole_answer`)."""
    out: dict[str, Any] = {
        "rule": RULE,
        "level": LEVEL,
        "replicates": REPLICATES,
        "score": "lenient",
        **bootstrap_intervals(unit_scores(units, tasks, methods, seeds)),
    }
    if all("whole" in units[t, m, s] for t in tasks for m in methods for s in seeds):
        whole = unit_scores(units, tasks, methods, seeds, "whole")
        out["whole_answer"] = bootstrap_intervals(whole)
    return out


def analysis_intervals(
    per_task: Mapping[str, Scores], differences: Sequence[tuple[str, str]], seed: int = 0
) -> dict[str, Any]:
    """The `intervals` entry of an analysis: every variant's and each of `differences`' 95%
    interval, per task and on the average over tasks, under the same rule as a results file's
    (an analysis claims "r = 6 beats r = 1" on the same 100 items, so the pairing matters)."""
    for a, b in differences:
        if not all(a in s and b in s for s in per_task.values()):
            raise ValueError(f"difference {a} - {b}: a task lacks one of them")
    return {
        "rule": RULE,
        "level": LEVEL,
        "replicates": REPLICATES,
        "score": "lenient",
        **bootstrap_intervals(per_task, seed, differences),
    }


def estimates(
    per_task: Mapping[str, Scores], differences: Sequence[tuple[str, str]] = ()
) -> dict[str, dict]:
    """The point estimates the intervals are drawn around, in their shape: each variant's mean
    over seeds and items and each difference's, per task and averaged over tasks."""
    out: dict[str, dict] = {"per_task": {}, "average": {}}
    for task, scores in per_task.items():
        means = {name: float(np.mean(s)) for name, s in scores.items()}
        for a, b in differences:
            if a in means and b in means:
                means[f"{a} - {b}"] = means[a] - means[b]
        out["per_task"][task] = means
    tasks = list(out["per_task"].values())
    shared = [n for n in tasks[0] if all(n in t for t in tasks)] if tasks else []
    out["average"] = {n: float(np.mean([t[n] for t in tasks])) for n in shared}
    return out


def stored_scores(per_task: Mapping[str, Scores]) -> dict[str, dict[str, list[list[int]]]]:
    """Per-item 0/1 scores as JSON ([seeds][items] per task and variant), so an analysis's
    intervals can be drawn again from its file alone (`scores_from_file`)."""
    out: dict[str, dict[str, list[list[int]]]] = {}
    for task, scores in per_task.items():
        out[task] = {}
        for name, s in scores.items():
            values = np.asarray(s, dtype=float)
            if not np.isin(values, (0.0, 1.0)).all():
                raise ValueError(f"{task}/{name}: per-item scores must be 0 or 1")
            out[task][name] = values.astype(int).tolist()
    return out


def scores_from_file(stored: Mapping[str, Mapping[str, Sequence]]) -> dict[str, dict]:
    """`stored_scores`' JSON back as the [seeds, items] arrays bootstrap_intervals takes."""
    return {
        task: {name: np.asarray(rows, dtype=float) for name, rows in scores.items()}
        for task, scores in stored.items()
    }


def bracket(interval: Sequence[float], signed: bool = False) -> str:
    """An interval as a table prints it beside its number: "[0.30, 0.42]", or with signs for a
    difference ("[-0.04, +0.02]")."""
    low, high = interval
    return f"[{low:+.2f}, {high:+.2f}]" if signed else f"[{low:.2f}, {high:.2f}]"
