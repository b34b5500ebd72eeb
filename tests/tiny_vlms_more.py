"""More tiny random image-text-to-text checkpoints, built offline and saved like Hub checkpoints.

The same recipe as `tiny_vlms`: a byte-level BPE tokenizer trained in-process with the special
tokens each processor needs, the shared hidden-64 text backbone, 2-layer vision towers of width 32
on 32x32 images cut into 8x8 patches, and image splitting/tiling turned off (or reduced to one
tile) so one image gives a fixed, small number of image tokens. Each builder saves the model
(`save_pretrained`) and the processor (`processor.save_pretrained`, with PIL image processors), so
`AutoProcessor.from_pretrained(path)` and `AutoModelForImageTextToText.from_pretrained(path)` load
them back with no network and without torchvision.

Without torchvision, transformers 5.24 cannot build or load the processors of `llava_onevision`,
`smolvlm`, `internvl` (all three hold a video processor, and every video processor requires
torchvision) nor of `mistral3` (`PixtralProcessor` requires torchvision and its module imports the
torchvision image processor). `smolvlm` and `llava_onevision` are built here with a torchvision-free
stand-in processor that gives the same text for one image (see PROCESSOR_STAND_INS); `mistral3` and
`internvl` are left out (see UNAVAILABLE).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from tiny_vlms import HIDDEN, make_tokenizer, text_config
from transformers import PreTrainedTokenizerFast

IMAGE_SIZE = 32
PATCH = 8
GRID = IMAGE_SIZE // PATCH  # patches per side: 4, so 16 patches per image
HEAD_DIM = HIDDEN // 4  # text_config's 4 heads; stated outright where a default is 128 or 256
VISION = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=IMAGE_SIZE,
    patch_size=PATCH,
)

# The exact text that stands for one image in a prompt, before the processor expands it.
IMAGE_PLACEHOLDER = {
    "idefics3": "<image>",
    "smolvlm": "<image>",
    "llava_next": "<image>",
    "llava_onevision": "<image>",
    "paligemma": "<image>",
    "gemma3": "<start_of_image>",
}

# Where the text decoder's layers are in the loaded *ForConditionalGeneration model.
DECODER_LAYERS = {
    "idefics3": "model.text_model.layers",
    "smolvlm": "model.text_model.layers",
    "llava_next": "model.language_model.layers",
    "llava_onevision": "model.language_model.layers",
    "paligemma": "model.language_model.layers",
    "gemma3": "model.language_model.layers",
}

# What the processor returns for a prompt with one image besides input_ids and attention_mask;
# all of it goes to the model's forward (none needs position_ids; all accept them). Gemma 3's
# token_type_ids mark the image's soft tokens, which then attend to each other both ways: without
# them the forward still runs, causally, and gives other logits. PaliGemma's are all 0 for a
# prompt without suffix, and its text config has use_bidirectional_attention=True, so the whole
# prompt attends both ways with or without them. PaliGemma's `labels` make the forward compute
# a loss.
PROCESSOR_EXTRAS = {
    "idefics3": {"pixel_values", "pixel_attention_mask"},
    "smolvlm": {"pixel_values", "pixel_attention_mask"},
    "llava_next": {"pixel_values", "image_sizes"},
    "llava_onevision": {"pixel_values", "image_sizes", "batch_num_images"},
    "paligemma": {"pixel_values", "token_type_ids", "labels"},
    "gemma3": {"pixel_values", "token_type_ids"},
}

# Where the saved processor is not the class the real checkpoints name, because that class needs
# torchvision: model_type -> (class saved here, class of the real checkpoints, why it is the same).
PROCESSOR_STAND_INS = {
    "smolvlm": (
        "Idefics3Processor",
        "SmolVLMProcessor",
        "SmolVLMProcessor holds a SmolVLMVideoProcessor (torchvision) and also refuses to start "
        "without the num2words package. Idefics3Processor writes the same text for an unsplit "
        "image (<fake_token_around_image><global-img> + image_seq_len x <image> + "
        "<fake_token_around_image>), takes the same pixel_values and pixel_attention_mask, and "
        "is what SmolVLM's first checkpoints (saved as model_type idefics3) name.",
    ),
    "llava_onevision": (
        "LlavaNextProcessor",
        "LlavaOnevisionProcessor",
        "LlavaOnevisionProcessor holds a LlavaOnevisionVideoProcessor (torchvision). With one grid "
        "pinpoint (the image size) and the 'full' strategy, LLaVA-NeXT's count is the same "
        "(base 16 + tile 16 + 4 row newlines = 36) for a prompt with one image. Only one image "
        "per prompt: for several, OneVision gives each 16 + 1 tokens without tiling, and the "
        "model (told batch_num_images by the image processor) would not match this text.",
    ),
}

# Architectures the task asked for that cannot be built to load offline here, and why.
UNAVAILABLE = {
    "mistral3": (
        "its processor is PixtralProcessor, marked @requires(backends=('torchvision', 'torch')), "
        "and models/pixtral/processing_pixtral.py imports get_resize_output_image_size from "
        "image_processing_pixtral.py, which imports torchvision at module level; no other "
        "processor writes Pixtral's [IMG]...[IMG_BREAK]...[IMG_END] rows"
    ),
    "internvl": (
        "InternVLProcessor holds a video processor: ProcessorMixin checks it against "
        "VideoProcessorMixin through transformers.VIDEO_PROCESSOR_MAPPING, a placeholder "
        "without torchvision (AttributeError), and AutoProcessor loads InternVLVideoProcessor, "
        "whose module imports torchvision; no other processor writes "
        "<img> + N x <IMG_CONTEXT> + </img>"
    ),
}

# Chat templates that render a user turn holding one image and one text part the way the real
# checkpoints' templates do (system prompts and assistant-turn details trimmed). PaliGemma has no
# chat template: its prompts are "<image>" + a task prefix, and the processor puts the BOS token
# after the image tokens and "\n" after the prefix.
CHAT_TEMPLATES: dict[str, str | None] = {
    # HuggingFaceM4/Idefics3-8B-Llama3
    "idefics3": (
        "<|begin_of_text|>{% for message in messages %}{{ message['role'] | capitalize }}"
        "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
        "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
        "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
        "<end_of_utterance>\n{% endfor %}"
        "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
    ),
    # HuggingFaceTB/SmolVLM-Instruct
    "smolvlm": (
        "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
        "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
        "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
        "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
        "<end_of_utterance>\n{% endfor %}"
        "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
    ),
    # llava-hf/llava-v1.6-mistral-7b-hf
    "llava_next": (
        "{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' }}"
        "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
        "{{ '<image>\n' }}{% endfor %}"
        "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
        "{{ content['text'] }}{% endfor %}{{ ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}"
        "{{ ' ' + message['content'][0]['text'] + '</s> ' }}"
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
    "paligemma": None,
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
    """`make_tokenizer`, plus `named` special tokens (e.g. {"image_token": "<image_soft_token>"}):
    tokenizer attributes (`tok.image_token`, `tok.image_token_id`) saved in tokenizer_config.json,
    as multimodal Hub tokenizers have them."""
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
SCALE_FACTOR = 2  # pixel shuffle: a 4x4 patch grid becomes 2x2
IDEFICS3_IMAGE_SEQ_LEN = GRID**2 // SCALE_FACTOR**2  # 4 <image> tokens per image


def _idefics3_like(path: Path, smolvlm: bool) -> Path:
    import transformers

    prefix = "SmolVLM" if smolvlm else "Idefics3"
    Config = getattr(transformers, f"{prefix}Config")
    Model = getattr(transformers, f"{prefix}ForConditionalGeneration")
    Images = getattr(transformers, f"{prefix}ImageProcessorPil")
    kind = "smolvlm" if smolvlm else "idefics3"
    tok = _tokenizer(["<|im_start|>" if smolvlm else "<|begin_of_text|>", *IDEFICS3_SPECIALS])
    config = Config(
        vision_config=dict(VISION),
        text_config=text_config(len(tok), "llama"),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        scale_factor=SCALE_FACTOR,
        tie_word_embeddings=False,
    )
    torch.manual_seed(12 if smolvlm else 11)
    model = Model(config)
    return _save(model, idefics3_processor(tok, CHAT_TEMPLATES[kind], Images), path)


def idefics3_processor(tokenizer, chat_template: str, images_class=None):
    """Idefics3Processor over one unsplit IMAGE_SIZE image: IDEFICS3_IMAGE_SEQ_LEN tokens."""
    import transformers

    Images = images_class or transformers.Idefics3ImageProcessorPil
    images = Images(
        do_image_splitting=False,
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
    )
    return transformers.Idefics3Processor(
        image_processor=images,
        tokenizer=tokenizer,
        image_seq_len=IDEFICS3_IMAGE_SEQ_LEN,
        chat_template=chat_template,
    )


def build_idefics3(path: Path) -> Path:
    return _idefics3_like(path, smolvlm=False)


def build_smolvlm(path: Path) -> Path:
    """SmolVLMForConditionalGeneration with Idefics3Processor (see PROCESSOR_STAND_INS)."""
    return _idefics3_like(path, smolvlm=True)


# --- LLaVA-NeXT / LLaVA-OneVision -----------------------------------------------------------

# One grid resolution, the image size itself: "anyres" makes the base image plus a single 32x32
# tile of any image, so every image costs the same number of tokens.
PINPOINTS = [[IMAGE_SIZE, IMAGE_SIZE]]
LLAVA_NEXT_IMAGE_TOKENS = GRID * GRID + GRID * GRID + GRID  # base + tile + a newline per tile row


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
    model = LlavaNextForConditionalGeneration(config)
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
        num_additional_image_tokens=1,  # CLIP's CLS, which the "default" strategy drops
        image_token="<image>",
        chat_template=CHAT_TEMPLATES["llava_next"],
    )
    return _save(model, processor, path)


def build_llava_onevision(path: Path) -> Path:
    """LlavaOnevisionForConditionalGeneration with LlavaNextProcessor (see PROCESSOR_STAND_INS)."""
    from transformers import (
        LlavaNextProcessor,
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessorPil,
    )

    tok = _tokenizer(["<image>", "<video>", "<|im_start|>", "<|im_end|>"])
    config = LlavaOnevisionConfig(
        vision_config=dict(VISION, model_type="siglip_vision_model"),
        text_config=text_config(len(tok), "qwen2"),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=PINPOINTS,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",  # SigLIP has no CLS to drop
        vision_aspect_ratio="anyres_max_9",
        tie_word_embeddings=False,
    )
    torch.manual_seed(14)
    model = LlavaOnevisionForConditionalGeneration(config)
    images = LlavaOnevisionImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_grid_pinpoints=PINPOINTS
    )
    processor = LlavaNextProcessor(
        image_processor=images,
        tokenizer=tok,
        patch_size=PATCH,
        vision_feature_select_strategy="full",
        num_additional_image_tokens=0,
        image_token="<image>",
        chat_template=CHAT_TEMPLATES["llava_onevision"],
    )
    return _save(model, processor, path)


# --- PaliGemma / Gemma 3 --------------------------------------------------------------------

PALIGEMMA_IMAGE_TOKENS = GRID * GRID  # one token per patch


def build_paligemma(path: Path) -> Path:
    from transformers import (
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessorPil,
    )

    tok = _tokenizer(["<image>"])
    images = SiglipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    images.image_seq_length = PALIGEMMA_IMAGE_TOKENS  # saved in the image processor's config
    # The processor adds PaliGemma's 1024 <locNNNN> and 128 <segNNN> tokens to the tokenizer, so
    # the model's vocabulary is sized after it.
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
GEMMA3_IMAGE_TOKENS = 4  # the 4x4 patch grid average-pooled to 2x2


def build_gemma3(path: Path) -> Path:
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessorPil,
        Gemma3Processor,
    )

    tok = _tokenizer(["<start_of_turn>", "<end_of_turn>"], GEMMA3_TOKENS)
    boi, eoi, image = (tok.convert_tokens_to_ids(t) for t in GEMMA3_TOKENS.values())
    config = Gemma3Config(
        text_config=dict(
            text_config(len(tok), "gemma3_text"),
            head_dim=HEAD_DIM,
            query_pre_attn_scalar=HEAD_DIM,
            sliding_window=8,
            layer_types=["sliding_attention", "full_attention"] * 2,  # both kinds, as Gemma 3
        ),
        vision_config=dict(VISION, model_type="siglip_vision_model", vision_use_head=False),
        mm_tokens_per_image=GEMMA3_IMAGE_TOKENS,
        boi_token_index=boi,
        eoi_token_index=eoi,
        image_token_index=image,
    )
    torch.manual_seed(16)
    model = Gemma3ForConditionalGeneration(config)
    images = Gemma3ImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, do_pan_and_scan=False
    )
    processor = Gemma3Processor(
        image_processor=images,
        tokenizer=tok,
        image_seq_length=GEMMA3_IMAGE_TOKENS,
        chat_template=CHAT_TEMPLATES["gemma3"],
    )
    return _save(model, processor, path)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "idefics3": build_idefics3,
    "smolvlm": build_smolvlm,
    "llava_next": build_llava_next,
    "llava_onevision": build_llava_onevision,
    "paligemma": build_paligemma,
    "gemma3": build_gemma3,
}
