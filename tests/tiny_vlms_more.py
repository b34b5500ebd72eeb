"""More tiny random image-text-to-text checkpoints, built offline and saved like Hub checkpoints.

The same recipe as `tiny_vlms`: a byte-level BPE tokenizer trained in-process with the special
tokens each processor needs, the shared hidden-64 text backbone, small vision towers on 32x32
images with 8x8 patches, and image splitting/tiling turned off so one image gives a fixed, small
number of image tokens. Each builder saves the model (`save_pretrained`) and the processor
(`processor.save_pretrained`, PIL image processors: torchvision is not needed), so
`AutoProcessor.from_pretrained(path)` and `AutoModelForImageTextToText.from_pretrained(path)` load
them back with no network.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerFast

import tiny_vlms
from tiny_vlms import HIDDEN, make_tokenizer, text_config

IMAGE_SIZE = 32
PATCH = 8
# Vision towers: 2 layers of width 32 on 32x32 images cut into 8x8 patches (a 4x4 grid).
VISION = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=IMAGE_SIZE,
    patch_size=PATCH,
)
GRID = IMAGE_SIZE // PATCH  # patches per side: 4
HEAD_DIM = HIDDEN // 4  # text_config's 4 heads; stated outright where a default would be 128/256

# The exact text that stands for one image in a prompt, before the processor expands it.
IMAGE_PLACEHOLDER = {
    "idefics3": "<image>",
    "smolvlm": "<image>",
    "llava_next": "<image>",
    "llava_onevision": "<image>",
    "paligemma": "<image>",
    "mistral3": "[IMG]",
    "internvl": "<IMG_CONTEXT>",
    "gemma3": "<start_of_image>",
}

# Where the text decoder's layers are in the loaded *ForConditionalGeneration model.
DECODER_LAYERS = {
    "idefics3": "model.text_model.layers",
    "smolvlm": "model.text_model.layers",
    "llava_next": "model.language_model.layers",
    "llava_onevision": "model.language_model.layers",
    "paligemma": "model.language_model.layers",
    "mistral3": "model.language_model.layers",
    "internvl": "model.language_model.layers",
    "gemma3": "model.language_model.layers",
}

# Chat templates that render a user turn holding one image and one text part the way the real
# checkpoints' templates do (system prompts and assistant-turn details trimmed).
CHAT_TEMPLATES: dict[str, str | None] = {
    # HuggingFaceM4/Idefics3-8B-Llama3
    "idefics3": (
        "<|begin_of_text|>{% for message in messages %}{{ message['role'] | capitalize }}"
        "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
        "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
        "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
        "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
    ),
    # HuggingFaceTB/SmolVLM-Instruct
    "smolvlm": (
        "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
        "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
        "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
        "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
        "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
    ),
    # llava-hf/llava-v1.6-mistral-7b-hf
    "llava_next": (
        "{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' }}"
        "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
        "{{ '<image>\n' }}{% endfor %}"
        "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
        "{{ content['text'] }}{% endfor %}{{ ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'][0]['text'] + '</s> ' }}"
        "{% endif %}{% endfor %}"
    ),
    # llava-hf/llava-onevision-qwen2-0.5b-ov-hf
    "llava_onevision": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + ' ' }}"
        "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
        "{{ '<image>' }}{% endfor %}"
        "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
        "{{ '\n' + content['text'] }}{% endfor %}{{ '<|im_end|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
    # google/paligemma-3b-*: no chat template; prompts are "<image>" + the task prefix and the
    # processor puts `<bos>` after the image tokens and "\n" after the prefix.
    "paligemma": None,
    # mistralai/Mistral-Small-3.1-24B-Instruct-2503 (without its default system prompt)
    "mistral3": (
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
        "{{ '[INST]' }}{% for block in message['content'] %}"
        "{% if block['type'] == 'text' %}{{ block['text'] }}"
        "{% elif block['type'] == 'image' %}{{ '[IMG]' }}{% endif %}{% endfor %}{{ '[/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'][0]['text'] + eos_token }}"
        "{% endif %}{% endfor %}"
    ),
    # OpenGVLab/InternVL3-1B-hf
    "internvl": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
        "{% for content in message['content'] %}"
        "{% if content['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}"
        "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}"
        "{{ '<|im_end|>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
    # google/gemma-3-4b-it
    "gemma3": (
        "{{ bos_token }}{% for message in messages %}"
        "{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
        "{% else %}{% set role = message['role'] %}{% endif %}"
        "{{ '<start_of_turn>' + role + '\n' }}{% for item in message['content'] %}"
        "{% if item['type'] == 'image' %}{{ '<start_of_image>' }}"
        "{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}{% endfor %}"
        "{{ '<end_of_turn>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
    ),
}


def _tokenizer(specials: list[str], named: dict[str, str] | None = None) -> PreTrainedTokenizerFast:
    """`make_tokenizer` with `named` special tokens as well (e.g. {"image_token": "<image>"}),
    which become tokenizer attributes (`tok.image_token`, `tok.image_token_id`) saved in
    tokenizer_config.json, as multimodal Hub tokenizers have them."""
    named = named or {}
    trained = make_tokenizer([*specials, *(t for t in named.values() if t not in specials)])
    if not named:
        return trained
    return PreTrainedTokenizerFast(
        tokenizer_object=trained.backend_tokenizer,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens=named,
    )


def _ids(tok, *tokens: str) -> list[int]:
    ids = [tok.convert_tokens_to_ids(t) for t in tokens]
    assert tok.unk_token_id not in ids or tok.unk_token_id is None, tokens
    return ids


def _save(model, processor, path: Path) -> Path:
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


# --- Idefics3 / SmolVLM ---------------------------------------------------------------------

IDEFICS3_SPECIALS = [
    "<fake_token_around_image>",
    "<image>",
    "<end_of_utterance>",
    "<global-img>",
    *(f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)),
]
SCALE_FACTOR = 2  # pixel shuffle: 4x4 patches -> 2x2 = 4 image tokens
IDEFICS3_IMAGE_SEQ_LEN = GRID**2 // SCALE_FACTOR**2


def build_idefics3(path: Path) -> Path:
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
    )

    tok = _tokenizer(["<|begin_of_text|>", *IDEFICS3_SPECIALS])
    config = Idefics3Config(
        vision_config=dict(VISION),
        text_config=text_config(len(tok), "llama"),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        scale_factor=SCALE_FACTOR,
        tie_word_embeddings=False,
    )
    torch.manual_seed(11)
    images = Idefics3ImageProcessorPil(
        do_image_splitting=False,
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
    )
    processor = Idefics3Processor(
        image_processor=images,
        tokenizer=tok,
        image_seq_len=IDEFICS3_IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATES["idefics3"],
    )
    return _save(Idefics3ForConditionalGeneration(config), processor, path)


@contextlib.contextmanager
def num2words_stand_in() -> Iterator[None]:
    """SmolVLMProcessor refuses to start without the `num2words` package, which it needs only to
    write video prompts ("four frames"); where it is not installed, a stand-in for the duration."""
    if importlib.util.find_spec("num2words") is not None:
        yield
        return
    from transformers.models.smolvlm import processing_smolvlm

    old = processing_smolvlm.num2words
    processing_smolvlm.num2words = str
    try:
        yield
    finally:
        processing_smolvlm.num2words = old


def build_smolvlm(path: Path) -> Path:
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessorPil,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    tok = _tokenizer(["<|im_start|>", "<video>", *IDEFICS3_SPECIALS])
    config = SmolVLMConfig(
        vision_config=dict(VISION),
        text_config=text_config(len(tok), "llama"),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        scale_factor=SCALE_FACTOR,
        tie_word_embeddings=False,
    )
    torch.manual_seed(12)
    images = SmolVLMImageProcessorPil(
        do_image_splitting=False,
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
    )
    videos = SmolVLMVideoProcessor(
        size={"longest_edge": IMAGE_SIZE}, max_image_size={"longest_edge": IMAGE_SIZE}
    )
    with num2words_stand_in():
        processor = SmolVLMProcessor(
            image_processor=images,
            tokenizer=tok,
            video_processor=videos,
            image_seq_len=IDEFICS3_IMAGE_SEQ_LEN,
            chat_template=CHAT_TEMPLATES["smolvlm"],
        )
    return _save(SmolVLMForConditionalGeneration(config), processor, path)


# --- LLaVA-NeXT / LLaVA-OneVision -----------------------------------------------------------

# One grid resolution, the image size itself: the "anyres" tiling yields the base image plus a
# single 32x32 tile, so every image costs the same number of tokens.
PINPOINTS = [[IMAGE_SIZE, IMAGE_SIZE]]
# base 4x4 patches + the tile's 4x4 patches + one newline per tile row
LLAVA_NEXT_IMAGE_TOKENS = GRID * GRID + GRID * GRID + GRID


def build_llava_next(path: Path) -> Path:
    from transformers import (
        CLIPVisionConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessorPil,
        LlavaNextProcessor,
    )

    tok = _tokenizer(["<image>", "[INST]", "[/INST]"])
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(**VISION, projection_dim=32).to_dict(),
        text_config=text_config(len(tok), "mistral"),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=PINPOINTS,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )
    torch.manual_seed(13)
    images = LlavaNextImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_grid_pinpoints=PINPOINTS,
    )
    processor = LlavaNextProcessor(
        image_processor=images,
        tokenizer=tok,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS, dropped by the "default" strategy
        chat_template=CHAT_TEMPLATES["llava_next"],
        image_token="<image>",
    )
    return _save(LlavaNextForConditionalGeneration(config), processor, path)


def build_llava_onevision(path: Path) -> Path:
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessorPil,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    tok = _tokenizer(["<image>", "<video>", "<|im_start|>", "<|im_end|>"])
    config = LlavaOnevisionConfig(
        vision_config=dict(VISION, model_type="siglip_vision_model"),
        text_config=text_config(len(tok), "qwen2"),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=PINPOINTS,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9",
        tie_word_embeddings=False,
    )
    torch.manual_seed(14)
    images = LlavaOnevisionImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_grid_pinpoints=PINPOINTS
    )
    videos = LlavaOnevisionVideoProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = LlavaOnevisionProcessor(
        image_processor=images,
        tokenizer=tok,
        video_processor=videos,
        num_image_tokens=GRID * GRID,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9",
        chat_template=CHAT_TEMPLATES["llava_onevision"],
    )
    return _save(LlavaOnevisionForConditionalGeneration(config), processor, path)


# --- PaliGemma / Gemma 3 --------------------------------------------------------------------


def build_paligemma(path: Path) -> Path:
    from transformers import (
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessorPil,
    )

    tok = _tokenizer(["<image>"])
    images = SiglipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    images.image_seq_length = GRID * GRID
    # The processor adds PaliGemma's 1024 <locNNNN> and 128 <segNNN> tokens to the tokenizer,
    # so the model's vocabulary is sized after it.
    processor = PaliGemmaProcessor(image_processor=images, tokenizer=tok)
    config = PaliGemmaConfig(
        vision_config=dict(VISION, model_type="siglip_vision_model", vision_use_head=False),
        text_config=dict(text_config(len(tok), "gemma"), head_dim=HEAD_DIM),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vocab_size=len(tok),
        projection_dim=HIDDEN,
        hidden_size=HIDDEN,
    )
    torch.manual_seed(15)
    return _save(PaliGemmaForConditionalGeneration(config), processor, path)


GEMMA3_TOKENS = {
    "boi_token": "<start_of_image>",
    "eoi_token": "<end_of_image>",
    "image_token": "<image_soft_token>",
}
GEMMA3_IMAGE_TOKENS = 4  # 4x4 patches average-pooled 2x2 -> a 2x2 grid


def build_gemma3(path: Path) -> Path:
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessorPil,
        Gemma3Processor,
    )

    tok = _tokenizer(["<start_of_turn>", "<end_of_turn>"], GEMMA3_TOKENS)
    boi, eoi, image = _ids(tok, *GEMMA3_TOKENS.values())
    config = Gemma3Config(
        text_config=dict(
            text_config(len(tok), "gemma3_text"),
            head_dim=HEAD_DIM,
            sliding_window=64,
            query_pre_attn_scalar=HEAD_DIM,
        ),
        vision_config=dict(VISION, model_type="siglip_vision_model", vision_use_head=False),
        mm_tokens_per_image=GEMMA3_IMAGE_TOKENS,
        boi_token_index=boi,
        eoi_token_index=eoi,
        image_token_index=image,
    )
    torch.manual_seed(16)
    images = Gemma3ImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, do_pan_and_scan=False
    )
    processor = Gemma3Processor(
        image_processor=images,
        tokenizer=tok,
        image_seq_length=GEMMA3_IMAGE_TOKENS,
        chat_template=CHAT_TEMPLATES["gemma3"],
    )
    return _save(Gemma3ForConditionalGeneration(config), processor, path)


# --- Mistral 3 (Pixtral vision) -------------------------------------------------------------

SPATIAL_MERGE = 2  # 4x4 patches -> 2x2 image tokens


def build_mistral3(path: Path) -> Path:
    from transformers import (
        Mistral3Config,
        Mistral3ForConditionalGeneration,
        PixtralImageProcessorPil,
        PixtralProcessor,
    )

    tok = _tokenizer(["[IMG]", "[IMG_BREAK]", "[IMG_END]", "[INST]", "[/INST]"])
    config = Mistral3Config(
        vision_config=dict(VISION, model_type="pixtral"),
        text_config=dict(text_config(len(tok), "mistral"), head_dim=HEAD_DIM),
        image_token_index=tok.convert_tokens_to_ids("[IMG]"),
        spatial_merge_size=SPATIAL_MERGE,
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )
    torch.manual_seed(17)
    images = PixtralImageProcessorPil(
        size={"longest_edge": IMAGE_SIZE}, patch_size={"height": PATCH, "width": PATCH}
    )
    processor = PixtralProcessor(
        image_processor=images,
        tokenizer=tok,
        patch_size=PATCH,
        spatial_merge_size=SPATIAL_MERGE,
        chat_template=CHAT_TEMPLATES["mistral3"],
    )
    return _save(Mistral3ForConditionalGeneration(config), processor, path)


# --- InternVL -------------------------------------------------------------------------------

INTERNVL_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}
DOWNSAMPLE = 0.5  # pixel shuffle: 4x4 patches -> 2x2
INTERNVL_IMAGE_SEQ_LEN = int(GRID * GRID * DOWNSAMPLE**2)


def build_internvl(path: Path) -> Path:
    from transformers import (
        GotOcr2ImageProcessorPil,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
    )

    tok = _tokenizer(["<|im_start|>", "<|im_end|>"], INTERNVL_TOKENS)
    config = InternVLConfig(
        vision_config=dict(VISION),
        text_config=text_config(len(tok), "qwen2"),
        image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=INTERNVL_IMAGE_SEQ_LEN,
        downsample_ratio=DOWNSAMPLE,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )
    torch.manual_seed(18)
    images = GotOcr2ImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        crop_to_patches=False,
        min_patches=1,
        max_patches=1,
    )
    processor = InternVLProcessor(
        image_processor=images,
        tokenizer=tok,
        image_seq_length=INTERNVL_IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATES["internvl"],
    )
    return _save(InternVLForConditionalGeneration(config), processor, path)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "idefics3": build_idefics3,
    "smolvlm": build_smolvlm,
    "llava_next": build_llava_next,
    "llava_onevision": build_llava_onevision,
    "paligemma": build_paligemma,
    "mistral3": build_mistral3,
    "internvl": build_internvl,
    "gemma3": build_gemma3,
}

assert tiny_vlms.HIDDEN == HIDDEN and sys.modules.get("tiny_vlms") is tiny_vlms
