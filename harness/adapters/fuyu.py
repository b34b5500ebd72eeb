"""Mantis-Fuyu: Fuyu-8B fine-tuned by TIGER-Lab to take several interleaved images.

transformers has no multi-image Fuyu processor, so this adapter builds `input_ids` itself from
text segments and per-image blocks of patch tokens, and knows every position by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..templates import Prompt
from .base import Batch, left_pad, token_covering
from .vlm import VLMAdapter


class MantisFuyuAdapter(VLMAdapter):
    """TIGER-Lab/Mantis-8B-Fuyu through transformers' own Fuyu classes.

    Mantis interleaves images in text: each text segment that precedes an image ends with
    "image {j}: ", then the image's patch tokens follow, row by row, each row closed by a newline
    token. The patches of all images go to the model in the same order as their tokens.
    """

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
                local = token_covering(enc["offset_mapping"], prompt.task_char - offset, segment)
                task_col = len(ids) + local
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
        inputs, task_index = left_pad(
            [ids for ids, _, _ in rows], [col for _, _, col in rows], self.pad_id
        )
        all_patches = [patch for _, patches, _ in rows for patch in patches]
        if all_patches:
            # The model scatters patch embeddings into the image-token positions in order, row
            # after row, so one flat sequence of patches serves the whole batch.
            dtype = self.model.dtype if self.model is not None else torch.float32
            inputs["pixel_values"] = torch.cat(all_patches)[None].to(dtype)
        return self.to_batch(inputs, task_index)
