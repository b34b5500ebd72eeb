"""Reproductions: a rerun of a row already on the leaderboard, recorded as such.

Rerunning the default job is how a result is confirmed, but a rerun has the same model and
config as the row it reruns, so the same `run_id`, and on a deterministic backend the same
numbers: without a record of what it is, it is refused as a (near-)duplicate. `add --reproduces
NAME` records the submission file it reruns in `submission.reproduces`; such a pair (and two
reproductions of one row) is exempt from the duplicate checks, and the reproduction is shown
beside the row it reruns, which alone holds the rank (`standing.py`).

A reproduction must have the same model and the same measurement config (`measurement_config`,
the fields that decide the numbers) as its row, must not be the very same results file, and
reruns a measured row: a paper row has no config to rerun, so a run of its setting is added
without `--reproduces` and ranked beside it. Everything here works on the submissions' JSON, so
`submissions.py` can use it while loading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from benchmark import measurement_config


def target_of(data: Mapping[str, Any]) -> str | None:
    """The submission file `data` reproduces, or None."""
    value = data["submission"].get("reproduces")
    return value if isinstance(value, str) else None


def _config(results: Mapping[str, Any]) -> dict[str, Any]:
    config = measurement_config(results.get("config") or {})
    config["query"] = config.get("query") or "text"
    return config


def mismatch(data: Mapping[str, Any], target: Mapping[str, Any], target_file: str) -> str | None:
    """Why `data` is not a rerun of `target` (the submission in `target_file`), or None.

    A config field only one of the two records (a field added to the harness since) is let
    pass only when the run ids are equal: the harness hashes a field added after runs were
    published only away from its old default, so an equal id says the field changed nothing."""
    meta = target["submission"]
    if meta["reported"]:
        return (
            f"{target_file} is a paper row (reported), which has no config to rerun: add a run "
            "of its setting without --reproduces, and it is ranked beside the paper's row"
        )
    if target_of(target):
        return f"{target_file} is itself a reproduction: name the row it reproduces"
    if data["submission"]["results_sha256"] == meta["results_sha256"]:
        return f"these are the very results of {target_file}; a reproduction is a new run"
    mine, theirs = data["results"], target["results"]
    for key in ("name", "revision"):
        a, b = mine["model"].get(key), theirs["model"].get(key)
        if a != b:
            return f"the model {key} is {a!r}, not {b!r} as in {target_file}"
    ours, rows = _config(mine), _config(theirs)
    differ = sorted(k for k in ours.keys() & rows.keys() if ours[k] != rows[k])
    if differ:
        return f"the config differs from {target_file} in {', '.join(differ)}"
    alone = sorted(ours.keys() ^ rows.keys())
    if alone and mine.get("run_id") != theirs.get("run_id"):
        return (
            f"the config records {', '.join(alone)} in only one of it and {target_file}, and "
            "the run ids differ: not shown to be the same measurement"
        )
    return None


def related(file: str, data: Mapping[str, Any], other_file: str, other: Mapping[str, Any]) -> bool:
    """True when one of the two reproduces the other, or both reproduce the same row (and they
    are not the very same results): then the same run_id and numbers are expected."""
    mine, theirs = target_of(data), target_of(other)
    linked = mine == other_file or theirs == file or (mine is not None and mine == theirs)
    same = data["submission"]["results_sha256"] == other["submission"]["results_sha256"]
    return linked and not same


def resolve(
    wanted: str, data: Mapping[str, Any], existing: Mapping[str, Mapping[str, Any]]
) -> tuple[str | None, str | None]:
    """The file of the submission `--reproduces wanted` names (its file name, with or without
    `.json`, or its display name) that `data` reruns, or None and why not. Naming a
    reproduction names the row it reproduces."""
    named = [
        file
        for file, other in existing.items()
        if wanted in (file, file.removesuffix(".json"), other["submission"]["name"])
    ]
    if not named:
        return None, f"--reproduces {wanted!r} names no submission: give the row's file name"
    roots = sorted({target if (target := target_of(existing[f])) in existing else f for f in named})
    fits = [f for f in roots if mismatch(data, existing[f], f) is None]
    if len(fits) == 1:
        return fits[0], None
    if fits:
        return None, f"--reproduces {wanted!r} fits {', '.join(fits)}: give one file name"
    measured = [f for f in roots if not existing[f]["submission"]["reported"]]
    if not measured:
        return None, (
            f"--reproduces {wanted!r} names paper rows (reported), which have no config to "
            "rerun: add a run of their setting without --reproduces, and it is ranked beside them"
        )
    why = "; ".join(str(mismatch(data, existing[f], f)) for f in measured)
    return None, f"these results are not a rerun of {wanted!r}: {why}"


def load_problems(loaded: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """file -> `file: $.submission.reproduces: problem` for each reproduction in `loaded`
    (file -> data) whose row is missing or is not the row it reruns."""
    problems = {}
    for file, data in loaded.items():
        target = target_of(data)
        if target is None:
            continue
        path = f"{file}: $.submission.reproduces"
        if target not in loaded:
            problems[file] = (
                f"{path}: {target} is not a valid submission in submissions/; a reproduction "
                "needs the row it reruns"
            )
        elif why := mismatch(data, loaded[target], target):
            problems[file] = f"{path}: {why}"
    return problems


def agreement(data: Mapping[str, Any], target: Mapping[str, Any]) -> str:
    """How close a reproduction's accuracies are to its row's: `the same accuracies` or
    `accuracies differ by up to 0.03`, over the (task, method) entries both hold."""
    mine, theirs = data["results"]["results"], target["results"]["results"]
    gaps = [
        abs(entry["acc"] - theirs[task][method]["acc"])
        for task, methods in mine.items()
        for method, entry in methods.items()
        if method in theirs.get(task, {})
        and isinstance(entry.get("acc"), (int, float))
        and isinstance(theirs[task][method].get("acc"), (int, float))
    ]
    if not gaps:
        return "no accuracies in common"
    largest = max(gaps)
    if math.isclose(largest, 0.0, abs_tol=1e-9):
        return "the same accuracies"
    return f"accuracies differ by up to {largest:.2f}"
