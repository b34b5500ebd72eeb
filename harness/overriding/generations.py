"""A run's generations files and the proof that each is what its run wrote.

The run seals each `generations_<task>.jsonl` as it writes it: beside it,
`generations_<task>.proof.json` records the run id, the code version, the methods, seeds,
item ids and a checksum of its rows, as a stored unit proves it belongs to its run
(`store.RunStore.unit`). Judging (`scoring.judge_run_dir`) refuses, in one line naming the file
and the fix, rows that were edited, duplicated, dropped, added for another seed or method, or
come from another run: a flipped `exact_override` would otherwise turn 0.00 into 1.00, a
dropped or repeated row change n without a word.

No torch: `vlm-tv-eval validate RUN_DIR` can check a proof too (`generations_problem`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmark.files import slug, write_json_atomic
from benchmark.reading import read_text
from benchmark.strict_json import jsonl_lines, read_json

from ..errors import RunFolderError
from ..items import sha256
from ..store import code_version


def read_rows(path: Path) -> list[dict[str, Any]]:
    """A JSONL file's rows, parsed strictly: a bad line is an error naming file and line."""
    rows = []
    for number, row, errors in jsonl_lines(read_text(path)):
        if errors:
            raise RunFolderError(f"{path}:{number}: {errors[0].path}: {errors[0].message}")
        rows.append(row)
    return rows


def generations_path(run_dir: Path, task: str) -> Path:
    return run_dir / f"generations_{slug(task)}.jsonl"


def proof_path(run_dir: Path, task: str) -> Path:
    """Where the proof of a task's generations lies: beside them."""
    return run_dir / f"generations_{slug(task)}.proof.json"


# What a generations proof records (`seal_generations`).
PROOF_KEYS = ("file", "run_id", "code", "task", "methods", "seeds", "items", "rows", "checksum")


def seal_generations(
    run_dir: Path, task: str, rows: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]
) -> None:
    """Write the proof that `rows`, the task's generations file, are what run `doc` wrote:
    its run id and code version, the methods and seeds, the item ids (of the first method and
    seed; every other has the same) and a checksum of the rows as parsed (so that a line
    ending changed in transit does not count, a changed value does)."""
    methods, seeds = doc["config"]["methods"], doc["seeds"]
    first = [r["doc_id"] for r in rows if (r["method"], r["seed"]) == (methods[0], seeds[0])]
    proof = {
        "file": generations_path(run_dir, task).name,
        "run_id": doc["run_id"],
        "code": code_version(),
        "task": task,
        "methods": list(methods),
        "seeds": list(seeds),
        "items": sha256(first),
        "rows": len(rows),
        "checksum": sha256(list(rows)),
    }
    write_json_atomic(proof_path(run_dir, task), proof)


def generations_problem(
    run_dir: Path, task: str, rows: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]
) -> str | None:
    """Why the task's generations (`rows`, read and schema-checked) are not the ones run `doc`
    wrote, or None: rows of another task, method or seed; an item twice; a method and seed
    missing or with other items than the rest; then, against the proof (`seal_generations`),
    another run, other or fewer or more rows. The code version is not compared: judging a run
    later with a newer harness is allowed; its rows are what they were."""
    methods, seeds = list(doc["config"]["methods"]), list(doc["seeds"])
    if not methods:
        return "the results beside it name no methods"
    groups: dict[tuple[str, int], list[str]] = {}
    for number, row in enumerate(rows, 1):
        if row["task"] != task:
            return f"row {number} is of task {row['task']!r}, not {task!r}"
        if row["method"] not in methods:
            return f"row {number} is of method {row['method']!r}, which the run did not run"
        if row["seed"] not in seeds:
            used = ", ".join(map(str, seeds))
            return f"row {number} is of seed {row['seed']}, but the run used seeds {used}"
        ids = groups.setdefault((row["method"], row["seed"]), [])
        if row["doc_id"] in ids:
            return (
                f"row {number} repeats item {row['doc_id']!r} of {row['method']}, seed "
                f"{row['seed']}"
            )
        ids.append(row["doc_id"])
    first = groups.get((methods[0], seeds[0]), [])
    for method in methods:
        for seed in seeds:
            ids = groups.get((method, seed), [])
            if ids != first:
                return (
                    f"{method}, seed {seed} has {len(ids)} rows, {methods[0]}, seed {seeds[0]} "
                    f"has {len(first)}"
                    if len(ids) != len(first)
                    else f"{method}, seed {seed} answers other items than {methods[0]}, seed "
                    f"{seeds[0]}"
                )
    path = proof_path(run_dir, task)
    if not path.is_file():
        return f"it has no proof beside it ({path.name}: written by an older vlm-tv-eval?)"
    proof, errors = read_json(path)
    if errors or not isinstance(proof, dict) or not set(PROOF_KEYS) <= set(proof):
        return f"its proof {path.name} is damaged"
    if not isinstance(doc.get("run_id"), str) or proof["run_id"] != doc["run_id"]:
        return (
            f"it was written by run {proof['run_id']!r}, and the results beside it are of run "
            f"{doc.get('run_id')!r}"
        )
    checks = (
        ("file", generations_path(run_dir, task).name, "it is another task's file"),
        ("task", task, "it is another task's file"),
        ("methods", methods, "it was written for other methods"),
        ("seeds", seeds, "it was written for other seeds"),
        ("rows", len(rows), f"it has {len(rows)} rows, {proof['rows']} were written"),
        ("items", sha256(first), "its items are not the items written"),
        ("checksum", sha256(list(rows)), "its rows are not the rows written (edited?)"),
    )
    return next((why for key, value, why in checks if proof[key] != value), None)


def checked_generations(run_dir: Path, task: str, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The task's generations, refused (RunFolderError, one line naming the file and the fix)
    unless they are the rows run `doc` wrote (`generations_problem`)."""
    path = generations_path(run_dir, task)
    rows = read_rows(path)
    problem = generations_problem(run_dir, task, rows, doc)
    if problem:
        raise RunFolderError(
            f"{path}: {problem}; it is not the file the run wrote: rerun the generation (the "
            "same `vlm-tv-eval run` command writes it again, with its proof), then judge again"
        )
    return rows
