"""benchmark.files: the one slug rule and the one atomic-write mechanism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.files import (
    atomic_output,
    atomic_write_bytes,
    atomic_write_text,
    slug,
    write_json_atomic,
)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("SmolLM2-135M-Instruct (CPU)", "smollm2-135m-instruct-cpu"),
        ("text_examples", "text-examples"),
        ("  Idefics2 8B / A100!  ", "idefics2-8b-a100"),
        ("already-a-slug", "already-a-slug"),
        ("Ünïcode names", "n-code-names"),
        ("", "x"),
        ("!!!", "x"),
    ],
)
def test_slug(text, expected):
    assert slug(text) == expected


def test_slug_default():
    assert slug("***", default="submission") == "submission"
    assert slug("ok", default="submission") == "ok"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_writes_leave_no_temporary_file(tmp_path):
    target = tmp_path / "deep" / "er" / "out.bin"  # parents are created
    atomic_write_bytes(target, b"one")
    assert target.read_bytes() == b"one"
    atomic_write_bytes(target, b"two")  # replaces
    assert target.read_bytes() == b"two"
    atomic_write_text(tmp_path / "t.txt", "héllo\n")
    assert (tmp_path / "t.txt").read_bytes() == "héllo\n".encode()
    write_json_atomic(tmp_path / "o.json", {"a": [1, "é"]})
    text = (tmp_path / "o.json").read_text("utf-8")
    assert text == json.dumps({"a": [1, "é"]}, indent=1, ensure_ascii=False) + "\n"
    assert leftovers(target.parent) == [] and leftovers(tmp_path) == []


def test_temporary_path_is_hidden_and_next_to_the_target(tmp_path):
    target = tmp_path / "out.json"
    with atomic_output(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp.name.startswith(".out.json.") and tmp.name.endswith(".tmp")
        assert not tmp.exists()
        tmp.write_text("x")
    assert target.read_text() == "x"


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_leaves_no_target_and_no_temporary_file(tmp_path, error):
    target = tmp_path / "out.txt"
    with pytest.raises(error):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise error()
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_error_keeps_the_old_target(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(ValueError):
        with atomic_output(target) as tmp:
            tmp.write_text("new, half written")
            raise ValueError("boom")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_a_directory_is_renamed_into_place(tmp_path):
    target = tmp_path / "unit"
    with atomic_output(target) as tmp:
        tmp.mkdir()
        (tmp / "a.json").write_text("1")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.json").write_text("2")
    assert (target / "a.json").read_text() == "1"
    assert (target / "sub" / "b.json").read_text() == "2"
    assert leftovers(tmp_path) == []


def test_an_existing_directory_is_kept(tmp_path):
    """Another process finished the same output first: its directory stays, ours goes."""
    target = tmp_path / "unit"
    target.mkdir()
    (target / "a.json").write_text("first")
    with atomic_output(target) as tmp:
        tmp.mkdir()
        (tmp / "a.json").write_text("second")
    assert (target / "a.json").read_text() == "first"
    assert leftovers(tmp_path) == []


def test_an_error_removes_a_half_written_directory(tmp_path):
    target = tmp_path / "unit"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as tmp:
            tmp.mkdir()
            (tmp / "a.json").write_text("1")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
