"""Task vectors: built from a spec's prompts, saved as safetensors with their provenance, and
reused when the same model, template, task and spec are asked for again."""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from benchmark import uses_examples
from benchmark.files import atomic_output, cache_root, slug

from . import engine
from .adapters.base import Adapter
from .context import EvalContext
from .items import record_digest, sha256


def _prompt_digest(prompts: list) -> str:
    """Prompt texts and image contents: an image prompt's text alone says nothing."""
    return sha256(
        [[p.text, [hashlib.sha256(img.tobytes()).hexdigest() for img in p.images]] for p in prompts]
    )


# Bump when the way a vector is made changes (positions, averaging, prompts): old cache entries
# then no longer match any key. 3: example prompts carry their query after the demos.
VECTOR_PROTOCOL = 3


def _tensor_sha256(vector: torch.Tensor) -> str:
    return hashlib.sha256(vector.contiguous().numpy().tobytes()).hexdigest()


def _check_cached(path: Any, full: dict[str, Any], adapter: Any) -> tuple[Any, str | None]:
    """The cached vector and None, or None and what is wrong with the file."""
    try:
        with safe_open(str(path), "pt") as f:
            stored = f.metadata() or {}
            vector = f.get_tensor("vector")
    except Exception as exc:  # noqa: BLE001 - safetensors raises several kinds for bad files
        return None, f"unreadable ({type(exc).__name__}: {exc})"
    for key, value in full.items():
        want = value if isinstance(value, str) else json.dumps(value)
        if stored.get(key) != want:
            return None, f"its {key} is {stored.get(key)!r}, this run expects {want!r}"
    if tuple(vector.shape) != (adapter.num_layers, adapter.hidden_size):
        return (
            None,
            f"shape {tuple(vector.shape)}, expected ({adapter.num_layers}, {adapter.hidden_size})",
        )
    if not torch.isfinite(vector).all():
        return None, "it holds NaN or infinite values"
    if stored.get("tensor_sha256") != _tensor_sha256(vector):
        return None, "its values do not match the checksum written with them (edited?)"
    return vector, None


def _cache_entry(
    adapter: Any, task: str, meta: dict[str, Any], prompts: list
) -> tuple[Any, dict[str, Any]]:
    """Where a vector made from `prompts` is cached, and the provenance its file must carry."""
    model = adapter.describe()
    full = {
        "protocol": VECTOR_PROTOCOL,
        "model": model["name"],
        "fingerprint": model.get("fingerprint"),
        "inputs": adapter.inputs_fingerprint(),
        "pretrained": model["pretrained"],
        "revision": model["revision"],
        "dtype": model["dtype"],
        "task": task,
        "template": adapter.template.record(),
        "chat_template": adapter.chat,
        **meta,
        "prompts": _prompt_digest(prompts),
    }
    key = sha256(full)[:20]
    return cache_root() / "vectors" / slug(model["name"]) / f"{slug(task)}-{key}.safetensors", full


def _store(path: Any, full: dict[str, Any], vector: torch.Tensor) -> None:
    metadata = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in full.items()}
    metadata["tensor_sha256"] = _tensor_sha256(vector)
    with atomic_output(path) as tmp:
        save_file({"vector": vector}, str(tmp), metadata=metadata)


def cached_vector(
    adapter: Any, batch_size: int, task: str, meta: dict[str, Any], prompts: list
) -> torch.Tensor:
    """The [n_layers, d] vector averaged over `prompts`' task tokens, from the cache if the same
    weights (by fingerprint), template, task and spec were extracted before by this protocol.

    A cache file proves itself: its metadata must equal what this run expects and the tensor
    must match the checksum written with it; otherwise it is recomputed with a warning."""
    path, full = _cache_entry(adapter, task, meta, prompts)
    if path.is_file():
        vector, problem = _check_cached(path, full, adapter)
        if problem is None:
            return vector
        print(
            f"warning: task vector cache {path}: {problem}; extracting it again (it is "
            "replaced: nothing to delete)",
            file=sys.stderr,
        )
    vector = engine.extract_task_vector(adapter, prompts, batch_size).contiguous()
    _store(path, full, vector)
    return vector


def _examples_prompts(
    adapter: Adapter, ctx: EvalContext, task: str, seed: int
) -> tuple[list, dict[str, Any]]:
    """One N-shot prompt per validation item, and the provenance of the vector averaged over
    them. As the authors build it (`xPatchDataset`, include_regular): the item's demos (from the
    same split, never the item), then the item as a query, the task token on the last demo's
    marker. A causal model's state there does not depend on the query, but a processor's layout
    can: Mantis's MFuyuProcessor opens a prompt that carries an image with `<s>`, so under text
    examples -> image queries the demos are read after a BOS they would lack alone. A text-only
    model (the source model under LLM->VLM) reads the query as text."""
    config = ctx.config
    items = ctx.items(task, "validation")
    prompts = [
        adapter.example_prompt(
            [(ctx.spec_input(d), d["output"]) for d in ctx.demos(task, "validation", q, seed)],
            query=ctx.query_input(q) if adapter.supports_images else q["input"],
        )
        for q in items
    ]
    meta = {
        "spec": "image_examples" if config.spec == "image_examples" else "text_examples",
        "seed": seed,
        "n_shot": config.n_shot,
        "items": sha256([record_digest(q) for q in items]),
    }
    return prompts, meta


def extract_seeds_together(adapter: Adapter, ctx: EvalContext, task: str, seeds: list) -> None:
    """Make the text-example vectors of several seeds not yet cached in one extraction pass and
    cache them, so that `task_vector` then reads them. The seeds' spec prompts draw demos from
    one split, so across seeds 17% of their tokens repeat a beginning, which runs once: 1.20x
    faster than one seed at a time on the main job's six tasks (SmolLM2, three rounds)."""
    if ctx.config.spec not in ("text_examples", "ensemble"):
        return
    todo = []
    for seed in seeds:
        prompts, meta = _examples_prompts(adapter, ctx, task, seed)
        path, full = _cache_entry(adapter, task, meta, prompts)
        if not path.is_file():  # a damaged file is left to `cached_vector`, which warns
            todo.append((prompts, path, full))
    if len(todo) < 2:
        return
    prompts = [p for group in todo for p in group[0]]
    states = engine.capture_task_states(adapter, prompts, ctx.config.batch_size, sharing=True)
    start = 0
    for group, path, full in todo:
        _store(path, full, states[start : start + len(group)].mean(dim=0).contiguous())
        start += len(group)


def task_vector(adapter: Adapter, ctx: EvalContext, task: str, seed: int) -> torch.Tensor:
    """[n_layers, d] vector for the configured spec, made in `adapter` (the evaluated model, or
    the source model under LLM->VLM transfer).

    Examples: one N-shot prompt per validation item (demos from the same split, never the
    item), the task token's state averaged over the prompts, as the authors do. Instruction: the
    raw string's last token. Ensemble: the mean of the two.
    """
    config = ctx.config

    def examples_vector() -> torch.Tensor:
        prompts, meta = _examples_prompts(adapter, ctx, task, seed)
        return cached_vector(adapter, config.batch_size, task, meta, prompts)

    def instruction_vector() -> torch.Tensor:
        instruction = ctx.data[task].instruction
        meta = {"spec": "instruction", "instruction": instruction}
        return cached_vector(
            adapter, config.batch_size, task, meta, [adapter.instruction_prompt(instruction)]
        )

    if not uses_examples(config.spec):
        return instruction_vector()
    if config.spec == "ensemble":
        return (examples_vector() + instruction_vector()) / 2
    return examples_vector()
