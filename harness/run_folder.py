"""`vlm-tv-eval validate RUN_DIR`: every file a run leaves in its folder, checked one by one.

A run folder (`<output_path>/<model>/<run-id>/`, `store.py`) holds files of several kinds, and
only some have a `kind` field: results.json and pending_results.json are results documents,
the JSONL files are rows named by their prefix, and config.json, state.json and parts/ are the
harness's own. Each is checked as far as something can say it is sound: the JSON Schemas where
one exists, otherwise what the writer guarantees (the run config's fields and types, the
state's times, each unit's checksum). A folder that is no run folder is said so, with the fix.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmark import (
    EXECUTION_KEYS,
    OVERRIDING,
    SchemaError,
    task_family,
    validate,
    validate_file,
)
from benchmark.reading import file_problem
from benchmark.strict_json import read_json

from .config import JUDGE_KEYS, RunConfig
from .store import unit_file_problem

RESULTS = "results.json"
PENDING = "pending_results.json"
CONFIG = "config.json"
STATE = "state.json"
PARTS = "parts"
# Row files by prefix; benchmark.validation tells their kind by the same names.
ROW_PREFIXES = ("samples_", "generations_", "verdicts_")
# Results fields a pending run leaves out of an entry until its judge has run.
WAITING_FOR_JUDGE = ("acc", "acc_std")


@dataclass(frozen=True)
class Checked:
    """One thing checked: a file, or parts/ as a whole when all its units are sound."""

    name: str
    errors: list[SchemaError]


def is_run_folder(folder: Path) -> bool:
    """A folder a run wrote: it holds a config, a results file or finished units."""
    return any((folder / name).exists() for name in (CONFIG, RESULTS, PENDING, PARTS))


def not_a_run_folder(folder: Path) -> SchemaError:
    return SchemaError(
        "$",
        f"is a folder but not a run folder (it holds none of {CONFIG}, {RESULTS}, {PENDING}, "
        f"{PARTS}/); give a run folder (<output_path>/<model>/<run-id>) or a .json/.jsonl file",
        str(folder),
    )


def check_run_folder(folder: Path) -> list[Checked]:
    """Every file of the run folder that vlm-tv-eval writes, checked; files it does not write
    are left out (`unchecked_files`). The folder must be a run folder (`is_run_folder`)."""
    rows = [p for p in sorted(folder.glob("*.jsonl")) if p.name.startswith(ROW_PREFIXES)]
    checks = [
        (folder / RESULTS, validate_file),  # with the samples beside it
        (folder / PENDING, _pending_errors),
        (folder / CONFIG, _config_errors),
        (folder / STATE, _state_errors),
        *((path, validate_file) for path in rows),
    ]
    checked = []
    for path, check in checks:
        if path.exists() or path.is_symlink():
            problem = file_problem(path)  # a FIFO would block the read, a device never end
            errors = [SchemaError("$", problem, str(path))] if problem else check(path)
            checked.append(Checked(str(path), errors))
    return checked + _parts(folder / PARTS)


def unchecked_files(folder: Path) -> list[Path]:
    """What the folder's top level holds that vlm-tv-eval does not write, so no check covers.
    Hidden names hold no data: the run's locks, an interrupted atomic write's temporary."""
    known = {RESULTS, PENDING, CONFIG, STATE, PARTS}
    return [
        p
        for p in sorted(folder.iterdir())
        if p.name not in known
        and not p.name.startswith(".")
        and not (p.suffix == ".jsonl" and p.name.startswith(ROW_PREFIXES))
    ]


# --- results waiting for a judge ---------------------------------------------------------------


def _pending_errors(path: Path) -> list[SchemaError]:
    """pending_results.json is a results document whose judged entries lack their numbers
    until `vlm-tv-eval judge` has run: the results schema holds, except that an overriding
    task's entry may leave out acc and acc_std."""
    doc, errors = read_json(path)
    if errors:
        return errors
    allowed = set()
    if isinstance(doc, dict) and isinstance(doc.get("results"), dict):
        for task, entries in doc["results"].items():
            if isinstance(entries, dict) and task_family(task) == OVERRIDING:
                for method in entries:
                    allowed |= {
                        (f"$.results.{task}.{method}", f"{field!r} is a required property")
                        for field in WAITING_FOR_JUDGE
                    }
    return [
        SchemaError(e.path, e.message, str(path))
        for e in validate(doc, "results")
        if (e.path, e.message) not in allowed
    ]


# --- config.json: RunConfig.as_dict() -----------------------------------------------------------

# Fields the run folder's config must hold to say what ran; the others were added over time,
# and an older run's config lacks them.
CONFIG_REQUIRED = ("model", "tasks", "spec", "n_shot", "seeds", "methods")


def _type_problem(value: Any, hint: Any) -> str | None:
    """Why `value` (read from JSON) cannot be a RunConfig field of type `hint`, or None."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        problems = [_type_problem(value, a) for a in args]
        return None if None in problems else " or ".join(p for p in problems if p)
    if hint is type(None):
        return None if value is None else "null"
    if origin is tuple:
        if not isinstance(value, list):
            return "a list"
        inner = args[0] if args else Any
        bad = next((p for p in (_type_problem(v, inner) for v in value) if p), None)
        return f"a list of {bad.removeprefix('a ').removeprefix('an ')}s" if bad else None
    if origin is dict or hint is dict:
        return None if isinstance(value, dict) else "an object"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "an integer"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    return None


def _config_errors(path: Path) -> list[SchemaError]:
    """config.json is the RunConfig the run was given: known fields of the right types, and
    (when results.json is there) the same measurement as the results' own config."""
    name = str(path)
    doc, errors = read_json(path)
    if errors or not isinstance(doc, dict):
        return errors or [SchemaError("$", "expected a JSON object: the run's config", name)]
    hints = typing.get_type_hints(RunConfig)
    known = [f.name for f in fields(RunConfig)]
    out = [
        SchemaError(f"$.{key}", f"not a field of the run config ({', '.join(known)})", name)
        for key in doc
        if key not in hints
    ]
    out += [
        SchemaError("$", f"{key!r} is a required property", name)
        for key in CONFIG_REQUIRED
        if key not in doc
    ]
    for key, value in doc.items():
        problem = _type_problem(value, hints[key]) if key in hints else None
        if problem:
            out.append(SchemaError(f"$.{key}", f"{value!r} is not {problem}", name))
    return out or _config_against_results(doc, path.parent)


def _config_against_results(config: dict[str, Any], folder: Path) -> list[SchemaError]:
    """Each measurement field of config.json as results.json's config records it. Left out:
    the fields that do not change a number, `tasks` (a task file's path there, its
    `custom:` id here) and `template` (a name there, the resolved strings here)."""
    results, errors = read_json(folder / RESULTS) if (folder / RESULTS).is_file() else (None, [])
    theirs = results.get("config") if isinstance(results, dict) and not errors else None
    if not isinstance(theirs, dict):
        return []  # no results yet, or results.json's own check says what is wrong with it
    skip = {*EXECUTION_KEYS, *JUDGE_KEYS, "tasks", "template"}
    return [
        SchemaError(
            f"$.{key}",
            f"{value!r}, but {RESULTS} records {theirs[key]!r}: the two files come from "
            "different runs; rerun the command to rewrite them",
            str(folder / CONFIG),
        )
        for key, value in config.items()
        if key not in skip and key in theirs and theirs[key] != value
    ]


# --- state.json: the run's first start and time spent --------------------------------------------


def _state_errors(path: Path) -> list[SchemaError]:
    """state.json is {"created": ISO date-time, "timings": {kind: seconds}[, "weights": the
    loaded weights' fingerprints]} (`RunStore`)."""
    name = str(path)
    doc, errors = read_json(path)
    if errors or not isinstance(doc, dict):
        return errors or [SchemaError("$", 'expected a JSON object {"created", "timings"}', name)]
    out = [
        SchemaError("$", f"{key!r} is a required property", name)
        for key in ("created", "timings")
        if key not in doc
    ]
    out += [
        SchemaError(f"$.{key}", "not a field of the run state", name)
        for key in doc
        if key not in ("created", "timings", "weights")
    ]
    weights = doc.get("weights")
    if "weights" in doc and not (
        isinstance(weights, list) and all(w is None or isinstance(w, str) for w in weights)
    ):
        out.append(SchemaError("$.weights", f"{weights!r} is not a list of fingerprints", name))
    created = doc.get("created")
    if "created" in doc and not _is_date_time(created):
        out.append(SchemaError("$.created", f"{created!r} is not a 'date-time'", name))
    timings = doc.get("timings")
    if "timings" in doc and not isinstance(timings, dict):
        out.append(SchemaError("$.timings", f"{timings!r} is not an object", name))
    elif isinstance(timings, dict):
        for kind, seconds in timings.items():
            number = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
            if not number or not math.isfinite(seconds) or seconds < 0:
                out.append(
                    SchemaError(f"$.timings.{kind}", f"{seconds!r} is not seconds (>= 0)", name)
                )
    return out


def _is_date_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


# --- parts/: the finished units ---------------------------------------------------------------


def _unit_files(parts: Path) -> Iterator[Path]:
    """Where units are under parts/: every file, and any folder named like a unit (the run
    replaces it). Hidden names are left out: an interrupted atomic write's temporary file is
    one, and is never read."""
    for path in sorted(parts.rglob("*")):
        hidden = any(p.startswith(".") for p in path.relative_to(parts).parts)
        if not hidden and (path.suffix == ".json" or not path.is_dir()):
            yield path


def _parts(parts: Path) -> list[Checked]:
    """A damaged unit named one by one; all sound: parts/ as one line."""
    if not parts.exists():
        return []
    if not parts.is_dir():
        return [Checked(str(parts), [SchemaError("$", "is not a folder of units", str(parts))])]
    bad, count = [], 0
    for path in _unit_files(parts):
        count += 1
        if not path.is_file():
            problem = "is not a file (the run replaces it)"
        elif path.suffix != ".json":
            problem = "is not a unit (units are .json files)"
        else:
            problem = unit_file_problem(path, parts)
        if problem:
            bad.append(Checked(str(path), [SchemaError("$", problem, str(path))]))
    return bad or [Checked(f"{parts} ({count} unit(s))", [])]
