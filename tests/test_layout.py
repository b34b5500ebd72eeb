"""benchmark.layout: the built datasets' format, written down once and kept in step with the
row schemas and the builders."""

from __future__ import annotations

import pytest

from benchmark import SPLITS, TASKS, layout
from benchmark.validation import schema


@pytest.mark.parametrize("family", ["cross_modal", "vqa", "overriding"])
def test_columns_are_the_row_schemas_properties(family):
    row = schema(f"row_{family}")
    assert layout.COLUMNS[family] == tuple(row["properties"])
    assert set(row["required"]) <= set(layout.COLUMNS[family])
    assert row["additionalProperties"] is False
    assert layout.JOIN_KEY in row["required"]
    assert layout.IMAGE_COLUMN in row["required"]


def test_every_task_family_has_columns():
    assert {t.family for t in TASKS.values()} == set(layout.COLUMNS)


def test_one_config_per_task_and_one_file_per_split():
    assert layout.SPLITS == SPLITS == ("validation", "test")
    for task in TASKS:
        assert layout.config_name(task) == task
    assert layout.data_file("food_color", "test") == "food_color/test-00000-of-00001.parquet"


def test_builders_use_the_layout():
    from builders import cross_modal
    from builders import layout as builders_layout

    assert cross_modal.COLUMNS == layout.COLUMNS["cross_modal"]
    assert builders_layout.data_file is layout.data_file
    assert builders_layout.SPLITS is layout.SPLITS


@pytest.mark.parametrize("family", ["cross_modal", "vqa", "overriding"])
def test_builders_features_are_the_columns(family):
    pytest.importorskip("datasets")
    import importlib

    module = importlib.import_module(f"builders.{family}")
    assert tuple(module.features()) == layout.COLUMNS[family]


def test_layout_imports_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys, benchmark.layout, benchmark.protocol, benchmark.files\n"
        "heavy = [m for m in ('torch', 'datasets', 'pyarrow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
