"""The task-overriding study (the paper's Table 5): its rows, kept apart from the accuracy tables.

An overriding submission's tasks are the registry's overriding family (`override_semantic`,
`_syntax`, `_creative`, `_factual`, `override_text`). Their numbers are override rates, not
first-token accuracies: for the four image settings the share of judged answers that the judge
sorts as addressing the overriding task (choice B) or both tasks (C); for `override_text` the
exact-match rate (the answer starts with the overriding task's label). So they get their own
table in every output: one row per (submission, method), original task first, then the
overriding instruction in the system prompt, then patched as an instruction vector.

Every number shown is read from the submission as is; nothing is averaged across settings (the
paper's Table 5 has no average either). As in the accuracy tables, only rows of a full run are
ranked (`standing.py`: all four image settings, or override_text, without --limit, with the
protocol's seeds); the others are shown apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmark import OVERRIDING

from . import labels
from .standing import Standing
from .submissions import Submission
from .table import DASH, fmt, method_layers, run_size, standing_of

# override_text's figures besides its exact-match rate (the judge's only when it was judged).
TEXT_EXTRAS = (
    "exact_original",
    "judge_acc",
    "judge_acc_failures_as_misses",
    "judge_agreement",
)


@dataclass(frozen=True)
class Judge:
    """The judge a submission names: a dated snapshot for runs; free text for reported rows."""

    model: str
    temperature: float | None = None
    base_url: str | None = None


@dataclass(frozen=True)
class OverrideCell:
    """One setting's figures for one method: the override rate and what stands behind it."""

    acc: float | None
    std: float | None = None
    n: int | None = None
    judged: int | None = None
    judge_failures: int | None = None
    acc_failures_as_misses: float | None = None
    extras: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class OverrideRow:
    file: str
    name: str
    model: str
    reported: bool
    source: str | None
    query: str
    method: str
    cells: dict[str, OverrideCell]
    layers: tuple[int, ...]
    num_layers: int | None
    judge: Judge | None
    n: tuple[int, ...] = ()  # as in table.Row: items per seed, seeds, --limit
    seeds: int | None = None
    limit: int | None = None
    standing: Standing = field(default_factory=Standing)  # as in table.Row

    @property
    def ranked(self) -> bool:
        return self.standing.ranked

    @property
    def failures(self) -> dict[str, int]:
        """Judge failures per setting, only where there were any."""
        return {t: c.judge_failures for t, c in self.cells.items() if c.judge_failures}


def is_overriding(sub: Submission) -> bool:
    """True for a submission of the overriding study (any of its tasks is an overriding one)."""
    return any(labels.is_overriding_task(t) for t in sub.results["results"])


def judge_of(results: dict[str, Any]) -> Judge | None:
    judge = results.get("judge")
    if not isinstance(judge, dict) or not judge.get("model"):
        return None
    return Judge(str(judge["model"]), judge.get("temperature"), judge.get("base_url"))


def _cell(result: dict[str, Any]) -> OverrideCell:
    return OverrideCell(
        acc=result.get("acc"),
        std=result.get("acc_std"),
        n=result.get("n"),
        judged=result.get("judged"),
        judge_failures=result.get("judge_failures"),
        acc_failures_as_misses=result.get("acc_failures_as_misses"),
        extras={k: result[k] for k in TEXT_EXTRAS if result.get(k) is not None},
    )


def submission_rows(
    sub: Submission, by_file: Mapping[str, Submission] | None = None
) -> list[OverrideRow]:
    """The overriding rows of one submission (its other tasks, if any, are left out);
    `by_file` (every submission by file name) finds the row a reproduction reruns."""
    by_method: dict[str, dict[str, dict]] = {}
    for task, methods in sub.results["results"].items():
        if labels.is_overriding_task(task):
            for method, result in methods.items():
                by_method.setdefault(method, {})[task] = result
    tasks = [t for t in sub.results["results"] if labels.is_overriding_task(t)]
    standing = standing_of(sub, OVERRIDING, tasks, by_file or {})
    rows = []
    for method in sorted(by_method, key=labels.method_key):
        results = by_method[method]
        layers = method_layers(results)
        rows.append(
            OverrideRow(
                file=sub.file,
                name=sub.name,
                model=sub.model,
                reported=sub.reported,
                source=sub.meta.get("source"),
                query=sub.query,
                method=method,
                cells={t: _cell(results[t]) for t in sorted(results, key=labels.task_key)},
                layers=tuple(sorted(layers)),
                num_layers=sub.results["model"].get("num_layers"),
                judge=judge_of(sub.results),
                **run_size(sub, list(results.values())),
                standing=standing,
            )
        )
    return rows


def row_key(row: OverrideRow) -> tuple:
    """Reproduced runs before reported rows, then by name; methods in the paper's order."""
    return (row.reported, row.name.lower(), row.file, labels.method_key(row.method))


def override_rows(submissions: list[Submission]) -> list[OverrideRow]:
    by_file = {sub.file: sub for sub in submissions}
    rows = [
        row for sub in submissions if is_overriding(sub) for row in submission_rows(sub, by_file)
    ]
    return sorted(rows, key=row_key)


def columns(rows: list[OverrideRow]) -> list[str]:
    """The four image settings always; any other overriding task (Text (pools)) when present."""
    present = {t for row in rows for t in row.cells}
    extra = [t for t in labels.OVERRIDING_TASKS if t in present]
    return list(labels.OVERRIDING_SETTINGS) + [
        t for t in extra if t not in labels.OVERRIDING_SETTINGS
    ]


def fmt_rate(cell: OverrideCell | None) -> str:
    """`0.36`: the rate with two decimals; `—` where the row has no such setting."""
    return DASH if cell is None or cell.acc is None else fmt(cell.acc)


def judge_text(judge: Judge | None, *, with_url: bool = True) -> str:
    """`gpt-4o-2024-08-06 (temperature 0)`; reported rows' free text as given; `not judged`."""
    if judge is None:
        return "not judged"
    details = []
    if judge.temperature is not None:
        details.append(f"temperature {judge.temperature:g}")
    if judge.base_url:
        details.append(f"at {judge.base_url}" if with_url else "own endpoint")
    return judge.model + (f" ({', '.join(details)})" if details else "")


def failures_text(row: OverrideRow) -> str:
    """`judge failures: Semantic 3, Factual 1` (left out of the rates); empty when none."""
    failures = row.failures
    if not failures:
        return ""
    parts = ", ".join(f"{labels.task_label(t)} {n}" for t, n in failures.items())
    return f"judge failures: {parts}"


def row_judge_text(row: OverrideRow, *, with_url: bool = True) -> str:
    """The Judge column: the judge, and this row's judge failures when there are any."""
    text = judge_text(row.judge, with_url=with_url)
    if row.judge is None and set(row.cells) <= {"override_text"}:
        text = "not judged (exact match)"
    failures = failures_text(row)
    return f"{text}; {failures}" if failures else text


def sources(rows: list[OverrideRow]) -> list[str]:
    return sorted({row.source for row in rows if row.reported and row.source})
