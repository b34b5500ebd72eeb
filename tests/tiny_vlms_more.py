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

The Qwen VLMs (`qwen2_vl`, `qwen2_5_vl`, `qwen3_vl`) cut the 32x32 image into 8x8 patches and merge
2x2 of them per token (4 image tokens); their processors hold a video processor too, so they are
built with a torchvision-free stand-in (see PROCESSOR_STAND_INS). `mllama` (Llama 3.2 Vision) has
one 32x32 tile per image, which enters through a cross-attention layer of the text decoder: its
prompt keeps the single `<|image|>` token.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from tiny_vlms import HIDDEN, VISION, make_tokenizer, text_config
from transformers import PreTrainedTokenizerFast

IMAGE_SIZE = VISION["image_size"]
PATCH = VISION["patch_size"]
GRID = IMAGE_SIZE // PATCH  # patches per side: 4, so 16 patches per image
HEAD_DIM = HIDDEN // 4  # text_config's 4 heads; stated outright where a default is 128 or 256

# The exact text that stands for one image in a prompt, before the processor expands it.
IMAGE_PLACEHOLDER = {
    "idefics3": "<image>",
    "smolvlm": "<image>",
    "llava_next": "<image>",
    "llava_onevision": "<image>",
    "paligemma": "<image>",
    "gemma3": "<start_of_image>",
    "qwen2_vl": "<|vision_start|><|image_pad|><|vision_end|>",
    "qwen2_5_vl": "<|vision_start|><|image_pad|><|vision_end|>",
    "qwen3_vl": "<|vision_start|><|image_pad|><|vision_end|>",
    "mllama": "<|image|>",
}

# Where the text decoder's layers are in the loaded *ForConditionalGeneration model.
DECODER_LAYERS = {
    "idefics3": "model.text_model.layers",
    "smolvlm": "model.text_model.layers",
    "llava_next": "model.language_model.layers",
    "llava_onevision": "model.language_model.layers",
    "paligemma": "model.language_model.layers",
    "gemma3": "model.language_model.layers",
    "qwen2_vl": "model.language_model.layers",
    "qwen2_5_vl": "model.language_model.layers",
    "qwen3_vl": "model.language_model.layers",
    # self-attention and cross-attention layers together (MLLAMA_CROSS_ATTENTION_LAYERS)
    "mllama": "model.language_model.layers",
}

# What the processor returns for a prompt with one image besides input_ids and attention_mask;
# all of it goes to the model's forward (none needs position_ids; all accept them). Gemma 3's
# token_type_ids mark the image's soft tokens, which then attend to each other both ways: without
# them the forward still runs, causally, and gives other logits. PaliGemma's are all 0 for a
# prompt without suffix, and its text config has use_bidirectional_attention=True, so the whole
# prompt attends both ways with or without them. PaliGemma's `labels` make the forward compute
# a loss. The Qwen models' mm_token_type_ids (1 on each <|image_pad|>, else 0) let the model work
# out its 3D (M-RoPE) positions: with image_grid_thw and without them the forward raises. Those
# positions skip left padding (the attention mask) and start at 0; a text-only forward (no
# image_grid_thw) falls back to 0..len-1 along the padded row instead. Mllama's
# cross_attention_mask (batch, text length, images, tiles) says which text tokens see which
# image's tiles: every token from its prompt's <|image|> on.
PROCESSOR_EXTRAS = {
    "idefics3": {"pixel_values", "pixel_attention_mask"},
    "smolvlm": {"pixel_values", "pixel_attention_mask"},
    "llava_next": {"pixel_values", "image_sizes"},
    "llava_onevision": {"pixel_values", "image_sizes", "batch_num_images"},
    "paligemma": {"pixel_values", "token_type_ids", "labels"},
    "gemma3": {"pixel_values", "token_type_ids"},
    "qwen2_vl": {"pixel_values", "image_grid_thw", "mm_token_type_ids"},
    "qwen2_5_vl": {"pixel_values", "image_grid_thw", "mm_token_type_ids"},
    "qwen3_vl": {"pixel_values", "image_grid_thw", "mm_token_type_ids"},
    "mllama": {"pixel_values", "aspect_ratio_ids", "aspect_ratio_mask", "cross_attention_mask"},
}

QWEN_STAND_IN_WHY = (
    "{real} holds a video processor: ProcessorMixin checks each sub-processor's class, and for "
    "video_processor (even None) it looks VideoProcessorMixin up through "
    "transformers.VIDEO_PROCESSOR_MAPPING, a placeholder without torchvision (AttributeError), "
    "and AutoProcessor would load the video processor, whose module imports torchvision. "
    "PaddleOCRVLProcessor (image processor and tokenizer only) expands the tokenizer's image_token "
    "(<|image_pad|>) into image_grid_thw.prod() // merge_size**2 copies of itself and leaves "
    "<|vision_start|>/<|vision_end|> as written, as {real} does for images; it passes on "
    "pixel_values and image_grid_thw from the same Qwen2VLImageProcessorPil and also returns "
    "mm_token_type_ids (1 on each <|image_pad|>). Images only: it has no video path."
)

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
    "qwen2_vl": (
        "PaddleOCRVLProcessor",
        "Qwen2VLProcessor",
        QWEN_STAND_IN_WHY.format(real="Qwen2VLProcessor"),
    ),
    "qwen2_5_vl": (
        "PaddleOCRVLProcessor",
        "Qwen2_5_VLProcessor",
        QWEN_STAND_IN_WHY.format(real="Qwen2_5_VLProcessor"),
    ),
    "qwen3_vl": (
        "PaddleOCRVLProcessor",
        "Qwen3VLProcessor",
        QWEN_STAND_IN_WHY.format(real="Qwen3VLProcessor"),
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

# The Qwen2-VL / Qwen2.5-VL / Qwen3-VL instruct templates agree on a user turn with an image and a
# text part (Qwen2-VL's and Qwen2.5-VL's default system turn trimmed; Qwen3-VL has none).
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

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
    # Qwen/Qwen2-VL-7B-Instruct, Qwen/Qwen2.5-VL-7B-Instruct, Qwen/Qwen3-VL-4B-Instruct
    "qwen2_vl": QWEN_CHAT_TEMPLATE,
    "qwen2_5_vl": QWEN_CHAT_TEMPLATE,
    "qwen3_vl": QWEN_CHAT_TEMPLATE,
    # meta-llama/Llama-3.2-11B-Vision-Instruct (with an image and no system message it writes
    # no system turn)
    "mllama": (
        "{{ bos_token }}{% for message in messages %}"
        "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
        "{% if message['content'] is string %}{{ message['content'] | trim }}"
        "{% else %}{% for content in message['content'] %}"
        "{% if content['type'] == 'image' %}{{ '<|image|>' }}"
        "{% elif content['type'] == 'text' %}{{ content['text'] | trim }}{% endif %}"
        "{% endfor %}{% endif %}{{ '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}"
        "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
    ),
}


def _tokenizer(
    specials: list[str],
    named: dict[str, str] | None = None,
    bos_token: str = "<s>",
    eos_token: str = "</s>",
) -> PreTrainedTokenizerFast:
    """`make_tokenizer`, plus `named` special tokens (e.g. {"image_token": "<image_soft_token>"}):
    tokenizer attributes (`tok.image_token`, `tok.image_token_id`) saved in tokenizer_config.json,
    as multimodal Hub tokenizers have them; `bos_token`/`eos_token` other than `<s>`/`</s>` must
    be among `specials`."""
    named = named or {}
    trained = make_tokenizer([*specials, *(t for t in named.values() if t not in specials)])
    if not named and (bos_token, eos_token) == ("<s>", "</s>"):
        return trained
    return PreTrainedTokenizerFast(
        tokenizer_object=trained.backend_tokenizer,
        pad_token="<pad>",
        bos_token=bos_token,
        eos_token=eos_token,
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


# --- Qwen2-VL / Qwen2.5-VL / Qwen3-VL -----------------------------------------------------------

QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|video_pad|>",
]
MERGE = 2  # the vision tower merges 2x2 patches into one token
QWEN_IMAGE_TOKENS = GRID**2 // MERGE**2  # 4 <|image_pad|> tokens per image
# Text RoPE over head_dim 16 (8 frequencies) split between time, height and width, scaled down
# from the real checkpoints' head_dim 128: Qwen2-VL and Qwen2.5-VL [16, 24, 24] (in blocks),
# Qwen3-VL [24, 20, 20] (interleaved THW THW ..., time taking what is left).
QWEN2_MROPE = [2, 3, 3]
QWEN3_MROPE = [4, 2, 2]


def _qwen_tokenizer() -> PreTrainedTokenizerFast:
    return _tokenizer(QWEN_SPECIALS, {"image_token": "<|image_pad|>"})


def _qwen_token_ids(tok) -> dict:
    ids = {
        "image_token_id": "<|image_pad|>",
        "video_token_id": "<|video_pad|>",
        "vision_start_token_id": "<|vision_start|>",
        "vision_end_token_id": "<|vision_end|>",
    }
    return {key: tok.convert_tokens_to_ids(token) for key, token in ids.items()}


def _qwen_text(
    tok, model_type: str, mrope: list[int], mrope_interleaved: bool = False, **extra
) -> dict:
    rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": mrope}
    if mrope_interleaved:
        rope["mrope_interleaved"] = True
    return dict(
        text_config(len(tok), model_type),
        rope_parameters=rope,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        **extra,
    )


def qwen_processor(tokenizer, chat_template: str):
    """PaddleOCRVLProcessor (see PROCESSOR_STAND_INS) with the Qwen-VL image processor resizing
    every image to about IMAGE_SIZE x IMAGE_SIZE pixels (min_pixels = max_pixels), so a square or
    near-square image gives QWEN_IMAGE_TOKENS tokens."""
    from transformers import PaddleOCRVLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    images = Qwen2VLImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE**2, "longest_edge": IMAGE_SIZE**2},
        patch_size=PATCH,
        temporal_patch_size=2,
        merge_size=MERGE,
    )
    return PaddleOCRVLProcessor(
        image_processor=images, tokenizer=tokenizer, chat_template=chat_template
    )


# The tiny Qwen-VL towers: 2 layers, 8x8 patches merged 2x2, frames in pairs (as one image is
# two identical frames); `hidden` is the tower's own width, `out` what its merger hands on.
QWEN_VISION = dict(
    depth=2, num_heads=2, patch_size=PATCH, spatial_merge_size=MERGE, temporal_patch_size=2
)


def _build_qwen(path: Path, kind: str, seed: int, vision: dict, text: dict) -> Path:
    """A tiny Qwen-VL model of architecture `kind` with the PaddleOCRVLProcessor stand-in."""
    import transformers

    config_class, model_class = {
        "qwen2_vl": ("Qwen2VLConfig", "Qwen2VLForConditionalGeneration"),
        "qwen2_5_vl": ("Qwen2_5_VLConfig", "Qwen2_5_VLForConditionalGeneration"),
        "qwen3_vl": ("Qwen3VLConfig", "Qwen3VLForConditionalGeneration"),
    }[kind]
    tok = _qwen_tokenizer()
    config = getattr(transformers, config_class)(
        vision_config=dict(QWEN_VISION, **vision),
        text_config=_qwen_text(tok, f"{kind}_text", **text),
        **_qwen_token_ids(tok),
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = getattr(transformers, model_class)(config)
    return _save(model, qwen_processor(tok, CHAT_TEMPLATES[kind]), path)


def build_qwen2_vl(path: Path) -> Path:
    """Qwen2VLForConditionalGeneration with PaddleOCRVLProcessor (see PROCESSOR_STAND_INS)."""
    # embed_dim is the tower's width; its hidden_size is the merger's output
    vision = dict(embed_dim=32, hidden_size=HIDDEN, mlp_ratio=2)
    return _build_qwen(path, "qwen2_vl", 17, vision, dict(mrope=QWEN2_MROPE))


def build_qwen2_5_vl(path: Path) -> Path:
    """Qwen2_5_VLForConditionalGeneration with PaddleOCRVLProcessor (see PROCESSOR_STAND_INS)."""
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        out_hidden_size=HIDDEN,
        # windows of 16x16 pixels (one merged token) in layer 0, full attention in layer 1,
        # as the real towers' window layers and every eighth full one
        window_size=16,
        fullatt_block_indexes=[1],
    )
    return _build_qwen(path, "qwen2_5_vl", 18, vision, dict(mrope=QWEN2_MROPE))


def build_qwen3_vl(path: Path) -> Path:
    """Qwen3VLForConditionalGeneration with PaddleOCRVLProcessor (see PROCESSOR_STAND_INS)."""
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        out_hidden_size=HIDDEN,
        num_position_embeddings=GRID**2,  # a GRID x GRID table, interpolated per image
        deepstack_visual_indexes=[0],  # layer 0's merged features go to text layer 0
    )
    text = dict(mrope=QWEN3_MROPE, mrope_interleaved=True, head_dim=HEAD_DIM)
    return _build_qwen(path, "qwen3_vl", 19, vision, text)


# --- Mllama (Llama 3.2 Vision) --------------------------------------------------------------

MLLAMA_SPECIALS = [
    "<|begin_of_text|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|image|>",
    "<|python_tag|>",
]
# Llama 3.2 Vision has a cross-attention layer after every 4 self-attention layers (3, 8, 13, ..
# of 40); here layer 1 of 4, so the image reaches the logits through two more layers.
MLLAMA_CROSS_ATTENTION_LAYERS = [1]
MLLAMA_TILES = 1  # max_image_tiles: each image is resized to a single IMAGE_SIZE tile


def build_mllama(path: Path) -> Path:
    from transformers import (
        MllamaConfig,
        MllamaForConditionalGeneration,
        MllamaProcessor,
    )
    from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil

    tok = _tokenizer(MLLAMA_SPECIALS, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    intermediate = [0]  # the tower's layers whose outputs join its final one
    config = MllamaConfig(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_global_layers=1,
            attention_heads=2,
            image_size=IMAGE_SIZE,
            patch_size=PATCH,
            max_num_tiles=MLLAMA_TILES,
            supported_aspect_ratios=[[1, 1]],
            intermediate_layers_indices=intermediate,
            vision_output_dim=32 * (len(intermediate) + 1),
        ),
        text_config=dict(
            text_config(len(tok), "mllama_text_model"),
            cross_attention_layers=MLLAMA_CROSS_ATTENTION_LAYERS,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        ),
        image_token_index=tok.convert_tokens_to_ids("<|image|>"),
    )
    torch.manual_seed(20)
    model = MllamaForConditionalGeneration(config)
    # The cross-attention layers' tanh gates start at 0, which would shut the image out of a
    # random model; open them (tanh(1) = 0.76), as training does.
    with torch.no_grad():
        for i in MLLAMA_CROSS_ATTENTION_LAYERS:
            layer = model.model.language_model.layers[i]
            layer.cross_attn_attn_gate.fill_(1.0)
            layer.cross_attn_mlp_gate.fill_(1.0)
    images = MllamaImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, max_image_tiles=MLLAMA_TILES
    )
    processor = MllamaProcessor(
        image_processor=images, tokenizer=tok, chat_template=CHAT_TEMPLATES["mllama"]
    )
    return _save(model, processor, path)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "idefics3": build_idefics3,
    "smolvlm": build_smolvlm,
    "llava_next": build_llava_next,
    "llava_onevision": build_llava_onevision,
    "paligemma": build_paligemma,
    "gemma3": build_gemma3,
    "qwen2_vl": build_qwen2_vl,
    "qwen2_5_vl": build_qwen2_5_vl,
    "qwen3_vl": build_qwen3_vl,
    "mllama": build_mllama,
}
