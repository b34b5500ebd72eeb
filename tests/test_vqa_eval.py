"""VQA evaluation (paper, Table 4) on a VQA dataset built by the real builder from small inputs:
items, splits and captions come from the build; text examples are captions, image examples are
images, queries are images; all four methods run; mixing with other tasks or a missing --data is
a one-line error before any model loads."""

from __future__ import annotations

import json

import pytest
import tiny_vlms
from PIL import Image

from benchmark import validate
from builders.sources import CocoImages
from builders.vqa import QA, build_vqa
from harness import evaluator
from harness.arguments import parse_run_config
from harness.cli import main
from harness.context import EvalContext
from harness.prepare import load_run_data

QUESTIONS = {
    "vqa_food_class": "What kind of food is this?",
    "vqa_shirt_color": "What color is the man's shirt?",
}
FOODS = ["pizza", "cake", "sandwich", "salad"]
COLOURS = ["red", "blue", "white", "black"]


@pytest.fixture(scope="module")
def vqa_data(tmp_path_factory) -> str:
    """8 validation + 6 test items per question, each on its own COCO-named image."""
    root = tmp_path_factory.mktemp("vqa")
    images = root / "val2014"
    images.mkdir()
    qas, captions = [], {}
    for i in range(28):
        image_id = 1000 + i
        colour = ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
        Image.new("RGB", (40, 30), colour).save(images / f"COCO_val2014_{image_id:012d}.jpg")
        food = i < 14
        answer = FOODS[i % 4] if food else COLOURS[i % 4]
        question = QUESTIONS["vqa_food_class" if food else "vqa_shirt_color"]
        qas.append(
            QA(
                question_id=image_id * 10,
                image_id=image_id,
                question=question,
                answers=[answer] * 10,
            )
        )
        captions[image_id] = f"A photo number {i} showing some {answer} things."
    out = root / "built"
    build_vqa(
        out, qas, captions, CocoImages([images]), questions=QUESTIONS, n_validation=8, n_test=6
    )
    return str(out)


@pytest.fixture(scope="module")
def idefics2(tmp_path_factory) -> str:
    return str(tiny_vlms.build_idefics2(tmp_path_factory.mktemp("idefics2")))


def _argv(model: str, data: str, out, *extra: str) -> list[str]:
    return [
        "--model",
        "idefics2",
        "--model_args",
        f"pretrained={model}",
        "--tasks",
        ",".join(QUESTIONS),
        "--data",
        data,
        "--seeds",
        "0",
        "--n_shot",
        "2",
        "--output_path",
        str(out),
        *extra,
    ]


def test_vqa_items_are_the_builds_with_captions_as_their_text(vqa_data, idefics2):
    config = parse_run_config(_argv(idefics2, vqa_data, "runs"))
    assert config.query == "image"  # the paper asks VQA questions of images
    data = load_run_data(config)
    food = data["vqa_food_class"]
    assert [len(food.splits[s]) for s in ("validation", "test")] == [8, 6]
    assert food.instruction == "What kind of food is this?"
    for record in food.splits["test"]:
        assert record["input"].startswith("A photo number ")
        assert record["output"] in FOODS and record["input"].endswith(f"{record['output']} things.")
    assert {r["output"] for r in data["vqa_shirt_color"].splits["test"]} <= set(COLOURS)


@pytest.mark.parametrize("spec", ["text_examples", "image_examples"])
def test_text_examples_are_captions_and_image_examples_are_images(
    vqa_data, idefics2, spec, monkeypatch
):
    config = parse_run_config(_argv(idefics2, vqa_data, "runs", "--spec", spec))
    data = load_run_data(config)
    seen = []

    class Recorder:
        def example_prompt(self, examples, query=None, instruction=None):
            seen.append((examples, query, instruction))

    ctx = EvalContext(config, data, Recorder(), vectors=lambda task, seed: None)
    record = data["vqa_food_class"].splits["test"][0]
    ctx.spec_and_query_prompt("vqa_food_class", record, 0)
    ((examples, query, instruction),) = seen
    assert query is record["image"] and instruction is None
    assert len(examples) == 2
    for shown, answer in examples:
        (demo,) = [
            r
            for r in data["vqa_food_class"].splits["test"]
            if (shown == r["input"] if spec == "text_examples" else shown is r["image"])
        ]
        assert demo["id"] != record["id"] and answer == demo["output"]
        if spec == "text_examples":  # the caption, never the question
            assert shown.startswith("A photo number ") and "?" not in shown


def test_vqa_run_end_to_end_on_a_tiny_vlm(vqa_data, idefics2, tmp_path):
    assert main(_argv(idefics2, vqa_data, tmp_path)) == 0
    (path,) = tmp_path.glob("*/*/results.json")
    doc = json.loads(path.read_text())
    assert validate(doc, "results") == []
    assert doc["config"]["query"] == "image" and doc["config"]["spec"] == "text_examples"
    for task in QUESTIONS:
        assert set(doc["results"][task]) == {"no_context", "majority", "prompt", "patch"}
        assert doc["results"][task]["patch"]["n"] == 6
        split = doc["splits"][task]
        assert (split["validation"], split["test"]) == (8, 6)
        assert split["source"] == f"vqa:{vqa_data}"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--tasks", "vqa_food_class,country_capital", "--data", "x"], "run them separately"),
        (["--tasks", "vqa_food_class", "--model", "idefics2"], "vlm-tv-build vqa"),
        (
            ["--tasks", "vqa_man_holding", "--model", "idefics2", "--data", "/no/such/build"],
            "vlm-tv-build vqa",
        ),
    ],
)
def test_vqa_mistakes_are_one_line_errors(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(evaluator, "load_adapter", lambda *a, **k: pytest.fail("model loaded"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
