"""Shipped item pools and the one record shape the rest of the project reads.

A pool file (`benchmark/pools/<name>.json`) holds the items of one pool with their labels for
both of its tasks, the fixed validation/test split, and where the labels came from. The split is
part of the data, not recomputed, so text and image versions of a task always share it.

`load_task(task_id, split)` returns task records, plain dicts of this shape::

    {"id": "france", "task": "country_capital", "split": "test",
     "input": "France", "output": "Paris", "wikipedia_title": "Flag of France"}
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from .layout import SPLITS
from .tasks import get_task

POOLS = ("countries", "animals", "foods")
SPLIT_SIZES = {"validation": 30, "test": 100}


class UnknownPoolError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@cache
def _read_pool(name: str) -> dict[str, Any]:
    if name not in POOLS:
        raise UnknownPoolError(f"unknown pool {name!r}. Known pools: {', '.join(POOLS)}")
    text = resources.files("benchmark").joinpath("pools", f"{name}.json").read_text("utf-8")
    return json.loads(text)


def load_pool(name: str) -> dict[str, Any]:
    """The whole pool file: metadata (sources, rules, dropped items) and `items`.

    Returns a fresh copy each call so callers may mutate it.
    """
    return json.loads(json.dumps(_read_pool(name)))


def load_task(task_id: str, split: str | None = None) -> list[dict[str, Any]]:
    """Records of a cross-modal task in pool order, for one split or (split=None) both."""
    task = get_task(task_id)
    if not task.has_shipped_pool:
        raise ValueError(
            f"task {task_id!r} has no shipped pool: its items come from the {task.source!r} "
            "dataset made by `vlm-tv-build`; load it with datasets.load_dataset instead."
        )
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    records = []
    for item in _read_pool(task.source)["items"]:
        if split is not None and item["split"] != split:
            continue
        records.append(
            {
                "id": item["id"],
                "task": task_id,
                "split": item["split"],
                "input": item["input"],
                "output": item["labels"][task_id],
                "wikipedia_title": item["wikipedia_title"],
            }
        )
    return records
