"""Caches prove what they hold: the converted model folder and the task-vector files."""

from __future__ import annotations

import json
import multiprocessing
import re
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from harness.adapters.gguf_cache import converted
from harness.vectors import cached_vector


def _fake_convert(log: Path):
    def convert(folder: Path) -> None:
        with log.open("a") as f:
            f.write("converted\n")
        folder.mkdir()
        (folder / "config.json").write_text('{"num_hidden_layers": 2}')
        (folder / "model.safetensors").write_bytes(b"weights" * 100)

    return convert


def _conversions(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.fixture
def gguf(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)))
    return path


def test_a_conversion_is_made_once_and_then_proven(gguf, tmp_path, capsys):
    log, folder = tmp_path / "log", tmp_path / "cache" / "model"
    first = converted(gguf, folder, _fake_convert(log))
    again = converted(gguf, folder, _fake_convert(log))
    assert first == again and _conversions(log) == 1
    assert len(first[1]) == 16 and "warning" not in capsys.readouterr().err


def test_a_conversion_is_announced_once_with_its_duration(gguf, tmp_path, capsys):
    """A first load says, before the silent work, that it converts once and roughly how long
    it takes, and after, how long it took; a later load says nothing."""
    log, folder = tmp_path / "log", tmp_path / "cache" / "model"
    seen_before: list[str] = []
    fake = _fake_convert(log)

    def convert(out: Path) -> None:
        seen_before.append(capsys.readouterr().err)  # what was printed before the work
        fake(out)

    converted(gguf, folder, convert)
    (before,) = seen_before
    assert before.startswith("converting model.gguf (0 MB) to float32 weights: once, kept in ")
    assert str(folder) in before and "roughly 5 s" in before
    after = capsys.readouterr().err.strip().splitlines()
    assert len(after) == 1 and re.fullmatch(r"converted model\.gguf in \d+ s", after[0])
    converted(gguf, folder, _fake_convert(log))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "damage,reason",
    [
        (lambda f: (f / "model.safetensors").write_bytes(b"weightz" * 100), "files changed"),
        (lambda f: (f / "config.json").write_text('{"num_hidden_layers": 3}'), "files changed"),
        (lambda f: (f / "model.safetensors").unlink(), "files changed"),
        (lambda f: (f / "fingerprint.json").unlink(), "no valid fingerprint"),
    ],
    ids=["edited-tensor", "changed-config", "truncated", "no-fingerprint"],
)
def test_a_damaged_conversion_is_rebuilt_not_used(gguf, tmp_path, capsys, damage, reason):
    log, folder = tmp_path / "log", tmp_path / "cache" / "model"
    converted(gguf, folder, _fake_convert(log))
    damage(folder)
    converted(gguf, folder, _fake_convert(log))
    err = capsys.readouterr().err
    assert str(folder) in err and reason in err
    assert _conversions(log) == 2
    assert (folder / "model.safetensors").read_bytes() == b"weights" * 100


def test_an_empty_folder_and_temporary_leftovers_of_a_crash_recover(gguf, tmp_path):
    log, folder = tmp_path / "log", tmp_path / "cache" / "model"
    folder.mkdir(parents=True)  # an old crash left an empty folder
    leftover = folder.with_name(f".{folder.name}.deadbeef.tmp")
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"half")
    converted(gguf, folder, _fake_convert(log))
    assert _conversions(log) == 1 and (folder / "model.safetensors").is_file()
    assert not leftover.exists()


def test_another_gguf_means_another_conversion(gguf, tmp_path, capsys):
    log, folder = tmp_path / "log", tmp_path / "cache" / "model"
    converted(gguf, folder, _fake_convert(log))
    gguf.write_bytes(b"GGUF" + bytes(range(255, -1, -1)))
    converted(gguf, folder, _fake_convert(log))
    assert _conversions(log) == 2 and "another GGUF" in capsys.readouterr().err


def _convert_in_process(gguf: str, folder: str, log: str) -> None:
    def slow(target: Path) -> None:
        time.sleep(0.5)
        _fake_convert(Path(log))(target)

    converted(Path(gguf), Path(folder), slow)


def test_two_first_runs_at_once_convert_once(gguf, tmp_path):
    log, folder = tmp_path / "log", tmp_path / "cache" / "model"
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_convert_in_process, args=(str(gguf), str(folder), str(log)))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert _conversions(log) == 1
    assert not list(folder.parent.glob(".*.tmp"))


# -- task vectors --------------------------------------------------------------------------------


def _vector_file(adapter, prompts, meta):
    vector = cached_vector(adapter, 4, "country_capital", meta, prompts)
    from benchmark.files import cache_root

    for path in (cache_root() / "vectors").rglob("country-capital-*.safetensors"):
        with safe_open(str(path), "pt") as f:
            md = f.metadata()
        fingerprint = adapter.describe()["fingerprint"]
        if md.get("seed") == json.dumps(meta["seed"]) and md.get("fingerprint") == fingerprint:
            return vector, path
    raise AssertionError("no cache file written")


def _rewrite(path: Path, vector: torch.Tensor, **changes: str) -> None:
    with safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata(), **changes)
    save_file({"vector": vector.contiguous()}, str(path), metadata=metadata)


@pytest.mark.parametrize(
    "tamper,reason",
    [
        (lambda v: (v + 1.0, {}), "checksum"),
        (lambda v: (v, {"n_shot": "7"}), "n_shot"),
        (lambda v: (v, {"protocol": "1"}), "protocol"),
        (lambda v: (v[:2], {}), "shape"),
        (lambda v: (v * float("nan"), {}), "NaN"),
    ],
    ids=["values", "metadata", "protocol", "shape", "nan"],
)
def test_a_tampered_vector_file_is_extracted_again(tiny_adapter, capsys, tamper, reason):
    prompts = [tiny_adapter.example_prompt([("France", "Paris"), ("Peru", "Lima")])]
    meta = {"spec": "text_examples", "seed": 11, "n_shot": 2}
    vector, path = _vector_file(tiny_adapter, prompts, meta)
    bad, changes = tamper(vector)
    _rewrite(path, bad, **changes)
    again = cached_vector(tiny_adapter, 4, "country_capital", meta, prompts)
    err = capsys.readouterr().err
    assert str(path) in err and reason in err
    assert torch.equal(again, vector)
    assert torch.equal(cached_vector(tiny_adapter, 4, "country_capital", meta, prompts), vector)
    assert "warning" not in capsys.readouterr().err  # rewritten, now proven


def test_other_weights_under_the_same_name_get_their_own_vectors(tiny_adapter, monkeypatch):
    prompts = [tiny_adapter.example_prompt([("France", "Paris"), ("Peru", "Lima")])]
    meta = {"spec": "text_examples", "seed": 12, "n_shot": 2}
    _, first = _vector_file(tiny_adapter, prompts, meta)
    monkeypatch.setattr(tiny_adapter, "_fingerprint", "other-weights")
    _, second = _vector_file(tiny_adapter, prompts, dict(meta))
    assert first != second


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    """One rule for every cache (harness and builders): $VLM_TV_EVAL_CACHE, else the XDG
    base-directory variable, else ~/.cache; a relative XDG_CACHE_HOME is ignored, as the
    XDG specification says."""
    from benchmark.files import cache_root
    from builders.cli import default_cache_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VLM_TV_EVAL_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "vlm-tv-eval"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    assert cache_root() == tmp_path / "home" / ".cache" / "vlm-tv-eval"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "vlm-tv-eval"
    assert default_cache_dir() == tmp_path / "xdg" / "vlm-tv-eval" / "wikipedia"
    monkeypatch.setenv("VLM_TV_EVAL_CACHE", str(tmp_path / "own"))
    assert cache_root() == tmp_path / "own"
