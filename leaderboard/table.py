"""Submissions flattened into leaderboard rows: one row per (submission, method).

Every output (README, CSV, page, plots) is drawn from these rows, so they agree with each other.
Averages are always recomputed here from the per-task accuracies, for reproduced and reported
rows alike; the std of the average is taken over seeds from the per-seed accuracies. The 95%
interval of the average, and of the paired differences between methods, is the one the results
file carries (`intervals.average`, a paired bootstrap over test items and seeds made by the
harness), shown only for a row whose tasks are exactly the tasks that average was taken over. A
run with `--score whole_answer` also gives each row its whole-answer figures (`Whole`: the greedy
answer up to its first newline against the whole label, exactly and normalised), averaged over
the same tasks, with the interval of the exact one from `intervals.whole_answer.average` under
the same rule. Each row carries its standing (`standing.py`): whether it is ranked, and if not,
why. The overriding study's tasks are left out here: `overriding.py` makes their rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from benchmark import CROSS_MODAL

from . import labels, reproductions
from .standing import Reproduction, Standing, reasons_for
from .submissions import Submission


@dataclass(frozen=True)
class Cell:
    """An accuracy, its std over seeds and the items scored per seed (None where the source
    gives none)."""

    acc: float
    std: float | None = None
    n: int | None = None


Interval = tuple[float, float]
# The intervals shown: 95% ones of the lenient score, the number every table shows.
LEVEL = 0.95
SCORE = "lenient"


@dataclass(frozen=True)
class Whole:
    """A row's whole-answer figures (`whole_answer` in the results, `--score whole_answer`):
    the mean over its tasks of the exact and of the normalised whole-answer accuracy, and the
    95% interval of the exact mean where the results carry one for exactly these tasks."""

    acc: float
    acc_normalised: float
    ci: Interval | None = None


@dataclass(frozen=True)
class Row:
    file: str
    name: str
    model: str
    reported: bool
    source: str | None
    spec: str
    query: str
    method: str
    cells: dict[str, Cell]
    avg: Cell
    layers: tuple[int, ...]
    num_layers: int | None
    # How much stands behind the numbers: the items scored per seed (each distinct `n` of the
    # row's tasks), the number of seeds, and `--limit` when the run was cut short.
    n: tuple[int, ...] = ()
    seeds: int | None = None
    limit: int | None = None
    # The variant of the experiment (see labels.Section): the tasks' family, the model the
    # patched vectors came from (`--source_model`) with the mean cosine similarity of its vectors
    # and the model's own (matched tasks; other tasks), and the model's chat template.
    family: str = CROSS_MODAL
    source_model: str | None = None
    cosine: float | None = None
    cosine_mismatched: float | None = None
    chat: bool = False
    # The results' 95% intervals on the average over tasks (`intervals.average`: method or
    # difference such as "patch - prompt" -> (low, high)); empty unless the row's tasks are
    # exactly the tasks that average was taken over.
    avg_intervals: Mapping[str, Interval] = field(default_factory=dict)
    # The whole-answer figures, None where the run scored no whole answers (older runs, runs
    # without --score whole_answer, reported rows) or not for every task of the row.
    whole: Whole | None = None
    # Whether the row is ranked among its section's rows, and if not why (`standing.py`).
    standing: Standing = field(default_factory=Standing)

    @property
    def ranked(self) -> bool:
        return self.standing.ranked

    @property
    def avg_ci(self) -> Interval | None:
        """The 95% interval of the row's Avg, or None."""
        return self.avg_intervals.get(self.method)

    @property
    def section(self) -> labels.Section:
        return labels.Section(
            self.spec, self.query, self.family, self.source_model is not None, self.chat
        )

    @property
    def setting(self) -> str:
        return self.section.id


def _average(results: list[dict]) -> Cell:
    """Mean over tasks; its std over seeds when every task has the same number of seeds."""
    acc = sum(r["acc"] for r in results) / len(results)
    seeds = [r.get("per_seed") for r in results]
    if not all(seeds) or len({len(s) for s in seeds}) != 1:
        return Cell(acc)
    per_seed = [sum(column) / len(column) for column in zip(*seeds, strict=True)]
    # Population std (ddof=0), the convention of the harness' per-task acc_std.
    return Cell(acc, statistics.pstdev(per_seed) if len(per_seed) > 1 else None)


def run_size(sub: Submission, results: list[dict]) -> dict[str, Any]:
    """`n`, `seeds` and `limit` of a row: the distinct items-per-seed of its results, the
    submission's number of seeds and its `--limit` (None where the file gives none)."""
    seeds = sub.results.get("seeds")
    limit = (sub.results.get("config") or {}).get("limit")
    counts = {r["n"] for r in results if isinstance(r.get("n"), int)}
    return {
        "n": tuple(sorted(counts)),
        "seeds": len(seeds) if isinstance(seeds, list) else None,
        "limit": limit if isinstance(limit, int) else None,
    }


def average_intervals(results: Mapping[str, Any], tasks: list[str]) -> dict[str, Interval]:
    """`intervals.average` of a results file, as (low, high) pairs, when it holds for a row of
    `tasks`: the intervals are 95% ones of the lenient score and their average was taken over
    exactly these tasks (`intervals.per_task`: every task of the run). Empty otherwise: older
    runs and reported rows carry none, and a row of some of a run's tasks (one task family of a
    run of two) has an Avg that no interval was computed for."""
    block = results.get("intervals")
    if not isinstance(block, dict) or block.get("level") != LEVEL:
        return {}
    if block.get("score", SCORE) != SCORE:
        return {}
    return _interval_set(block, tasks)


def _interval_set(block: Mapping[str, Any], tasks: list[str]) -> dict[str, Interval]:
    """`block["average"]` as (low, high) pairs when `block["per_task"]` is exactly `tasks`."""
    per_task, average = block.get("per_task"), block.get("average")
    if not isinstance(per_task, dict) or set(per_task) != set(tasks):
        return {}
    if not isinstance(average, dict):
        return {}
    return {name: (float(pair[0]), float(pair[1])) for name, pair in average.items()}


def whole_intervals(results: Mapping[str, Any], tasks: list[str]) -> dict[str, Interval]:
    """`intervals.whole_answer.average` (the exact whole answers) as (low, high) pairs, under
    the rule of `average_intervals`: 95% ones, averaged over exactly `tasks`; else empty."""
    block = results.get("intervals")
    if not isinstance(block, dict) or block.get("level") != LEVEL:
        return {}
    whole = block.get("whole_answer")
    return _interval_set(whole, tasks) if isinstance(whole, dict) else {}


def whole_of(
    results: Mapping[str, Any], entries: list[dict], method: str, tasks: list[str]
) -> Whole | None:
    """A row's `Whole` from its tasks' results entries (`entries`, one per task of `tasks`);
    None unless every one of them carries `whole_answer`."""
    wholes = [entry.get("whole_answer") for entry in entries]
    if not wholes or not all(isinstance(w, dict) for w in wholes):
        return None
    return Whole(
        acc=statistics.fmean(w["acc"] for w in wholes),
        acc_normalised=statistics.fmean(w["acc_normalised"] for w in wholes),
        ci=whole_intervals(results, tasks).get(method),
    )


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def standing_of(
    sub: Submission, family: str, tasks: list[str], by_file: Mapping[str, Submission]
) -> Standing:
    """The standing of `sub`'s rows of `family` over `tasks`: why they are not ranked, and the
    row `sub` reproduces (found in `by_file`, every submission by file name)."""
    reasons = reasons_for(sub.results, family, tasks, reported=sub.reported)
    target = by_file.get(sub.reproduces or "")
    if target is None:
        return Standing(reasons)
    note = reproductions.agreement(sub.data, target.data)
    return Standing(reasons, Reproduction(target.file, target.name, note))


def submission_rows(sub: Submission, by_file: Mapping[str, Submission] | None = None) -> list[Row]:
    """One row per (task family, method): a run of both cross-modal and VQA tasks gives rows in
    both sections. `by_file` (every submission by file name) finds the row a reproduction
    reruns."""
    by_method: dict[tuple[str, str], dict[str, dict]] = {}
    for task, methods in sub.results["results"].items():
        if labels.is_overriding_task(task):
            continue  # the overriding study has a table of its own (overriding.py)
        family = labels.family_of([task])
        for method, result in methods.items():
            by_method.setdefault((family, method), {})[task] = result
    source_model = labels.source_model_of(sub.results)
    transfer = (sub.results.get("transfer") or {}) if source_model else {}
    rows = []
    for family, method in sorted(by_method, key=lambda k: (k[0], labels.method_key(k[1]))):
        results = by_method[family, method]
        tasks = sorted(results, key=labels.task_key)
        layers = method_layers(results)
        standing = standing_of(sub, family, tasks, by_file or {})
        rows.append(
            Row(
                file=sub.file,
                name=sub.name,
                model=sub.model,
                reported=sub.reported,
                source=sub.meta.get("source"),
                spec=sub.spec,
                query=sub.query,
                method=method,
                cells={
                    t: Cell(results[t]["acc"], results[t].get("acc_std"), results[t].get("n"))
                    for t in tasks
                },
                avg=_average([results[t] for t in tasks]),
                layers=tuple(sorted(layers)),
                num_layers=sub.results["model"].get("num_layers"),
                **run_size(sub, list(results.values())),
                family=family,
                source_model=source_model,
                cosine=_number(transfer.get("mean_cosine")),
                cosine_mismatched=_number(transfer.get("mean_mismatched_cosine")),
                chat=labels.uses_chat(sub.results),
                avg_intervals=average_intervals(sub.results, tasks),
                whole=whole_of(sub.results, [results[t] for t in tasks], method, tasks),
                standing=standing,
            )
        )
    return rows


@dataclass(frozen=True)
class Difference:
    """A paired difference the results carry an interval for (`intervals.average["patch -
    prompt"]`): the difference of the two rows' Avgs and its 95% interval."""

    file: str
    name: str
    section: labels.Section
    minuend: str
    subtrahend: str
    value: float
    interval: Interval


def differences(rows: list[Row]) -> list[Difference]:
    """The paired differences between `rows` of one submission and section (e.g. Patch − Prompt,
    Patch − No context), in the rows' order and then the results file's; only where both rows
    have intervals (see `average_intervals`)."""
    out = []
    for row in rows:
        for name, interval in row.avg_intervals.items():
            minuend, dash, subtrahend = name.partition(" - ")
            if not dash or minuend != row.method:
                continue
            other = next(
                (
                    o
                    for o in rows
                    if o.file == row.file
                    and o.section == row.section
                    and o.method == subtrahend
                    and o.avg_intervals
                ),
                None,
            )
            if other is None:
                continue
            value = row.avg.acc - other.avg.acc
            out.append(
                Difference(row.file, row.name, row.section, minuend, subtrahend, value, interval)
            )
    return out


def row_key(row: Row) -> tuple:
    """Sections in the paper's order; reproduced runs before reported rows; then by name."""
    return (
        row.section.key,
        row.reported,
        row.name.lower(),
        row.file,
        labels.method_key(row.method),
    )


def all_rows(submissions: list[Submission]) -> list[Row]:
    by_file = {sub.file: sub for sub in submissions}
    rows = [row for sub in submissions for row in submission_rows(sub, by_file)]
    return sorted(rows, key=row_key)


def tasks_of(rows: list[Row]) -> list[str]:
    """The tasks any of `rows` has, in registry order: the table's task columns."""
    return sorted({t for row in rows for t in row.cells}, key=labels.task_key)


def settings_of(rows: list[Row]) -> list[labels.Section]:
    """The sections the rows fall in, in the paper's order: one table each."""
    return sorted({r.section for r in rows}, key=lambda s: s.key)


# Fixed formatting, so the same numbers always give the same bytes.
DASH = "—"


def fmt(value: float | None, digits: int = 2) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def fmt_interval(interval: Interval | None) -> str:
    """`[0.22, 0.31]`; `—` for none."""
    return DASH if interval is None else f"[{fmt(interval[0])}, {fmt(interval[1])}]"


CI_TITLE = "Avg 95% CI"
WHOLE_TITLE = "Whole answer"


def fmt_whole(whole: Whole | None) -> str:
    """`0.18 [0.12, 0.24] (0.21)`: the exact whole-answer mean, its 95% interval where there is
    one, and the normalised mean in parentheses; `0.18 (0.21)` without an interval; `—` for
    none."""
    if whole is None:
        return DASH
    interval = "" if whole.ci is None else f" {fmt_interval(whole.ci)}"
    return f"{fmt(whole.acc)}{interval} ({fmt(whole.acc_normalised)})"


MINUS = "−"  # U+2212, the minus sign of a difference


def fmt_signed(value: float) -> str:
    """`+0.26`, `−0.05`: always signed, with a minus sign (not a hyphen)."""
    text = f"{value:+.2f}"
    return MINUS + text[1:] if text.startswith("-") else text


def fmt_difference(diff: Difference, label: Callable[[str], str] = labels.method_label) -> str:
    """`Patch − Prompt: −0.05 [−0.08, −0.02]`; `label` shows a method id (escaped as the
    output needs)."""
    low, high = diff.interval
    return (
        f"{label(diff.minuend)} {MINUS} {label(diff.subtrahend)}: {fmt_signed(diff.value)} "
        f"[{fmt_signed(low)}, {fmt_signed(high)}]"
    )


def fmt_cell(cell: Cell | None) -> str:
    """`0.36 ± 0.03`; `0.61 ± —` where no std exists (reported rows); `—` for no value."""
    if cell is None:
        return DASH
    return f"{fmt(cell.acc)} ± {fmt(cell.std)}"


class Layered(Protocol):
    """A row with a patched layer: leaderboard rows and the overriding study's rows."""

    @property
    def layers(self) -> tuple[int, ...]: ...

    @property
    def num_layers(self) -> int | None: ...


def fmt_layer(row: Layered) -> str:
    """`22 / 30` for a patched row with a known depth; `—` for methods without a layer."""
    if not row.layers:
        return DASH
    text = ", ".join(str(layer) for layer in row.layers)
    return f"{text} / {row.num_layers}" if row.num_layers else text


class Counted(Protocol):
    """A row that says how many items and seeds stand behind it (and any --limit)."""

    @property
    def n(self) -> tuple[int, ...]: ...

    @property
    def seeds(self) -> int | None: ...

    @property
    def limit(self) -> int | None: ...


SIZE_TITLE = "n × seeds"


def fmt_size(row: Counted) -> str:
    """`100 × 3`: items scored per seed, times seeds; `30–100 × 3` where the row's tasks differ;
    `20 × 3 (limit 20)` for a run cut short with --limit; `—` where the file gives neither
    (reported rows)."""
    if not row.n and row.seeds is None:
        return DASH
    n = DASH if not row.n else str(row.n[0]) if len(row.n) == 1 else f"{row.n[0]}–{row.n[-1]}"
    text = f"{n} × {DASH if row.seeds is None else row.seeds}"
    return f"{text} (limit {row.limit})" if row.limit is not None else text


def partial_average(row: Row, columns: list[str]) -> bool:
    """True when a row's average covers fewer tasks than the table shows."""
    return any(task not in row.cells for task in columns)


def method_layers(results: dict[str, dict[str, Any]]) -> set[int]:
    """The layers a method patched at, from its results entries (one per task): an entry that
    records `layer` was measured with a patch at that layer, whatever the method's id, so a
    plug-in method that patches shows its layer too. Empty for a method none of whose entries
    records a layer: it patches nothing (the run's `layer_selection` is not its layer)."""
    return {r["layer"] for r in results.values() if "layer" in r}
