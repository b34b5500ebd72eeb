"""Vision-language models: Idefics2, LLaVA-1.5, Mantis-Fuyu, and their base LLMs.

A VLM prompt is text with an image placeholder wherever an image input stands, plus the images
in order. Idefics2 and LLaVA expand placeholders into image tokens in their own processors; the
task token is then found by processing the prompt's prefix up to the task character and
checking it is a prefix of the full `input_ids` (never a fixed offset). Fuyu has no multi-image
processor in transformers, so its adapter builds `input_ids` itself, Mantis-style, from text
segments and per-image blocks of patch tokens, and knows every position by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..templates import Prompt, render_examples, render_query
from .base import Batch, left_pad, position_ids
from .causal_lm import CausalLMAdapter

IMAGE_WIDTH = 224  # the paper resizes every image to width 224, keeping the aspect ratio


def resize_to_width(image: Image.Image, width: int = IMAGE_WIDTH) -> Image.Image:
    image = image.convert("RGB")
    if image.width == width:
        return image
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.BICUBIC)


class VLMAdapter(CausalLMAdapter):
    """Shared by the VLMs: image inputs in prompts, processor loading, task-token search."""

    supports_images = True
    default_template = "paper"
    image_placeholder = "<image>"
    image_width = IMAGE_WIDTH

    # -- prompts with images -------------------------------------------------------------------
    def _split_input(self, x: Any) -> tuple[str, list[Image.Image]]:
        if isinstance(x, Image.Image):
            return self.image_placeholder, [resize_to_width(x, self.image_width)]
        if isinstance(x, str):
            return x, []
        raise ValueError(f"an input must be a string or a PIL image, not {type(x).__name__}")

    def example_prompt(self, examples: Sequence[tuple[Any, str]], query: Any = None) -> Prompt:
        pairs, images = [], []
        for x, y in examples:
            text, imgs = self._split_input(x)
            pairs.append((text, y))
            images += imgs
        q = None
        if query is not None:
            q, imgs = self._split_input(query)
            images += imgs
        prompt = render_examples(self.template, pairs, query=q)
        prompt.images = images
        return self.wrap(prompt)

    def query_prompt(self, x: Any) -> Prompt:
        text, images = self._split_input(x)
        prompt = render_query(self.template, text)
        prompt.images = images
        return self.wrap(prompt)

    # -- loading ---------------------------------------------------------------------------------
    def _model_class(self) -> Any:
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText

    def load(self) -> None:
        from transformers import AutoProcessor

        self.processor = AutoProcessor.from_pretrained(self.pretrained, **self._revision())
        self.tokenizer = self.processor.tokenizer
        self.model = self._load_weights(self._model_class())
        self._finish_load()

    def _finish_load(self) -> None:
        self.tokenizer.padding_side = "left"
        super()._finish_load()

    # -- encoding --------------------------------------------------------------------------------
    def _process(self, texts: list[str], images: list[list[Image.Image]]) -> dict[str, Any]:
        """Run the model's processor on a batch (left padding)."""
        raise NotImplementedError

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
        return Batch({k: v.to(self.device) for k, v in inputs.items()}, task_index.to(self.device))


class Idefics2Adapter(VLMAdapter):
    name = "idefics2"
    description = "HuggingFaceM4/idefics2-8b (Mistral-7B backbone; 32 layers)"
    default_pretrained = "HuggingFaceM4/idefics2-8b"
    default_revision = "2c42686c57fe21cf0348c9ce1077d094b72e7698"
    paired_with = "mistral-7b"
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
    name = "llava-1.5"
    description = "llava-hf/llava-1.5-7b-hf (Vicuna-7B backbone; 32 layers)"
    default_pretrained = "llava-hf/llava-1.5-7b-hf"
    default_revision = "a272c74b2481d8aff3aa6fc2c4bf891fe57334fb"
    paired_with = "vicuna-7b"
    layers_path = "model.language_model.layers"

    def _process(self, texts: list[str], images: list[list[Image.Image]]) -> dict[str, Any]:
        flat = [img for row in images for img in row]
        return self.processor(text=texts, images=flat or None, padding=True, return_tensors="pt")


class MantisFuyuAdapter(VLMAdapter):
    """TIGER-Lab/Mantis-8B-Fuyu through transformers' own Fuyu classes.

    Mantis interleaves images in text: each text segment that precedes an image ends with
    "image {j}: ", then the image's patch tokens follow, row by row, each row closed by a newline
    token. The patches of all images go to the model in the same order as their tokens.
    """

    name = "mantis-fuyu"
    description = "TIGER-Lab/Mantis-8B-Fuyu (Fuyu-8B, Persimmon backbone; 36 layers)"
    default_pretrained = "TIGER-Lab/Mantis-8B-Fuyu"
    default_revision = "ea76e7446341b399d9af2d7af390abb83fda6b28"
    layers_path = "model.language_model.layers"
    image_token = "|SPEAKER|"
    newline_token = "|NEWLINE|"

    def _model_class(self) -> Any:
        from transformers import FuyuForCausalLM

        return FuyuForCausalLM

    def load(self) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.pretrained, **self._revision())
        self.model = self._load_weights(self._model_class())
        self._finish_load()

    def _finish_load(self) -> None:
        super()._finish_load()
        config = self.model.config
        self.patch_size = int(config.patch_size)
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(self.image_token)
        self.newline_id = self.tokenizer.convert_tokens_to_ids(self.newline_token)
        if getattr(config, "image_token_id", self.image_token_id) != self.image_token_id:
            raise ValueError("the tokenizer's image token does not match the model's config")

    def _patches(self, image: Image.Image) -> tuple[torch.Tensor, int, int]:
        """Normalised patches [rows*cols, patch*patch*3] of an image padded to whole patches.

        Fuyu's image processor scales pixels to [-1, 1] (mean 0.5, std 0.5) and pads with the
        value 1.0; the width-224 images never need the 1080x1920 downscale."""
        p = self.patch_size
        x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32).copy())
        x = (x / 255.0 - 0.5) / 0.5
        rows, cols = -(-image.height // p), -(-image.width // p)
        padded = torch.ones(rows * p, cols * p, 3)
        padded[: image.height, : image.width] = x
        patches = padded.view(rows, p, cols, p, 3).permute(0, 2, 1, 3, 4)
        return patches.reshape(rows * cols, p * p * 3), rows, cols

    def _encode_one(self, prompt: Prompt) -> tuple[list[int], list[torch.Tensor], int]:
        segments = prompt.text.split(self.image_placeholder)
        if len(segments) - 1 != len(prompt.images):
            raise ValueError(
                f"prompt has {len(segments) - 1} image placeholders but {len(prompt.images)} images"
            )
        ids: list[int] = []
        patches: list[torch.Tensor] = []
        task_col = None
        offset = 0  # character offset of the segment in the prompt text
        for j, segment in enumerate(segments):
            text = segment + (f"image {j}: " if j < len(prompt.images) else "")
            enc = self.tokenizer(text, add_special_tokens=(j == 0), return_offsets_mapping=True)
            if prompt.task_char is not None and offset <= prompt.task_char < offset + len(segment):
                local = prompt.task_char - offset
                cols = [i for i, (s, e) in enumerate(enc["offset_mapping"]) if s <= local < e]
                if not cols:
                    raise ValueError("no token covers the task character")
                task_col = len(ids) + cols[0]
            ids += enc["input_ids"]
            offset += len(segment) + len(self.image_placeholder)
            if j < len(prompt.images):
                image_patches, rows, n_cols = self._patches(prompt.images[j])
                ids += ([self.image_token_id] * n_cols + [self.newline_id]) * rows
                patches.append(image_patches)
        if prompt.task_char is None:
            task_col = len(ids) - 1
        assert task_col is not None
        return ids, patches, task_col

    def encode(self, prompts: Sequence[Prompt]) -> Batch:
        rows = [self._encode_one(p) for p in prompts]
        inputs = left_pad([ids for ids, _, _ in rows], [col for _, _, col in rows], self.pad_id)
        task_index = inputs.pop("task_index")
        all_patches = [patch for _, patches, _ in rows for patch in patches]
        if all_patches:
            # The model scatters patch embeddings into the image-token positions in order, row
            # after row, so one flat sequence of patches serves the whole batch.
            dtype = self.model.dtype if self.model is not None else torch.float32
            inputs["pixel_values"] = torch.cat(all_patches)[None].to(dtype)
        return Batch({k: v.to(self.device) for k, v in inputs.items()}, task_index.to(self.device))


class Mistral7BAdapter(CausalLMAdapter):
    name = "mistral-7b"
    description = "mistralai/Mistral-7B-v0.1, the base LLM of Idefics2 (32 layers)"
    default_pretrained = "mistralai/Mistral-7B-v0.1"
    default_revision = "7231864981174d9bee8c7687c24c8344414eae6b"
    default_template = "paper"
    paired_with = "idefics2"


class Vicuna7BAdapter(CausalLMAdapter):
    name = "vicuna-7b"
    description = "lmsys/vicuna-7b-v1.5, the base LLM of LLaVA-1.5 (32 layers)"
    default_pretrained = "lmsys/vicuna-7b-v1.5"
    default_revision = "3321f76e3f527bd14065daf69dad9344000a201d"
    default_template = "paper"
    paired_with = "llava-1.5"
