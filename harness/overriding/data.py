"""The overriding study's items: `override_text`, built here from the shipped pools (both
tasks' labels known), and the image sets built by `vlm-tv-build overriding` (judged)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmark import TASKS, get_task, load_task
from benchmark.layout import IMAGE_COLUMN

from ..errors import TaskFileError
from ..items import TaskData
from ..loaders import load_built

OVERRIDING_HINT = (
    "build it with `vlm-tv-build overriding --out DIR` (needs network) and pass --data DIR"
)

# Each cross-modal task and the conflicting task of its pool.
CONFLICTS = {
    "country_capital": "country_currency",
    "country_currency": "country_capital",
    "animal_latin": "animal_young",
    "animal_young": "animal_latin",
    "food_color": "food_flavor",
    "food_flavor": "food_color",
}


def load_override_text() -> TaskData:
    """Every pool item under both of its pool's tasks: the original task set up in the prompt
    (`question`, labelled `question_answer`), the other patched (`override`, labelled `output`).
    Directions are interleaved so that --limit takes items of every direction."""
    splits: dict[str, list[dict[str, Any]]] = {}
    for split in ("validation", "test"):
        by_direction = []
        for original, override in CONFLICTS.items():
            labels = {r["id"]: r["output"] for r in load_task(override, split)}
            by_direction.append(
                [
                    {
                        "id": f"{original}>{override}/{r['id']}",
                        "task": "override_text",
                        "split": split,
                        "direction": f"{original}>{override}",
                        "input": r["input"],
                        "question": TASKS[original].instruction,
                        "override": TASKS[override].instruction,
                        "question_answer": r["output"],
                        "output": labels[r["id"]],
                    }
                    for r in load_task(original, split)
                ]
            )
        splits[split] = [rec for group in zip(*by_direction, strict=True) for rec in group]
    instruction = TASKS["override_text"].instruction
    return TaskData("override_text", instruction, splits, source="pools:override_text")


def load_override_set(task_id: str, data: str) -> TaskData:
    """An image overriding set built by `vlm-tv-build overriding` (test split only)."""
    built = load_built(data, task_id, OVERRIDING_HINT)
    if "test" not in built:
        raise TaskFileError(f"overriding dataset {data!r} config {task_id!r} has no test split")
    records = []
    for row in built["test"]:
        image = row[IMAGE_COLUMN]
        if image is None:
            continue
        records.append(
            {
                "id": str(row["id"]),
                "task": task_id,
                "split": "test",
                "image": image,
                "input": row["question"],
                "question": row["question"],
                "override": row["override"],
                "question_answer": row.get("question_answer"),
                "output": row.get("override_answer") or "",
            }
        )
    if not records:
        raise TaskFileError(f"overriding dataset {data!r} config {task_id!r} has no images")
    return TaskData(task_id, get_task(task_id).instruction, {"test": records}, source=data)


def questions(record: Mapping[str, Any]) -> tuple[str, str]:
    """Question 1 (the original task) and question 2 (the overriding one), as the judge sees
    them."""
    if record["task"] == "override_text":
        return f"{record['question']} {record['input']}", f"{record['override']} {record['input']}"
    return record["question"], record["override"]
