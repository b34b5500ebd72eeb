"""Adapter registry: built-in adapters by name, `hf:<repo>` for any causal LM, and adapters from
other packages through the `vlm_tv_eval.adapters` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from .base import Adapter, Batch
from .causal_lm import CausalLMAdapter, SmolLM2Adapter
from .vlm import (
    Idefics2Adapter,
    LlavaAdapter,
    MantisFuyuAdapter,
    Mistral7BAdapter,
    Vicuna7BAdapter,
)

ENTRY_POINT_GROUP = "vlm_tv_eval.adapters"

_REGISTRY: dict[str, type[Adapter]] = {}


def register_adapter(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator: make an adapter available by its `name`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


for _cls in (
    SmolLM2Adapter,
    CausalLMAdapter,
    Idefics2Adapter,
    LlavaAdapter,
    MantisFuyuAdapter,
    Mistral7BAdapter,
    Vicuna7BAdapter,
):
    register_adapter(_cls)


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def adapter_names() -> list[str]:
    return sorted(set(_REGISTRY) | set(_plugins()))


def describe_adapters() -> list[tuple[str, str]]:
    out = []
    for name in adapter_names():
        cls = _REGISTRY.get(name)
        out.append((name, cls.description if cls else f"plugin ({_plugins()[name].value})"))
    return out


def adapter_class(model: str) -> tuple[type[Adapter], dict[str, Any]]:
    """The adapter class for a --model value, and the model_args it implies."""
    if model.startswith("hf:"):
        return CausalLMAdapter, {"pretrained": model[3:]}
    if model not in _REGISTRY and model in _plugins():
        register_adapter(_plugins()[model].load())
    if model not in _REGISTRY:
        raise ValueError(
            f"unknown model {model!r}. Known models: {', '.join(adapter_names())}; "
            "or hf:<repo-or-path> for any Hugging Face causal LM"
        )
    return _REGISTRY[model], {}


def make_adapter(model: str, **model_args: Any) -> Adapter:
    cls, implied = adapter_class(model)
    return cls(**{**implied, **model_args})


__all__ = [
    "Adapter",
    "Batch",
    "adapter_class",
    "adapter_names",
    "describe_adapters",
    "make_adapter",
    "register_adapter",
]
