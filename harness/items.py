"""A task's items: the shipped pools or a researcher's own JSONL file, and the demos each query
draws (seeded by the query, so a resumed or re-batched run draws the same)."""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import CROSS_MODAL_TASKS, UnknownTaskError, get_task, load_task
from benchmark.reading import file_problem, read_text
from benchmark.strict_json import jsonl_lines
from benchmark.validation import input_key, task_id_pattern

from .errors import ConfigError, TaskFileError


@dataclass
class TaskData:
    """Everything a run needs about one task."""

    id: str
    instruction: str
    splits: dict[str, list[dict[str, Any]]]
    source: str
    split_made: dict[str, Any] | None = None  # how a custom file's split was made
    extra: dict[str, Any] = field(default_factory=dict)
    # Seeds the demo draws: the task id for shipped tasks, the file's content for a task file
    # (renaming a file must not change its demos; editing it must).
    demo_key: str = ""


def _seeded_split(records: list[dict[str, Any]], seed: int) -> dict[str, list[dict[str, Any]]]:
    """A file without splits: 30% validation (at least 2, at most 30), the rest test."""
    order = list(range(len(records)))
    random.Random(f"split:{seed}").shuffle(order)
    n_val = min(30, max(2, round(0.3 * len(records))))
    val = set(order[:n_val])
    out: dict[str, list[dict[str, Any]]] = {"validation": [], "test": []}
    for i, rec in enumerate(records):
        out["validation" if i in val else "test"].append(
            dict(rec, split="validation" if i in val else "test")
        )
    return out


def _task_lines(path: Path, text: str) -> tuple[list[dict], list[str], str | None]:
    """The records, the per-line errors and the file's instruction line, if any. Lines are
    parsed strictly (no deep nesting, duplicate key or NaN: a hand-made file's mistakes)."""
    records: list[dict[str, Any]] = []
    errors: list[str] = []
    file_instruction = None
    for number, obj, problems in jsonl_lines(text):
        where = f"{path}:{number}:"
        if problems or not isinstance(obj, dict):
            said = [p.message if p.path == "$" else f"{p.path}: {p.message}" for p in problems]
            errors += [f"{where} {m}" for m in said or ["expected a JSON object"]]
            continue
        if not records and set(obj) == {"instruction"}:
            file_instruction = str(obj["instruction"])
            continue
        bad = [
            k for k in ("input", "output") if not isinstance(obj.get(k), str) or not obj[k].strip()
        ]
        if bad:
            errors.append(f"{where} missing or empty {' and '.join(bad)}")
            continue
        if obj.get("split") not in (None, "validation", "test"):
            errors.append(f"{where} split must be 'validation' or 'test', not {obj['split']!r}")
            continue
        record = {"id": str(obj.get("id", f"line{number}")), "line": number}
        records.append(record | {k: obj.get(k) for k in ("input", "output", "split")})
    return records, errors, file_instruction


# The malformed lines a task file's error names (the rest are counted): one line, any file.
_SHOWN = 3


def load_task_file(
    path: str | Path, instruction: str | None = None, split_seed: int = 0
) -> TaskData:
    """A JSONL task: one {"input", "output"[, "split", "id"]} per line; the first line may be
    {"instruction": "..."} instead. Every malformed line is reported by number."""
    path = Path(path)
    problem = file_problem(path)
    if problem:
        raise TaskFileError(f"task file {path} {problem}; give a .jsonl file")
    try:
        text = read_text(path)
    except UnicodeDecodeError as exc:
        raise TaskFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise TaskFileError(f"task file {path} cannot be read ({exc.strerror or exc})") from None
    records, errors, file_instruction = _task_lines(path, text)
    seen: dict[str, int] = {}
    for r in records:
        first = seen.setdefault(input_key(r["input"]), r["line"])
        if first != r["line"]:
            errors.append(
                f"{path}:{r['line']}: input {r['input']!r} repeats line {first} (an item would be "
                "its own demo or be counted twice); remove or merge one"
            )
    records = [{k: v for k, v in r.items() if k != "line"} for r in records]
    if errors:
        shown = "; ".join(errors[:_SHOWN]) + (
            f"; and {len(errors) - _SHOWN} more" if len(errors) > _SHOWN else ""
        )
        raise TaskFileError(
            f"malformed task file: {shown}; fix those lines: each is a JSON object "
            '{"input": "...", "output": "..."} (optionally "split", "id")'
        )
    if len(records) < 4:
        raise TaskFileError(f"{path}: needs at least 4 records, has {len(records)}")
    dup = [i for i, c in Counter(r["id"] for r in records).items() if c > 1]
    if dup:
        raise TaskFileError(f"{path}: duplicate id {dup[0]!r}")
    task_id = f"custom:{path.stem}"
    if not re.fullmatch(task_id_pattern(), task_id):  # results files could not name the task
        fixed = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("_") or "my_task"
        raise TaskFileError(
            f"--tasks {path}: the file name makes the task id {task_id!r}, and a task id holds "
            f"only letters, digits, _ . and -: rename the file (e.g. {fixed}.jsonl)"
        )
    split_made = None
    if all(r["split"] for r in records):
        splits = {
            s: [dict(r, task=task_id) for r in records if r["split"] == s]
            for s in ("validation", "test")
        }
    elif any(r["split"] for r in records):
        raise TaskFileError(f"{path}: give every line a split, or none (a seeded split is made)")
    else:
        splits = {
            s: [dict(r, task=task_id) for r in rs]
            for s, rs in _seeded_split(records, split_seed).items()
        }
        split_made = {
            "rule": "seeded shuffle, 30% validation (2..30 items)",
            "seed": split_seed,
            "validation_ids": [r["id"] for r in splits["validation"]],
        }
    for s, rs in splits.items():
        if len(rs) < 2:
            raise TaskFileError(f"{path}: split {s!r} has {len(rs)} item(s); needs at least 2")
    return TaskData(
        task_id,
        instruction or file_instruction or "",
        splits,
        source=str(path),
        split_made=split_made,
        demo_key=f"custom-content:{sha256(text)[:16]}",
    )


def load_task_data(name: str, instruction: str | None = None) -> TaskData:
    if name.endswith(".jsonl") or "/" in name:
        return load_task_file(name, instruction)
    try:
        task = get_task(name)
    except UnknownTaskError as exc:
        raise ConfigError(str(exc)) from None
    if name not in CROSS_MODAL_TASKS:
        raise ConfigError(
            f"task {name!r} ({task.family}) is not a text task the core harness runs; "
            f"text tasks: {', '.join(CROSS_MODAL_TASKS)}"
        )
    splits = {s: load_task(name, s) for s in ("validation", "test")}
    return TaskData(name, instruction or task.instruction, splits, source=f"pool:{task.source}")


# How demos are drawn (`--demo_draw`): "per_query", ours, seeded by (seed, task, query id), so
# a query's demos do not depend on which other items the split holds or in what order they
# run; "authors", the paper code's own stream (`authors_demo_indices`), for `--preset paper`.
PER_QUERY = "per_query"
AUTHORS = "authors"
DEMO_DRAWS: tuple[str, ...] = (PER_QUERY, AUTHORS)


def sample_demos(
    pool: list[dict[str, Any]],
    query: dict[str, Any],
    n: int,
    seed: int,
    task_id: str,
    draw: str = PER_QUERY,
) -> list[dict[str, Any]]:
    """n demos drawn without replacement from the split, never the query, in prompt order."""
    others = [r for r in pool if r["id"] != query["id"]]
    if n > len(others):
        raise ConfigError(f"n_shot={n} but only {len(others)} other items in the split")
    if draw == AUTHORS:
        index = next(i for i, r in enumerate(pool) if r["id"] == query["id"])
        return [pool[j] for j in authors_demo_indices(len(pool), n, seed)[index]]
    rng = random.Random(f"{seed}:{task_id}:{query['id']}")
    return rng.sample(others, n)


@functools.lru_cache(maxsize=256)
def authors_demo_indices(n_items: int, n_shot: int, seed: int) -> tuple[tuple[int, ...], ...]:
    """The demos of each item of a split, by position, as the paper's code draws them
    (`xPatchDataset`, g-luo/task_vectors_are_cross_modal): `np.random.seed(seed)` when a task's
    split is loaded, then for item 0, 1, ... in order a permutation of the other items' indices,
    the first `n_shot` taken. The draw depends on positions only, so two tasks with as many
    items in the same order (country_capital and country_currency) draw the same demos."""
    rng = np.random.RandomState(seed)  # what np.random.seed(seed) seeds, as a local stream
    out = []
    for i in range(n_items):
        others = [j for j in range(n_items) if j != i]
        out.append(tuple(int(j) for j in rng.permutation(others)[:n_shot]))
    return tuple(out)


def majority_answer(demos: list[dict[str, Any]]) -> str:
    """Most common answer among the demos; ties go to the one seen first."""
    return Counter(d["output"] for d in demos).most_common(1)[0][0]


def sha256(obj: Any) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_digest(record: dict[str, Any]) -> dict[str, Any]:
    """A record as JSON-able data: the decoded image is left out (its hash stays in)."""
    return {k: v for k, v in record.items() if k != "image"}
