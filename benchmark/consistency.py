"""A results file checked against itself, and a submission against the results it was made from.

A schema says each number is in range; it cannot say that `acc` is the mean of `per_seed`, that
the tasks and methods are the configured ones, that `n` agrees with the splits and the per-sample
rows logged beside the file, or that a submission still holds the results it recorded the hash
of. Those are the checks here; each error carries the JSON path of the field at fault.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .files import slug
from .strict_json import SchemaError, canonical_sha256, json_path, loads_checked

# How far a stored mean or std may be from the one recomputed from per_seed.
TOLERANCE = 1e-9


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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


def _entry_errors(
    entry: dict[str, Any],
    at: list[Any],
    seeds: int | None,
    split_n: int | None,
    limit: int | None,
) -> list[SchemaError]:
    """One task x method result against itself, the seeds, the split size and the limit."""
    errors = []

    def fail(field: list[Any], message: str) -> None:
        errors.append(SchemaError(json_path(at + field), message))

    acc, per_seed, std, n = (entry.get(k) for k in ("acc", "per_seed", "acc_std", "n"))
    if acc is not None and per_seed is None:
        fail(
            ["per_seed"],
            "missing: acc cannot be checked without the per-seed accuracies it is the mean of "
            "(vlm-tv-eval writes them)",
        )
    if isinstance(per_seed, list) and all(_number(v) for v in per_seed):
        if seeds is not None and len(per_seed) != seeds:
            fail(["per_seed"], f"{len(per_seed)} value(s) for {seeds} seed(s)")
        if per_seed:
            mean = statistics.fmean(per_seed)
            # An image set's judged rate pools the judged answers of all seeds: with judge
            # failures the seeds weigh differently, so the pooled rate lies between them.
            pooled = "judged" in entry and "judge_acc" not in entry
            pooled = pooled and bool(entry.get("judge_failures"))
            if _number(acc) and pooled:
                low, high = min(per_seed), max(per_seed)
                if not low - TOLERANCE <= acc <= high + TOLERANCE:
                    fail(
                        ["acc"],
                        f"{acc!r} lies outside its per-seed rates [{low!r}, {high!r}] "
                        "(judged answers pooled over seeds)",
                    )
            elif _number(acc) and abs(acc - mean) > TOLERANCE:
                fail(["acc"], f"{acc!r} is not the mean of per_seed {per_seed} ({mean!r})")
            pstd = statistics.pstdev(per_seed)
            if _number(std) and abs(std - pstd) > TOLERANCE:
                fail(
                    ["acc_std"],
                    f"{std!r} is not the population std of per_seed {per_seed} ({pstd!r})",
                )
    if _count(n):
        if split_n is not None and n != split_n:
            fail(["n"], f"{n} items scored per seed, but the recorded test split has {split_n}")
        if limit is not None and n > limit:
            fail(["n"], f"{n} items scored per seed, more than config.limit ({limit})")
        judged, failures = entry.get("judged"), entry.get("judge_failures")
        if seeds is not None and _count(judged) and _count(failures):
            if judged + failures != n * seeds:
                fail(
                    ["judged"],
                    f"judged ({judged}) + judge_failures ({failures}) is not n x seeds "
                    f"({n} x {seeds} = {n * seeds}): every answer is judged or counted as failed",
                )
    return errors


def _read_rows(path: Path) -> list[dict[str, Any]] | None:
    """The rows of a per-sample JSONL file; None when any line cannot be read (that file's own
    `validate` names the line)."""
    rows = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        if not line.strip():
            continue
        obj, errors = loads_checked(line)
        if errors or not isinstance(obj, dict):
            return None
        rows.append(obj)
    return rows


def _row_file_errors(
    run_dir: Path, task: str, by_method: dict[str, Any], seeds: list[Any]
) -> list[SchemaError]:
    """A task's results against the per-sample rows the run logged beside them:
    `samples_<task>.jsonl` (first-token runs, `--log_samples`) or `generations_<task>.jsonl`
    (overriding runs). Each method and seed must have `n` rows, and where the rows carry the
    score (`lenient`; `exact_override` for override_text) their mean is that seed's accuracy."""
    errors = []
    for prefix, score in (("samples_", "lenient"), ("generations_", "exact_override")):
        path = run_dir / f"{prefix}{slug(task)}.jsonl"
        if not path.is_file():
            continue
        rows = _read_rows(path)
        if rows is None:
            errors.append(
                SchemaError(
                    json_path(["results", task]),
                    f"cannot check against {path.name}: it has lines that are not valid JSON "
                    f"objects (run `vlm-tv-eval validate {path}`)",
                )
            )
            continue
        grouped: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
        for row in rows:
            grouped.setdefault((row.get("method"), row.get("seed")), []).append(row)
        for method, entry in by_method.items():
            if not isinstance(entry, dict) or not _count(entry.get("n")):
                continue
            at = ["results", task, method]
            per_seed = entry.get("per_seed")
            # override_text's acc is the exact-match rate; an image set's comes from a judge.
            scored = prefix == "samples_" or "exact_original" in entry
            for i, seed in enumerate(seeds):
                mine = grouped.get((method, seed), [])
                if len(mine) != entry["n"]:
                    errors.append(
                        SchemaError(
                            json_path([*at, "n"]),
                            f"{entry['n']} items per seed, but {path.name} holds {len(mine)} "
                            f"row(s) for seed {seed}",
                        )
                    )
                    break
                values = [r.get(score) for r in mine]
                if not scored or not isinstance(per_seed, list) or i >= len(per_seed):
                    continue
                if not mine or not all(isinstance(v, bool) for v in values):
                    continue
                rate = sum(values) / len(values)
                if _number(per_seed[i]) and abs(per_seed[i] - rate) > TOLERANCE:
                    errors.append(
                        SchemaError(
                            json_path([*at, "per_seed", i]),
                            f"{per_seed[i]!r} for seed {seed}, but the {len(mine)} rows of "
                            f"{path.name} score {rate!r}",
                        )
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
    - `n` is the size of the recorded test split (`splits.<task>.test`) and at most
      `config.limit`;
    - with `run_dir`, the per-sample rows logged there (`samples_<task>.jsonl`,
      `generations_<task>.jsonl`) have `n` rows per method and seed and score `per_seed`.

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
    limit = config.get("limit") if _count(config.get("limit")) else None
    for task, by_method in results.items():
        if not isinstance(by_method, dict):
            continue
        if isinstance(methods, list):
            for message in _set_errors(list(by_method), methods, "method"):
                errors.append(SchemaError(json_path(["results", task]), message))
        split = splits.get(task)
        split_n = split.get("test") if isinstance(split, dict) else None
        for method, entry in by_method.items():
            if isinstance(entry, dict):
                errors += _entry_errors(
                    entry,
                    ["results", task, method],
                    len(seeds) if seeds is not None else None,
                    split_n if _count(split_n) else None,
                    limit,
                )
        if run_dir is not None and seeds is not None:
            errors += _row_file_errors(Path(run_dir), task, by_method, seeds)
    return sorted(errors, key=lambda e: (e.path, e.message))


def check_submission(doc: Any) -> list[SchemaError]:
    """A submission against itself: `submission.results_sha256` is the sha256 of the results it
    holds (`canonical_sha256`), so results edited after `vlm-tv-leaderboard add` are caught; a
    reproduced (not reported) submission's results pass `check_results_consistency`.

    Meant for a document that passed the submission schema."""
    if not isinstance(doc, dict) or not isinstance(doc.get("submission"), dict):
        return []
    meta, results = doc["submission"], doc.get("results")
    errors = []
    recorded, actual = meta.get("results_sha256"), canonical_sha256(results)
    if recorded != actual:
        errors.append(
            SchemaError(
                "$.submission.results_sha256",
                f"{recorded!r} is not the sha256 of the results this file holds ({actual}): "
                "they were changed after `vlm-tv-leaderboard add`. A submission is never edited "
                "by hand: add the run's results.json again (or `vlm-tv-leaderboard reported` for "
                "the paper's rows)",
            )
        )
    if meta.get("reported") is False:
        for err in check_results_consistency(results):
            errors.append(SchemaError("$.results" + err.path[1:], err.message))
    return errors
