"""Strict JSON: the one way this project reads JSON it did not just write, and hashes it.

Python's json module reads NaN and Infinity, reads 1e999 as infinity, reads an integer of
thousands of digits that no float can hold, keeps the last of a key given twice, and recurses
until it crashes on deep nesting; each of those would let a damaged or hand-made file pass for a
real one, or crash a reader later (hashing, sorting, arithmetic). `loads_checked` turns them all
into errors with the JSON path they occur at.
`jsonl_lines` reads a JSONL file's lines the same way, one document a line.
`canonical_sha256` is the content hash that submissions and run folders record.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .reading import read_text

# No file of this project nests deeper than 10; anything past this is refused before a schema
# (or Python's recursion limit) sees it.
MAX_DEPTH = 32
# No number of this project has more digits than a 64-bit integer (20); an integer literal
# longer than this is refused unread: thousands of digits pass Python's int limit (4,300) yet
# overflow every float conversion, and converting them costs time quadratic in their length.
MAX_INT_DIGITS = 30


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


class _Refused(str):
    """A number literal refused while parsing, kept as a marker (its text) so that the JSON path
    it occurs at is reported; `problem` says why."""

    def problem(self) -> str:
        raise NotImplementedError


class _NonFinite(_Refused):
    """`NaN`, `Infinity` or `-Infinity` as read."""

    def problem(self) -> str:
        return (
            f"{self} is not a number JSON allows (only finite numbers are valid): "
            "write a finite number, or leave out a result that could not be computed"
        )


class _Overflow(_Refused):
    """A number literal (like 1e999) too large for a float: Python would read it as infinity."""

    def problem(self) -> str:
        return (
            f"{_shown(self)} is beyond the range of a 64-bit float: it would read as "
            f"{'-' if self.startswith('-') else ''}infinity (only finite numbers are valid); "
            "no vlm-tv-eval file holds such a number"
        )


class _LongInteger(_Refused):
    """An integer literal of more than MAX_INT_DIGITS digits."""

    def problem(self) -> str:
        digits = len(self.lstrip("-"))
        return (
            f"an integer of {digits} digits ({_shown(self)}): no vlm-tv-eval number has more "
            f"than {MAX_INT_DIGITS}; refused unread (is this the file you meant?)"
        )


def _shown(literal: str) -> str:
    """A number literal as an error shows it: whole when short, its ends when long."""
    return literal if len(literal) <= 24 else f"{literal[:10]}...{literal[-6:]}"


def _float(literal: str) -> float | _Refused:
    """The `parse_float` hook: the float, or a marker when the literal overflows to inf."""
    value = float(literal)
    return value if math.isfinite(value) else _Overflow(literal)


def _int(literal: str) -> int | _Refused:
    """The `parse_int` hook: the integer, or a marker when it has too many digits (checked on
    the text, before Python converts it)."""
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        return _LongInteger(literal)
    return int(literal)


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
    """Refused numbers (NaN/Infinity, 1e999, too many digits), duplicate keys and too deep
    nesting in a parsed document, by JSON path."""
    errors = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(obj, ())]
    while stack:
        value, parts = stack.pop()
        if isinstance(value, _Refused):
            errors.append(SchemaError(json_path(parts), value.problem()))
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
    -Infinity anywhere, or a number that reads as one (1e999); an integer of more than
    MAX_INT_DIGITS digits; a key given twice in one object; nesting deeper than MAX_DEPTH.
    """
    if text.startswith("\ufeff"):  # json.loads names the fix in Python's terms only
        return None, [
            SchemaError(
                "$",
                "starts with a UTF-8 byte-order mark (BOM), which JSON does not allow: save the "
                "file as UTF-8 without a BOM",
            )
        ]
    try:
        obj = json.loads(
            text,
            parse_constant=_NonFinite,
            parse_float=_float,
            parse_int=_int,
            object_pairs_hook=_object,
        )
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
        text = read_text(path)
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
