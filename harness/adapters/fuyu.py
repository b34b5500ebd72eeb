"""Mantis-Fuyu: Fuyu-8B fine-tuned by TIGER-Lab to take several interleaved images.

transformers has no multi-image Fuyu processor, so this adapter builds `input_ids` itself, the
way Mantis's own `MFuyuProcessor` (TIGER-AI-Lab/Mantis, mantis/models/mfuyu/processor.py) does,
which is how the authors fed the model; building the ids here means every position, the task
token's included, is known by construction rather than searched for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..templates import Prompt
from .base import Batch, left_pad, token_covering
from .model_files import reading
from .vlm import VLMAdapter

# FuyuImageProcessor's defaults, which Mantis trains and runs with: images larger than
# MAX_SIZE (height, width) are scaled down to fit; partial patches are padded with PAD_PIXEL on
# the 0-255 scale *before* rescaling to [0, 1] and normalising with mean = std = 0.5.
MAX_SIZE = (1080, 1920)
PAD_PIXEL = 1.0
RESCALE = 1 / 255
MEAN = STD = 0.5


def fit_within(image: Image.Image, max_size: tuple[int, int] = MAX_SIZE) -> Image.Image:
    """Fuyu's resize rule: only an image larger than `max_size` shrinks (bilinear), by the one
    factor that fits both sides, each new side truncated to an int."""
    max_h, max_w = max_size
    if image.width <= max_w and image.height <= max_h:
        return image
    scale = min(max_h / image.height, max_w / image.width)
    size = (int(image.width * scale), int(image.height * scale))
    return image.resize(size, Image.Resampling.BILINEAR)


class MantisFuyuAdapter(VLMAdapter):
    """TIGER-Lab/Mantis-8B-Fuyu through transformers' own Fuyu model class.

    A prompt with n images is n+1 text segments. As MFuyuProcessor lays them out, segment j < n
    gets "image {j}: " appended, every non-empty segment is tokenized alone (no special tokens)
    and begins with its own BOS `<s>`, and image j sits between the trained markers
    `|IMAGE|` and `|ENDOFIMAGE|`, its patch tokens row by row, each row closed by `|NEWLINE|`:

        <s> seg0 "image 0: " |IMAGE| grid0 |ENDOFIMAGE| <s> seg1 "image 1: " |IMAGE| grid1
        |ENDOFIMAGE| <s> seg2

    A prompt without images is tokenized as plain text with no BOS at all, as MFuyuProcessor
    does when it is given no images. The patches of all images go to the model in the order of
    their tokens.
    """

    layers_path = "model.language_model.layers"
    image_token = "|SPEAKER|"
    newline_token = "|NEWLINE|"
    image_start_token = "|IMAGE|"
    image_end_token = "|ENDOFIMAGE|"
    bos_token = "<s>"

    def _model_class(self) -> Any:
        from transformers import FuyuForCausalLM

        return FuyuForCausalLM

    def load(self) -> None:
        from transformers import AutoTokenizer

        # Offline, a folder without the files, or files deleted while read: one line.
        with reading(self.local_files(), self._load_error):
            self.tokenizer = AutoTokenizer.from_pretrained(self.pretrained, **self._revision())
            self.model = self._load_weights(self._model_class())
        self._finish_load()

    def _finish_load(self) -> None:
        super()._finish_load()
        config = self.model.config
        self.patch_size = int(config.patch_size)
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(self.image_token)
        self.newline_id = self.tokenizer.convert_tokens_to_ids(self.newline_token)
        self.bos_id = self.tokenizer.convert_tokens_to_ids(self.bos_token)
        if getattr(config, "image_token_id", self.image_token_id) != self.image_token_id:
            raise ValueError("the tokenizer's image token does not match the model's config")
        self.image_start_id, self.image_end_id = self._image_marker_ids()

    def _image_marker_ids(self) -> tuple[int, int]:
        """Ids of `|IMAGE|` and `|ENDOFIMAGE|`, which Mantis added to Fuyu's vocabulary and
        trained. MFuyuProcessor adds them to the tokenizer when missing, so do the same; but if
        the model has no embedding rows for them this is not a Mantis checkpoint (plain
        adept/fuyu-8b would feed untrained ids), so say so rather than index out of range."""
        markers = [self.image_start_token, self.image_end_token]
        vocab = self.tokenizer.get_vocab()
        missing = [t for t in markers if t not in vocab]
        if missing:
            self.tokenizer.add_tokens(missing, special_tokens=True)
        ids = [int(self.tokenizer.convert_tokens_to_ids(t)) for t in markers]
        rows = self.model.get_input_embeddings().num_embeddings
        if max(ids) >= rows:
            raise ValueError(
                f"{self.pretrained} has no trained embeddings for Mantis's image markers "
                f"{markers} (ids {ids}, {rows} embedding rows): the mantis-fuyu adapter needs a "
                "Mantis-Fuyu checkpoint"
            )
        return ids[0], ids[1]

    def _patches(self, image: Image.Image) -> tuple[torch.Tensor, int, int]:
        """Normalised patches [rows*cols, patch*patch*3] of an image padded to whole patches.

        Mirrors MFuyuProcessor's order of operations exactly: resize (only if too large), pad
        with 1 on the 0-255 scale, rescale by 1/255 in float64 then cast to float32, normalise in
        float32. Padding after normalising (+1.0) would feed white-ish padding where the model
        was trained on almost-black (-0.992)."""
        p = self.patch_size
        image = fit_within(image.convert("RGB"))
        rows, cols = -(-image.height // p), -(-image.width // p)
        padded = np.full((rows * p, cols * p, 3), PAD_PIXEL, dtype=np.float64)
        padded[: image.height, : image.width] = np.asarray(image, dtype=np.float64)
        x = (padded * RESCALE).astype(np.float32)
        x = (x - np.float32(MEAN)) / np.float32(STD)
        patches = torch.from_numpy(x).view(rows, p, cols, p, 3).permute(0, 2, 1, 3, 4)
        return patches.reshape(rows * cols, p * p * 3), rows, cols

    def _encode_one(self, prompt: Prompt) -> tuple[list[int], list[torch.Tensor], int]:
        segments = prompt.text.split(self.image_placeholder)
        n_images = len(prompt.images)
        if len(segments) - 1 != n_images:
            raise ValueError(
                f"prompt has {len(segments) - 1} image placeholders but {n_images} images"
            )
        ids: list[int] = []
        patches: list[torch.Tensor] = []
        task_col = None
        offset = 0  # character offset of the segment in the prompt text
        for j, segment in enumerate(segments):
            text = segment + (f"image {j}: " if j < n_images else "")
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            if j > 0:
                ids.append(self.image_end_id)  # closes image j-1
            if n_images and enc["input_ids"]:
                ids.append(self.bos_id)  # every non-empty segment of a prompt with images
            if prompt.task_char is not None and offset <= prompt.task_char < offset + len(segment):
                local = token_covering(enc["offset_mapping"], prompt.task_char - offset, segment)
                task_col = len(ids) + local
            ids += enc["input_ids"]
            offset += len(segment) + len(self.image_placeholder)
            if j < n_images:
                image_patches, rows, n_cols = self._patches(prompt.images[j])
                ids.append(self.image_start_id)
                ids += ([self.image_token_id] * n_cols + [self.newline_id]) * rows
                patches.append(image_patches)
        if prompt.task_char is None:
            task_col = len(ids) - 1
        assert task_col is not None
        return ids, patches, task_col

    def token_rows(self, prompts: Sequence[Prompt]) -> list[list[int]] | None:
        """The ids `encode` feeds, from the same layout (a text prompt: no special tokens)."""
        if not prompts or any(p.images for p in prompts):
            return None
        return [self._encode_one(p)[0] for p in prompts]

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
