"""What `add` and `check` verify beyond the schema, so that no number on the leaderboard is
silently wrong:

- the submission's own text (name, submitted_by, hardware, notes, ...) is not blank and holds no
  invisible or text-reordering character (`guards.text_problem`);
- a submission still holds the results it was made from (`submission.results_sha256`: a guard
  against accidental edits, truncation and copy errors, not against an editor who recomputes
  it; see README.md), and a reproduced submission's results agree with themselves
  (`benchmark.consistency.results.check_submission`: acc = mean of per_seed, std, seeds, tasks
  and methods as configured, n as recorded);
- a reproduced submission's `run_id` is one the harness makes for its setting
  (`run_id_problem`);
- a reported row is a row of the paper's tables as this project entered them (`paper.py`);
- no two submissions are near-duplicates: the same `run_id` (a hash of the model, the config
  that decides the numbers and the items), or the same per-seed accuracies for every task and
  method with the same model and setting.

Problems are lines `file: $.json.path: message`, like the schema's.
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Any

from benchmark import VQA
from benchmark.consistency.results import check_submission

from . import labels, paper
from .guards import text_problem

PAPER_FILE = "leaderboard/paper.py"
# model, spec, query, source model (None: the model's own vectors), chat template
Setting = tuple[str, str, str, str | None, bool]
ReportedKey = tuple[Setting, str, str]  # setting, task family, method


def _setting(results: dict[str, Any]) -> Setting:
    config = results.get("config") or {}
    return (
        results["model"]["name"],
        config.get("spec"),
        config.get("query") or "text",
        labels.source_model_of(results),
        labels.uses_chat(results),
    )


def _describe(setting: Setting, family: str, method: str) -> str:
    model, spec, query, source, chat = setting
    extra = " (VQA subsets)" if family == VQA else ""
    extra += f" with vectors from {source!r}" if source else ""
    extra += " in its chat template" if chat else ""
    return f"model {model!r}, {spec}→{query}{extra}, method {method!r}"


@cache
def _paper_rows() -> dict[ReportedKey, dict[str, dict[str, Any]]]:
    """(setting, family, method) -> {task: entry} for every row of the paper's tables."""
    rows: dict[ReportedKey, dict[str, dict[str, Any]]] = {}
    for data in paper.paper_submissions():
        results = data["results"]
        for task, methods in results["results"].items():
            for method, entry in methods.items():
                key = (_setting(results), labels.family_of([task]), method)
                rows.setdefault(key, {})[task] = entry
    return rows


@cache
def _paper_transfers() -> dict[Setting, Any]:
    """The cosine similarities (`transfer`) the paper's LLM → VLM rows carry, per setting."""
    return {
        _setting(data["results"]): data["results"].get("transfer")
        for data in paper.paper_submissions()
        if labels.source_model_of(data["results"])
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(mine: dict[str, Any], theirs: dict[str, Any]) -> bool:
    if set(mine) != set(theirs):
        return False
    for key, value in mine.items():
        other = theirs[key]
        numbers = all(_is_number(v) for v in (value, other))
        if numbers and not math.isclose(value, other, rel_tol=0, abs_tol=1e-9):
            return False
        if not numbers and value != other:
            return False
    return True


def reported_problems(data: dict[str, Any], file: str) -> list[str]:
    """A reported submission against the paper's rows: each of its methods must be a row of
    `paper.py` for the same model and setting, with the same tasks and the same figures."""
    results = data["results"]
    setting = _setting(results)
    by_method: dict[tuple[str, str], dict[str, Any]] = {}
    for task, methods in results["results"].items():
        for method, entry in methods.items():
            by_method.setdefault((labels.family_of([task]), method), {})[task] = entry
    problems = []
    fix = "reported rows are copied from the paper, never edited: `vlm-tv-leaderboard reported`"
    if setting[3] is not None:
        theirs = _paper_transfers().get(setting)
        if setting in _paper_transfers() and results.get("transfer") != theirs:
            problems.append(
                f"{file}: $.results.transfer: {results.get('transfer')} differs from the "
                f"paper's {theirs} ({PAPER_FILE}); {fix}"
            )
    for (family, method), entries in by_method.items():
        row = _paper_rows().get((setting, family, method))
        if row is None:
            problems.append(
                f"{file}: $.results.results: reported figures for "
                f"{_describe(setting, family, method)}, which no row of the paper's tables in "
                f"{PAPER_FILE} has; {fix} writes the paper's rows"
            )
            continue
        for task in sorted(set(entries) | set(row)):
            path = f"$.results.results.{task}.{method}"
            mine, theirs = entries.get(task), row.get(task)
            if theirs is None:
                problems.append(f"{file}: {path}: not in the paper's row ({PAPER_FILE}); {fix}")
            elif mine is None:
                problems.append(
                    f"{file}: {path}: missing; the paper's row has {theirs} ({PAPER_FILE}); {fix}"
                )
            elif not _same(mine, theirs):
                problems.append(
                    f"{file}: {path}: {mine} differs from the paper's {theirs} "
                    f"({PAPER_FILE}); {fix}"
                )
    return problems


# The submission's text fields: shown on the page, so checked as `add` checks its flags.
TEXT_FIELDS = ("name", "submitted_by", "hardware", "model_card", "notes", "source", "reproduces")


def text_problems(data: dict[str, Any], file: str) -> list[str]:
    """A blank or invisible-character field in `submission`, which a hand-made file (or one
    written before `add` refused them) may hold; JSON Schema cannot name Unicode categories."""
    meta = data["submission"]
    problems = []
    for field in TEXT_FIELDS:
        value = meta.get(field)
        why = text_problem(value, field) if isinstance(value, str) else None
        if why:
            problems.append(f"{file}: $.submission.{field}: {why}")
    return problems


# The harness's run id (harness/store.py `run_id`): the run's spec, "-", and the first 12 hex
# digits of the sha256 of its measurement config and every item it ran on.
RUN_ID_HEX_DIGITS = 12


def run_id_problem(results: dict[str, Any]) -> str | None:
    """Why `results["run_id"]` is not an id the harness makes for this run, or None.

    The id is `<config.spec>-<12 lower-case hex digits>`: its shape and its spec are checked.
    Its hash is not recomputed: it covers every item the run read (task files and images
    included), which a results file does not hold, and the --template value as given, where
    a results file records the template it resolved to. So this catches an id made up or
    copied from another setting, not one made to the shape.
    """
    run_id = results.get("run_id")
    spec = (results.get("config") or {}).get("spec")
    if not isinstance(run_id, str) or not isinstance(spec, str):
        return None  # the schema names a missing or mistyped one
    shape = f"{re.escape(spec)}-[0-9a-f]{{{RUN_ID_HEX_DIGITS}}}"
    if re.fullmatch(shape, run_id):
        return None
    shown = run_id if len(run_id) <= 80 else run_id[:80] + "..."
    return (
        f"{shown!r} is not a run id the harness makes for this run: that is its spec and "
        f"{RUN_ID_HEX_DIGITS} lower-case hex digits ({spec}-<hash of its config and items>); "
        "submit the results.json the run wrote, unedited"
    )


def submission_problems(data: dict[str, Any], file: str) -> list[str]:
    """Everything wrong with one schema-valid submission, beyond its schema."""
    problems = text_problems(data, file)
    if not data["submission"]["reported"]:
        why = run_id_problem(data["results"])
        problems += [f"{file}: $.results.run_id: {why}"] if why else []
    problems += [f"{file}: {e.path}: {e.message}" for e in check_submission(data)]
    if data["submission"]["reported"]:
        problems += reported_problems(data, file)
    return problems


def _per_seed(results: dict[str, Any]) -> tuple | None:
    """Every task and method's per-seed accuracies; None when any result has none."""
    out = []
    for task, methods in results.get("results", {}).items():
        for method, entry in methods.items():
            if not isinstance(entry.get("per_seed"), list):
                return None
            out.append((task, method, tuple(entry["per_seed"])))
    return tuple(sorted(out)) or None


def near_duplicate(data: dict[str, Any], other: dict[str, Any]) -> str | None:
    """Why `data` is a near-duplicate of `other` (both reproduced submissions), or None."""
    if data["submission"]["reported"] or other["submission"]["reported"]:
        return None
    mine, theirs = data["results"], other["results"]
    run_id = mine.get("run_id")
    if run_id and run_id == theirs.get("run_id"):
        return (
            f"the same run_id {run_id!r} (a hash of the model, the config that decides the "
            "numbers and the items): the same measurement"
        )
    per_seed = _per_seed(mine)
    if per_seed and _setting(mine) == _setting(theirs) and per_seed == _per_seed(theirs):
        return "the same per-seed accuracies for every task and method, same model and setting"
    return None
