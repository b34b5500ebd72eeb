"""`--preset paper`: the authors' layer, 4-bit NF4 with fp16 compute, their template, N=5 and
three seeds fill every flag not given; explicit flags win and are recorded as departures."""

from __future__ import annotations

import json

import pytest
import tiny_vlms
import torch

from benchmark import measurement_config, validate
from harness import evaluator
from harness.arguments import parse_run_config
from harness.cli import main

# The authors' configs/models/*.yaml: patch_L per model.
AUTHORS_LAYERS = {"idefics2": 16, "llava-1.5": 15, "mantis-fuyu": 23}


@pytest.mark.parametrize("model,layer", AUTHORS_LAYERS.items())
def test_the_preset_is_the_authors_setting(model, layer):
    config = parse_run_config(["--model", model, "--preset", "paper"])
    assert config.layer == layer
    assert config.model_args == {"load_in_4bit": True, "dtype": "float16"}
    assert (config.template, config.n_shot, config.seeds) == ("paper", 5, (1, 2, 3))
    assert config.demo_draw == "authors"  # their numpy stream, seeds from SEED_START = 1
    assert config.preset == "paper" and config.preset_departures == ()


def test_llm_to_vlm_loads_the_base_llm_the_same_way():
    argv = ["--model", "idefics2", "--source_model", "mistral-7b", "--preset", "paper"]
    config = parse_run_config(argv)
    assert config.source_model_args == {"load_in_4bit": True, "dtype": "float16"}


def test_explicit_flags_win_and_are_recorded_as_departures(capsys):
    argv = ["--model", "llava-1.5", "--preset", "paper", "--layer", "10", "--seeds", "0"]
    argv += ["--model_args", "load_in_4bit=false", "--n_shot", "5"]
    config = parse_run_config(argv)
    assert config.layer == 10 and config.seeds == (0,) and config.n_shot == 5
    assert config.model_args == {"load_in_4bit": False, "dtype": "float16"}
    departures = "\n".join(config.preset_departures)
    assert "layer 10 (paper: 15)" in departures and "seeds (0,)" in departures
    assert "load_in_4bit" in departures and "n_shot" not in departures  # 5 is the paper's
    assert "not the paper's setting" in capsys.readouterr().err


def test_the_preset_does_not_change_what_was_measured():
    """Same fields, same measurement: the preset only says how they were filled in."""
    explicit = [
        "--model",
        "idefics2",
        "--layer",
        "16",
        "--model_args",
        "load_in_4bit=true,dtype=float16",
        "--template",
        "paper",
        "--seeds",
        "1,2,3",
        "--demo_draw",
        "authors",
    ]
    with_preset = parse_run_config(["--model", "idefics2", "--preset", "paper"])
    without = parse_run_config(explicit)
    assert measurement_config(with_preset.as_dict()) == measurement_config(without.as_dict())


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--preset", "paper"], "the paper ran idefics2, llava-1.5, mantis-fuyu"),
        (["--model", "idefics2", "--preset", "fast"], "invalid choice: 'fast'"),
    ]
    + (
        []
        if torch.cuda.is_available()
        else [(["--model", "idefics2", "--preset", "paper"], "load_in_4bit=false")]
    ),
)
def test_preset_mistakes_are_one_line_errors(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(evaluator, "load_adapter", lambda *a, **k: pytest.fail("model loaded"))
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage error
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_a_preset_run_records_the_preset_and_its_departures(tmp_path_factory, tmp_path):
    tiny = tiny_vlms.build_idefics2(tmp_path_factory.mktemp("idefics2"))
    argv = ["--model", "idefics2", "--model_args", f"pretrained={tiny},load_in_4bit=false"]
    argv += ["--preset", "paper", "--layer", "1", "--tasks", "food_color", "--limit", "2"]
    argv += ["--seeds", "0", "--output_path", str(tmp_path)]
    assert main(argv) == 0
    (path,) = tmp_path.glob("*/*/results.json")
    doc = json.loads(path.read_text())
    assert validate(doc, "results") == []
    config = doc["config"]
    assert config["preset"] == "paper" and config["n_shot"] == 5 and config["layer"] == 1
    assert any(d.startswith("layer 1 (paper: 16)") for d in config["preset_departures"])
    assert any("load_in_4bit" in d for d in config["preset_departures"])
    assert config["demo_draw"] == "authors"
    assert any("batch 1" in d for d in config["preset_differences"])  # said, not hidden


def test_preset_paper_on_a_gpu_without_bitsandbytes_names_the_extra(monkeypatch, capsys):
    """What a GPU user hits first: the paper's 4-bit setting needs bitsandbytes. One line that
    names the extra, before any weights are fetched (transformers would fail after the
    download, with a traceback)."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)

    def find_spec(name, *args):
        return None if name == "bitsandbytes" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(evaluator, "load_adapter", lambda *a, **k: pytest.fail("model loaded"))
    code = main(["--model", "idefics2", "--preset", "paper", "--tasks", "food_color"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "bitsandbytes" in err and "'.[gpu]'" in err and "Traceback" not in err
