"""The harness's shape: small modules, an explicit adapter contract, one checkpoint table, and
light commands that never import torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.adapters import import_class, make_adapter
from harness.adapters.base import Adapter
from harness.checkpoints import CHECKPOINTS
from harness.config import RunConfig


def test_the_adapter_contract_is_its_abstract_members():
    assert Adapter.__abstractmethods__ == {
        "load",
        "layers",
        "encode",
        "hidden_size",
        "num_layers",
    }

    class Incomplete(Adapter):
        def load(self):
            pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


def test_every_checkpoint_runs_on_a_known_adapter_and_pairs_are_mutual():
    for ckpt in CHECKPOINTS.values():
        assert issubclass(import_class(ckpt.adapter), Adapter), ckpt.name
        if ckpt.paired_with:
            assert CHECKPOINTS[ckpt.paired_with].paired_with == ckpt.name
            # LLM->VLM patches at the same layer, so a pair shares depth and the authors' layer.
            pair = CHECKPOINTS[ckpt.paired_with]
            assert (pair.num_layers, pair.authors_layer) == (ckpt.num_layers, ckpt.authors_layer)
    assert CHECKPOINTS["idefics2"].authors_layer == 16
    assert CHECKPOINTS["llava-1.5"].authors_layer == 15
    assert CHECKPOINTS["mantis-fuyu"].authors_layer == 23


def test_prompt_format_is_fixed_at_construction():
    default = make_adapter("idefics2")
    spaced = make_adapter("idefics2", template="spaced", chat="model_one_turn")
    assert default.template.name == "paper" and not default.chat
    assert spaced.template.name == "spaced" and spaced.chat
    assert make_adapter("smollm2-135m").template.name == "spaced"  # the table's default


@pytest.mark.parametrize("command", ["harness.cli", "benchmark", "leaderboard.build"])
def test_light_entry_points_do_not_import_torch(command):
    code = f"import sys, {command}; assert 'torch' not in sys.modules, 'torch was imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_run_id_and_leaderboard_share_one_rule_for_what_changes_a_number():
    from benchmark import EXECUTION_KEYS
    from harness.config import RunConfig
    from harness.store import run_id

    base = RunConfig()
    moved = RunConfig(device="cuda:1", batch_size=4, output_path="elsewhere", log_samples=True)
    assert run_id(base, {}) == run_id(moved, {})
    assert run_id(base, {}) != run_id(RunConfig(n_shot=4), {})
    assert not set(EXECUTION_KEYS) & set(base.identity())


def test_a_published_run_keeps_its_id_when_fields_are_added():
    """The committed Gemma 3 submission's run id is still what its setting hashes to, and the
    default run keeps the id it was published with on 2026-11-23 (text_examples-c167871e2740,
    before `--score` and `demo_draw` existed): a field added since counts only away from its
    default, so old run folders resume."""
    import json

    from harness.prepare import load_run_data
    from harness.store import run_id

    path = Path(__file__).parent.parent / "leaderboard/submissions"
    doc = json.loads((path / "gemma-3-270m-cpu_text-examples-to-text.json").read_text())
    assert doc["results"]["config"]["score"] == "whole_answer"
    config = RunConfig(model="gemma3-270m", score="whole_answer")
    assert run_id(config, load_run_data(config)) == doc["results"]["run_id"]
    default = RunConfig(model="gemma3-270m")
    assert run_id(default, load_run_data(default)) == "text_examples-c167871e2740"
    authors = RunConfig(model="gemma3-270m", demo_draw="authors")
    assert run_id(authors, load_run_data(authors)) != run_id(default, load_run_data(default))
