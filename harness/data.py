"""Task items for a run: the shipped pools, or a researcher's own JSONL file; seeded demos."""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark import CROSS_MODAL_TASKS, get_task, load_task
from benchmark.layout import IMAGE_COLUMN, JOIN_KEY, config_name
from benchmark.strict_json import loads_checked

from .config import ConfigError


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


class TaskFileError(ValueError):
    pass


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


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a data file, or None. Checked (S_ISREG) before opening: a
    FIFO blocks a read forever, /dev/zero never ends, and "no such file" for a folder misleads."""
    try:
        if path.is_file():  # the target's mode, after links: a regular file
            return None
        if path.is_dir():
            return "is a folder"
        exists = path.exists()
    except OSError as exc:  # e.g. a name too long for the file system
        return f"cannot be read ({exc.strerror or exc})"
    return "is not a regular file (a FIFO, device or socket)" if exists else "does not exist"


def _task_lines(path: Path, text: str) -> tuple[list[dict], list[str], str | None]:
    """The records, the per-line errors and the file's instruction line, if any. Lines are
    parsed strictly (no deep nesting, duplicate key or NaN: a hand-made file's mistakes)."""
    records: list[dict[str, Any]] = []
    errors: list[str] = []
    file_instruction = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        obj, problems = loads_checked(line)
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
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise TaskFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise TaskFileError(f"task file {path} cannot be read ({exc.strerror or exc})") from None
    records, errors, file_instruction = _task_lines(path, text)
    seen: dict[str, int] = {}
    for r in records:
        first = seen.setdefault(r["input"].strip().casefold(), r["line"])
        if first != r["line"]:
            errors.append(
                f"{path}:{r['line']}: input {r['input']!r} repeats line {first} (an item would be "
                "its own demo or be counted twice); remove or merge one"
            )
    records = [{k: v for k, v in r.items() if k != "line"} for r in records]
    if errors:
        raise TaskFileError("malformed task file:\n  " + "\n  ".join(errors))
    if len(records) < 4:
        raise TaskFileError(f"{path}: needs at least 4 records, has {len(records)}")
    dup = [i for i, c in Counter(r["id"] for r in records).items() if c > 1]
    if dup:
        raise TaskFileError(f"{path}: duplicate id {dup[0]!r}")
    task_id = f"custom:{path.stem}"
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
    task = get_task(name)
    if name not in CROSS_MODAL_TASKS:
        raise ValueError(
            f"task {name!r} ({task.family}) is not a text task the core harness runs; "
            f"text tasks: {', '.join(CROSS_MODAL_TASKS)}"
        )
    splits = {s: load_task(name, s) for s in ("validation", "test")}
    return TaskData(name, instruction or task.instruction, splits, source=f"pool:{task.source}")


def sample_demos(
    pool: list[dict[str, Any]], query: dict[str, Any], n: int, seed: int, task_id: str
) -> list[dict[str, Any]]:
    """n demos drawn without replacement from the split, never the query.

    The draw depends only on (seed, task, query id), not on the order items are processed in,
    so a resumed or re-batched run draws the same demos.
    """
    others = [r for r in pool if r["id"] != query["id"]]
    if n > len(others):
        raise ValueError(f"n_shot={n} but only {len(others)} other items in the split")
    rng = random.Random(f"{seed}:{task_id}:{query['id']}")
    return rng.sample(others, n)


def majority_answer(demos: list[dict[str, Any]]) -> str:
    """Most common answer among the demos; ties go to the one seen first."""
    return Counter(d["output"] for d in demos).most_common(1)[0][0]


def sha256(obj: Any) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_digest(record: dict[str, Any]) -> dict[str, Any]:
    """A record as JSON-able data: the decoded image is left out (its hash stays in)."""
    return {k: v for k, v in record.items() if k != "image"}


def from_build(task: TaskData, data: str, need_images: bool = True) -> TaskData:
    """The task's items as a built cross-modal dataset holds them, with their images.

    `data` is a folder written by `vlm-tv-build cross-modal` or `import-authors`, or a Hub
    dataset id; the config is the task id. The build's rows are the items (input, output and
    split included), so a run on the authors' import uses the authors' items, and a build made
    from an older pool never pairs an image with another item's answer. Where the items differ
    from the shipped pool, the run says so and records how many. Without `need_images` (text
    queries and text examples) rows without an image are kept and no image is decoded.
    """
    if task.id.startswith("custom:"):
        raise ValueError(f"--data holds built tasks; {task.id} is a task file: drop --data")
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a dependency of the dev install
        raise ValueError("--data needs `datasets`: pip install 'vlm-tv-eval[builders]'") from exc
    try:
        built = datasets.load_dataset(data, config_name(task.id))
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; all mean "cannot load"
        raise ValueError(
            f"cannot load config {task.id!r} of the built dataset {data!r}: {exc}. Build it with "
            "`vlm-tv-build cross-modal --out DIR` (needs network) and pass --data DIR"
        ) from None
    splits: dict[str, list[dict[str, Any]]] = {}
    missing: list[str] = []
    built_ids: set[str] = set()
    for split in task.splits:
        if split not in built:
            raise ValueError(f"built dataset {data!r} config {task.id!r} has no {split!r} split")
        out = []
        for row in built[split]:
            record = {k: row.get(k) for k in ("id", "input", "output", "wikipedia_title")}
            record.update(task=task.id, split=split)
            built_ids.add(record["id"])
            image = row.get(IMAGE_COLUMN)
            if need_images:
                if image is None:  # a row without its image: left out, and recorded
                    missing.append(str(row[JOIN_KEY]))
                    continue
                try:
                    image.load()
                except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for bad files
                    raise ValueError(
                        f"image of {task.id}/{row[JOIN_KEY]} in {data!r} is corrupt: {exc}"
                    ) from None
                record.update(image=image, image_sha256=hashlib.sha256(image.tobytes()).hexdigest())
            out.append(record)
        splits[split] = out
    if not all(splits.values()):
        raise ValueError(
            f"built dataset {data!r} ({task.id}) has no "
            f"{'images (a text-only build?)' if need_images else 'items'}; build it with "
            "`vlm-tv-build cross-modal --out DIR` and pass --data DIR"
        )
    differ = _items_not_in_pool(task, splits)
    if differ:
        print(
            f"note: {task.id}: {differ} item(s) in {data} are not the shipped pool's (another "
            "item set, e.g. an import-authors build): the build's items are used",
            file=sys.stderr,
        )
    else:  # a build of the pool: pool items it lacks were left out for want of an image
        missing += [r["id"] for rs in task.splits.values() for r in rs if r["id"] not in built_ids]
    if missing:
        print(
            f"warning: {task.id}: {len(missing)} item(s) have no image in {data} and are left "
            f"out: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}",
            file=sys.stderr,
        )
    return TaskData(
        task.id,
        task.instruction,
        splits,
        source=f"build-{'images' if need_images else 'items'}:{data}",
        split_made=task.split_made,
        extra={"missing_images": missing, "items_differing_from_pool": differ},
    )


def _items_not_in_pool(task: TaskData, splits: dict[str, list[dict[str, Any]]]) -> int:
    """How many built items are not in the shipped pool as they are there (split, id, input,
    output): 0 for a build of the pool, the size of the difference for another item set."""

    def key(r: dict[str, Any]) -> tuple:
        return (r["split"], r["id"], r["input"], r["output"])

    pool = {key(r) for rs in task.splits.values() for r in rs}
    return sum(key(r) not in pool for rs in splits.values() for r in rs)


def load_run_data(config: Any) -> dict[str, TaskData]:
    """Every task of a run with its items (and images, in image modes), and the checks that
    need them: an instruction for instruction specs, enough items for --n_shot demos."""
    # Here, not at the top: both modules import this one.
    from .methods import get_method
    from .overriding import is_overriding, load_override_set, load_override_text
    from .vqa import is_vqa, load_vqa_task

    methods = [get_method(m) for m in config.methods]
    demo_splits = set()
    if config.spec != "instruction" and any(m.needs_vector for m in methods):
        demo_splits.add("validation")  # example prompts for the task vectors
    if any(m.needs_demos(config.spec) for m in methods):
        demo_splits.add("test")
    data: dict[str, TaskData] = {}
    for name in config.tasks:
        try:
            if is_overriding(name):  # their own items, prompts and demos
                data[name] = (
                    load_override_text()
                    if name == "override_text"
                    else load_override_set(name, config.data)
                )
                continue
            if is_vqa(name):  # items, captions and images from one built VQA dataset
                td = load_vqa_task(name, config.data, config.instruction)
            else:
                td = load_task_data(name, config.instruction)
            if config.data and not is_vqa(name):  # the build's items, and images if used
                td = from_build(td, config.data, need_images=config.uses_images)
        except (KeyError, ValueError, TaskFileError) as exc:
            # A KeyError's str() wraps its message in quotes; other messages keep theirs.
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise ConfigError(str(message)) from None
        if config.spec in ("instruction", "ensemble") and not td.instruction:
            raise ConfigError(f"task {td.id} has no instruction; pass --instruction")
        for split, records in td.splits.items():
            # Demos come from the split minus the query.
            if split in demo_splits and config.n_shot > len(records) - 1:
                raise ConfigError(
                    f"--n_shot {config.n_shot} is larger than task {td.id}'s {split} split "
                    f"allows ({len(records)} items, so at most {len(records) - 1} demos besides "
                    "the query)"
                )
        if td.id in data:
            raise ConfigError(
                f"two tasks are named {td.id} ({data[td.id].source} and {td.source}): rename "
                "one of the files, or give the task once"
            )
        data[td.id] = td
    return data
