"""A results file checked against itself, and a submission against the results it was made from.

A schema says each number is in range; it cannot say that `acc` is the mean of `per_seed`, that
a rate is a whole number of hits out of `n`, that strict never beats lenient, that the tasks and
methods are the configured ones, that `n` agrees with the splits and the per-sample rows logged
beside the file (`rows.py`), that the layer is the one its curve and config pick (`layers.py`),
or that a submission still holds the results it recorded the hash of. Those are the checks here;
each error carries the JSON path of the field at fault.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..strict_json import SchemaError, canonical_sha256, json_path
from .layers import check_layers
from .numbers import TOLERANCE, is_count, is_number, on_grid, on_some_grid
from .rows import row_file_errors, samples_logged


def _names(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _set_errors(have: list[Any], want: list[Any], what: str) -> list[str]:
    missing = [x for x in want if x not in have]
    extra = [x for x in have if x not in want]
    out = []
    if missing:
        out.append(f"no results for {what} {_names(missing)}, which config.{what}s lists")
    if extra:
        out.append(f"results for {what} {_names(extra)}, which config.{what}s does not list")
    return out


def _grid_fields(entry: dict[str, Any], seeds: int | None) -> list[tuple[list[Any], int, str]]:
    """(field, denominator, what it counts) of each rate in an entry that is a count of hits:
    a seed's rate out of its `n` items, a mean over seeds out of `n` x seeds answers, and a
    judge's pooled rate out of the `judged` answers."""
    n, judged = entry["n"], entry.get("judged")
    # An image set's acc and per_seed are the judge's rates over the answers it judged.
    judge_rates = "judged" in entry and "judge_acc" not in entry
    out: list[tuple[list[Any], int, str]] = []
    per_seed = entry.get("per_seed") if isinstance(entry.get("per_seed"), list) else []
    if not judge_rates or entry.get("judge_failures") == 0:
        out += [(["per_seed", i], n, f"n = {n}") for i in range(len(per_seed))]
    if seeds:
        answers = f"n x seeds = {n} x {seeds}"
        fields = ["acc_strict", "exact_original"] + (["acc"] if not judge_rates else [])
        fields += ["acc_failures_as_misses", "judge_acc_failures_as_misses"]
        out += [([field], n * seeds, answers) for field in fields]
    if is_count(judged) and judged > 0:
        fields = ["acc"] if judge_rates else ["judge_acc"]
        out += [([field], judged, f"judged = {judged}") for field in fields]
    return out


def _grid_errors(entry: dict[str, Any], at: list[Any], seeds: int | None) -> list[SchemaError]:
    """Each rate is a whole number of hits over what it counts: an `acc` of 0.6 with n = 4 is
    no run's. A judged image set's seed leaves out its failed verdicts, so its rate is a count
    over some number of answers up to `n`."""
    if not is_count(entry.get("n")) or entry["n"] < 1:
        return []
    errors = []
    for field, total, what in _grid_fields(entry, seeds):
        value = entry.get(field[0]) if len(field) == 1 else entry["per_seed"][field[1]]
        if is_number(value) and not on_grid(value, total):
            errors.append(
                SchemaError(
                    json_path(at + field),
                    f"{value!r} is not a whole number of hits out of {total} ({what}): "
                    "no run scores it",
                )
            )
    per_seed, n = entry.get("per_seed"), entry["n"]
    some_failed = entry.get("judge_failures") != 0
    if "judged" in entry and "judge_acc" not in entry and some_failed:
        for i, value in enumerate(per_seed if isinstance(per_seed, list) else []):
            if is_number(value) and not on_some_grid(value, n):
                errors.append(
                    SchemaError(
                        json_path([*at, "per_seed", i]),
                        f"{value!r} is not a whole number of hits out of any number of judged "
                        f"answers up to n = {n}: no run scores it",
                    )
                )
    return errors


def _strict_errors(entry: dict[str, Any], at: list[Any]) -> list[SchemaError]:
    """A strict hit is a lenient hit, except where the predicted token is only whitespace or a
    byte fragment and matched by id; without the logged rows to show those, `acc_strict` above
    `acc` is no run's."""
    acc, strict = entry.get("acc"), entry.get("acc_strict")
    if not (is_number(acc) and is_number(strict)) or strict <= acc + TOLERANCE:
        return []
    message = (
        f"{strict!r} is above acc ({acc!r}): a strict hit is also a lenient hit (unless the "
        "predicted token is only whitespace or a byte fragment, which the run's samples, "
        "--log_samples, would show)"
    )
    return [SchemaError(json_path([*at, "acc_strict"]), message)]


def _entry_errors(
    entry: dict[str, Any],
    at: list[Any],
    seeds: int | None,
    split_n: int | None,
    limit: int | None,
) -> list[SchemaError]:
    """One task x method result against itself, the seeds, the split size and the limit."""
    errors = _grid_errors(entry, at, seeds)

    def fail(field: list[Any], message: str) -> None:
        errors.append(SchemaError(json_path(at + field), message))

    acc, per_seed, std, n = (entry.get(k) for k in ("acc", "per_seed", "acc_std", "n"))
    if acc is not None and per_seed is None:
        fail(
            ["per_seed"],
            "missing: acc cannot be checked without the per-seed accuracies it is the mean of "
            "(vlm-tv-eval writes them)",
        )
    if isinstance(per_seed, list) and all(is_number(v) for v in per_seed):
        if seeds is not None and len(per_seed) != seeds:
            fail(["per_seed"], f"{len(per_seed)} value(s) for {seeds} seed(s)")
        if per_seed:
            mean = statistics.fmean(per_seed)
            # An image set's judged rate pools the judged answers of all seeds: with judge
            # failures the seeds weigh differently, so the pooled rate lies between them.
            pooled = "judged" in entry and "judge_acc" not in entry
            pooled = pooled and bool(entry.get("judge_failures"))
            if is_number(acc) and pooled:
                low, high = min(per_seed), max(per_seed)
                if not low - TOLERANCE <= acc <= high + TOLERANCE:
                    fail(
                        ["acc"],
                        f"{acc!r} lies outside its per-seed rates [{low!r}, {high!r}] "
                        "(judged answers pooled over seeds)",
                    )
            elif is_number(acc) and abs(acc - mean) > TOLERANCE:
                fail(["acc"], f"{acc!r} is not the mean of per_seed {per_seed} ({mean!r})")
            pstd = statistics.pstdev(per_seed)
            if is_number(std) and abs(std - pstd) > TOLERANCE:
                fail(
                    ["acc_std"],
                    f"{std!r} is not the population std of per_seed {per_seed} ({pstd!r})",
                )
    if is_count(n):
        if split_n is not None and n != split_n:
            fail(["n"], f"{n} items scored per seed, but the recorded test split has {split_n}")
        if limit is not None and n > limit:
            fail(["n"], f"{n} items scored per seed, more than config.limit ({limit})")
        judged, failures = entry.get("judged"), entry.get("judge_failures")
        if seeds is not None and is_count(judged) and is_count(failures):
            if judged + failures != n * seeds:
                fail(
                    ["judged"],
                    f"judged ({judged}) + judge_failures ({failures}) is not n x seeds "
                    f"({n} x {seeds} = {n * seeds}): every answer is judged or counted as failed",
                )
    return errors


def check_results_consistency(doc: Any, run_dir: str | Path | None = None) -> list[SchemaError]:
    """What a results file says about itself, checked: empty when it agrees.

    - `seeds` equals `config.seeds`; the tasks in `results` are `config.tasks`, and each task's
      methods are `config.methods`;
    - per task and method: `per_seed` has one value per seed, `acc` is their mean and `acc_std`
      their population std (within TOLERANCE); for an image set's judged rate with judge
      failures (answers pooled over seeds) `acc` lies between the per-seed rates;
      `judged + judge_failures` is `n` x seeds;
    - every rate is a whole number of hits out of what it counts (a seed's `n` items, `n` x
      seeds answers, the `judged` answers), and `acc_strict` is at most `acc` unless logged
      rows show id-only strict hits;
    - `n` is the size of the recorded test split (`splits.<task>.test`) and at most
      `config.limit`;
    - with `run_dir`, the per-sample rows logged there (`samples_<task>.jsonl`,
      `generations_<task>.jsonl`) score to their own flags, have `n` rows per method and seed,
      and give `per_seed` and `acc_strict` (`exact_original`) (`rows`);
    - the layer is the one the config and the sweep's curves choose, within the model's depth
      (`layers`).

    Meant for a document that passed the results schema; other shapes are skipped, not fatal.
    """
    if not isinstance(doc, dict):
        return []
    errors: list[SchemaError] = []
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    results = doc.get("results") if isinstance(doc.get("results"), dict) else {}
    seeds = doc.get("seeds") if isinstance(doc.get("seeds"), list) else None
    if seeds is not None and isinstance(config.get("seeds"), list) and seeds != config["seeds"]:
        message = f"{seeds} differs from config.seeds {config['seeds']}"
        errors.append(SchemaError("$.seeds", message))
    tasks, methods = config.get("tasks"), config.get("methods")
    if isinstance(tasks, list):
        for message in _set_errors(list(results), tasks, "task"):
            errors.append(SchemaError("$.results", message))
    splits = doc.get("splits") if isinstance(doc.get("splits"), dict) else {}
    limit = config.get("limit") if is_count(config.get("limit")) else None
    case_insensitive = config.get("case_insensitive") is True
    for task, by_method in results.items():
        if not isinstance(by_method, dict):
            continue
        if isinstance(methods, list):
            for message in _set_errors(list(by_method), methods, "method"):
                errors.append(SchemaError(json_path(["results", task]), message))
        split = splits.get(task)
        split_n = split.get("test") if isinstance(split, dict) else None
        # Logged first-token rows decide each strict flag (`rows`); without them
        # strict may not beat lenient.
        rows = run_dir is not None and samples_logged(run_dir, task)
        for method, entry in by_method.items():
            if isinstance(entry, dict):
                at = ["results", task, method]
                errors += _entry_errors(
                    entry,
                    at,
                    len(seeds) if seeds is not None else None,
                    split_n if is_count(split_n) else None,
                    limit,
                )
                errors += [] if rows else _strict_errors(entry, at)
        if run_dir is not None and seeds is not None:
            errors += row_file_errors(run_dir, task, by_method, seeds, case_insensitive)
    errors += check_layers(doc)
    errors += _interval_errors(doc.get("intervals"), results)
    return sorted(errors, key=lambda e: (e.path, e.message))


def _interval_errors(intervals: Any, results: dict[str, Any]) -> list[SchemaError]:
    """Each interval is [low, high] with low <= high, of a task and a method (or a difference
    `a - b` of two methods) the results hold, a method's within [0, 1]."""
    if not isinstance(intervals, dict):
        return []
    errors: list[SchemaError] = []
    blocks = [(["intervals"], intervals)]
    if isinstance(intervals.get("whole_answer"), dict):
        blocks.append((["intervals", "whole_answer"], intervals["whole_answer"]))
    methods = {
        m for by_method in results.values() if isinstance(by_method, dict) for m in by_method
    }
    for at, block in blocks:
        sets = [(["average"], block.get("average"))]
        per_task = block.get("per_task") if isinstance(block.get("per_task"), dict) else {}
        for task, found in per_task.items():
            if task not in results:
                errors.append(
                    SchemaError(json_path([*at, "per_task", task]), "no such task in results")
                )
            sets.append((["per_task", task], found))
        for where, found in sets:
            for name, pair in found.items() if isinstance(found, dict) else []:
                path = json_path([*at, *where, name])
                parts = name.split(" - ") if " - " in name else [name]
                if not set(parts) <= methods:
                    errors.append(SchemaError(path, "names a method the results do not hold"))
                if not (
                    isinstance(pair, list) and len(pair) == 2 and all(is_number(x) for x in pair)
                ):
                    continue
                low, high = pair
                if low > high:
                    errors.append(SchemaError(path, f"low {low} is above high {high}"))
                if len(parts) == 1 and not (0 <= low and high <= 1):
                    errors.append(SchemaError(path, f"[{low}, {high}] is not within [0, 1]"))
    return errors


def check_submission(doc: Any) -> list[SchemaError]:
    """A submission against itself: `submission.results_sha256` is the sha256 of the results it
    holds (`canonical_sha256`), so results edited after `vlm-tv-leaderboard add` are caught; a
    reproduced (not reported) submission's results pass `check_results_consistency`.

    Meant for a document that passed the submission schema."""
    if not isinstance(doc, dict) or not isinstance(doc.get("submission"), dict):
        return []
    meta, results = doc["submission"], doc.get("results")
    errors = []
    if meta.get("results_sha256") != canonical_sha256(results):
        errors.append(
            SchemaError(
                "$.submission.results_sha256",
                # The expected hash is never shown: pasted in, it would silence the check.
                "the recorded hash is not the sha256 of the results this file holds: they "
                "were changed after `vlm-tv-leaderboard add` (or the file was damaged). A "
                "submission is never edited by hand: add the run's results.json again (or "
                "`vlm-tv-leaderboard reported` for the paper's rows)",
            )
        )
    if meta.get("reported") is False:
        for err in check_results_consistency(results):
            errors.append(SchemaError("$.results" + err.path[1:], err.message))
    return errors
