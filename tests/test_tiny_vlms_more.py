"""The tiny checkpoints of `tiny_vlms_more` load offline through the Auto classes, and a prompt
with one image runs through the model with as many image tokens as the config says it takes."""

from __future__ import annotations

from operator import attrgetter

import pytest
import torch
from PIL import Image
from tiny_vlms_more import (
    BUILDERS,
    CHAT_TEMPLATES,
    DECODER_LAYERS,
    IMAGE_PLACEHOLDER,
    PROCESSOR_EXTRAS,
    PROCESSOR_STAND_INS,
)

ARCHITECTURES = sorted(BUILDERS)

# PaliGemmaProcessor turns its own tensors into numpy arrays to write `labels` (transformers 5.24).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """model_type -> (processor, model), each built and loaded once for the module."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    cache = {}

    def get(name: str):
        if name not in cache:
            path = BUILDERS[name](tmp_path_factory.mktemp(name))
            processor = AutoProcessor.from_pretrained(path)
            model = AutoModelForImageTextToText.from_pretrained(path).eval()
            cache[name] = processor, model
        return cache[name]

    return get


def expected_image_tokens(config) -> int:
    """Image tokens for one image, worked out from the model's config by hand."""
    vision = config.vision_config
    kind = config.model_type
    if kind in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
        # no fixed image size: the image processor resizes each image to min_pixels..max_pixels
        # (multiples of patch_size x merge_size), both 32 x 32 here (checked in
        # test_qwen_image_tokens_follow_the_resize); patches merged merge_size x merge_size
        grid = 32 // vision.patch_size
        return grid**2 // vision.spatial_merge_size**2
    if kind == "mllama":
        # the prompt's one <|image|> stays one token: the image's tiles enter through the
        # cross-attention layers (see test_mllama_image_enters_through_cross_attention)
        return 1
    grid = vision.image_size // vision.patch_size  # patches per side
    if kind in ("idefics3", "smolvlm"):
        return grid**2 // config.scale_factor**2  # pixel shuffle
    if kind in ("llava_next", "llava_onevision"):
        # the base image and one tile per grid pinpoint (one, the image size), each grid x grid
        # patches, plus one newline per tile row; CLIP's CLS is dropped ("default") and SigLIP
        # has none ("full")
        assert config.image_grid_pinpoints == [[vision.image_size, vision.image_size]]
        return grid**2 + grid**2 + grid
    if kind == "paligemma":
        return grid**2
    if kind == "gemma3":
        pooled = grid // int(config.mm_tokens_per_image**0.5)  # average-pooling kernel
        return (grid // pooled) ** 2
    raise AssertionError(kind)


def _image(size=(32, 32)):
    return Image.new("RGB", size, (200, 40, 90))


@pytest.mark.parametrize("name", ARCHITECTURES)
@pytest.mark.parametrize("size", [(32, 32), (32, 24)], ids=["32x32", "32x24"])
def test_one_image_prompt_runs_with_the_configured_image_tokens(loaded, name, size):
    processor, model = loaded(name)
    assert model.config.model_type == name
    prompt = f"{IMAGE_PLACEHOLDER[name]}Q: What is it?\nA:"
    batch = processor(text=[prompt], images=[_image(size)], return_tensors="pt")
    assert set(batch) == {"input_ids", "attention_mask", *PROCESSOR_EXTRAS[name]}

    ids = batch["input_ids"][0]
    want = expected_image_tokens(model.config)
    assert int((ids == model.config.image_token_id).sum()) == want
    with torch.no_grad():
        out = model(**batch)
    vocab = model.config.get_text_config().vocab_size
    assert out.logits.shape == (1, len(ids), vocab)
    assert torch.isfinite(out.logits).all()


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_decoder_layers_are_where_recorded(loaded, name):
    processor, model = loaded(name)
    layers = attrgetter(DECODER_LAYERS[name])(model)
    text = model.config.get_text_config()
    assert isinstance(layers, torch.nn.ModuleList)
    assert len(layers) == text.num_hidden_layers == 4
    seen = []
    hook = layers[-1].register_forward_hook(
        lambda _m, _i, o: seen.append((o[0] if isinstance(o, tuple) else o).shape)
    )
    prompt = f"{IMAGE_PLACEHOLDER[name]}Q:"
    batch = processor(text=[prompt], images=[_image()], return_tensors="pt")
    try:
        with torch.no_grad():
            model(**batch)
    finally:
        hook.remove()
    assert seen == [(1, batch["input_ids"].shape[1], text.hidden_size)]
    assert text.hidden_size == 64


@pytest.mark.parametrize("name", ["gemma3", "paligemma"])
def test_token_type_ids_and_two_way_attention(loaded, name):
    """Gemma 3's image soft tokens attend both ways only where the processor's token_type_ids
    mark them; PaliGemma's whole prompt attends both ways, with or without token_type_ids."""
    processor, model = loaded(name)
    batches = [
        processor(
            text=[f"{IMAGE_PLACEHOLDER[name]}Q: {word}\nA:"], images=[_image()], return_tensors="pt"
        )
        for word in ("hi", "ho")
    ]
    drop = ("token_type_ids", "labels")
    with torch.no_grad():
        full = [model(**batch).logits[0] for batch in batches]
        bare = model(**{k: v for k, v in batches[0].items() if k not in drop}).logits[0]
    sees_later_text = not torch.allclose(full[0][0], full[1][0], atol=1e-6)
    if name == "gemma3":
        assert not torch.allclose(full[0], bare, atol=1e-5)
        assert not sees_later_text
    else:
        assert torch.allclose(full[0], bare, atol=1e-5)
        assert sees_later_text


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_chat_template_writes_the_placeholder_once(loaded, name):
    processor, _ = loaded(name)
    if CHAT_TEMPLATES[name] is None:
        assert processor.chat_template is None  # PaliGemma ships none
        return
    turn = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi?"}]}]
    text = processor.apply_chat_template(turn, add_generation_prompt=True)
    assert text.count(IMAGE_PLACEHOLDER[name]) == 1 and "Hi?" in text
    batch = processor(text=[text], images=[_image()], return_tensors="pt")
    assert batch["input_ids"].shape[1] > expected_image_tokens(loaded(name)[1].config)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_processor_class_is_the_real_one_or_a_recorded_stand_in(loaded, name):
    processor, _ = loaded(name)
    if name in PROCESSOR_STAND_INS:
        assert type(processor).__name__ == PROCESSOR_STAND_INS[name][0]
    else:
        assert type(processor).__name__.lower().startswith(name.replace("_", ""))


@pytest.mark.parametrize("name", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_qwen_image_tokens_follow_the_resize(loaded, name):
    """The image processor resizes every image to 32 x 32 pixels (min_pixels = max_pixels),
    image_grid_thw counts its patches (one temporal patch for an image), and mm_token_type_ids
    mark exactly the <|image_pad|> tokens, between <|vision_start|> and <|vision_end|>."""
    processor, model = loaded(name)
    config, vision = model.config, model.config.vision_config
    size = processor.image_processor.size
    assert size["shortest_edge"] == size["longest_edge"] == 32 * 32
    assert processor.image_processor.patch_size == vision.patch_size
    assert processor.image_processor.merge_size == vision.spatial_merge_size
    batch = processor(
        text=[f"Q:{IMAGE_PLACEHOLDER[name]}what?"], images=[_image((32, 24))], return_tensors="pt"
    )
    grid = 32 // vision.patch_size
    assert batch["image_grid_thw"].tolist() == [[1, grid, grid]]
    ids = batch["input_ids"][0]
    is_image = ids == config.image_token_id
    assert batch["mm_token_type_ids"][0].tolist() == is_image.long().tolist()
    where = is_image.nonzero().flatten()
    n = expected_image_tokens(config)
    assert where.tolist() == list(range(int(where[0]), int(where[0]) + n))
    assert int(ids[where[0] - 1]) == config.vision_start_token_id
    assert int(ids[where[-1] + 1]) == config.vision_end_token_id


def test_mllama_image_enters_through_cross_attention(loaded):
    """Mllama's cross_attention_mask lets every token from the <|image|> on see the image's one
    tile; the cross-attention layers are where the config says, and the image changes the logits
    from the <|image|> on. (Not only from there: transformers 5.24's cross-attention layer masks
    only its MLP branch on rows the mask leaves out, and its attention there, the -inf row turned
    to 0, sees the whole image, so the logits before <|image|> move too.)"""
    processor, model = loaded("mllama")
    text, vision = model.config.text_config, model.config.vision_config
    layers = attrgetter(DECODER_LAYERS["mllama"])(model)
    kinds = [type(layer).__name__ for layer in layers]
    assert [i for i, k in enumerate(kinds) if "CrossAttention" in k] == text.cross_attention_layers
    assert vision.max_num_tiles == processor.image_processor.max_image_tiles == 1

    prompts = [f"Q:{IMAGE_PLACEHOLDER['mllama']}what?"]
    colours = [(200, 40, 90), (10, 220, 30)]
    batches = [
        processor(text=prompts, images=[Image.new("RGB", (32, 32), c)], return_tensors="pt")
        for c in colours
    ]
    ids = batches[0]["input_ids"][0]
    at = int((ids == model.config.image_token_id).nonzero())
    assert int(ids[0]) == processor.tokenizer.bos_token_id  # the processor adds BOS
    mask = batches[0]["cross_attention_mask"]
    assert mask.shape == (1, len(ids), 1, vision.max_num_tiles)
    assert mask[0, :, 0, 0].tolist() == [0] * at + [1] * (len(ids) - at)
    assert batches[0]["pixel_values"].shape == (1, 1, 1, 3, 32, 32)
    with torch.no_grad():
        a, b = (model(**batch).logits[0] for batch in batches)
    assert not torch.allclose(a[at:], b[at:], atol=1e-4)
