"""A GGUF replaced or touched at the same path does not leave its old converted folder behind:
identical content reuses the conversion, changed content replaces it, and nothing else in the
cache (another path's conversion, a folder not proven to be one, a folder in use) is removed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.adapters import make_adapter
from harness.adapters.gguf_cache import converted, verify

WEIGHTS = 2_000_000  # bytes of the fake conversion's model.safetensors: "2 MB freed"


def _fake_convert(log: list[str]):
    def convert(folder: Path) -> None:
        log.append(folder.name)
        folder.mkdir()
        (folder / "config.json").write_text('{"num_hidden_layers": 2}')
        (folder / "model.safetensors").write_bytes(b"w" * WEIGHTS)

    return convert


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("VLM_TV_EVAL_CACHE", str(root))
    return root / "models"


def _gguf(path: Path, body: bytes, mtime: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + body)
    os.utime(path, (mtime, mtime))
    return path


def _folder(gguf: Path) -> Path:
    """The folder the adapter names for the file as it is now."""
    return make_adapter(f"gguf:{gguf}").cached_folder(gguf)


def _convert(gguf: Path, log: list[str]) -> tuple[Path, str]:
    return converted(gguf, _folder(gguf), _fake_convert(log))


def _folders(cache: Path) -> set[str]:
    return {p.name for p in cache.iterdir() if p.is_dir()}


def test_a_replaced_gguf_removes_its_older_conversion_and_says_so(tmp_path, cache, capsys):
    log: list[str] = []
    gguf = _gguf(tmp_path / "model.gguf", bytes(range(256)), 1_700_000_000)
    old, _ = _convert(gguf, log)
    assert json.loads((old / "fingerprint.json").read_text())["source"] == str(gguf.resolve())
    capsys.readouterr()
    _gguf(gguf, bytes(range(255, -1, -1)), 1_700_000_100)  # new weights at the same path
    new, _ = _convert(gguf, log)
    assert new != old and len(log) == 2
    assert _folders(cache) == {new.name}
    assert not old.with_name(old.name + ".lock").exists()
    assert not old.with_name(old.name + ".use").exists()
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("removed")]
    assert len(lines) == 1, lines
    assert old.name in lines[0] and str(gguf.resolve()) in lines[0] and "(2 MB freed)" in lines[0]
    # A third version replaces the second too: one folder, however often the file changes.
    _gguf(gguf, bytes(range(128)), 1_700_000_200)
    third, _ = _convert(gguf, log)
    assert _folders(cache) == {third.name}


def test_a_touched_gguf_reuses_its_conversion_instead_of_converting_again(tmp_path, cache, capsys):
    log: list[str] = []
    gguf = _gguf(tmp_path / "model.gguf", bytes(range(256)), 1_700_000_000)
    old, fingerprint = _convert(gguf, log)
    os.utime(gguf, (1_700_000_100, 1_700_000_100))  # touched: the same bytes
    new, again = _convert(gguf, log)
    assert new != old and len(log) == 1  # converted once only
    assert again == fingerprint
    assert _folders(cache) == {new.name}
    gguf_sha = json.loads((new / "fingerprint.json").read_text())["gguf_sha256"]
    assert verify(new, gguf_sha) is None
    err = capsys.readouterr().err
    assert "same content" in err and "removed 1 older conversion" in err


def test_only_this_paths_proven_conversions_are_removed(tmp_path, cache, capsys):
    log: list[str] = []
    mine = _gguf(tmp_path / "a" / "model.gguf", bytes(range(256)), 1_700_000_000)
    other = _gguf(tmp_path / "b" / "model.gguf", bytes(range(200)), 1_700_000_000)
    mine_old, _ = _convert(mine, log)
    other_folder, _ = _convert(other, log)  # the same stem, another path: never removed
    # Beside them, folders that are not proven conversions of this path: a user's folder, one
    # naming this path but holding a file its fingerprint does not list, a conversion by older
    # code (no source recorded), and a link to a proven conversion.
    (cache / "notes").mkdir()
    (cache / "notes" / "model.safetensors").write_bytes(b"mine")
    extra = cache / "model-1-1"
    extra.mkdir()
    fingerprint = json.loads((mine_old / "fingerprint.json").read_text())
    (extra / "fingerprint.json").write_text(json.dumps(fingerprint))
    (extra / "model.safetensors").write_bytes(b"w")
    (extra / "my-notes.txt").write_text("not the harness's")
    legacy = cache / "model-2-2"
    legacy.mkdir()
    (legacy / "fingerprint.json").write_text(
        json.dumps({k: v for k, v in fingerprint.items() if k != "source"})
    )
    (legacy / "model.safetensors").write_bytes(b"w")
    copy = tmp_path / "copy-of-conversion"
    copy.mkdir()
    for name in ("fingerprint.json", "model.safetensors"):
        (copy / name).write_bytes((mine_old / name).read_bytes())
    (cache / "model-3-3").symlink_to(copy, target_is_directory=True)

    _gguf(mine, bytes(range(100)), 1_700_000_100)
    mine_new, _ = _convert(mine, log)
    assert not mine_old.exists()
    assert _folders(cache) == {
        mine_new.name, other_folder.name, "notes", "model-1-1", "model-2-2", "model-3-3"
    }  # fmt: skip
    assert (copy / "model.safetensors").is_file() and (cache / "model-3-3").is_symlink()
    assert (other_folder / "model.safetensors").stat().st_size == WEIGHTS


def test_a_conversion_in_use_is_kept_and_removed_by_a_later_run(tmp_path, cache, capsys):
    from harness.adapters.gguf_cache import conversion

    log: list[str] = []
    gguf = _gguf(tmp_path / "model.gguf", bytes(range(256)), 1_700_000_000)
    with conversion(gguf, _folder(gguf), _fake_convert(log)) as (old, _):
        # Another run of the same path, after the file changed, while this one still loads.
        _gguf(gguf, bytes(range(10)), 1_700_000_100)
        new, _ = _convert(gguf, log)
        assert (old / "model.safetensors").stat().st_size == WEIGHTS
        err = capsys.readouterr().err
        assert f"kept {old.name} (in use" in err and "removed" not in err
    again, _ = _convert(gguf, log)
    assert again == new and len(log) == 2
    assert _folders(cache) == {new.name}
    assert "removed 1 older conversion" in capsys.readouterr().err


def test_a_link_to_a_gguf_and_the_gguf_share_one_folder(tmp_path, cache, capsys):
    log: list[str] = []
    gguf = _gguf(tmp_path / "real" / "weights.gguf", bytes(range(256)), 1_700_000_000)
    link = tmp_path / "link.gguf"
    link.symlink_to(gguf)
    assert _folder(link) == _folder(gguf)
    _convert(link, log)
    _convert(gguf, log)
    assert len(log) == 1 and len(_folders(cache)) == 1
    assert "removed" not in capsys.readouterr().err


def test_a_conversion_by_older_code_is_claimed_by_its_path_and_then_replaced(
    tmp_path, cache, capsys
):
    """A folder written before the source was recorded, found at the name this file gives and
    proven to be its conversion, records its path on the next load; so it goes when the file
    changes."""
    log: list[str] = []
    gguf = _gguf(tmp_path / "model.gguf", bytes(range(256)), 1_700_000_000)
    old, _ = _convert(gguf, log)
    path = old / "fingerprint.json"
    fingerprint = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in fingerprint.items() if k != "source"}))
    _convert(gguf, log)
    assert json.loads(path.read_text())["source"] == str(gguf.resolve()) and len(log) == 1
    _gguf(gguf, bytes(range(50)), 1_700_000_100)
    new, _ = _convert(gguf, log)
    assert _folders(cache) == {new.name}
