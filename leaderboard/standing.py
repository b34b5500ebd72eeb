"""The ranking rule: which rows the leaderboard ranks against each other, and why the others are
shown apart.

A row's Avg is only comparable with another's when both were measured the same way. So a row
is ranked (shown in its section's main table, and sorted with the others on the page) only when
its run covers its section's whole task set (the six cross-modal tasks, the three VQA subsets,
the four image overriding settings or `override_text`), on the full test splits (no `--limit`)
and with the protocol's seeds (`PROTOCOL_SEEDS`). Reported rows are the paper's full tables, so
only their task set is checked. A reproduction (`add --reproduces`) reruns a row already on the
board: the row it reruns holds the rank, so the reproduction is shown beside it, not ranked a
second time. Every other row is shown apart, under its section's main table, with its reasons,
and never ranked.

`add` refuses a run that would not be ranked unless asked (`--allow_partial`): a quick
`--limit 10` run on one task is a smoke test, not a leaderboard entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from benchmark import OVERRIDING, TASKS

from . import labels

# The seeds every ranked run uses: the harness's default (`RunConfig.seeds`), which the main job
# and the paper's protocol use. The examples drawn for a query depend on the seed, so runs with
# other seeds measured other prompts.
PROTOCOL_SEEDS: tuple[int, ...] = (0, 1, 2)
FIX = "pass --allow_partial to add it anyway, shown apart from the ranked rows and never ranked"


@dataclass(frozen=True)
class Reproduction:
    """The row a reproduction reruns: its submission file and name, and how close the
    reproduction's accuracies came (`reproductions.agreement`)."""

    file: str
    name: str
    agreement: str


@dataclass(frozen=True)
class Standing:
    """Whether a row is ranked: the reasons it is not (plain text), and the row it reproduces
    (`add --reproduces`), if any."""

    reasons: tuple[str, ...] = ()
    reproduces: Reproduction | None = None

    @property
    def ranked(self) -> bool:
        return not self.reasons and self.reproduces is None


def full_task_set(family: str, query: str) -> tuple[str, ...]:
    """The tasks a run of `family` must cover to be ranked: every registry task of the family;
    for the overriding study the four image settings (image queries) or `override_text`."""
    if family == OVERRIDING:
        if query == "image":
            return labels.OVERRIDING_SETTINGS
        return tuple(t for t in labels.OVERRIDING_TASKS if t not in labels.OVERRIDING_SETTINGS)
    return tuple(t for t, task in TASKS.items() if task.family == family)


def family_of_task(task: str) -> str:
    """The family a task's row is ranked in: overriding, VQA or cross-modal."""
    return OVERRIDING if labels.is_overriding_task(task) else labels.family_of([task])


def _task_list(tasks: Iterable[str]) -> str:
    return ", ".join(labels.task_label(t) for t in tasks)


def task_reason(family: str, query: str, tasks: Iterable[str]) -> str | None:
    """`2 of the 6 tasks, without Latin, Young, Color, Flavor`, or None when `tasks` cover the
    family's whole task set."""
    present = set(tasks)
    full = full_task_set(family, query)
    missing = [t for t in full if t not in present]
    if not missing:
        return None
    count = len([t for t in full if t in present])
    return f"{count} of the {len(full)} tasks, without {_task_list(missing)}"


def run_reasons(results: Mapping[str, Any]) -> list[str]:
    """Why a measured run is not comparable whatever its tasks: `--limit`, or other seeds."""
    reasons = []
    limit = (results.get("config") or {}).get("limit")
    if isinstance(limit, int) and not isinstance(limit, bool):
        reasons.append(f"--limit {limit}, test splits cut to {limit} items")
    seeds = results.get("seeds")
    if isinstance(seeds, list) and tuple(seeds) != PROTOCOL_SEEDS:
        shown = ", ".join(str(s) for s in seeds)
        wanted = ", ".join(str(s) for s in PROTOCOL_SEEDS)
        reasons.append(f"seeds {shown or 'none'} where the protocol has {wanted}")
    return reasons


def reasons_for(
    results: Mapping[str, Any], family: str, tasks: Iterable[str], *, reported: bool
) -> tuple[str, ...]:
    """Why a row of `family` over `tasks` is not ranked; empty when it is comparable. The
    paper's rows are its full tables: their splits and seeds are the paper's own."""
    query = (results.get("config") or {}).get("query") or "text"
    reasons = [why] if (why := task_reason(family, query, tasks)) else []
    return tuple(reasons if reported else reasons + run_reasons(results))


def partial_reasons(results: Mapping[str, Any]) -> list[str]:
    """Why some row of a results file would not be ranked, for `add`: its run's reasons and,
    per task family it holds, missing tasks."""
    by_family: dict[str, list[str]] = {}
    for task in results.get("results") or {}:
        by_family.setdefault(family_of_task(task), []).append(task)
    query = (results.get("config") or {}).get("query") or "text"
    reasons = [
        why for family, tasks in by_family.items() if (why := task_reason(family, query, tasks))
    ]
    return reasons + run_reasons(results)


def unregistered_tasks(results: Mapping[str, Any]) -> list[str]:
    """The tasks of a results file that are not in the benchmark registry (a researcher's own
    task file or `custom:` task): the leaderboard compares registry tasks only."""
    return [t for t in results.get("results") or {} if t not in TASKS]


def why_not_ranked(standing: Standing) -> str:
    """The reasons a row is not ranked as one line of plain text (the CSV and the page);
    empty for a ranked row."""
    parts = list(standing.reasons)
    if standing.reproduces is not None:
        repro = standing.reproduces
        parts.append(f"reproduces {repro.name} ({repro.file}): {repro.agreement}")
    return "; ".join(parts)
