"""JSON Schema validation for every file kind the project reads or writes, and the checks a
schema cannot express.

Each error is reported with the JSON path of the bad field (`$.results.country_capital.patch`),
so a researcher can find it in their file without reading the schema.

Files are parsed strictly (`strict_json.loads_checked`: no NaN, no duplicate key, no deep
nesting). A results file or submission that passes its schema is then checked against itself
(`consistency/`), so `validate_file` answers "can this file be trusted", not only "does it
parse".
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from .consistency.results import check_results_consistency, check_submission
from .reading import read_text
from .strict_json import SchemaError, json_path, jsonl_lines, loads_checked

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
    "analysis": "analysis",
}
_DOCUMENT_KINDS = ("pool", "results", "submission", "analysis")
_JSONL_NAME_HINTS = (
    ("samples_", "sample"),
    ("verdicts", "judge_verdict"),
    ("generations_", "generation"),
)


def kinds() -> list[str]:
    return list(KINDS)


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


def task_id_pattern() -> str:
    """The pattern every task id in a results file matches (common.schema.json's `task_id`):
    a registry id, or `custom:<name>` for a task file, whose name comes from the file's."""
    return _schemas()["common"]["$defs"]["task_id"]["pattern"]


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
            path = json_path(leaf.absolute_path)
            found.setdefault((path, leaf.message), SchemaError(path, leaf.message))
    return sorted(found.values(), key=lambda e: (e.path, e.message))


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
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        return [SchemaError("$", f"cannot read file: {exc}", file=name)]

    docs: list[tuple[int | None, Any]] = []
    errors: list[SchemaError] = []
    if path.suffix == ".jsonl":
        for number, obj, problems in jsonl_lines(text):
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


# --- item identity ----------------------------------------------------------------------------


def input_key(text: str) -> str:
    """What makes two item inputs the same item: equal after Unicode NFC normalisation, case
    folding and whitespace (ends stripped, inner runs as one space). "Zürich" typed composed
    (NFC) and decomposed (NFD) is one input, as are "Paris", "paris " and "PARIS".

    The one rule for repeated inputs: task files (`harness.items`), and imported item sets
    (`builders.authors`, within a split and across validation and test) all compare with it.
    """
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())
    return " ".join(folded.split())


def repeated_inputs(inputs: Iterable[str]) -> list[tuple[int, int]]:
    """(index of the first, index of the repeat) for each input whose `input_key` an earlier
    one has, in order; empty when all are distinct."""
    first: dict[str, int] = {}
    out = []
    for i, text in enumerate(inputs):
        j = first.setdefault(input_key(text), i)
        if j != i:
            out.append((j, i))
    return out
