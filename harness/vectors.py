"""Task vectors saved as safetensors with their provenance, reused when asked for again."""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .adapters.causal_lm import cache_root
from .data import sha256


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "x"


def _prompt_digest(prompts: list) -> str:
    """Prompt texts and image contents: an image prompt's text alone says nothing."""
    return sha256(
        [[p.text, [hashlib.sha256(img.tobytes()).hexdigest() for img in p.images]] for p in prompts]
    )


def cached_vector(
    adapter: Any, batch_size: int, task: str, meta: dict[str, Any], prompts: list
) -> torch.Tensor:
    """The [n_layers, d] vector averaged over `prompts`' task tokens, from the cache if the same
    model, template, task and spec were extracted before."""
    from .engine import extract_task_vector

    model = adapter.describe()
    full = {
        "model": model["name"],
        "pretrained": model["pretrained"],
        "revision": model["revision"],
        "dtype": model["dtype"],
        "task": task,
        "template": adapter.template.record(),
        "chat_template": adapter.use_chat_template,
        **meta,
        "prompts": _prompt_digest(prompts),
    }
    key = sha256(full)[:20]
    path = cache_root() / "vectors" / _safe(model["name"]) / f"{_safe(task)}-{key}.safetensors"
    if path.is_file():
        return load_file(path)["vector"]
    vector = extract_task_vector(adapter, prompts, batch_size).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file(
        {"vector": vector},
        str(tmp),
        metadata={k: json.dumps(v) if not isinstance(v, str) else v for k, v in full.items()},
    )
    os.replace(tmp, path)
    return vector
