"""Vision-language models whose processors expand image placeholders: Idefics2 and LLaVA-1.5.

A VLM prompt is text with an image placeholder wherever an image input stands, plus the images
in order. Idefics2 and LLaVA expand placeholders into image tokens in their own processors; the
task token is then found by processing the prompt's prefix up to the task character and
checking it is a prefix of the full `input_ids` (never a fixed offset). Mantis-Fuyu builds
its own ids (`fuyu.py`); the text-only base LLMs are rows of `checkpoints.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from ..templates import Prompt
from .base import Batch, position_ids
from .causal_lm import CausalLMAdapter, load_error

IMAGE_WIDTH = 224  # the paper resizes every image to width 224, keeping the aspect ratio


def resize_to_width(image: Image.Image, width: int = IMAGE_WIDTH) -> Image.Image:
    """The authors' `open_image` (src/xpatch_dataset.py): height int((width / w) * h), computed
    in that order and truncated, so the pixels match theirs exactly; PIL's default (bicubic)."""
    image = image.convert("RGB")
    if image.width == width:
        return image
    height = max(1, int((width / image.width) * image.height))
    return image.resize((width, height), Image.Resampling.BICUBIC)


class VLMAdapter(CausalLMAdapter):
    """Shared by the VLMs: image inputs in prompts, processor loading, task-token search."""

    supports_images = True
    default_template = "paper"
    image_placeholder = "<image>"
    image_width = IMAGE_WIDTH

    # -- prompts with images -------------------------------------------------------------------
    def split_input(self, x: Any) -> tuple[str, list[Image.Image]]:
        if isinstance(x, tuple):  # an input in parts: each part as below
            return super().split_input(x)
        if isinstance(x, Image.Image):
            return self.image_placeholder, [resize_to_width(x, self.image_width)]
        if isinstance(x, str):
            return x, []
        raise ValueError(f"an input must be a string or a PIL image, not {type(x).__name__}")

    # -- loading ---------------------------------------------------------------------------------
    def _model_class(self) -> Any:
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText

    def load(self) -> None:
        from transformers import AutoProcessor

        try:
            self.processor = AutoProcessor.from_pretrained(self.pretrained, **self._revision())
            self.tokenizer = self.processor.tokenizer
            self.model = self._load_weights(self._model_class())
        except (OSError, ValueError) as exc:  # offline, or a folder without the files: one line
            raise load_error(str(self.pretrained), exc) from None
        self._finish_load()

    def _finish_load(self) -> None:
        self.tokenizer.padding_side = "left"
        super()._finish_load()

    # -- encoding --------------------------------------------------------------------------------
    def _process(self, texts: list[str], images: list[list[Image.Image]]) -> dict[str, Any]:
        """Run the model's processor on a batch (left padding)."""
        raise NotImplementedError

    def token_rows(self, prompts: Sequence[Prompt]) -> list[list[int]] | None:
        """The ids `encode` feeds a text prompt: the processor's, one prompt at a time (no
        padding), so they cannot differ from encode's in special tokens."""
        if not prompts or any(p.images for p in prompts):
            return None
        return [self._process([p.text], [[]])["input_ids"][0].tolist() for p in prompts]

    def encode(self, prompts: Sequence[Prompt]) -> Batch:
        enc = self._process([p.text for p in prompts], [list(p.images) for p in prompts])
        ids, mask = enc["input_ids"], enc["attention_mask"]
        width = ids.shape[1]
        task_index = torch.empty(len(prompts), dtype=torch.long)
        for b, p in enumerate(prompts):
            pad = int((mask[b] == 0).sum())
            if p.task_char is None:
                task_index[b] = width - 1
                continue
            head = p.text[: p.task_char + 1]
            n_images = head.count(self.image_placeholder)
            head_ids = self._process([head], [list(p.images[:n_images])])["input_ids"][0]
            real = ids[b, pad:]
            if not torch.equal(real[: len(head_ids)], head_ids):
                raise ValueError(
                    f"{self.name}: the prompt's tokens up to the task token differ when the rest "
                    "of the prompt follows (a merge across the delimiter?); use another template"
                )
            task_index[b] = pad + len(head_ids) - 1
        inputs = {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}
        inputs["position_ids"] = position_ids(mask)
        return self.to_batch(inputs, task_index)


class Idefics2Adapter(VLMAdapter):
    layers_path = "model.text_model.layers"

    def _finish_load(self) -> None:
        # One image = one set of tokens, as the authors ran it (no 4+1 sub-image splitting).
        self.processor.image_processor.do_image_splitting = False
        super()._finish_load()

    def _process(self, texts: list[str], images: list[list[Image.Image]]) -> dict[str, Any]:
        has_images = any(images)
        return self.processor(
            text=texts, images=images if has_images else None, padding=True, return_tensors="pt"
        )


class LlavaAdapter(VLMAdapter):
    layers_path = "model.language_model.layers"

    def _finish_load(self) -> None:
        self._complete_processor()
        super()._finish_load()

    def _complete_processor(self) -> None:
        """Fill in what sizes the run of image tokens when the processor config lacks it.

        llava-hf/llava-1.5-7b-hf at the pinned revision predates `patch_size`,
        `vision_feature_select_strategy` and `num_additional_image_tokens` in its processor
        config; the installed LlavaProcessor then fails on the missing patch size, and its
        default of 0 extra tokens gives 575 image tokens for the model's 576 features. All
        three are facts of the model, so they come from its config and vision tower."""
        proc, config = self.processor, self.model.config
        if getattr(proc, "patch_size", None) is None:
            proc.patch_size = int(config.vision_config.patch_size)
        if getattr(proc, "vision_feature_select_strategy", None) is None:
            proc.vision_feature_select_strategy = (
                getattr(config, "vision_feature_select_strategy", None) or "default"
            )
        if not getattr(proc, "num_additional_image_tokens", 0):
            proc.num_additional_image_tokens = self._vision_extra_tokens()

    def _vision_extra_tokens(self) -> int:
        """Embeddings the vision tower adds beyond its patches (CLIP: 1, the CLS token)."""
        for module in self.model.modules():
            patches = getattr(module, "num_patches", None)
            positions = getattr(module, "num_positions", None)
            if isinstance(patches, int) and isinstance(positions, int):
                return positions - patches
        return 1  # LLaVA-1.5's CLIP ViT-L/14-336

    def _process(self, texts: list[str], images: list[list[Image.Image]]) -> dict[str, Any]:
        flat = [img for row in images for img in row]
        return self.processor(text=texts, images=flat or None, padding=True, return_tensors="pt")
