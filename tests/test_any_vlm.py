"""`--model hf-vlm:<repo-or-path>`: one adapter for image-text-to-text models, driven by their
processors. The paper models through it feed the same ids as their dedicated adapters; the
engine's shared paths equal plain forwards through it; architectures it cannot serve exactly
are refused in one line before any weights load."""

from __future__ import annotations

import json

import pytest
import tiny_vlms
import torch
from PIL import Image

from benchmark import validate
from harness import engine, generation, prefix
from harness.adapters import make_adapter
from harness.cli import main
from harness.hooks import Intervention, patched

EXAMPLES = [("France", "Paris"), ("Japan", "Tokyo")]


def img(r, g, b, size=(48, 30)):
    return Image.new("RGB", size, (r, g, b))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return {
        "llava": str(tiny_vlms.build_llava(tmp_path_factory.mktemp("llava"))),
        "idefics2": str(tiny_vlms.build_idefics2(tmp_path_factory.mktemp("idefics2"))),
    }


def _loaded(model, **args):
    adapter = make_adapter(model, **args)
    adapter.load()
    return adapter


def _layer_names(adapter):
    where = {id(module): name for name, module in adapter.model.named_modules()}
    return [where[id(layer)] for layer in adapter.layers]


def _prompts(a):
    return {
        "text spec": a.example_prompt(EXAMPLES, query="Peru"),
        "image spec": a.example_prompt([(img(9, 9, 9), "Paris"), (img(200, 0, 0), "Lima")]),
        "text spec, image query": a.example_prompt(EXAMPLES, query=img(1, 2, 3)),
        "text query": a.query_prompt("Peru"),
        "image query": a.query_prompt(img(0, 200, 0)),
        "instruction": a.instruction_prompt("The capital city of the country:"),
    }


@pytest.mark.parametrize("dedicated", ["llava-1.5", "idefics2"])
def test_the_paper_models_through_it_feed_what_their_own_adapters_feed(built, dedicated):
    path = built["llava" if dedicated == "llava-1.5" else "idefics2"]
    own, generic = _loaded(dedicated, pretrained=path), _loaded(f"hf-vlm:{path}")
    assert generic.image_placeholder == own.image_placeholder == "<image>"
    assert _layer_names(generic) == _layer_names(own)  # the text decoder's, found, not named
    for kind, prompt in _prompts(own).items():
        ours, theirs = own.encode([prompt]), generic.encode([_prompts(generic)[kind]])
        assert torch.equal(ours.input_ids, theirs.input_ids), kind
        assert torch.equal(ours.task_index, theirs.task_index), kind


def test_the_engine_paths_equal_plain_forwards(built):
    a = _loaded(f"hf-vlm:{built['llava']}")
    prompts = [
        a.example_prompt([(img(9, 9, 9), "Paris"), ("Peru", "Lima")], query=img(1, 2, 3)),
        a.query_prompt(img(0, 200, 0)),
        a.query_prompt(img(30, 0, 90)),
    ]
    together = engine.capture_task_states(a, prompts, batch_size=8)
    alone = torch.cat([engine.capture_task_states(a, [p]) for p in prompts])
    assert torch.allclose(together, alone, atol=1e-4)  # batched (left padding) = alone
    vectors = torch.randn(a.num_layers, a.hidden_size)
    queries = prompts[1:]
    fast = engine.sweep_layers(a, queries, vectors, return_logits=True)
    for layer in range(a.num_layers):  # the KV-cached sweep with bands = a full forward
        batch = a.encode(queries)
        iv = Intervention(layer, torch.arange(len(queries)), -1, vectors[layer])
        with patched(a.layers, [iv]), torch.no_grad():
            full = a.model(**batch.model_inputs).logits[:, -1]
        assert torch.allclose(fast[:, layer], full, atol=1e-4), layer
    plain, hot = engine.query_and_patched(a, queries, vectors[None, 1], layer=1)
    assert torch.equal(plain, engine.first_tokens(a, queries))  # the one-pass query and patch
    assert torch.equal(hot[:, 0], engine.patch_last_token(a, queries, vectors[1], layer=1))
    texts = [a.example_prompt(EXAMPLES[:k], query=q) for k in (1, 2) for q in ("Peru", "Chile")]
    rows = a.token_rows(texts)
    assert rows is not None and prefix.can_share(a, rows)
    shared = engine.first_tokens(a, texts)  # shared beginnings = whole prompts
    assert torch.equal(shared, engine.first_tokens(a, texts, sharing_prefixes=False))
    cached = generation.generate(a, queries, max_new_tokens=3, vector=vectors[1], layer=1)
    assert cached == [
        generation.generate(a, [q], max_new_tokens=3, vector=vectors[1], layer=1)[0]
        for q in queries
    ]


def test_a_run_through_it_end_to_end(built, tmp_path):
    data = str(tiny_vlms.write_image_dataset(tmp_path / "built", ["food_color"]))
    argv = ["--model", f"hf-vlm:{built['llava']}", "--query", "image", "--data", data]
    argv += ["--tasks", "food_color", "--limit", "3", "--seeds", "0", "--n_shot", "2"]
    assert main([*argv, "--output_path", str(tmp_path / "out")]) == 0
    (path,) = (tmp_path / "out").glob("*/*/results.json")
    doc = json.loads(path.read_text())
    assert validate(doc, "results") == []
    assert doc["model"]["name"] == f"hf-vlm:{built['llava']}"
    assert doc["model"]["adapter"] == "AnyVLMAdapter"


def _config_only(tmp_path, config):
    """A checkpoint folder holding its config alone: a refusal must come before any weights."""
    config.save_pretrained(tmp_path)
    return str(tmp_path)


@pytest.mark.parametrize(
    "make,why",
    [
        ("qwen2_vl", "M-RoPE"),
        ("mllama", "cross-attention"),
        ("t5", "encoder-decoder"),
        ("bert", "trust_remote_code"),
    ],
)
def test_what_it_cannot_serve_is_refused_in_one_line_before_any_weights(
    tmp_path, make, why, capsys
):
    from transformers import AutoConfig

    folder = _config_only(tmp_path, AutoConfig.for_model(make))
    code = main(["--model", f"hf-vlm:{folder}", "--tasks", "food_color", "--limit", "2"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert why in err and "Traceback" not in err


def test_ls_models_lists_the_scheme(capsys):
    assert main(["ls", "models"]) == 0
    assert "hf-vlm" in capsys.readouterr().out
