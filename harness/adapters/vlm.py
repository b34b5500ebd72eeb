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

from ..errors import ModelLoadError
from ..templates import Prompt
from .base import Batch
from .causal_lm import CausalLMAdapter
from .model_files import reading

IMAGE_WIDTH = 224  # the paper resizes every image to width 224, keeping the aspect ratio


def resize_to_width(image: Image.Image, width: int = IMAGE_WIDTH) -> Image.Image:
    """The authors' `open_image` (src/xpatch_dataset.py): height int((width / w) * h), computed
    in that order and truncated, so the pixels match theirs exactly; PIL's default (bicubic)."""
    image = image.convert("RGB")
    if image.width == width:
        return image
    height = max(1, int((width / image.width) * image.height))
    return image.resize((width, height), Image.Resampling.BICUBIC)


def pil_image_processor(pretrained: str, **kwargs: Any) -> Any:
    """The checkpoint's image processor on the PIL backend, the one the authors ran.

    With torchvision installed (the usual companion of CUDA torch) transformers 5 picks the
    torchvision image processors for Idefics2 and LLaVA (`Idefics2ImageProcessor`,
    `CLIPImageProcessor`; the PIL ones are `Idefics2ImageProcessorPil`, `CLIPImageProcessorPil`),
    which resize and normalise with other kernels than the PIL processors transformers 4.44.2
    used. `backend="pil"` goes to `AutoImageProcessor` alone: given to `AutoProcessor` it would
    also reach the tokenizer and overwrite its own `backend` attribute ("tokenizers"), and
    `use_fast=False` (deprecated in 5.x) would make a 4.x `AutoProcessor` load the slow
    tokenizer too."""
    from transformers import AutoImageProcessor

    try:
        from transformers.image_processing_backends import PilBackend  # noqa: F401
    except ImportError:  # transformers 4.x: the PIL processors are the "slow" ones
        return AutoImageProcessor.from_pretrained(pretrained, use_fast=False, **kwargs)
    return AutoImageProcessor.from_pretrained(pretrained, backend="pil", **kwargs)


def use_tokenizer_json_as_written(tokenizer: Any, pretrained: str, **kwargs: Any) -> bool:
    """Make `tokenizer` split and normalise text exactly as the checkpoint's `tokenizer.json`
    says; True when it had one to follow.

    transformers 5 builds Llama-family tokenizers (`LlamaTokenizer`, which Idefics2 maps to)
    from the vocabulary and merges of `tokenizer.json` alone and rebuilds the rest from the
    `legacy` flag of tokenizer_config.json: a Metaspace pre-tokenizer that puts `▁` before the
    first piece of text only (legacy false or absent, Idefics2's case) or before every piece
    that does not start with one (legacy true). Idefics2's `tokenizer.json` (Mistral's) instead
    prepends `▁` to every piece of text between special tokens, then turns spaces into `▁`;
    transformers 4.44.2, which the authors ran, read that file as written. Rebuilt, a prompt
    loses the `▁` after each image and each `<end_of_utterance>` (72 ids for a 73-id query).

    So the backend becomes `tokenizers.Tokenizer.from_file(tokenizer.json)` (its normaliser,
    pre-tokeniser, model and decoder as written), keeping from the loaded backend what
    transformers set up beyond the file, as 4.44.2's fast tokenizer also had it: the added
    tokens with their flags (tokenizer_config's and those the processor added, e.g. Idefics2's
    `<end_of_utterance>`), the BOS/EOS post-processor from `add_bos_token`/`add_eos_token`,
    padding, truncation and `encode_special_tokens`. Generic, hence done for every VLM: a
    tokenizer transformers already reads as written (LLaVA's `TokenizersBackend`) keeps its
    ids. Without a `tokenizer.json`, or without a tokenizers backend, nothing changes."""
    from tokenizers import Tokenizer
    from transformers.utils import cached_file

    loaded = getattr(tokenizer, "_tokenizer", None)
    if not isinstance(loaded, Tokenizer):
        return False
    path = cached_file(
        str(pretrained), "tokenizer.json", _raise_exceptions_for_missing_entries=False, **kwargs
    )
    if path is None:
        return False
    exact = Tokenizer.from_file(path)
    for token_id, token in sorted(loaded.get_added_tokens_decoder().items()):
        (exact.add_special_tokens if token.special else exact.add_tokens)([token])
        if exact.token_to_id(token.content) != token_id:
            raise ModelLoadError(
                f"cannot load the tokenizer of {pretrained}: its added token {token.content!r} "
                f"has id {token_id} in tokenizer_config.json but not in tokenizer.json"
            )
    if exact.get_vocab(with_added_tokens=True) != loaded.get_vocab(with_added_tokens=True):
        raise ModelLoadError(
            f"cannot load the tokenizer of {pretrained}: transformers built a vocabulary "
            "that differs from its tokenizer.json"
        )
    exact.post_processor = loaded.post_processor
    if loaded.truncation:
        exact.enable_truncation(**loaded.truncation)
    else:
        exact.no_truncation()
    if loaded.padding:
        exact.enable_padding(**loaded.padding)
    else:
        exact.no_padding()
    exact.encode_special_tokens = loaded.encode_special_tokens
    tokenizer._tokenizer = exact  # what `backend_tokenizer` returns and every call encodes with
    return True


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
        """The processor as transformers 4.44.2 gave it to the authors (the tokenizer reads the
        checkpoint's tokenizer.json as written, images go through the PIL image processor),
        then the weights."""
        from transformers import AutoProcessor

        files = self.local_files()  # first: it decides whether the Hub is asked at all
        revision = self._revision()
        # Offline, a folder without the files, or files deleted while read: one line.
        with reading(files, self._load_error):
            self.processor = AutoProcessor.from_pretrained(self.pretrained, **revision)
            self.processor.image_processor = pil_image_processor(self.pretrained, **revision)
            self.tokenizer = self.processor.tokenizer
            use_tokenizer_json_as_written(self.tokenizer, self.pretrained, **revision)
            self.model = self._load_weights(self._model_class())
        self._finish_load()

    def _finish_load(self) -> None:
        self.tokenizer.padding_side = "left"
        super()._finish_load()

    # -- encoding --------------------------------------------------------------------------------
    def _process(self, texts: list[str], images: list[list[Image.Image]]) -> dict[str, Any]:
        """Run the model's processor on a batch (left padding)."""
        raise NotImplementedError

    def token_rows(self, prompts: Sequence[Prompt]) -> list[list[int]] | None:
        """The ids `encode` feeds a text prompt: the processor's, in one batch with the padding
        left out, so they cannot differ from encode's in special tokens."""
        if not prompts or any(p.images for p in prompts):
            return None
        enc = self._process([p.text for p in prompts], [[] for _ in prompts])
        mask = enc["attention_mask"].bool()
        return [ids[keep].tolist() for ids, keep in zip(enc["input_ids"], mask, strict=True)]

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
        # Not `labels` (PaliGemma's processor writes them): given, the model computes a loss.
        inputs = {k: v for k, v in enc.items() if isinstance(v, torch.Tensor) and k != "labels"}
        inputs["position_ids"] = self.positions(inputs)
        return self.to_batch(inputs, task_index)


class Idefics2Adapter(VLMAdapter):
    layers_path = "model.text_model.layers"

    def _finish_load(self) -> None:
        # One image = one set of tokens, as the authors ran it (no 4+1 sub-image splitting).
        self.processor.image_processor.do_image_splitting = False
        super()._finish_load()

    def _process(self, texts: list[str], images: list[list[Image.Image]]) -> dict[str, Any]:
        """Idefics2Processor's work, done as transformers 4.44.2 did it for the authors: each
        image placeholder becomes `<fake>` + `image_seq_len` image tokens + `<fake>` (adjacent
        images share one `<fake>`), the text is tokenized as it then reads, and the images go
        through the image processor. transformers 5 also puts a space after a closing `<fake>`
        that a word follows (`<image>What is...` reads as `<image> What is...`), one more `▁`
        in the authors' overriding prompts; this does not."""
        proc = self.processor
        fake, image = proc.fake_image_token, proc.image_token
        expanded = f"{fake}{image * proc.image_seq_len}{fake}"
        prompts = [t.replace(image, expanded).replace(fake + fake, fake) for t in texts]
        out = dict(self.tokenizer(prompts, padding=True, return_tensors="pt"))
        if any(images):
            out.update(proc.image_processor(images, return_tensors="pt"))
        return out


class LlavaAdapter(VLMAdapter):
    layers_path = "model.language_model.layers"

    def _finish_load(self) -> None:
        complete_processor(self.processor, self.model)
        super()._finish_load()

    def _process(self, texts: list[str], images: list[list[Image.Image]]) -> dict[str, Any]:
        flat = [img for row in images for img in row]
        return self.processor(text=texts, images=flat or None, padding=True, return_tensors="pt")


def complete_processor(processor: Any, model: Any) -> None:
    """Fill in what sizes the run of image tokens when a LLaVA-style processor config lacks it.

    llava-hf/llava-1.5-7b-hf at the pinned revision predates `patch_size`,
    `vision_feature_select_strategy` and `num_additional_image_tokens` in its processor
    config; the installed LlavaProcessor then fails on the missing patch size, and its
    default of 0 extra tokens gives 575 image tokens for the model's 576 features. All
    three are facts of the model, so they come from its config and vision tower. A processor
    without these fields (not LLaVA-style) is left as it is."""
    if not hasattr(processor, "patch_size"):
        return
    config = model.config
    if getattr(processor, "patch_size", None) is None:
        processor.patch_size = int(config.vision_config.patch_size)
    if getattr(processor, "vision_feature_select_strategy", None) is None:
        processor.vision_feature_select_strategy = (
            getattr(config, "vision_feature_select_strategy", None) or "default"
        )
    if not getattr(processor, "num_additional_image_tokens", 0):
        processor.num_additional_image_tokens = _vision_extra_tokens(model)


def _vision_extra_tokens(model: Any) -> int:
    """Embeddings the vision tower adds beyond its patches (CLIP: 1, the CLS token)."""
    for module in model.modules():
        patches = getattr(module, "num_patches", None)
        positions = getattr(module, "num_positions", None)
        if isinstance(patches, int) and isinstance(positions, int):
            return positions - patches
    return 1  # LLaVA-1.5's CLIP ViT-L/14-336
