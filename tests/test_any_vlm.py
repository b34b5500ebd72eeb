"""`--model hf-vlm:<repo-or-path>`: one adapter for image-text-to-text models, driven by their
processors. The paper models through it feed the same ids as their dedicated adapters; the
engine's shared paths equal plain forwards through it; architectures it cannot serve exactly
are refused in one line before any weights load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny_vlms
import tiny_vlms_more
import tiny_vlms_standin
import torch
from PIL import Image
from transformers import AutoProcessor

from benchmark import validate
from harness import engine, generation, prefix
from harness.adapters import make_adapter
from harness.adapters.base import (
    BATCHED_IMAGES,
    CUT_AFTER_TASK_TOKEN,
    KV_STEPS,
    SHARED_PREFIXES,
)
from harness.cli import main
from harness.errors import ConfigError
from harness.hooks import Intervention, patched
from leaderboard.cli import main as leaderboard_main

EXAMPLES = [("France", "Paris"), ("Japan", "Tokyo")]


def img(r, g, b, size=(48, 30)):
    return Image.new("RGB", size, (r, g, b))


# Architectures served, each a tiny random checkpoint with its processor built offline; the
# paper's LLaVA and Idefics2 among them. Mistral 3's and InternVL's real processors need
# torchvision, which these machines cannot install: their models run here with a stand-in
# processor that writes what the real one writes (tiny_vlms_standin.STAND_INS).
SERVED = {
    "llava": tiny_vlms.build_llava,
    "idefics2": tiny_vlms.build_idefics2,
    **tiny_vlms_more.BUILDERS,
    **tiny_vlms_standin.BUILDERS,
}
# The engine's shared paths each architecture turns off, and why (from its config, no class).
PATHS_OFF = {
    "paligemma": {KV_STEPS, SHARED_PREFIXES, CUT_AFTER_TASK_TOKEN},  # a prefix LM
    "mllama": {SHARED_PREFIXES, BATCHED_IMAGES},  # cross-attention image layers
}
IMAGE_ONLY = {"paligemma"}  # its processor takes no prompt without an image
# LLaVA-OneVision's stand-in processor (LLaVA-NeXT's) writes one image per prompt as OneVision's
# does, not several (tiny_vlms_more.PROCESSOR_STAND_INS).
ONE_IMAGE = {"llava_onevision"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    paths: dict[str, str] = {}

    def get(name):
        if name not in paths:
            paths[name] = str(SERVED[name](tmp_path_factory.mktemp(name)))
        return paths[name]

    return get


def _loaded(model, **args):
    """The adapter, loaded; a stand-in processor where the real one needs torchvision."""
    adapter = make_adapter(model, **args)
    folder = str(adapter.pretrained)
    arch = json.loads((Path(folder) / "config.json").read_text())["model_type"]
    stand_in = tiny_vlms_standin.STAND_IN_CLASSES.get(arch)
    if stand_in is None:
        adapter.load()
        return adapter
    with pytest.MonkeyPatch.context() as mp:
        load = lambda *a, **k: stand_in.from_pretrained(folder)  # noqa: E731
        mp.setattr(AutoProcessor, "from_pretrained", load)
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
    path = built("llava" if dedicated == "llava-1.5" else "idefics2")
    own, generic = _loaded(dedicated, pretrained=path), _loaded(f"hf-vlm:{path}")
    assert generic.image_placeholder == own.image_placeholder == "<image>"
    assert _layer_names(generic) == _layer_names(own)  # the text decoder's, found, not named
    for kind, prompt in _prompts(own).items():
        ours, theirs = own.encode([prompt]), generic.encode([_prompts(generic)[kind]])
        assert torch.equal(ours.input_ids, theirs.input_ids), kind
        assert torch.equal(ours.task_index, theirs.task_index), kind


# What a generated token's per-token inputs are when a whole forward is run again: PaliGemma's
# generated tokens are its causal suffix (token type 1, as its `generate` marks them); every
# other type marks text 0; a token reads the images its prompt's last token reads (Mllama).
GENERATED_TYPE = {"paligemma": 1}


def _no_cache_generation(a, arch, prompt, vector, layer, n):
    """Greedy text by whole forwards over the prompt and what was generated so far, the prompt's
    last token patched in each: the reference for the cached, batched loop."""
    inputs = dict(a.encode([prompt]).model_inputs)
    last = inputs["input_ids"].shape[1] - 1
    tokens = []
    for _ in range(n):
        iv = Intervention(layer, torch.tensor([0]), last, vector)
        with patched(a.layers, [iv]), torch.no_grad():
            token = int(a.model(**inputs).logits[0, -1].argmax())
        if token == a.tokenizer.eos_token_id:
            break
        tokens.append(token)
        for key, v in inputs.items():
            if key == "input_ids":
                inputs[key] = torch.cat([v, v.new_tensor([[token]])], dim=1)
            elif key == "attention_mask":
                inputs[key] = torch.cat([v, v.new_ones(1, 1)], dim=1)
            elif key == "position_ids":
                inputs[key] = torch.cat([v, v[..., -1:] + 1], dim=-1)
            elif key in ("token_type_ids", "mm_token_type_ids"):
                inputs[key] = torch.cat([v, v.new_full((1, 1), GENERATED_TYPE.get(arch, 0))], 1)
            elif key == "cross_attention_mask":
                inputs[key] = torch.cat([v, v[:, -1:]], dim=1)
    return a.tokenizer.decode(tokens).split("\n")[0]


@pytest.mark.parametrize("arch", list(SERVED))
def test_the_engine_paths_equal_plain_forwards(built, arch, capsys):
    a = _loaded(f"hf-vlm:{built(arch)}")
    layers = {**tiny_vlms_more.DECODER_LAYERS, **tiny_vlms_standin.DECODER_LAYERS}
    where = layers.get(arch, _layer_names(a)[0][:-2])
    assert _layer_names(a) == [f"{where}.{i}" for i in range(a.num_layers)]
    off = PATHS_OFF.get(arch, set())
    assert set(a.describe().get("engine_paths_off", {})) == off  # recorded in results
    queries = [a.query_prompt(img(0, 200, 0)), a.query_prompt(img(30, 0, 90, (20, 44)))]
    first = ("France", "Paris") if arch in ONE_IMAGE else (img(9, 9, 9), "Paris")
    spec = a.example_prompt([first, ("Peru", "Lima")], query=img(1, 2, 3))
    prompts = queries if arch in IMAGE_ONLY else [spec, *queries]
    together = engine.capture_task_states(a, prompts, batch_size=8)
    alone = torch.cat([engine.capture_task_states(a, [p]) for p in prompts])
    assert torch.allclose(together, alone, atol=1e-4)  # batched (left padding) = alone
    # The states read the image, not its placeholder's embedding (the same query, two images);
    # the tiny Gemma 3's sliding window (8 tokens, every layer) hides the image from "A:".
    assert torch.allclose(alone[-2, -1], alone[-1, -1], atol=1e-4) == (arch == "gemma3")
    for q in prompts:  # the positions fed are the model's own (Qwen's 3-D M-RoPE grid included)
        inputs = a.encode([q]).model_inputs
        own = {k: v for k, v in inputs.items() if k != "position_ids"}
        with torch.no_grad():
            logits = a.model(**inputs).logits[:, -1]
            assert torch.allclose(logits, a.model(**own).logits[:, -1], atol=1e-5)
    vectors = torch.randn(a.num_layers, a.hidden_size)
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
    cached = generation.generate(a, queries, max_new_tokens=3, vector=vectors[1], layer=1)
    assert cached == [_no_cache_generation(a, arch, q, vectors[1], 1, 3) for q in queries]
    said = capsys.readouterr().err
    assert all(path in a.paths_off() for path in off) and said.count("note:") == len(off - {
        SHARED_PREFIXES})  # fmt: skip
    if arch in IMAGE_ONLY:  # text prompts are refused in one line naming the processor
        with pytest.raises(ConfigError, match="its processor refuses this prompt"):
            a.encode([a.query_prompt("Peru")])
        return
    texts = [a.example_prompt(EXAMPLES[:k], query=q) for k in (1, 2) for q in ("Peru", "Chile")]
    rows = a.token_rows(texts)
    # Shared beginnings run once, except past a sliding window (the tiny Gemma 3's is 8) and
    # where the architecture turns them off.
    sharing = arch != "gemma3" and SHARED_PREFIXES not in off
    assert rows is not None and prefix.can_share(a, rows) == sharing
    shared = engine.first_tokens(a, texts)  # shared beginnings = whole prompts
    assert torch.equal(shared, engine.first_tokens(a, texts, sharing_prefixes=False))
    states = engine.capture_task_states(a, texts, sharing=True)
    assert torch.allclose(states, engine.capture_task_states(a, texts), atol=1e-4)


def test_a_layer_that_does_not_run_hands_its_input_on(built):
    """Mllama skips its cross-attention layer (1 of 4 in the tiny one) for a prompt without an
    image: the layer's state is then its input, and a patch there reaches the layers above
    (landing on the next layer's input) as a patch of the layer below would; never lost."""
    a = _loaded(f"hf-vlm:{built('mllama')}")
    assert list(a.model.config.text_config.cross_attention_layers) == [1]
    texts = [a.example_prompt(EXAMPLES, query="Peru"), a.query_prompt("Chile")]
    states = engine.capture_task_states(a, texts)
    assert torch.equal(states[:, 1], states[:, 0]) and not torch.equal(states[:, 2], states[:, 1])
    vectors = torch.randn(a.num_layers, a.hidden_size)
    vectors[1] = vectors[0]
    swept = engine.sweep_layers(a, texts, vectors, return_logits=True)
    assert torch.allclose(swept[:, 1], swept[:, 0], atol=1e-5)
    assert not torch.allclose(swept[:, 1], engine.sweep_layers(a, texts, vectors * 0, [1], 1024,
                                                               True)[:, 0])  # fmt: skip
    batch = a.encode(texts)
    with patched(a.layers, [Intervention(1, torch.arange(2), -1, vectors[1])]), torch.no_grad():
        full = a.model(**batch.model_inputs).logits[:, -1]
    assert torch.allclose(swept[:, 1], full, atol=1e-4)


@pytest.mark.parametrize("arch", ["llava_next", "smolvlm", "qwen2_vl"])
def test_a_run_through_it_end_to_end(built, tmp_path, arch):
    data = str(tiny_vlms.write_image_dataset(tmp_path / "built", ["food_color"]))
    argv = ["--model", f"hf-vlm:{built(arch)}", "--query", "image", "--data", data]
    argv += ["--tasks", "food_color", "--limit", "3", "--seeds", "0", "--n_shot", "2"]
    assert main([*argv, "--output_path", str(tmp_path / "out")]) == 0
    (path,) = (tmp_path / "out").glob("*/*/results.json")
    doc = json.loads(path.read_text())
    assert validate(doc, "results") == []
    assert doc["model"]["name"] == f"hf-vlm:{built(arch)}"
    assert doc["model"]["adapter"] == "AnyVLMAdapter"
    # The leaderboard takes the run as a submission and shows it.
    root = tmp_path / "leaderboard"
    (root / "submissions").mkdir(parents=True)
    name = f"tiny {arch.replace('_', '-')}"
    add = ["--root", str(root), "add", str(path), "--name", name, "--submitted-by", "t"]
    add += ["--allow_partial"]  # --limit 3, one task, one seed: shown, not ranked
    assert leaderboard_main([*add, "--date", "2026-12-02", "--hardware", "cpu"]) == 0
    assert leaderboard_main(["--root", str(root), "build"]) == 0
    assert f"| [{name}](submissions/" in (root / "README.md").read_text()


def _config_only(tmp_path, config):
    """A checkpoint folder holding its config alone: a refusal must come before any weights."""
    config.save_pretrained(tmp_path)
    return str(tmp_path)


@pytest.mark.parametrize(
    "make,why",
    [
        ("gemma3n", "audio"),
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


# One image query, `Q:<image>\nA:`, as each processor lays it out (written from the processors'
# sources for the tiny configs of tiny_vlms_more: Idefics3/SmolVLM wrap the 16 patches, pooled
# 2x2 into 4 tokens, as <fake_token_around_image><global-img> ... <fake_token_around_image>;
# LLaVA-NeXT/OneVision give 16 base + 16 tile + 4 row-newline tokens = 36 <image> tokens for a
# 32x32-tile grid). The placeholder is what each chat template writes for one image.
LAYOUTS = {
    "idefics3": ["<fake_token_around_image>", "<global-img>", *["<image>"] * 4,
                 "<fake_token_around_image>"],
    "smolvlm": ["<fake_token_around_image>", "<global-img>", *["<image>"] * 4,
                "<fake_token_around_image>"],
    "llava_next": ["<image>"] * 36 + ["Ċ"],
    "llava_onevision": ["<image>"] * 36 + ["Ċ"],
    # Qwen2/2.5/3-VL: 4x4 patches of 8 px, merged 2x2 (merge_size) into 4 <|image_pad|>, inside
    # the <|vision_start|>...<|vision_end|> their chat template writes for an image.
    **dict.fromkeys(("qwen2_vl", "qwen2_5_vl", "qwen3_vl"), [
        "<|vision_start|>", *["<|image_pad|>"] * 4, "<|vision_end|>"]),
    # Mistral 3 (Pixtral): the 4x4 patches merged 2x2 give 2 rows of 2 [IMG]; [IMG_BREAK] ends
    # a row, [IMG_END] the last.
    "mistral3": ["[IMG]", "[IMG]", "[IMG_BREAK]", "[IMG]", "[IMG]", "[IMG_END]"],
    # InternVL: pixel shuffle at 0.5 turns 4x4 patches into 4 <IMG_CONTEXT> in <img>...</img>;
    # its template puts a newline after the image.
    "internvl": ["<img>", *["<IMG_CONTEXT>"] * 4, "</img>", "Ċ"],
    # Mllama: one <|image|>, not expanded: the image enters through cross attention.
    "mllama": ["<|image|>"],
    # PaliGemma: 16 <image> (4x4 patches), then the BOS its processor puts after the last image.
    "paligemma": [*["<image>"] * 16, "<s>"],
}  # fmt: skip
# What the processor writes around the prompt: Mllama's BOS first, PaliGemma's newline last.
BEFORE, AFTER = {"mllama": ["<|begin_of_text|>"]}, {"paligemma": ["Ċ"]}


@pytest.mark.parametrize("arch", list(LAYOUTS))
def test_image_tokens_are_laid_out_as_the_processor_expects(built, arch):
    a = _loaded(f"hf-vlm:{built(arch)}")
    batch = a.encode([a.query_prompt(Image.new("RGB", (32, 32), (9, 90, 200)))])
    tokens = a.tokenizer.convert_ids_to_tokens(batch.input_ids[0].tolist())
    assert tokens == [
        *BEFORE.get(arch, []), "Q", ":", *LAYOUTS[arch], "Ċ", "A", ":", *AFTER.get(arch, [])
    ]  # fmt: skip
    assert int(batch.task_index[0]) == len(tokens) - 1  # the patch goes on the last token


def test_a_checkpoint_row_runs_through_it(built):
    a = _loaded("smolvlm-256m", pretrained=built("smolvlm"))
    assert type(a).__name__ == "AnyVLMAdapter" and a.describe()["name"] == "smolvlm-256m"
    assert a.image_placeholder == "<image>"


def test_a_processor_needing_a_missing_package_is_one_line(built, monkeypatch, capsys):
    import transformers

    path = built("llava_next")

    def needs_torchvision(*args, **kwargs):
        raise ImportError("LlavaOnevisionVideoProcessor requires the Torchvision library")

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", needs_torchvision)
    capsys.readouterr()
    argv = ["--model", f"hf-vlm:{path}", "--tasks", "food_color", "--limit", "2", "--layer", "1"]
    code = main([*argv, "--output_path", str(built("llava_next")) + "-out"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "torchvision" in err[-1] and err[-1].startswith("vlm-tv-eval: error:")


@pytest.mark.parametrize(
    "arch,user,answer_prefix",
    [
        ("smolvlm", "<|im_start|>User: France<end_of_utterance>\n", "Assistant:"),
        ("llava_next", "[INST] France [/INST]", "[/INST]"),
        ("gemma3", "<s><start_of_turn>user\nFrance<end_of_turn>\n", "<start_of_turn>model"),
    ],
)
def test_template_model_writes_each_example_as_the_models_own_turns(built, arch, user,
                                                                    answer_prefix):  # fmt: skip
    """`--template model` through hf-vlm: the model's chat template, one turn per example (a
    template that reads content only as parts, SmolVLM's, included); the task token ends the
    assistant's prefix before the last example's answer."""
    a = _loaded(f"hf-vlm:{built(arch)}", chat="model")
    prompt = a.example_prompt(EXAMPLES, query="Peru")
    assert prompt.text.startswith(user) and prompt.text.count("Tokyo") == 1
    head = prompt.text[: prompt.task_char + 1]
    assert head.rstrip().endswith(answer_prefix.rstrip()) and "Tokyo" not in head
    assert prompt.text[prompt.task_char + 1 :].lstrip().startswith("Tokyo")


def test_a_pair_of_unequal_depth_is_refused_before_any_vectors(built, capsys, monkeypatch):
    """LLM->VLM patches at the same layer: depths that differ are refused from the configs,
    before the source model loads (here the tiny SmolVLM's 4 layers against qwen2.5-3b's 36,
    read from its row; no download)."""
    import harness.evaluator

    def never(*args, **kwargs):
        raise AssertionError("the source model was loaded")

    monkeypatch.setattr(harness.evaluator, "_source_vectors", never)
    argv = ["--model", "smolvlm-256m", "--model_args", f"pretrained={built('smolvlm')}"]
    argv += ["--source_model", "qwen2.5-3b", "--tasks", "food_color", "--limit", "2"]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "vlm-tv-eval: error: --source_model qwen2.5-3b has 36 layers, smolvlm-256m has 4: "
        "patching 'at the same layer' needs equal depth"
    )


def test_image_splitting_is_a_model_arg_and_keys_the_vector_cache(built):
    """`--model_args image_splitting=false|true` sets the processor's tiling where it has one;
    the inputs fingerprint (a key of cached task vectors) follows it."""
    path = built("smolvlm")
    image = Image.new("RGB", (80, 60), (9, 90, 200))
    adapters = {s: _loaded(f"hf-vlm:{path}", image_splitting=s) for s in (True, False)}
    for a in adapters.values():  # tiles of 32 px in an image scaled to 64 (SmolVLM's: 512, 2048)
        a.processor.image_processor.size = {"longest_edge": 64}
    lengths = {s: a.encode([a.query_prompt(image)]).input_ids.shape[1] for s, a in adapters.items()}
    assert lengths[True] > lengths[False]
    assert adapters[True].inputs_fingerprint() != adapters[False].inputs_fingerprint()
    with pytest.raises(ConfigError, match="has no image splitting"):
        _loaded(f"hf-vlm:{built('llava_next')}", image_splitting=False)
    with pytest.raises(ConfigError, match="use true or false"):
        make_adapter(f"hf-vlm:{path}", image_splitting="no")
