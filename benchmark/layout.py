"""The built datasets' format: what `vlm-tv-build` writes and the harness reads.

A built dataset is a folder in the Hugging Face Hub layout: one config per task, one Parquet
file per split (`data_file`), and a README.md card naming each file. `datasets.load_dataset(
folder, config)` reads it locally, and the Hub serves the same after an upload.

- One config = one task id (`config_name`): the harness loads a task's rows by its id.
- Splits are `validation` (layer selection) and `test` (reported numbers), listed in SPLITS
  order; the overriding sets have only `test`.
- Rows are matched to the shipped pools' items by JOIN_KEY, and a row's image (a datasets
  `Image`, None in text-only builds) is in IMAGE_COLUMN.
- Each family's rows have exactly the columns in COLUMNS, in that order; the row schemas
  (`benchmark/schemas/row_<family>.schema.json`) declare the same properties.

No datasets, pyarrow or torch import: this is the description, the builders do the writing.
"""

from __future__ import annotations

from .tasks import CROSS_MODAL, OVERRIDING, VQA

# Split names in the order they are written and listed (the shipped pools use the same two).
SPLITS: tuple[str, ...] = ("validation", "test")

# The column that identifies a row: for the cross-modal tasks it is the pool item's id, so the
# harness finds each pool item's image by it.
JOIN_KEY = "id"

# The column holding a row's image (datasets `Image`; None in a text-only build).
IMAGE_COLUMN = "image"

# Each family's row columns, in the order the builders write them.
COLUMNS: dict[str, tuple[str, ...]] = {
    CROSS_MODAL: (
        "id",
        "task",
        "split",
        "input",
        "image",
        "output",
        "wikipedia_title",
        "attribution",
    ),
    VQA: (
        "id",
        "task",
        "split",
        "question",
        "image",
        "caption",
        "output",
        "answers",
        "image_id",
        "question_id",
    ),
    OVERRIDING: (
        "id",
        "setting",
        "image",
        "question",
        "override",
        "question_answer",
        "override_answer",
        "image_id",
        "source",
    ),
}


def config_name(task_id: str) -> str:
    """The dataset config holding a task's rows: the task id itself (one config per task)."""
    return task_id


def data_file(config: str, split: str) -> str:
    """Path of a config's split inside the dataset folder (also its `data_files` entry)."""
    return f"{config}/{split}-00000-of-00001.parquet"
