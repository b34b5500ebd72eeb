"""Tiny random Mistral 3 and InternVL checkpoints, with torchvision-free stand-in processors.

`tiny_vlms_more` leaves these two architectures out (its UNAVAILABLE): in transformers 5.24 their
real processors cannot be built without torchvision, and torchvision cannot be installed on the
machines these tests run on. `PixtralProcessor` (Mistral 3) is marked as requiring torchvision
and its module imports the torchvision image processor; `InternVLProcessor` holds a video
processor, and every video processor requires torchvision. Their *models* load without it.

So each builder here saves a tiny random model (`save_pretrained`; the shared hidden-64, 4-layer
text backbone of `text_config`, a 2-layer vision tower of width 32 on 32x32 images cut into 8x8
patches), its tokenizer with the special tokens the real processor writes, the image processor
config on the PIL backend (which transformers has for both: `PixtralImageProcessorPil`,
`GotOcr2ImageProcessorPil`), the processor fields the real checkpoints keep in
processor_config.json and, for InternVL, the video processor's config. `AutoProcessor` fails on
these folders as it does on the real checkpoints without torchvision (ImportError);
`PixtralStandIn.from_pretrained(path)` and `InternVLStandIn.from_pretrained(path)` load a
processor that gives, for these configs, the keys, shapes and image-token layouts the real
processors give (see STAND_INS and LAYOUTS).

The stand-ins are small re-implementations written from reading the real processors' sources:
the pixel values come from the PIL image processor above, called with the arguments the real
processor passes it, and the text expansion is done here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tiny_vlms_more import IMAGE_SIZE, PATCH, VISION, _save, _tokenizer, text_config
from transformers import BatchFeature

GRID = IMAGE_SIZE // PATCH  # 4 patches per side

# --- layouts --------------------------------------------------------------------------------

# Mistral 3 merges each 2x2 block of patches into one image token (config.spatial_merge_size):
# a 32x32 image is a 4x4 patch grid, so 2 rows of 2 [IMG] tokens; each row ends with
# [IMG_BREAK], except the last, which ends with [IMG_END].
SPATIAL_MERGE = 2
PIXTRAL_ROWS = GRID // SPATIAL_MERGE  # 2
# InternVL pixel-shuffles the 4x4 patch grid (CLS dropped) by downsample_ratio 0.5 into 2x2:
# 4 <IMG_CONTEXT> tokens per tile, between <img> and </img>. With max_patches=1 an image is
# never cut into tiles (nor given a thumbnail): one tile, the image resized to 32x32.
DOWNSAMPLE = 0.5
INTERNVL_IMAGE_SEQ_LEN = int(GRID * DOWNSAMPLE) ** 2  # 4

# The expanded placeholder of one 32x32 image, token by token, worked out by hand from the
# tiny configs above (not from running a processor).
LAYOUTS: dict[str, list[str]] = {
    "mistral3": ["[IMG]", "[IMG]", "[IMG_BREAK]", "[IMG]", "[IMG]", "[IMG_END]"],
    "internvl": [
        "<img>",
        "<IMG_CONTEXT>",
        "<IMG_CONTEXT>",
        "<IMG_CONTEXT>",
        "<IMG_CONTEXT>",
        "</img>",
    ],
}

# The text that stands for one image in a prompt (the processor's image_token), and what the
# chat template writes for an image part.
IMAGE_PLACEHOLDER = {"mistral3": "[IMG]", "internvl": "<IMG_CONTEXT>"}

# Where the text decoder's layers are in the loaded *ForConditionalGeneration model.
DECODER_LAYERS = {
    "mistral3": "model.language_model.layers",
    "internvl": "model.language_model.layers",
}

# What the processor returns for prompts with images besides input_ids and attention_mask.
PROCESSOR_EXTRAS = {"mistral3": {"pixel_values", "image_sizes"}, "internvl": {"pixel_values"}}

# A user turn with one image part and one text part, rendered as the real checkpoints' chat
# templates render it (their default system prompts, dates and tool calls trimmed).
CHAT_TEMPLATES = {
    # mistralai/Mistral-Small-3.1-24B-Instruct-2503: content parts in order inside [INST],
    # an image part as [IMG]; no generation prompt (the assistant's turn follows [/INST]).
    "mistral3": (
        "{{ bos_token }}{% for message in messages %}"
        "{% if message['role'] == 'system' %}"
        "{{ '[SYSTEM_PROMPT]' + message['content'] + '[/SYSTEM_PROMPT]' }}"
        "{% elif message['role'] == 'user' %}{{ '[INST]' }}"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for part in message['content'] %}"
        "{% if part['type'] == 'text' %}{{ part['text'] }}"
        "{% elif part['type'] in ['image', 'image_url'] %}{{ '[IMG]' }}{% endif %}"
        "{% endfor %}{% endif %}{{ '[/INST]' }}"
        "{% elif message['role'] == 'assistant' %}"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{{ message['content'][0]['text'] }}{% endif %}{{ eos_token }}"
        "{% endif %}{% endfor %}"
    ),
    # OpenGVLab/InternVL3-1B-hf: ChatML, an image part as "<IMG_CONTEXT>\n".
    "internvl": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for part in message['content'] %}"
        "{% if part['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}"
        "{% elif part['type'] == 'video' %}{{ '<video>\n' }}"
        "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
        "{% endfor %}{% endif %}{{ '<|im_end|>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
}


# --- stand-in processors --------------------------------------------------------------------


def _flat_images(images: Any) -> list[Any]:
    """Images as one flat list in prompt order: from a single image, a flat list, or a list of
    lists (one per prompt)."""
    if images is None:
        return []
    if not isinstance(images, (list, tuple)):
        return [images]
    flat: list[Any] = []
    for item in images:
        flat.extend(_flat_images(item) if isinstance(item, (list, tuple)) else [item])
    return flat


class _StandIn:
    """What the harness uses of a transformers processor: `tokenizer`, `image_processor`,
    `image_token`, `chat_template`, `apply_chat_template`, `__call__`, `decode`."""

    real_class = ""
    processor_fields: tuple[str, ...] = ()
    _dropped: tuple[str, ...] = ()  # image processor outputs used for the text, not returned
    image_processor_class = ""
    default_return_tensors: str | None = None

    def __init__(self, tokenizer, image_processor, chat_template: str | None = None, **fields):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.chat_template = chat_template
        for key, value in fields.items():
            if key not in self.processor_fields:
                raise TypeError(f"{type(self).__name__}: unexpected field {key!r}")
            setattr(self, key, value)

    # The real processor's text expansion of image `index`, given the image processor's output.
    def _expand(self, processed: BatchFeature, index: int) -> str:
        raise NotImplementedError

    def _image_kwargs(self, passed: dict[str, Any]) -> dict[str, Any]:
        """The image processor's arguments: those passed, with the real processor's own."""
        return passed

    def _padding_side(self) -> str:
        return self.tokenizer.padding_side

    @property
    def image_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.image_token)

    @property
    def model_input_names(self) -> list[str]:
        names = [*self.tokenizer.model_input_names, *self.image_processor.model_input_names]
        return [n for n in names if n not in self._dropped]

    def __call__(self, images=None, text=None, **kwargs) -> BatchFeature:
        if text is None:
            raise ValueError(f"{type(self).__name__} needs text")
        texts = [text] if isinstance(text, str) else list(text)
        flat = _flat_images(images)
        placed = sum(t.count(self.image_token) for t in texts)
        if placed != len(flat):
            raise ValueError(
                f"{placed} {self.image_token} placeholders in the prompts but {len(flat)} images"
            )
        return_tensors = kwargs.pop("return_tensors", self.default_return_tensors)
        valid = getattr(self.image_processor, "valid_kwargs", None)
        image_keys = set(getattr(valid, "__annotations__", {})) - {"return_tensors"}
        image_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in image_keys}
        kwargs.setdefault("padding_side", self._padding_side())

        data: dict[str, Any] = {}
        if flat:
            processed = self.image_processor(
                flat, **self._image_kwargs(image_kwargs), return_tensors=return_tensors
            )
            expansions = iter([self._expand(processed, i) for i in range(len(flat))])
            texts = [
                "".join(
                    piece if j == 0 else next(expansions) + piece
                    for j, piece in enumerate(t.split(self.image_token))
                )
                for t in texts
            ]
            data.update({k: v for k, v in processed.items() if k not in self._dropped})
        encoded = self.tokenizer(texts, return_tensors=return_tensors, **kwargs)
        return BatchFeature({**encoded, **data}, tensor_type=return_tensors)

    def apply_chat_template(
        self, conversation, chat_template: str | None = None, tokenize: bool = False, **kwargs
    ):
        """The chat template rendered to text (as the real processor renders it with
        tokenize=False); tokenize=True is not offered."""
        if tokenize:
            raise NotImplementedError(f"{type(self).__name__} renders text only (tokenize=False)")
        return self.tokenizer.apply_chat_template(
            conversation,
            chat_template=chat_template or self.chat_template,
            tokenize=False,
            **kwargs,
        )

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def save_pretrained(self, path) -> None:
        """Files as the real checkpoint has them: tokenizer (with the chat template), the image
        processor's config and processor_config.json naming the real processor class."""
        path = Path(path)
        self.tokenizer.chat_template = self.chat_template
        self.tokenizer.save_pretrained(path)
        self.image_processor.save_pretrained(path)
        fields = {k: getattr(self, k) for k in self.processor_fields}
        fields["processor_class"] = self.real_class
        (path / "processor_config.json").write_text(json.dumps(fields, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, path) -> _StandIn:
        import transformers
        from transformers import AutoTokenizer

        path = Path(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        images = getattr(transformers, cls.image_processor_class).from_pretrained(path)
        fields = json.loads((path / "processor_config.json").read_text())
        fields = {k: v for k, v in fields.items() if k in cls.processor_fields}
        return cls(tokenizer, images, chat_template=tokenizer.chat_template, **fields)


class PixtralStandIn(_StandIn):
    """PixtralProcessor (Mistral 3) without torchvision.

    The PIL image processor gets patch_size = patch_size * spatial_merge_size, as the real
    processor passes it, so each image is shrunk to fit longest_edge (never enlarged) and its
    sides rounded up to a multiple of that merged patch; images are zero-padded to the largest
    in the batch and `image_sizes` holds each one's (height, width) before padding. An image of
    height h and width w becomes h/m rows of w/m [IMG] tokens (m the merged patch), each row
    closed by [IMG_BREAK] except the last, closed by [IMG_END]."""

    real_class = "PixtralProcessor"
    processor_fields = (
        "patch_size",
        "spatial_merge_size",
        "image_token",
        "image_break_token",
        "image_end_token",
    )
    image_processor_class = "PixtralImageProcessorPil"
    default_return_tensors = "pt"  # the real processor's default for text and images

    def __init__(self, tokenizer, image_processor, chat_template=None, **fields):
        fields = {
            "patch_size": 16,
            "spatial_merge_size": 1,
            "image_token": "[IMG]",
            "image_break_token": "[IMG_BREAK]",
            "image_end_token": "[IMG_END]",
            **fields,
        }
        super().__init__(tokenizer, image_processor, chat_template, **fields)

    @property
    def _merged_patch(self) -> int:
        return self.patch_size * self.spatial_merge_size

    def _image_kwargs(self, passed: dict[str, Any]) -> dict[str, Any]:
        return {**passed, "patch_size": self._merged_patch}  # always, as the real one does

    def _expand(self, processed: BatchFeature, index: int) -> str:
        height, width = (int(x) for x in processed["image_sizes"][index])
        rows, cols = height // self._merged_patch, width // self._merged_patch
        lines = [self.image_token * cols for _ in range(rows)]
        return self.image_break_token.join(lines) + self.image_end_token


class InternVLStandIn(_StandIn):
    """InternVLProcessor without torchvision (images only, no videos).

    The PIL image processor gets crop_to_patches=True, as the real processor passes it; with the
    saved max_patches=1 that cuts nothing, so each image is one tile resized to `size`. Its
    count of tiles (`num_patches`) sizes the text and is then dropped from the output. Each
    <IMG_CONTEXT> in the prompt becomes <img> + image_seq_length x <IMG_CONTEXT> per tile +
    </img>. Prompts are padded on the left unless the tokenizer's config names a side or the
    call passes padding_side, as the real processor does."""

    real_class = "InternVLProcessor"
    processor_fields = ("image_seq_length",)
    image_processor_class = "GotOcr2ImageProcessorPil"
    _dropped = ("num_patches",)

    def __init__(self, tokenizer, image_processor, chat_template=None, **fields):
        super().__init__(
            tokenizer, image_processor, chat_template, **{"image_seq_length": 256, **fields}
        )
        self.image_token = tokenizer.context_image_token
        self.start_image_token = tokenizer.start_image_token
        self.end_image_token = tokenizer.end_image_token
        self.video_token = tokenizer.video_token

    def _image_kwargs(self, passed: dict[str, Any]) -> dict[str, Any]:
        return {"crop_to_patches": True, **passed}  # a default, as the real one has it

    def _padding_side(self) -> str:
        if "padding_side" in self.tokenizer.init_kwargs:
            return self.tokenizer.padding_side
        return "left"

    def save_pretrained(self, path) -> None:
        """As `_StandIn.save_pretrained`, plus the video processor's config that InternVL
        checkpoints carry (the real processor saves its video processor too): with it,
        `AutoProcessor.from_pretrained` fails on InternVLVideoProcessor needing torchvision
        (ImportError), as on the real checkpoints; without it, a ValueError from
        AutoVideoProcessor."""
        super().save_pretrained(path)
        video = {
            "video_processor_type": "InternVLVideoProcessor",
            "processor_class": self.real_class,
            "size": dict(self.image_processor.size),
            "image_mean": list(self.image_processor.image_mean),
            "image_std": list(self.image_processor.image_std),
            "resample": 3,
            "do_sample_frames": False,
        }
        (Path(path) / "video_preprocessor_config.json").write_text(json.dumps(video, indent=2))

    def _expand(self, processed: BatchFeature, index: int) -> str:
        tiles = int(processed["num_patches"][index])
        context = self.image_token * (self.image_seq_length * tiles)
        return self.start_image_token + context + self.end_image_token


# Each stand-in: model_type -> (stand-in class, the real class, why its output is the same).
STAND_INS = {
    "mistral3": (
        "PixtralStandIn",
        "PixtralProcessor",
        "PixtralProcessor needs torchvision (a @requires mark, and an import of the torchvision "
        "image processor). The stand-in calls PixtralImageProcessorPil, which the real processor "
        "would also load without torchvision (AutoImageProcessor picks it), with the same "
        "patch_size (8 * spatial_merge_size 2 = 16), so pixel_values and image_sizes are the "
        "real ones; it writes the same [IMG] rows from image_sizes and returns the same keys: "
        "input_ids, attention_mask, pixel_values (n_images, 3, H, W), image_sizes (n_images, 2).",
    ),
    "internvl": (
        "InternVLStandIn",
        "InternVLProcessor",
        "InternVLProcessor holds a video processor (torchvision). For images the real processor "
        "runs GotOcr2ImageProcessor with crop_to_patches=True, expands each <IMG_CONTEXT> into "
        "<img> + image_seq_length x <IMG_CONTEXT> per tile + </img>, drops num_patches and "
        "pads on the left by default; the stand-in does the same with GotOcr2ImageProcessorPil "
        "(max_patches=1: one 32x32 tile per image) and returns the same keys: input_ids, "
        "attention_mask, pixel_values (n_tiles, 3, 32, 32).",
    ),
}


# --- builders -------------------------------------------------------------------------------


def build_mistral3(path: Path) -> Path:
    """Mistral3ForConditionalGeneration (Pixtral vision tower, Mistral text) and its files, with
    the processor fields of mistralai/Mistral-Small-3.1-24B-Instruct-2503 scaled down."""
    from transformers import (
        Mistral3Config,
        Mistral3ForConditionalGeneration,
        PixtralImageProcessorPil,
    )

    tok = _tokenizer(
        ["[INST]", "[/INST]", "[IMG]", "[IMG_BREAK]", "[IMG_END]"]
        + ["[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"]
    )
    config = Mistral3Config(
        vision_config=dict(
            VISION,
            model_type="pixtral",
            head_dim=VISION["hidden_size"] // VISION["num_attention_heads"],
        ),
        text_config=text_config(len(tok), "mistral"),
        image_token_index=tok.convert_tokens_to_ids("[IMG]"),
        spatial_merge_size=SPATIAL_MERGE,
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )
    torch.manual_seed(17)
    model = Mistral3ForConditionalGeneration(config)
    # The real one: longest_edge 1540, patch_size 14, CLIP mean/std (the class defaults).
    images = PixtralImageProcessorPil(
        size={"longest_edge": IMAGE_SIZE}, patch_size={"height": PATCH, "width": PATCH}
    )
    processor = PixtralStandIn(
        tok,
        images,
        chat_template=CHAT_TEMPLATES["mistral3"],
        patch_size=PATCH,
        spatial_merge_size=SPATIAL_MERGE,
    )
    return _save(model, processor, path)


INTERNVL_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def build_internvl(path: Path) -> Path:
    """InternVLForConditionalGeneration (InternViT, Qwen2 text) and its files, with the
    processor fields of OpenGVLab/InternVL3-1B-hf scaled down."""
    from transformers import (
        GotOcr2ImageProcessorPil,
        InternVLConfig,
        InternVLForConditionalGeneration,
    )

    tok = _tokenizer(["<|im_start|>", "<|im_end|>"], INTERNVL_TOKENS)
    config = InternVLConfig(
        vision_config=dict(VISION, model_type="internvl_vision"),
        text_config=text_config(len(tok), "qwen2"),
        image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=INTERNVL_IMAGE_SEQ_LEN,
        downsample_ratio=DOWNSAMPLE,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )
    torch.manual_seed(18)
    model = InternVLForConditionalGeneration(config)
    # The real one: 448x448 tiles, up to 12 of them plus a thumbnail, ImageNet mean/std.
    images = GotOcr2ImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        crop_to_patches=False,
        min_patches=1,
        max_patches=1,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
    )
    processor = InternVLStandIn(
        tok,
        images,
        chat_template=CHAT_TEMPLATES["internvl"],
        image_seq_length=INTERNVL_IMAGE_SEQ_LEN,
    )
    return _save(model, processor, path)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "mistral3": build_mistral3,
    "internvl": build_internvl,
}
STAND_IN_CLASSES: dict[str, type[_StandIn]] = {
    "mistral3": PixtralStandIn,
    "internvl": InternVLStandIn,
}
