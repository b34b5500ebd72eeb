"""JSON Schema validation for every file kind the project reads or writes.

Each error is reported with the JSON path of the bad field (`$.results.country_capital.patch`),
so a researcher can find it in their file without reading the schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

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


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    folder = resources.files("benchmark").joinpath("schemas")
    out = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".schema.json"):
            out[entry.name.removesuffix(".schema.json")] = json.loads(entry.read_text("utf-8"))
    return out


@cache
def _validator(kind: str) -> Draft202012Validator:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    schemas = _schemas()
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values()
    )
    return Draft202012Validator(
        schemas[KINDS[kind]], registry=registry, format_checker=FormatChecker()
    )


def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a kind, for documentation and tools."""
    _validator(kind)
    return _schemas()[KINDS[kind]]


def _json_path(parts: Any) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


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


def _guess_kind(path: Path, first: Any) -> str | None:
    if isinstance(first, dict) and first.get("kind") in KINDS:
        return first["kind"]
    for hint, kind in _JSONL_NAME_HINTS:
        if path.name.startswith(hint):
            return kind
    return None


def validate_file(path: str | Path, kind: str | None = None) -> list[SchemaError]:
    """Validate a .json document or every line of a .jsonl file.

    The kind comes from `kind`, else the document's "kind" field, else the file name
    (`samples_*.jsonl` rows are samples, `verdicts*.jsonl` rows are judge verdicts,
    `generations_*.jsonl` rows are overriding answers).
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        return [SchemaError("$", "no such file", file=name)]
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [SchemaError("$", f"cannot read file: {exc}", file=name)]

    if path.suffix == ".jsonl":
        docs: list[tuple[int | None, Any]] = []
        errors: list[SchemaError] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                docs.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                errors.append(SchemaError("$", f"not valid JSON: {exc.msg}", name, number))
        if not docs and not errors:
            return [SchemaError("$", "file holds no records", file=name)]
    else:
        try:
            docs = [(None, json.loads(text))]
        except json.JSONDecodeError as exc:
            return [SchemaError("$", f"not valid JSON: {exc}", file=name)]
        errors = []

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
        for err in validate(doc, kind):
            errors.append(SchemaError(err.path, err.message, name, number))
    return errors
