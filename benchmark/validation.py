"""JSON Schema validation for every file kind the project reads or writes, and the checks a
schema cannot express.

Each error is reported with the JSON path of the bad field (`$.results.country_capital.patch`),
so a researcher can find it in their file without reading the schema.

Files are parsed strictly (`loads_checked`): NaN and Infinity (which Python's json reads and
writes by default), a key given twice in one object, and nesting deeper than `MAX_DEPTH` are
errors, never silently read. A results file is also checked against itself
(`check_results_consistency`): every `acc` is the mean of its per-seed accuracies, tasks and
methods are the configured ones, `n` agrees with the recorded splits and any per-sample rows in
the run folder. A submission must still hold the results it was made from (`check_submission`).
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from .files import slug

# kind -> schema file stem. A document names its kind in a top-level "kind" field; row files
# (JSONL) are told apart by name or by --kind.
KINDS: dict[str, str] = {
    "pool": "pool",
    "pool_record": "pool_record",
    "row_cross_modal": "row_cross_modal",
    "row_vqa": "row_vqa",
    "row_overriding": "row_overriding",
    "results": "results",
    "sample": "sample",
    "submission": "submission",
    "judge_verdict": "judge_verdict",
    "generation": "generation",
}
_DOCUMENT_KINDS = ("pool", "results", "submission")
_JSONL_NAME_HINTS = (
    ("samples_", "sample"),
    ("verdicts", "judge_verdict"),
    ("generations_", "generation"),
)
# No file of this project nests deeper than 10; anything past this is refused before a schema
# (or Python's recursion limit) sees it.
MAX_DEPTH = 32
# How far a stored mean or std may be from the one recomputed from per_seed.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class SchemaError:
    """One validation problem: where (file, line, JSON path) and what."""

    path: str
    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file or "<data>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.path}: {self.message}"


def kinds() -> list[str]:
    return list(KINDS)


# --- strict parsing ---------------------------------------------------------------------------


class _NonFinite(str):
    """`NaN`, `Infinity` or `-Infinity` as read: kept as a marker so its JSON path is reported."""


class _Duplicates(dict):
    """An object that gave a key more than once; `duplicates` lists those keys."""

    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    duplicates = []
    for key, value in pairs:
        if key in out and key not in duplicates:
            duplicates.append(key)
        out[key] = value
    if not duplicates:
        return out
    marked = _Duplicates(out)
    marked.duplicates = duplicates
    return marked


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _content_errors(obj: Any) -> list[SchemaError]:
    """NaN/Infinity, duplicate keys and too deep nesting in a parsed document, by JSON path."""
    errors = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(obj, ())]
    while stack:
        value, parts = stack.pop()
        if isinstance(value, _NonFinite):
            errors.append(
                SchemaError(
                    _json_path(parts),
                    f"{value} is not a number JSON allows (only finite numbers are valid): "
                    "write a finite number, or leave out a result that could not be computed",
                )
            )
            continue
        if not isinstance(value, (dict, list)):
            continue
        if len(parts) >= MAX_DEPTH:
            errors.append(
                SchemaError(
                    _json_path(parts),
                    f"nested more than {MAX_DEPTH} levels deep: no vlm-tv-eval file is; refused "
                    "unread (is this the file you meant?)",
                )
            )
            continue
        if isinstance(value, _Duplicates):
            for key in value.duplicates:
                errors.append(
                    SchemaError(
                        _json_path(parts),
                        f"duplicate key {key!r}: a JSON reader keeps one of its values and "
                        "drops the other without a word; keep exactly one",
                    )
                )
        items = value.items() if isinstance(value, dict) else enumerate(value)
        stack.extend((v, (*parts, k)) for k, v in reversed(list(items)))
    return sorted(errors, key=lambda e: (e.path, e.message))


def loads_checked(text: str) -> tuple[Any, list[SchemaError]]:
    """Parse one JSON document strictly: `(document, [])`, or `(None, errors)`.

    Errors (file and line left for the caller to fill in): not valid JSON; NaN, Infinity or
    -Infinity anywhere; a key given twice in one object; nesting deeper than MAX_DEPTH.
    """
    try:
        obj = json.loads(text, parse_constant=_NonFinite, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        return None, [SchemaError("$", f"not valid JSON: {exc}")]
    except RecursionError:
        return None, [
            SchemaError("$", f"nested too deeply to read (more than {MAX_DEPTH} levels): refused")
        ]
    except ValueError as exc:  # e.g. an integer literal longer than Python converts
        return None, [SchemaError("$", f"not valid JSON: {exc}")]
    errors = _content_errors(obj)
    return (None, errors) if errors else (obj, [])


def read_json(path: str | Path) -> tuple[Any, list[SchemaError]]:
    """`loads_checked` on a UTF-8 file; the errors name the file."""
    name = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [SchemaError("$", f"cannot read file: {exc}", file=name)]
    obj, errors = loads_checked(text)
    return obj, [SchemaError(e.path, e.message, name) for e in errors]


def canonical_json(obj: Any) -> str:
    """The canonical text of a JSON value, for hashing: keys sorted, no whitespace, UTF-8
    characters as themselves (`ensure_ascii=False`), NaN/Infinity refused. Floats are written
    by `repr`, which reads back to the same float, so parsing and re-hashing is stable."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def canonical_sha256(obj: Any) -> str:
    """sha256 (hex) of `canonical_json(obj)` encoded as UTF-8."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


# --- schemas ----------------------------------------------------------------------------------


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    folder = resources.files("benchmark").joinpath("schemas")
    out = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".schema.json"):
            out[entry.name.removesuffix(".schema.json")] = json.loads(entry.read_text("utf-8"))
    return out


@cache
def _format_checker() -> FormatChecker:
    checker = FormatChecker()
    # jsonschema checks "date-time" only when rfc3339-validator is installed, and otherwise
    # passes every string without a word: a missing dependency must not switch a check off.
    if "date-time" not in checker.checkers or "date" not in checker.checkers:
        raise RuntimeError(
            "jsonschema cannot check the date-time format: pip install 'rfc3339-validator>=0.1.4'"
        )
    return checker


@cache
def _validator(kind: str) -> Draft202012Validator:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    schemas = _schemas()
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values()
    )
    return Draft202012Validator(
        schemas[KINDS[kind]], registry=registry, format_checker=_format_checker()
    )


def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a kind, for documentation and tools."""
    _validator(kind)
    return _schemas()[KINDS[kind]]


def _leaf_errors(error: Any) -> list[Any]:
    """The most specific errors: an `if/then` or `$ref` failure reads better as its causes."""
    if error.context:
        leaves = []
        for sub in error.context:
            leaves.extend(_leaf_errors(sub))
        return leaves
    return [error]


def validate(obj: Any, kind: str) -> list[SchemaError]:
    """All problems of one object against the schema of `kind`; empty when it is valid."""
    validator = _validator(kind)
    found: dict[tuple[str, str], SchemaError] = {}
    for error in validator.iter_errors(obj):
        # anyOf/oneOf: the leaves are alternatives, so the summary is clearer than all of them.
        leaves = [error] if error.validator in ("anyOf", "oneOf") else _leaf_errors(error)
        for leaf in leaves:
            path = _json_path(leaf.absolute_path)
            found.setdefault((path, leaf.message), SchemaError(path, leaf.message))
    return sorted(found.values(), key=lambda e: (e.path, e.message))


# --- results checked against themselves -------------------------------------------------------


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
        errors.append(SchemaError(_json_path(at + field), message))

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
                    _json_path(["results", task]),
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
                            _json_path([*at, "n"]),
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
                            _json_path([*at, "per_seed", i]),
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
                errors.append(SchemaError(_json_path(["results", task]), message))
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


# --- files ------------------------------------------------------------------------------------


def _guess_kind(path: Path, first: Any) -> str | None:
    if isinstance(first, dict) and first.get("kind") in KINDS:
        return first["kind"]
    for hint, kind in _JSONL_NAME_HINTS:
        if path.name.startswith(hint):
            return kind
    return None


def _document_errors(doc: Any, kind: str, path: Path) -> list[SchemaError]:
    """The schema's errors; for a valid results file or submission, also the checks of the
    document against itself (and a results file against the rows logged beside it)."""
    errors = validate(doc, kind)
    if errors:
        return errors
    if kind == "results":
        return check_results_consistency(doc, run_dir=path.parent)
    if kind == "submission":
        return check_submission(doc)
    return []


def validate_file(path: str | Path, kind: str | None = None) -> list[SchemaError]:
    """Validate a .json document or every line of a .jsonl file.

    The kind comes from `kind`, else the document's "kind" field, else the file name
    (`samples_*.jsonl` rows are samples, `verdicts*.jsonl` rows are judge verdicts,
    `generations_*.jsonl` rows are overriding answers). A results file or submission that
    passes its schema is then checked against itself (`check_results_consistency`,
    `check_submission`).

    Never raises for a bad file: whatever is wrong with it comes back as errors, so one bad file
    does not stop a batch.
    """
    if kind is not None:
        _validator(kind)  # an unknown kind is a usage error, raised, not a property of the file
    _format_checker()  # so is a missing format checker
    try:
        return _validate_file(Path(path), kind)
    except Exception as exc:  # whatever this file does to the checks, the batch goes on
        message = f"could not be checked: {type(exc).__name__}: {exc}"
        return [SchemaError("$", message, str(path))]


def _validate_file(path: Path, kind: str | None) -> list[SchemaError]:
    name = str(path)
    if not path.is_file():
        return [SchemaError("$", "no such file", file=name)]
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [SchemaError("$", f"cannot read file: {exc}", file=name)]

    docs: list[tuple[int | None, Any]] = []
    errors: list[SchemaError] = []
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            obj, problems = loads_checked(line)
            if problems:
                errors += [SchemaError(e.path, e.message, name, number) for e in problems]
            else:
                docs.append((number, obj))
        if not docs and not errors:
            return [SchemaError("$", "file holds no records", file=name)]
    else:
        obj, problems = loads_checked(text)
        if problems:
            return [SchemaError(e.path, e.message, name) for e in problems]
        docs = [(None, obj)]

    if kind is None and docs:
        kind = _guess_kind(path, docs[0][1])
    if kind is None:
        return errors + [
            SchemaError(
                "$",
                "cannot tell which schema applies: the document has no 'kind' field "
                f"({', '.join(_DOCUMENT_KINDS)}); pass --kind with one of: {', '.join(KINDS)}",
                file=name,
            )
        ]
    for number, doc in docs:
        for err in _document_errors(doc, kind, path):
            errors.append(SchemaError(err.path, err.message, name, number))
    return errors
