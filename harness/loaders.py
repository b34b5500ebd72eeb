"""Items from built datasets: a cross-modal build (the six tasks with their images, or the
authors' items) and the VQA subsets (paper, Table 4), read with `datasets.load_dataset` from a
folder `vlm-tv-build` wrote or a Hub dataset id.

A VQA item is an image whose answer to the task's fixed question is known. Its text version is
the image's dense caption (LLaVA-ReCap), so the cross-modal protocol applies unchanged: text
examples are caption -> answer pairs, image examples are image -> answer pairs (the question is
dropped: the examples must carry the task), queries are images, and the instruction spec is the
question itself. Items, splits and captions all come from one `vlm-tv-build vqa` output, so the
split is the build's and never re-drawn here.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

from benchmark import get_task
from benchmark.layout import IMAGE_COLUMN, JOIN_KEY, SPLITS, config_name

from .errors import ConfigError, TaskFileError
from .items import TaskData

CROSS_MODAL_HINT = (
    "build it with `vlm-tv-build cross-modal --out DIR` (needs network) and pass --data DIR"
)
VQA_HINT = (
    "build it with `vlm-tv-build vqa --questions Q.json --annotations A.json --captions "
    "RECAP --coco-dir DIR --out OUT` and pass --data OUT"
)


def load_built(data: str, task_id: str, hint: str) -> Any:
    """The task's config of a built dataset (a DatasetDict of its splits); a dataset that
    cannot be loaded is one line naming it, the config, why, and `hint` (how to build it)."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency of the dev install
        raise ConfigError("--data needs `datasets`: pip install 'vlm-tv-eval[builders]'") from None
    folder = Path(data).expanduser()
    if folder.is_file():
        raise TaskFileError(f"--data {data} is a file, not a built dataset folder; {hint}")
    if folder.is_dir() and not (folder / "README.md").is_file():
        raise TaskFileError(
            f"--data {data} is not a folder vlm-tv-build wrote (no README.md card naming its "
            f"configs); {hint}"
        )
    if data.startswith(("/", ".", "~")) and not folder.exists():  # a path; a Hub id is org/name
        raise TaskFileError(f"--data {data} does not exist; {hint}")
    try:
        return datasets.load_dataset(data, config_name(task_id))
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; all mean "cannot load"
        raise TaskFileError(f"cannot load config {task_id!r} of {data!r}: {exc}; {hint}") from None


def loaded_image(image: Any, where: str) -> tuple[Any, str]:
    """A built row's image, decoded now (a corrupt file fails here, naming the row), and the
    sha256 of its pixels, which the run id hashes."""
    try:
        image.load()
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for bad files
        raise TaskFileError(f"{where}: the image is corrupt: {exc}") from None
    return image, hashlib.sha256(image.tobytes()).hexdigest()


def _record(row: dict[str, Any], task_id: str, split: str, data: str) -> dict[str, Any]:
    where = f"{data} ({task_id}/{split}, id {row.get('id')!r})"
    caption, answer, image = row.get("caption"), row.get("output"), row.get(IMAGE_COLUMN)
    if not isinstance(caption, str) or not caption.strip():
        raise TaskFileError(f"{where} has no caption: the text version of an item is its caption")
    if not isinstance(answer, str) or not answer.strip():
        raise TaskFileError(f"{where} has no answer ('output')")
    if image is None:
        raise TaskFileError(f"{where} has no image (a text-only build?); {VQA_HINT}")
    image, image_sha256 = loaded_image(image, where)
    return {
        "id": str(row["id"]),
        "task": task_id,
        "split": split,
        "input": caption.strip(),
        "output": answer.strip(),
        "image": image,
        "image_sha256": image_sha256,
        "question": row.get("question"),
        "answers": list(row.get("answers") or []),
        "image_id": row.get("image_id"),
    }


def load_vqa_task(task_id: str, data: str | None, instruction: str | None = None) -> TaskData:
    """A VQA subset's items with captions and images from a built VQA dataset."""
    if not data:
        raise ConfigError(f"task {task_id} reads a built VQA dataset; {VQA_HINT}")
    built = load_built(data, task_id, VQA_HINT)
    splits: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        if split not in built:
            raise TaskFileError(f"{data!r} config {task_id!r} has no {split!r} split; {VQA_HINT}")
        records = [_record(row, task_id, split, data) for row in built[split]]
        if len(records) < 2:
            raise TaskFileError(f"{data!r} config {task_id!r} {split!r} has {len(records)} item(s)")
        splits[split] = records
    ids = [r["id"] for rs in splits.values() for r in rs]
    if len(set(ids)) != len(ids):
        raise TaskFileError(f"{data!r} config {task_id!r} repeats an id across or within splits")
    task = get_task(task_id)
    return TaskData(
        task_id,
        instruction or task.instruction,
        splits,
        source=f"vqa:{data}",
    )


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
        raise ConfigError(f"--data holds built tasks; {task.id} is a task file: drop --data")
    built = load_built(data, task.id, CROSS_MODAL_HINT)
    splits: dict[str, list[dict[str, Any]]] = {}
    missing: list[str] = []
    built_ids: set[str] = set()
    for split in task.splits:
        if split not in built:
            raise TaskFileError(f"built dataset {data!r} config {task.id!r} has no {split!r} split")
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
                image, digest = loaded_image(image, f"{data!r} ({task.id}/{row[JOIN_KEY]})")
                record.update(image=image, image_sha256=digest)
            out.append(record)
        splits[split] = out
    if not all(splits.values()):
        raise TaskFileError(
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
