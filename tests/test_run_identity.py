"""A run folder holds one run: what changes a number either moves the run id or makes every
stored unit prove it was computed with it (reliability, class 1). And a path a user gives is
read bounded and without blocking (class 8): a FIFO or /dev/zero is named, never waited on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from examples import run_results

from benchmark.reading import ReadRefused, read_capped, read_text
from benchmark.strict_json import read_json
from harness.cli import main
from harness.store import RunStore

ROOT = Path(__file__).resolve().parent.parent


def _args(model: Path, out: Path, *more: str) -> list[str]:
    return [
        "--model", f"hf:{model}", "--tasks", "country_capital", "--limit", "4",
        "--seeds", "0", "--n_shot", "2", "--output_path", str(out), *more,
    ]  # fmt: skip


def _numbers(doc: dict) -> dict:
    return {task: doc["results"][task] for task in doc["results"]}


def _reweigh(folder: Path, seed: int) -> None:
    """Other weights saved over the checkpoint at `folder`, same architecture and tokenizer."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.5)
    model.save_pretrained(folder)


def test_weights_replaced_at_the_same_path_are_computed_again(
    tiny_llama_path, tmp_path, computed, capsys
):
    model = tmp_path / "model"
    shutil.copytree(tiny_llama_path, model)
    out = tmp_path / "runs"
    assert main(_args(model, out)) == 0
    (folder,) = out.glob("*/*/")
    first = run_results(out)
    computed.clear()
    capsys.readouterr()

    _reweigh(model, seed=7)
    assert main(_args(model, out)) == 0
    err = capsys.readouterr().err
    assert computed, "units of the old weights were reused for the new ones"
    assert err.count("loaded other weights") == 1, err  # said once, not once per unit
    assert "computed with other weights" not in err
    again = run_results(out)
    fresh_out = tmp_path / "fresh"
    assert main(_args(model, fresh_out)) == 0
    fresh = run_results(fresh_out)
    assert _numbers(again) == _numbers(fresh)
    assert again["model"]["fingerprint"] == fresh["model"]["fingerprint"]
    assert again["model"]["fingerprint"] != first["model"]["fingerprint"]
    state = json.loads((folder / "state.json").read_text())
    assert state["weights"][0] == fresh["model"]["fingerprint"]
    assert main(["validate", str(folder)]) == 0


def test_a_unit_proves_its_weights(tmp_path, capsys):
    from harness.config import RunConfig

    config = RunConfig(output_path=str(tmp_path))
    store = RunStore(config, {})
    store.bind_weights("aaaa", None)
    assert store.unit("t/prompt-s0", lambda: [1], ["x"]) == [1]
    again = RunStore(config, {})
    again.bind_weights("aaaa", None)
    assert again.unit("t/prompt-s0", lambda: pytest.fail("recomputed"), ["x"]) == [1]
    other = RunStore(config, {})
    other.bind_weights("bbbb", None)
    assert other.unit("t/prompt-s0", lambda: [2], ["x"]) == [2]
    assert "loaded other weights" in capsys.readouterr().err


def _results_at_layer(model: str, tmp_path: Path, layer: int) -> Path:
    out = tmp_path / f"layer{layer}"
    assert main(_args(Path(model), out, "--layer", str(layer))) == 0
    (path,) = out.glob("*/*/results.json")
    return path


def test_another_layer_from_file_at_the_same_path_is_another_run(tiny_llama_path, tmp_path):
    one = _results_at_layer(tiny_llama_path, tmp_path, 1)
    two = _results_at_layer(tiny_llama_path, tmp_path, 2)
    given = tmp_path / "layer.json"
    out = tmp_path / "from"
    shutil.copy(one, given)
    assert main(_args(Path(tiny_llama_path), out, "--layer_from", str(given))) == 0
    shutil.copy(two, given)
    assert main(_args(Path(tiny_llama_path), out, "--layer_from", str(given))) == 0
    folders = sorted(out.glob("*/*/results.json"))
    assert len(folders) == 2, "the second file's run replaced the first's"
    layers = sorted(json.loads(p.read_text())["layer_selection"]["layer"] for p in folders)
    assert layers == [1, 2]


# -- bounded reads of user paths -------------------------------------------------------------


def _cli(*argv: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh process with a deadline: a read that blocks fails the test, never
    hangs the suite."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_layer_from_a_fifo_or_dev_zero_is_one_line(tmp_path, tiny_llama_path, kind):
    path = tmp_path / "results.json"
    if kind == "fifo":
        os.mkfifo(path)
        words = "is a FIFO, not a regular file"
    else:
        path.symlink_to("/dev/zero")
        words = "is a character device, not a regular file"
    done = _cli(*_args(Path(tiny_llama_path), tmp_path / "out", "--layer_from", str(path)))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and str(path) in lines[0] and words in lines[0], done.stderr


def test_reads_are_bounded_and_never_block(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ReadRefused, match="is a FIFO"):
        read_text(fifo)
    obj, errors = read_json(fifo)
    assert obj is None and "is a FIFO" in errors[0].message
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(2000)  # sparse
    data, why = read_capped(big, limit=1000)
    assert data is None and "larger than 1000 bytes" in why
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    assert read_capped(zero)[1].startswith("is a character device")
    assert read_capped(zero, follow_symlinks=False)[1].startswith("is a symbolic link")
