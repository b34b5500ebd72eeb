"""A results file against the per-sample rows its run logged beside it.

A first-token run given `--log_samples` writes `samples_<task>.jsonl`, an overriding run
`generations_<task>.jsonl`: one row per method, seed and item, holding the prediction, the
target and the flags it was scored with (a row marked `seeded: false` was computed once and
stands for every seed's row). Those rows are re-scored here with the harness's own
rules (`benchmark/scoring.py`), so flags edited to match an edited accuracy are caught, and the
numbers in the results file must be the rows' means.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..files import slug
from ..reading import read_text
from ..scoring import WHOLE_ANSWER_METHODS, lenient_match, strict_is_possible, whole_answer_match
from ..strict_json import SchemaError, json_path, jsonl_lines
from .numbers import TOLERANCE, is_count, is_number

Row = dict[str, Any]
# (row, case_insensitive) -> what is wrong with its flags, one phrase each
Rescorer = Callable[[Row, bool], list[str]]


def read_rows(path: Path) -> list[tuple[int, Row]] | None:
    """(line number, row) of a per-sample JSONL file; None when any line cannot be read (that
    file's own `validate` names the line)."""
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError):
        return None
    rows = []
    for number, obj, errors in jsonl_lines(text):
        if errors or not isinstance(obj, dict):
            return None
        rows.append((number, obj))
    return rows


def _flag(row: Row, name: str, expected: bool) -> list[str]:
    stored = row.get(name)
    if isinstance(stored, bool) and stored != expected:
        return [f"{name} {str(stored).lower()}, but the rule gives {str(expected).lower()}"]
    return []


def _rescore_sample(row: Row, ci: bool) -> list[str]:
    """A first-token row: `lenient` is decided by its prediction and target; `strict` too for
    a whole answer (majority), and for a token it may be true only where `strict_is_possible`
    (the target's first token, which decides it, is not logged)."""
    pred, target = row.get("prediction"), row.get("target")
    if not isinstance(pred, str) or not isinstance(target, str):
        return []
    wrong = _flag(row, "lenient", lenient_match(pred, target, ci))
    if row.get("method") in WHOLE_ANSWER_METHODS:
        return wrong + _flag(row, "strict", whole_answer_match(pred, target, ci))
    if row.get("strict") is True and not strict_is_possible(pred, target, ci):
        wrong.append(
            "strict true, but a strict hit is a lenient hit (unless the predicted token is "
            "only whitespace or a byte fragment) and this one is not"
        )
    return wrong


def _rescore_generation(row: Row, ci: bool) -> list[str]:
    """An override_text row: each exact flag is its answer against that label, leniently."""
    answer = row.get("answer")
    if not isinstance(answer, str):
        return []
    wrong = []
    for flag, label in (("exact_override", "override_label"), ("exact_original", "original_label")):
        if isinstance(row.get(label), str):
            wrong += _flag(row, flag, lenient_match(answer, row[label], ci))
    return wrong


def _rescore_errors(
    rows: list[tuple[int, Row]], task: str, name: str, rescore: Rescorer, ci: bool
) -> list[SchemaError]:
    """One error per method whose rows store flags their own text does not give: the count and
    the first such row, so a file of a thousand edited rows is one line per method."""
    found: dict[Any, list[tuple[int, Row, list[str]]]] = {}
    for number, row in rows:
        wrong = rescore(row, ci)
        if wrong:
            found.setdefault(row.get("method"), []).append((number, row, wrong))
    errors = []
    for method, bad in found.items():
        number, row, wrong = bad[0]
        errors.append(
            SchemaError(
                json_path(["results", task, str(method)]),
                f"{len(bad)} row(s) of {name} hold flags their text does not score to (first: "
                f"line {number}, seed {row.get('seed')!r}, doc_id {row.get('doc_id')!r}: "
                f"{'; '.join(wrong)})",
            )
        )
    return errors


def _rate(rows: list[Row], field: str) -> float | None:
    values = [r.get(field) for r in rows]
    if not values or not all(isinstance(v, bool) for v in values):
        return None
    return sum(values) / len(values)


def _seed_errors(
    entry: dict[str, Any],
    at: list[Any],
    by_seed: list[tuple[Any, list[Row]]],
    name: str,
    score: str,
    scored: bool,
) -> list[SchemaError]:
    """Each seed has `n` rows, and where the rows carry the score, `per_seed` is their rate."""
    errors = []
    per_seed = entry.get("per_seed")
    for i, (seed, mine) in enumerate(by_seed):
        if len(mine) != entry["n"]:
            message = f"{entry['n']} items per seed, but {name} holds {len(mine)} row(s)"
            errors.append(SchemaError(json_path([*at, "n"]), f"{message} for seed {seed}"))
            break
        if not scored or not isinstance(per_seed, list) or i >= len(per_seed):
            continue
        rate = _rate(mine, score)
        if rate is not None and is_number(per_seed[i]) and abs(per_seed[i] - rate) > TOLERANCE:
            errors.append(
                SchemaError(
                    json_path([*at, "per_seed", i]),
                    f"{per_seed[i]!r} for seed {seed}, but the {len(mine)} rows of "
                    f"{name} score {rate!r}",
                )
            )
    return errors


def _mean_errors(
    entry: dict[str, Any],
    at: list[Any],
    by_seed: list[tuple[Any, list[Row]]],
    name: str,
    field: str,
    row_field: str,
) -> list[SchemaError]:
    """A mean over seeds with no per-seed values stored (`acc_strict`, `exact_original`) is the
    mean of the seeds' row rates."""
    stored = entry.get(field)
    rates = [rate for _, mine in by_seed if (rate := _rate(mine, row_field)) is not None]
    if not is_number(stored) or not rates or len(rates) != len(by_seed):
        return []
    mean = sum(rates) / len(rates)
    if abs(stored - mean) <= TOLERANCE:
        return []
    message = f"{stored!r}, but the rows of {name} give {mean!r} ({row_field}, mean over seeds)"
    return [SchemaError(json_path([*at, field]), message)]


def _file_errors(
    path: Path,
    task: str,
    by_method: dict[str, Any],
    seeds: list[Any],
    kind: tuple[str, ...],
    ci: bool,
) -> list[SchemaError]:
    """One logged file of a task: its rows re-scored, then counted and averaged per method and
    seed against the results (`kind` is a ROW_FILES entry)."""
    prefix, score, mean_field, mean_row_field = kind
    rows = read_rows(path)
    if rows is None:
        return [
            SchemaError(
                json_path(["results", task]),
                f"cannot check against {path.name}: it has lines that are not valid JSON "
                f"objects (run `vlm-tv-eval validate {path}`)",
            )
        ]
    rescore = _rescore_sample if prefix == "samples_" else _rescore_generation
    errors = _rescore_errors(rows, task, path.name, rescore, ci)
    grouped: dict[tuple[Any, Any], list[Row]] = {}
    once: dict[Any, list[Row]] = {}  # rows written once that stand for every seed
    for _, row in rows:
        if row.get("seeded") is False:
            once.setdefault(row.get("method"), []).append(row)
        else:
            grouped.setdefault((row.get("method"), row.get("seed")), []).append(row)
    for method, entry in by_method.items():
        if not isinstance(entry, dict) or not is_count(entry.get("n")):
            continue
        at = ["results", task, method]
        by_seed = [(seed, grouped.get((method, seed), []) + once.get(method, [])) for seed in seeds]
        # override_text's acc is the exact-match rate; an image set's comes from a judge.
        scored = prefix == "samples_" or "exact_original" in entry
        errors += _seed_errors(entry, at, by_seed, path.name, score, scored)
        if scored and all(len(mine) == entry["n"] for _, mine in by_seed):
            errors += _mean_errors(entry, at, by_seed, path.name, mean_field, mean_row_field)
    return errors


# (file prefix, the row flag per_seed is the rate of, the stored mean of another flag, that flag)
ROW_FILES: tuple[tuple[str, ...], ...] = (
    ("samples_", "lenient", "acc_strict", "strict"),
    ("generations_", "exact_override", "exact_original", "exact_original"),
)


def samples_logged(run_dir: str | Path, task: str) -> bool:
    """Whether the run logged first-token rows for `task` (they decide its strict flags)."""
    return (Path(run_dir) / f"samples_{slug(task)}.jsonl").is_file()


def row_file_errors(
    run_dir: str | Path, task: str, by_method: dict[str, Any], seeds: list[Any], ci: bool
) -> list[SchemaError]:
    """A task's results against the rows logged for it: the rows' flags are what their text
    scores to (`case_insensitive` as the run was configured); each method and seed has `n`
    rows; `per_seed` is the seeds' rates of the scored flag (`lenient`; `exact_override` for
    override_text) and `acc_strict` (`exact_original`) the mean of the other's."""
    errors = []
    for kind in ROW_FILES:
        path = Path(run_dir) / f"{kind[0]}{slug(task)}.jsonl"
        if path.is_file():
            errors += _file_errors(path, task, by_method, seeds, kind, ci)
    return errors
