"""Any image-text-to-text model transformers runs natively: `--model hf-vlm:<repo-or-path>`.

One adapter for every architecture behind `AutoModelForImageTextToText` + `AutoProcessor`:
the processor expands images into image tokens, the image placeholder of the plain `Q:/A:`
templates is the one the model's own chat template writes for one image (else the processor's
image token), the decoder layers are found in the model's text decoder, the task token is the
last token of the rendered spec prompt and the patch position the query's last token, as for
the three paper models.

Positions and attention that depend on the image are read from the model, not assumed:
positions are the ones the model's own `generate` feeds a prompt (Qwen-VL's 3-D M-RoPE grid,
PaliGemma's count from 1), and the engine's shared paths that would not be exact for the
architecture are turned off by `paths_off`, from facts of its config: a prefix LM (PaliGemma's
prompt attends both ways) runs every patch as a full forward, and cross-attention image layers
(Mllama) keep their image keys in the cache, so shared beginnings are not copied between prompts.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from PIL import Image

from ..errors import ConfigError, ModelLoadError
from .base import BATCHED_IMAGES, CUT_AFTER_TASK_TOKEN, KV_STEPS, SHARED_PREFIXES
from .model_files import reading
from .vlm import VLMAdapter, complete_processor

# model_type -> why the engine cannot serve it yet, whatever paths it turns off.
NOT_YET: dict[str, str] = {
    "gemma3n": "its audio and per-layer inputs are not carried by the engine's paths yet",
}
_SENTINEL = "\u2063QUERY\u2063"


def refusal(config: Any, name: str) -> str | None:
    """Why the generic adapter cannot serve this config (None: it can)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    model_type = getattr(config, "model_type", None)
    if getattr(config, "is_encoder_decoder", False):
        return (
            f"{name} is an encoder-decoder model ({model_type}); task vectors here are read from "
            "a decoder-only model's layers"
        )
    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return (
            f"{name} ({model_type or 'no model_type'}) is not an image-text-to-text architecture "
            "transformers runs natively (a model that needs trust_remote_code is not loaded)"
        )
    if model_type in NOT_YET:
        return f"{name} ({model_type}) is not served yet: {NOT_YET[model_type]}"
    return None


class AnyVLMAdapter(VLMAdapter):
    """`hf-vlm:<repo-or-path>`: a decoder-only image-text-to-text model through its processor."""

    name = "hf-vlm"
    description = "any image-text-to-text model transformers runs natively: hf-vlm:<repo-or-path>"
    default_template = "paper"

    def __init__(self, *args: Any, image_splitting: bool | None = None, **kwargs: Any) -> None:
        """`image_splitting` (`--model_args image_splitting=false`): whether the processor cuts
        an image into tiles besides the whole image, where it can (Idefics3/SmolVLM's
        `do_image_splitting`); None keeps the checkpoint's setting. Off, as the paper ran
        Idefics2, SmolVLM-256M's image costs 64 tokens instead of 832 for a 224-px image, and
        the cross-modal run on a 2-core CPU about 1.5 hours instead of 19 (`harness.laptop`)."""
        if image_splitting is not None and not isinstance(image_splitting, bool):
            raise ConfigError(f"image_splitting={image_splitting!r}: use true or false")
        super().__init__(*args, **kwargs)
        self.image_splitting = image_splitting

    def _config(self) -> Any:
        """The checkpoint's config, read once (preflight, the layer check and the load ask)."""
        from transformers import AutoConfig

        if getattr(self, "_hf_config", None) is None:
            self.local_files()  # a checkpoint that cannot be had fails here, before any retries
            try:
                self._hf_config = AutoConfig.from_pretrained(self.pretrained, **self._revision())
            except (OSError, ValueError) as exc:  # offline, no config.json, remote code only
                raise self._load_error(exc) from None
        return self._hf_config

    def _check(self, config: Any) -> None:
        problem = refusal(config, f"hf-vlm:{self.pretrained}")
        if problem:
            raise ConfigError(problem)

    def preflight(self) -> None:
        self._check(self._config())

    def peek_num_layers(self) -> int | None:
        """From the config alone, after checking the architecture is served (no weights)."""
        config = self._config()
        self._check(config)
        return int(config.get_text_config().num_hidden_layers)

    def load(self) -> None:
        from transformers import AutoProcessor

        if not self.pretrained:
            raise ConfigError("--model hf-vlm:<repo-or-path> needs a checkpoint")
        self._check(self._config())
        # Offline, a folder without the files, or files deleted while read: one line.
        with reading(self.local_files(), self._load_error):
            try:
                self.processor = AutoProcessor.from_pretrained(self.pretrained, **self._revision())
            except ImportError as exc:  # e.g. a video processor that needs torchvision
                raise ModelLoadError(
                    f"the processor of {self.pretrained} needs a package that is not installed "
                    f"({' '.join(str(exc).split())[:200]}); install it (pip install torchvision, "
                    "with the torch build you run) and run again"
                ) from None
            self.tokenizer = self.processor.tokenizer
            self._set_image_splitting()
            self.model = self._load_weights(self._model_class())
        self.image_placeholder = image_placeholder(self.processor, f"hf-vlm:{self.pretrained}")
        self._finish_load()

    def _finish_load(self) -> None:
        complete_processor(self.processor, self.model)
        super()._finish_load()
        decoder = self.model.get_decoder() if hasattr(self.model, "get_decoder") else None
        layers = getattr(decoder, "layers", None)
        if layers is not None and len(layers):
            self._layers = layers  # the text decoder's own stack, never a vision tower's

    def paths_off(self) -> dict[str, str]:
        text = self._config().get_text_config()
        if getattr(text, "use_bidirectional_attention", False):
            why = (
                "its prompt attends both ways (a prefix LM), so a token's states depend on the "
                "tokens after it"
            )
            return dict.fromkeys((KV_STEPS, SHARED_PREFIXES, CUT_AFTER_TASK_TOKEN), why)
        if getattr(text, "cross_attention_layers", None):
            return {
                SHARED_PREFIXES: "its cross-attention layers keep the image's keys in the same "
                "cache as the text's, so a cached beginning cannot be copied between prompts",
                BATCHED_IMAGES: "through its cross-attention layers a text token before a "
                "prompt's first image attends evenly over every image slot of the batch "
                "(padding images too), so a prompt's numbers would depend on its batch",
            }
        return {}

    def positions(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The positions the model's own `generate` feeds this batch (its position preparation,
        then its input preparation): 3-D M-RoPE positions over the image grid for Qwen-VL
        ([4, batch, tokens]: the text positions, then time, height and width), positions
        counted from 1 for PaliGemma, real tokens counted from 0 for most."""
        model = self.model
        prepare = getattr(model, "_prepare_position_ids_for_generation", None)
        if prepare is None:
            return super().positions(inputs)
        kwargs = {k: v for k, v in inputs.items() if k != "position_ids"}
        ids = kwargs.pop("input_ids")
        found = prepare(ids, {"input_ids": ids, **kwargs})
        prepared = model.prepare_inputs_for_generation(
            ids, position_ids=found, is_first_iteration=True, **kwargs
        )
        return prepared.get("position_ids", found)

    def _set_image_splitting(self) -> None:
        if self.image_splitting is None:
            return
        images = getattr(self.processor, "image_processor", None)
        if not hasattr(images, "do_image_splitting"):
            raise ConfigError(
                f"hf-vlm:{self.pretrained}: its image processor ({type(images).__name__}) has no "
                "image splitting to turn on or off; drop image_splitting from --model_args"
            )
        images.do_image_splitting = self.image_splitting

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.checkpoint is None:
            out["name"] = f"hf-vlm:{self.pretrained}"
        return out

    def _process(self, texts: list[str], images: list[list[Image.Image]]) -> dict[str, Any]:
        """The processor on a batch; images nested per prompt, as processors take them."""
        try:
            return self.processor(
                text=texts,
                images=images if any(images) else None,
                padding=True,
                return_tensors="pt",
            )
        except ValueError as exc:  # e.g. PaliGemma's takes no prompt without an image
            raise ConfigError(
                f"hf-vlm:{self.pretrained}: its processor refuses this prompt "
                f"({' '.join(str(exc).split())[:200]}); choose prompts it takes (e.g. "
                "--spec image_examples --query image for one that needs an image in each)"
            ) from None


def image_placeholder(processor: Any, name: str) -> str:
    """The text that stands for one image in a prompt: what the model's own chat template
    writes for a user message holding one image before its text (Qwen's
    `<|vision_start|><|image_pad|><|vision_end|>`, Gemma's `<start_of_image>`, SmolVLM's
    `<image>`), found by rendering the message with and without the image; without a chat
    template, the processor's image token."""
    token = getattr(processor, "image_token", None)
    template = getattr(processor, "chat_template", None)
    if template:
        try:
            text = {"type": "text", "text": _SENTINEL}
            text_only = _render(processor, [text])
            with_image = _render(processor, [{"type": "image"}, text])
        except Exception:  # noqa: BLE001 - a template that refuses this shape: use the token
            text_only = with_image = ""
        start = len(os.path.commonprefix([text_only, with_image]))
        end = with_image.find(_SENTINEL)
        if 0 <= start < end:
            segment = with_image[start:end]
            if token is None or token in segment or getattr(processor, "boi_token", "") in segment:
                return segment
    if isinstance(token, str) and token:
        return token
    raise ConfigError(
        f"{name}: its processor names no image token and its chat template writes none for an "
        "image, so image prompts cannot be written for it"
    )


def _render(processor: Any, content: list[dict[str, Any]]) -> str:
    messages = [{"role": "user", "content": content}]
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
