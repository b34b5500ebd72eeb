"""Strict JSON: the one way this project reads JSON it did not just write, and hashes it.

Python's json module reads NaN and Infinity, keeps the last of a key given twice, and recurses
until it crashes on deep nesting; each of those would let a damaged or hand-made file pass for a
real one. `loads_checked` turns all three into errors with the JSON path they occur at.
`jsonl_lines` reads a JSONL file's lines the same way, one document a line.
`canonical_sha256` is the content hash that submissions and run folders record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# No file of this project nests deeper than 10; anything past this is refused before a schema
# (or Python's recursion limit) sees it.
MAX_DEPTH = 32


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


def json_path(parts: Iterable[Any]) -> str:
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
                    json_path(parts),
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
                    json_path(parts),
                    f"nested more than {MAX_DEPTH} levels deep: no vlm-tv-eval file is; refused "
                    "unread (is this the file you meant?)",
                )
            )
            continue
        if isinstance(value, _Duplicates):
            for key in value.duplicates:
                errors.append(
                    SchemaError(
                        json_path(parts),
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


def jsonl_lines(text: str) -> Iterator[tuple[int, Any, list[SchemaError]]]:
    """`loads_checked` on each line of a JSONL text: `(line number, document, [])` or
    `(line number, None, errors)` per line, numbered from 1; blank lines are skipped (and
    counted). The errors leave file and line for the caller to fill in."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        obj, errors = loads_checked(line)
        yield number, obj, errors


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
