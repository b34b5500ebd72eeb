"""The VQA subsets (paper, Table 4): one VQAv2 question asked of many images.

An item is an image whose answer to the task's fixed question is known. Its text version is the
image's dense caption (LLaVA-ReCap), so the cross-modal protocol applies unchanged: text
examples are caption -> answer pairs, image examples are image -> answer pairs (the question is
dropped: the examples must carry the task), queries are images, and the instruction spec is the
question itself. Items, splits and captions all come from one `vlm-tv-build vqa` output, so the
split is the build's and never re-drawn here.
"""

from __future__ import annotations

import hashlib
from typing import Any

from benchmark import TASKS, get_task
from benchmark.layout import IMAGE_COLUMN, SPLITS, config_name

from .data import TaskData

BUILD_HINT = (
    "build it with `vlm-tv-build vqa --questions Q.json --annotations A.json --captions "
    "RECAP --coco-dir DIR --out OUT` and pass --data OUT"
)


def is_vqa(task_id: str) -> bool:
    return task_id in TASKS and TASKS[task_id].family == "vqa"


def _record(row: dict[str, Any], task_id: str, split: str, data: str) -> dict[str, Any]:
    where = f"{data} ({task_id}/{split}, id {row.get('id')!r})"
    caption, answer, image = row.get("caption"), row.get("output"), row.get(IMAGE_COLUMN)
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError(f"{where} has no caption: the text version of an item is its caption")
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError(f"{where} has no answer ('output')")
    if image is None:
        raise ValueError(f"{where} has no image (a text-only build?); {BUILD_HINT}")
    try:
        image.load()
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for bad files
        raise ValueError(f"{where}: the image is corrupt: {exc}") from None
    return {
        "id": str(row["id"]),
        "task": task_id,
        "split": split,
        "input": caption.strip(),
        "output": answer.strip(),
        "image": image,
        "image_sha256": hashlib.sha256(image.tobytes()).hexdigest(),
        "question": row.get("question"),
        "answers": list(row.get("answers") or []),
        "image_id": row.get("image_id"),
    }


def load_vqa_task(task_id: str, data: str | None, instruction: str | None = None) -> TaskData:
    """A VQA subset's items with captions and images from a built VQA dataset."""
    if not data:
        raise ValueError(f"task {task_id} reads a built VQA dataset; {BUILD_HINT}")
    import datasets

    try:
        built = datasets.load_dataset(data, config_name(task_id))
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; all mean "cannot load"
        message = f"cannot load config {task_id!r} of {data!r}: {exc}; {BUILD_HINT}"
        raise ValueError(message) from None
    splits: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        if split not in built:
            raise ValueError(f"{data!r} config {task_id!r} has no {split!r} split; {BUILD_HINT}")
        records = [_record(row, task_id, split, data) for row in built[split]]
        if len(records) < 2:
            raise ValueError(f"{data!r} config {task_id!r} {split!r} has {len(records)} item(s)")
        splits[split] = records
    ids = [r["id"] for rs in splits.values() for r in rs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{data!r} config {task_id!r} repeats an id across or within splits")
    task = get_task(task_id)
    return TaskData(
        task_id,
        instruction or task.instruction,
        splits,
        source=f"vqa:{data}",
    )
