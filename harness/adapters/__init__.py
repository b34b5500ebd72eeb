"""The adapter registry: `--model` values to adapter classes, and loading the run's adapter.

Three kinds of names: the checkpoints of `harness.checkpoints` (each row names its class as a
`"module:Class"` string), the schemes `hf:<repo-or-path>` and `gguf:<path>`, and adapters from
other packages through the `vlm_tv_eval.adapters` entry-point group (a class with a `name`).
Classes are imported on first use, so listing the models and checking a config cost no torch
until a model is made.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from ..checkpoints import CHECKPOINTS, SCHEMES
from ..errors import ConfigError
from ..parallel import current_shard

if TYPE_CHECKING:
    from ..config import RunConfig
    from .base import Adapter

ENTRY_POINT_GROUP = "vlm_tv_eval.adapters"


def import_class(path: str) -> Any:
    """The object a `"module:Name"` string names."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def adapter_names() -> list[str]:
    return sorted(set(CHECKPOINTS) | set(_plugins()) | set(SCHEMES))


def describe_adapters() -> list[tuple[str, str]]:
    """(name, one line) for `ls models`, read from the tables: no adapter is imported."""
    out = []
    for name in adapter_names():
        if name in CHECKPOINTS:
            ckpt = CHECKPOINTS[name]
            layer = f"; authors' layer {ckpt.authors_layer}" if ckpt.authors_layer else ""
            out.append((name, ckpt.description + layer))
        elif name in SCHEMES:
            out.append((name, SCHEMES[name][2]))
        else:
            out.append((name, f"plugin ({_plugins()[name].value})"))
    return out


def adapter_class(model: str) -> tuple[type[Adapter], dict[str, Any]]:
    """The adapter class for a --model value, and the constructor arguments it implies."""
    for scheme, (path, argument, _) in SCHEMES.items():
        if model.startswith(f"{scheme}:"):
            return import_class(path), {argument: model[len(scheme) + 1 :]}
    if model in CHECKPOINTS:
        ckpt = CHECKPOINTS[model]
        return import_class(ckpt.adapter), {"checkpoint": ckpt}
    plugins = _plugins()
    if model in plugins:
        try:
            return plugins[model].load(), {}
        except Exception as exc:  # noqa: BLE001 - whatever the plug-in's import raises
            raise ConfigError(
                f"the adapter plug-in {model!r} ({plugins[model].value}) cannot be imported: "
                f"{type(exc).__name__}: {exc}"
            ) from None
    raise ConfigError(
        f"unknown model {model!r}. Known models: {', '.join(adapter_names())}; "
        "or hf:<repo-or-path> for any Hugging Face causal LM, hf-vlm:<repo-or-path> for any "
        "image-text-to-text model, gguf:<path> for a GGUF file"
    )


def make_adapter(model: str, **kwargs: Any) -> Adapter:
    """An adapter, not loaded yet: `kwargs` are model_args plus `device`, `template`, `chat`."""
    cls, implied = adapter_class(model)
    return cls(**{**implied, **kwargs})


def run_device(config: RunConfig) -> str:
    """The device a run's model goes on: `--device`, where auto means CUDA when there is one;
    under `accelerate launch` on GPUs, this process's own GPU."""
    import torch

    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    shard = current_shard()
    if shard.count > 1 and shard.device and device.startswith("cuda"):
        device = shard.device  # one GPU per process
    return device


def load_adapter(model: str, model_args: dict[str, Any], config: RunConfig) -> Adapter:
    """An adapter made with the run's prompt format and device, loaded."""
    args = {"device": run_device(config), **model_args}
    adapter = make_adapter(model, template=config.named_template, chat=config.chat, **args)
    adapter.load()
    if adapter.chat:
        adapter.chat_parts()  # fails now, with a clear message, if there is no chat template
    return adapter
