"""VLM adapters on tiny random Idefics2, LLaVA and Fuyu models built offline."""

import json

import pytest
import tiny_vlms
import torch
from PIL import Image

from benchmark import validate
from harness import engine
from harness.adapters import make_adapter
from harness.cli import main
from harness.hooks import Intervention, patched

VLMS = {
    "idefics2": tiny_vlms.build_idefics2,
    "llava-1.5": tiny_vlms.build_llava,
    "mantis-fuyu": tiny_vlms.build_fuyu,
}


@pytest.fixture(scope="session")
def vlm_paths(tmp_path_factory):
    return {name: str(build(tmp_path_factory.mktemp(name))) for name, build in VLMS.items()}


@pytest.fixture(scope="session")
def vlm(vlm_paths):
    cache = {}

    def get(name):
        if name not in cache:
            adapter = make_adapter(name, pretrained=vlm_paths[name])
            adapter.load()
            cache[name] = adapter
        return cache[name]

    return get


@pytest.fixture(scope="session")
def image_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("built")
    return str(tiny_vlms.write_image_dataset(root, ["country_capital", "food_color"]))


def img(r, g, b, size=(48, 30)):
    return Image.new("RGB", size, (r, g, b))


def tokens_around(adapter, batch, row, col, before=2, after=2):
    ids = batch.input_ids[row, col - before : col + after + 1].tolist()
    return adapter.tokenizer.convert_ids_to_tokens(ids)


@pytest.mark.parametrize("name", list(VLMS))
def test_task_positions_come_from_the_processed_ids(vlm, name):
    a = vlm(name)
    spec = a.example_prompt([(img(9, 9, 9), "Paris"), (img(200, 0, 0), "Tokyo")])
    mixed = a.example_prompt([("France", "Paris"), (img(0, 0, 200), "Lima")], query=img(5, 5, 5))
    query = a.query_prompt(img(0, 200, 0))
    assert len(spec.images) == 2 and len(mixed.images) == 2 and len(query.images) == 1
    assert all(i.width == 224 for i in spec.images)  # the paper's width, aspect kept
    batch = a.encode([spec, mixed, query])
    for row, answer in ((0, "Tokyo"), (1, "Lima")):
        col = int(batch.task_index[row])
        # The captured token is the colon of the last example's "A:", and the answer follows.
        assert a.tokenizer.convert_ids_to_tokens(int(batch.input_ids[row, col])).endswith(":")
        assert a.tokenizer.convert_ids_to_tokens(int(batch.input_ids[row, col - 1])) == "A"
        rest = a.tokenizer.decode(batch.input_ids[row, col + 1 :].tolist())
        assert rest.startswith(answer), rest
    # The patched position is the query's last token, the colon of its "A:".
    assert int(batch.task_index[2]) == batch.input_ids.shape[1] - 1
    assert tokens_around(a, batch, 2, int(batch.task_index[2]), after=0)[-2:] == ["A", ":"]


@pytest.mark.parametrize("name", list(VLMS))
def test_patching_changes_logits_and_leaves_earlier_positions(vlm, name):
    a = vlm(name)
    prompts = [a.query_prompt(img(0, 200, 0)), a.query_prompt("France")]
    batch = a.encode(prompts)
    seen = []

    def run(interventions):
        seen.clear()
        with patched(a.layers, interventions), torch.no_grad():
            hook = a.layers[-1].register_forward_hook(
                lambda _m, _i, o: seen.append(o if torch.is_tensor(o) else o[0])
            )
            try:
                logits = a.model(**batch.model_inputs).logits
            finally:
                hook.remove()
        return logits, seen[0]

    clean_logits, clean_last = run([])
    vec = torch.randn(a.hidden_size) * 5
    hot_logits, hot_last = run([Intervention(1, torch.tensor([0, 1]), -1, vec)])
    assert not torch.allclose(hot_logits[:, -1], clean_logits[:, -1])
    assert torch.allclose(hot_last[:, :-1], clean_last[:, :-1], atol=1e-5)


@pytest.mark.parametrize("name", list(VLMS))
def test_batched_equals_unbatched_and_sweep_equals_full(vlm, name):
    a = vlm(name)
    prompts = [
        a.example_prompt([(img(9, 9, 9), "Paris"), ("Peru", "Lima")], query=img(1, 2, 3)),
        a.query_prompt(img(0, 200, 0)),
        a.query_prompt("Japan"),
    ]
    together = engine.capture_task_states(a, prompts, batch_size=8)
    alone = torch.cat([engine.capture_task_states(a, [p]) for p in prompts])
    assert torch.allclose(together, alone, atol=1e-4)
    vectors = torch.randn(a.num_layers, a.hidden_size)
    queries = prompts[1:]
    fast = engine.sweep_layers(a, queries, vectors, return_logits=True)
    for layer in range(a.num_layers):
        batch = a.encode(queries)
        iv = Intervention(layer, torch.arange(len(queries)), -1, vectors[layer])
        with patched(a.layers, [iv]), torch.no_grad():
            full = a.model(**batch.model_inputs).logits[:, -1]
        assert torch.allclose(fast[:, layer], full, atol=1e-4), layer


def _run(args, out):
    assert (
        main(
            [
                *args,
                "--tasks",
                "country_capital,food_color",
                "--limit",
                "3",
                "--seeds",
                "0",
                "--n_shot",
                "2",
                "--output_path",
                str(out),
            ]
        )
        == 0
    ), args
    (path,) = out.glob("*/*/results.json")
    doc = json.loads(path.read_text())
    assert validate(doc, "results") == []
    return doc


@pytest.mark.parametrize(
    "spec,query",
    [
        ("text_examples", "image"),
        ("image_examples", "image"),
        ("image_examples", "text"),
        ("text_examples", "text"),
        ("instruction", "image"),
        ("ensemble", "image"),
    ],
)
def test_cli_modalities_end_to_end(vlm_paths, image_data, tmp_path, spec, query):
    doc = _run(
        [
            "--model",
            "idefics2",
            "--model_args",
            f"pretrained={vlm_paths['idefics2']}",
            "--spec",
            spec,
            "--query",
            query,
            "--data",
            image_data,
        ],
        tmp_path,
    )
    assert doc["config"]["spec"] == spec and doc["config"]["query"] == query
    assert set(doc["results"]["food_color"]) == {"no_context", "majority", "prompt", "patch"}
    uses_images = spec == "image_examples" or query == "image"
    assert ("images:" in doc["config"]["task_sources"]["food_color"]) == uses_images


@pytest.mark.parametrize("name", ["llava-1.5", "mantis-fuyu"])
def test_cli_image_to_image_on_other_vlms(vlm_paths, image_data, tmp_path, name):
    doc = _run(
        [
            "--model",
            name,
            "--model_args",
            f"pretrained={vlm_paths[name]}",
            "--spec",
            "image_examples",
            "--query",
            "image",
            "--data",
            image_data,
            "--methods",
            "prompt,patch",
        ],
        tmp_path,
    )
    assert doc["model"]["name"] == name


def test_llm_to_vlm_transfer(vlm_paths, image_data, tmp_path_factory, tmp_path):
    llm = tiny_vlms.build_llm(tmp_path_factory.mktemp("llm"))
    doc = _run(
        [
            "--model",
            "idefics2",
            "--model_args",
            f"pretrained={vlm_paths['idefics2']}",
            "--source_model",
            f"hf:{llm}",
            "--query",
            "image",
            "--data",
            image_data,
            "--methods",
            "no_context,patch",
        ],
        tmp_path,
    )
    transfer = doc["transfer"]
    assert transfer["source_model"] == f"hf:{llm}"
    assert doc["model"]["source_model"]["pretrained"] == str(llm)
    assert doc["model"]["device"] == "cpu"
    assert set(transfer["cosine"]) == {"country_capital", "food_color"}
    assert all(-1 <= c <= 1 for c in transfer["cosine"].values())
    assert "mean_mismatched_cosine" in transfer


def test_llm_to_vlm_with_a_mismatched_hidden_size_is_a_clear_error(
    vlm_paths, image_data, tmp_path_factory, tmp_path, capsys
):
    wide = tiny_vlms.build_wide_llm(tmp_path_factory.mktemp("wide"))
    code = main(
        [
            "--model",
            "idefics2",
            "--model_args",
            f"pretrained={vlm_paths['idefics2']}",
            "--source_model",
            f"hf:{wide}",
            "--query",
            "image",
            "--data",
            image_data,
            "--tasks",
            "food_color",
            "--limit",
            "3",
            "--output_path",
            str(tmp_path),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "hidden size 96" in err and "has 64" in err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--model", "idefics2", "--query", "image"], "--data"),
        (["--query", "image", "--data", "x"], "text-only"),
        (
            [
                "--model",
                "idefics2",
                "--spec",
                "image_examples",
                "--source_model",
                "mistral-7b",
                "--data",
                "x",
            ],
            "text-only",
        ),
    ],
)
def test_image_mode_errors_before_loading(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_model_template_without_a_chat_template_is_a_clear_error(vlm):
    a = vlm("llava-1.5").with_prompting(chat=True)
    with pytest.raises(ValueError, match="no chat template"):
        a.query_prompt("France")


def test_model_template_wraps_prompts_and_moves_the_task_token(vlm):
    a = vlm("idefics2")
    a.tokenizer.chat_template = (
        "{% for m in messages %}User:{{ m['content'] }}<end_of_utterance>\n{% endfor %}"
        "{% if add_generation_prompt %}Assistant:{% endif %}"
    )
    chat = a.with_prompting(chat=True)
    try:
        assert not a.chat and chat.chat and chat.model is a.model  # a copy; the original stays
        a = chat
        spec = a.example_prompt([("France", "Paris"), ("Peru", "Lima")])
        assert spec.text.startswith("User:") and spec.text.endswith("Assistant:")
        assert spec.text[spec.task_char] == ":" and spec.text[spec.task_char + 1 :].startswith(
            "Lima"
        )
        batch = a.encode([spec])
        col = int(batch.task_index[0])
        assert a.tokenizer.decode(batch.input_ids[0, col + 1 :].tolist()).startswith("Lima")
        assert a.chat_parts() == ("User:", "<end_of_utterance>\nAssistant:")
    finally:
        a.tokenizer.chat_template = None


def test_items_without_images_are_left_out_and_recorded(vlm_paths, tmp_path):
    from benchmark import load_task
    from builders.cross_modal import write_dataset

    rows = [dict(r, image=img(i % 250, 5, 5)) for i, r in enumerate(load_task("food_color"))]
    gone = {rows[0]["id"], rows[-1]["id"]}
    rows = [r for r in rows if r["id"] not in gone]  # as a build with --allow-missing leaves it
    data = write_dataset(tmp_path / "built", {"food_color": rows})
    assert (
        main(
            [
                "--model",
                "idefics2",
                "--model_args",
                f"pretrained={vlm_paths['idefics2']}",
                "--query",
                "image",
                "--data",
                str(data),
                "--tasks",
                "food_color",
                "--limit",
                "3",
                "--seeds",
                "0",
                "--n_shot",
                "2",
                "--methods",
                "no_context",
                "--output_path",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    (path,) = (tmp_path / "out").glob("*/*/results.json")
    split = json.loads(path.read_text())["splits"]["food_color"]
    assert set(split["missing_images"]) == gone


@pytest.mark.parametrize(
    "build_text_only,message",
    [(False, "vlm-tv-build cross-modal"), (True, "no images")],
    ids=["no-dataset", "text-only-build"],
)
def test_unusable_image_data_says_how_to_build_it(tmp_path, capsys, build_text_only, message):
    from builders.cli import main as build

    data = tmp_path / "data"
    if build_text_only:
        assert build(["text-only", "--out", str(data), "--tasks", "food_color"]) == 0
    argv = ["--model", "idefics2", "--query", "image", "--data", str(data), "--tasks", "food_color"]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("name", list(VLMS))
def test_generation_with_images_batched_equals_unbatched(vlm, name):
    a = vlm(name)
    prompts = [
        a.query_prompt(img(0, 200, 0)),
        a.example_prompt([(img(9, 9, 9), "Paris"), ("Peru", "Lima")], query=img(1, 2, 3)),
        a.query_prompt("Japan"),
    ]
    together = engine.generate(a, prompts, max_new_tokens=5, batch_size=8, stop=())
    alone = [engine.generate(a, [p], max_new_tokens=5, stop=())[0] for p in prompts]
    assert together == alone
    vec = torch.randn(a.hidden_size) * 8
    hot = engine.generate(a, prompts, max_new_tokens=5, vector=vec, layer=1, stop=())
    assert hot != together
