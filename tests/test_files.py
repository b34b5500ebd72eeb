"""benchmark.files: the one slug rule and the one atomic-write mechanism (and its exclusive
form, which never replaces a file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.files import (
    atomic_create_text,
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


def test_an_exclusive_create_never_replaces_a_file(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic_create_text(target, "first")
    with pytest.raises(FileExistsError):
        atomic_create_text(target, "second")
    assert target.read_text() == "first"
    assert leftovers(target.parent) == []


def test_an_exclusive_create_refuses_a_dangling_link(tmp_path):
    """A link to nothing is a taken name too: writing through it would create its target."""
    target = tmp_path / "a.json"
    target.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):
        atomic_create_text(target, "x")
    assert not (tmp_path / "elsewhere").exists() and leftovers(tmp_path) == []


def _create_in_a_child(target: str, text: str, start: float) -> str:
    import time

    time.sleep(max(0.0, start - time.time()))
    try:
        atomic_create_text(target, text)
    except FileExistsError:
        return "refused"
    return "wrote"


def test_racing_exclusive_creates_write_once(tmp_path):
    """Many processes racing for one name: one writes, every other is refused, and the file
    holds the text of the one that wrote."""
    import multiprocessing
    import time

    target = str(tmp_path / "a.json")
    start = time.time() + 3
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        args = [(target, f"writer {i}", start) for i in range(8)]
        outcomes = pool.starmap(_create_in_a_child, args, chunksize=1)
    assert outcomes.count("wrote") == 1, outcomes
    assert Path(target).read_text() == f"writer {outcomes.index('wrote')}"
    assert leftovers(tmp_path) == []


def test_an_exclusive_create_without_hard_links_still_refuses(tmp_path, monkeypatch):
    """On a file system without hard links the check and the rename stand in for the link."""
    import errno
    import os

    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "a.json"
    atomic_create_text(target, "first")
    with pytest.raises(FileExistsError):
        atomic_create_text(target, "second")
    assert target.read_text() == "first" and leftovers(tmp_path) == []
