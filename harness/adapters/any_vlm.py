"""Any image-text-to-text model transformers runs natively: `--model hf-vlm:<repo-or-path>`.

One adapter for every architecture behind `AutoModelForImageTextToText` + `AutoProcessor`:
the processor expands images into image tokens, the image placeholder of the plain `Q:/A:`
templates is the one the model's own chat template writes for one image (else the processor's
image token), the decoder layers are found in the model's text decoder, the task token is the
last token of the rendered spec prompt and the patch position the query's last token, as for
the three paper models.

Architectures whose positions or attention depend on the image cannot use the engine's shared
paths (the KV-cached sweep, shared prefixes, the one-pass query and patch) exactly as they are
built today, so they are refused in one line, before any weights are fetched, naming why:
a different number is never computed silently.
"""

from __future__ import annotations

import os
from typing import Any

from PIL import Image

from ..errors import ConfigError, ModelLoadError
from .causal_lm import load_error
from .vlm import VLMAdapter, complete_processor

# model_type -> why the engine's shared paths are not exact for it yet.
NOT_YET: dict[str, str] = {
    **dict.fromkeys(
        ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "glm4v", "glm4v_moe"),
        "its positions are 3-D (M-RoPE) and depend on the image grid, which the KV-cached "
        "sweep and shared prefixes do not carry yet",
    ),
    "mllama": "its images enter through cross-attention layers, which the single-token patched "
    "steps of the sweep do not run with the image states yet",
    **dict.fromkeys(
        ("paligemma",),
        "its whole prompt attends both ways (a prefix LM: token_type_ids), so a patch on the "
        "last token changes every earlier state, which the engine's KV-cached paths assume not",
    ),
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

    def _config(self) -> Any:
        """The checkpoint's config, read once (preflight, the layer check and the load ask)."""
        from transformers import AutoConfig

        if getattr(self, "_hf_config", None) is None:
            try:
                self._hf_config = AutoConfig.from_pretrained(self.pretrained, **self._revision())
            except (OSError, ValueError) as exc:  # offline, no config.json, remote code only
                raise load_error(str(self.pretrained), exc) from None
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
        try:
            self.processor = AutoProcessor.from_pretrained(self.pretrained, **self._revision())
        except ImportError as exc:  # e.g. a video processor that needs torchvision
            raise ModelLoadError(
                f"the processor of {self.pretrained} needs a package that is not installed "
                f"({' '.join(str(exc).split())[:200]}); install it (pip install torchvision, "
                "with the torch build you run) and run again"
            ) from None
        except (OSError, ValueError) as exc:
            raise load_error(str(self.pretrained), exc) from None
        self.tokenizer = self.processor.tokenizer
        try:
            self.model = self._load_weights(self._model_class())
        except (OSError, ValueError) as exc:
            raise load_error(str(self.pretrained), exc) from None
        self.image_placeholder = image_placeholder(self.processor, f"hf-vlm:{self.pretrained}")
        self._finish_load()

    def _finish_load(self) -> None:
        complete_processor(self.processor, self.model)
        super()._finish_load()
        decoder = self.model.get_decoder() if hasattr(self.model, "get_decoder") else None
        layers = getattr(decoder, "layers", None)
        if layers is not None and len(layers):
            self._layers = layers  # the text decoder's own stack, never a vision tower's

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.checkpoint is None:
            out["name"] = f"hf-vlm:{self.pretrained}"
        return out

    def _process(self, texts: list[str], images: list[list[Image.Image]]) -> dict[str, Any]:
        """The processor on a batch; images nested per prompt, as processors take them."""
        return self.processor(
            text=texts, images=images if any(images) else None, padding=True, return_tensors="pt"
        )


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
