"""Adapter registry: the checkpoints the harness knows by name (`checkpoints.py`), `hf:<repo>`
for any causal LM, and adapters from other packages through the `vlm_tv_eval.adapters`
entry-point group (a class with a `name`)."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from .base import Adapter, Batch
from .causal_lm import CausalLMAdapter
from .checkpoints import CHECKPOINTS, Checkpoint
from .fuyu import MantisFuyuAdapter
from .gguf import Gemma3Adapter, GGUFAdapter, SmolLM2Adapter
from .vlm import Idefics2Adapter, LlavaAdapter

ENTRY_POINT_GROUP = "vlm_tv_eval.adapters"

# The code that runs each kind of checkpoint (`Checkpoint.adapter`).
ADAPTER_CLASSES: dict[str, type[Adapter]] = {
    "hf": CausalLMAdapter,
    "smollm2-gguf": SmolLM2Adapter,
    "gemma3-gguf": Gemma3Adapter,
    "idefics2": Idefics2Adapter,
    "llava": LlavaAdapter,
    "fuyu": MantisFuyuAdapter,
}

# Plug-in adapter classes registered by model name (they carry their own defaults).
_REGISTRY: dict[str, type[Adapter]] = {}


def register_adapter(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator: make a plug-in adapter available as `--model <cls.name>`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def adapter_names() -> list[str]:
    return sorted(set(CHECKPOINTS) | set(_REGISTRY) | set(_plugins()) | {"hf", "gguf"})


def describe_adapters() -> list[tuple[str, str]]:
    out = []
    for name in adapter_names():
        if name in CHECKPOINTS:
            ckpt = CHECKPOINTS[name]
            layer = f"; authors' layer {ckpt.authors_layer}" if ckpt.authors_layer else ""
            out.append((name, ckpt.description + layer))
        elif name == "hf":
            out.append((name, CausalLMAdapter.description))
        elif name == "gguf":
            out.append((name, GGUFAdapter.description))
        elif name in _REGISTRY:
            out.append((name, _REGISTRY[name].description))
        else:
            out.append((name, f"plugin ({_plugins()[name].value})"))
    return out


def adapter_class(model: str) -> tuple[type[Adapter], dict[str, Any]]:
    """The adapter class for a --model value, and the constructor arguments it implies."""
    if model.startswith("hf:"):
        return CausalLMAdapter, {"pretrained": model[3:]}
    if model.startswith("gguf:"):
        return GGUFAdapter, {"gguf": model[5:]}
    if model in CHECKPOINTS:
        ckpt = CHECKPOINTS[model]
        return ADAPTER_CLASSES[ckpt.adapter], {"checkpoint": ckpt}
    if model not in _REGISTRY and model in _plugins():
        register_adapter(_plugins()[model].load())
    if model not in _REGISTRY:
        raise ValueError(
            f"unknown model {model!r}. Known models: {', '.join(adapter_names())}; "
            "or hf:<repo-or-path> for any Hugging Face causal LM, gguf:<path> for a GGUF file"
        )
    return _REGISTRY[model], {}


def make_adapter(model: str, **kwargs: Any) -> Adapter:
    """An adapter, not loaded yet: `kwargs` are model_args plus `device`, `template`, `chat`."""
    cls, implied = adapter_class(model)
    return cls(**{**implied, **kwargs})


__all__ = [
    "ADAPTER_CLASSES",
    "CHECKPOINTS",
    "Adapter",
    "Batch",
    "Checkpoint",
    "adapter_class",
    "adapter_names",
    "describe_adapters",
    "make_adapter",
    "register_adapter",
]
