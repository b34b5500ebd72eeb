"""Forward passes that capture, patch and sweep, batched and sharing what can be shared.

All functions take an adapter and `Prompt`s and return plain tensors; they know nothing of tasks.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import transformers

from . import prefix, progress
from .adapters.base import BATCHED_IMAGES, CUT_AFTER_TASK_TOKEN, KV_STEPS, Adapter
from .hooks import Intervention, captured, patched
from .templates import Prompt


def _chunks(n: int, size: int) -> list[range]:
    size = max(1, size)
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


def last_logits_only(model: torch.nn.Module) -> dict[str, int]:
    """Ask for the logits of the last position only, where the model supports it (most HF
    causal LMs): the vocabulary projection of every other position is wasted work."""
    params = inspect.signature(model.forward).parameters
    return {"logits_to_keep": 1} if "logits_to_keep" in params else {}


def length_batches(adapter: Adapter, prompts: Sequence[Prompt], size: int) -> list[list[int]]:
    """Indices in batches of similar length, so little of each batch is padding: sorted by
    token count where the adapter can count cheaply (padding was 12% of the prompt method's
    work when sorted by characters, 2% by tokens). Prompts with images each run alone where
    the model rules out batching them (`BATCHED_IMAGES`)."""
    lengths = adapter.prompt_lengths(prompts)
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    if any(p.images for p in prompts) and not adapter.path_on(BATCHED_IMAGES):
        text = [i for i in order if not prompts[i].images]
        alone = [[i] for i in order if prompts[i].images]
        return [[text[i] for i in idx] for idx in _chunks(len(text), size)] + alone
    return [[order[i] for i in idx] for idx in _chunks(len(order), size)]


def ticked(batches: Sequence[list[int]]) -> Iterator[list[int]]:
    """`batches`, ticking the running progress bar by each batch's items once it is done, so a
    long unit's bar moves batch by batch (progress.advance: a no-op without a bar)."""
    for idx in batches:
        yield idx
        progress.advance(len(idx))


@torch.inference_mode()
def first_tokens(
    adapter: Adapter,
    prompts: Sequence[Prompt],
    batch_size: int = 32,
    vector: torch.Tensor | None = None,
    layer: int | None = None,
    sharing_prefixes: bool = True,
) -> torch.Tensor:
    """Greedy first token after each prompt; with `vector`, patched over `layer`'s output at the
    last token (`patch_last_token`). Unpatched token prompts that begin alike run their common
    beginning once (`prefix.py`)."""
    keep = last_logits_only(adapter.model)
    out = torch.empty(len(prompts), dtype=torch.long)
    rows = adapter.token_rows(prompts) if vector is None and sharing_prefixes else None
    if rows is not None and prefix.can_share(adapter, rows):
        shared = prefix.last_logits_sharing_prefixes(adapter, rows, batch_size, keep=keep)
        for idx, logits in shared:
            out[idx] = logits.argmax(-1).cpu()
            progress.advance(len(idx))
        return out
    for idx in ticked(length_batches(adapter, prompts, batch_size)):
        batch = adapter.encode([prompts[i] for i in idx])
        ivs = []
        if vector is not None:
            if layer is None:
                raise ValueError("patching needs a layer")
            ivs = [Intervention(layer, torch.arange(batch.size), -1, vector)]
        with patched(adapter.layers, ivs):
            logits = adapter.model(**batch.model_inputs, **keep).logits[:, -1]
        out[idx] = logits.argmax(-1).cpu()
    return out


def patch_last_token(
    adapter: Adapter,
    prompts: Sequence[Prompt],
    vector: torch.Tensor,
    layer: int,
    batch_size: int = 32,
) -> torch.Tensor:
    return first_tokens(adapter, prompts, batch_size, vector=vector, layer=layer)


_TEXT_INPUTS = frozenset({"input_ids", "attention_mask", "position_ids"})


def _up_to_task_tokens(
    inputs: dict[str, torch.Tensor], task_index: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Text inputs cut after each row's own task token and left-padded again, so that every
    row's task token is the last column: a causal model's states up to a token never depend
    on what follows it, and a spec prompt's last answer is never read. Cutting all rows at
    the batch's latest task token instead left 13% of the main job's extraction columns
    wasted. Returns the inputs and the new task indices. Inputs with images are left whole
    (their image features are laid out over the columns)."""
    if not set(inputs) <= _TEXT_INPUTS:
        return inputs, task_index
    mask = inputs["attention_mask"].bool()
    columns = torch.arange(mask.shape[1])
    keep = mask & (columns[None] <= task_index[:, None])
    lengths = keep.sum(1)
    width = int(lengths.max())
    # Row r's kept columns, in order, land in the last lengths[r] columns of the new row.
    target = width - lengths[:, None] + keep.long().cumsum(1) - 1
    rows = torch.arange(mask.shape[0])[:, None].expand_as(mask)
    cut = {}
    for key, v in inputs.items():  # position_ids may have leading axes (M-RoPE's 3-D grid)
        fill = torch.zeros((*v.shape[:-2], mask.shape[0], width), dtype=v.dtype)
        if key == "input_ids":
            fill.fill_(int(v[0, 0]))  # any id: padding is masked out
        fill[..., rows[keep], target[keep]] = v[..., keep]
        cut[key] = fill
    return cut, torch.full_like(task_index, width - 1)


@torch.inference_mode()
def capture_task_states(
    adapter: Adapter, prompts: Sequence[Prompt], batch_size: int = 32, sharing: bool = False
) -> torch.Tensor:
    """Every layer's output at each prompt's task token: [n_prompts, n_layers, d] (float32);
    only the layers run, not the LM head. `sharing`: see `prefix.states_at_task_tokens` (off
    by default: for one batch of 30 spec prompts the prefix pass cost more than it saved)."""
    shared = prefix.states_at_task_tokens(adapter, prompts, batch_size) if sharing else None
    if shared is not None:
        return shared
    base = adapter.body()
    states: torch.Tensor | None = None
    for idx in ticked(length_batches(adapter, prompts, batch_size)):
        batch = adapter.encode([prompts[i] for i in idx])
        got: list[torch.Tensor | None] = []
        inputs, task_index = batch.model_inputs, batch.task_index
        if adapter.path_on(CUT_AFTER_TASK_TOKEN):
            inputs, task_index = _up_to_task_tokens(inputs, task_index)
        with captured(adapter.layers, task_index, got):
            base(**inputs)
        chunk = torch.stack(got, dim=1).float().cpu()  # type: ignore[arg-type]
        if states is None:
            states = torch.empty(len(prompts), *chunk.shape[1:])
        states[idx] = chunk
    if states is None:
        raise ValueError("no prompts to capture")
    return states


def extract_task_vector(
    adapter: Adapter, prompts: Sequence[Prompt], batch_size: int = 32
) -> torch.Tensor:
    """The task vector at every layer, averaged over the prompts: [n_layers, d]."""
    return capture_task_states(adapter, prompts, batch_size).mean(dim=0)


def sweep_layers(
    adapter: Adapter,
    prompts: Sequence[Prompt],
    vectors: torch.Tensor,
    layers: Sequence[int] | None = None,
    max_rows: int = 1024,
    return_logits: bool = False,
) -> torch.Tensor:
    """Greedy first token with `vectors[l]` patched at layer l, for every layer l: [n, n_layers].

    The patch touches only the last token, so everything before it is the same for all layers:
    the prefix is run once per prompt and its KV cache copied to one row per layer; each patched
    layer then costs a single-token step through the layers above it (`last_token_variants`).
    `vectors` may hold several sets ([s, n_layers, d], e.g. one per seed), which then share the
    prefix: [n, s, n_layers]. `return_logits`: a vocabulary axis at the end instead.
    """
    layers = list(range(adapter.num_layers)) if layers is None else list(layers)
    sets = vectors if vectors.dim() == 3 else vectors[None]
    patches = [(layer, v[layer]) for v in sets for layer in layers]
    out = last_token_variants(adapter, prompts, patches, max_rows, return_logits)
    out = out.view(len(prompts), len(sets), len(layers), *out.shape[2:])
    return out if vectors.dim() == 3 else out[:, 0]


def patch_variants(
    adapter: Adapter,
    prompts: Sequence[Prompt],
    vectors: torch.Tensor,
    layer: int,
    max_rows: int = 1024,
) -> torch.Tensor:
    """Greedy first token with each of `vectors` ([k, d]) patched at `layer`: [n, k]. One
    prefix pass serves all k vectors (the analyses compare many vectors on the same queries)."""
    return last_token_variants(adapter, prompts, [(layer, v) for v in vectors], max_rows)


def _pass_through(hidden_states: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
    return hidden_states


# transformers 5 decoder layers return the hidden state itself (4.x: a tuple), which is what
# a skipped layer must return too.
_LAYERS_RETURN_TENSORS = int(transformers.__version__.split(".")[0]) >= 5


@contextmanager
def _skipping_up_to(layers: Sequence[torch.nn.Module], top: int) -> Iterator[None]:
    """Layers 0..top hand their input on unchanged. Used when layer `top`'s output at the one
    token being run is replaced by a patch: nothing below it can change what comes after."""
    skipped = list(layers[: top + 1]) if _LAYERS_RETURN_TENSORS else []
    for layer in skipped:
        layer.forward = _pass_through  # type: ignore[method-assign]
    try:
        yield
    finally:
        for layer in skipped:
            del layer.forward


def _bands(patches: Sequence[tuple[int, torch.Tensor]], n_bands: int) -> list[list[int]]:
    """Patch indices grouped by layer into at most `n_bands` runs of neighbouring layers. Each
    group gets its own single-token step that skips every layer up to its lowest patched one,
    so a row patched at layer l runs the layers above l and few below it."""
    layers = sorted({layer for layer, _ in patches})
    per_band = -(-len(layers) // max(1, n_bands))
    groups = [set(layers[i.start : i.stop]) for i in _chunks(len(layers), per_band)]
    return [[j for j, (layer, _) in enumerate(patches) if layer in g] for g in groups]


def _tokens(key: str, v: torch.Tensor, columns: slice) -> torch.Tensor:
    """An input's `columns` along its token axis: the last for position ids (which may lead
    with M-RoPE's axes), the second for the rest."""
    return v[..., columns] if key == "position_ids" else v[:, columns]


def _repeat_rows(key: str, v: torch.Tensor, k: int) -> torch.Tensor:
    """Each row of an input k times in a row, along its batch axis (the one before the token
    axis for position ids)."""
    return v.repeat_interleave(k, dim=v.dim() - 2 if key == "position_ids" else 0)


# What a single-token step continuing a cache is fed for its token, besides the whole attention
# mask: Mllama's cross_attention_mask says which images the token reads through cross attention.
_STEP_INPUTS = frozenset({"input_ids", "position_ids", "cross_attention_mask"})


def _step_inputs(inputs: dict[str, torch.Tensor], k: int = 1) -> dict[str, torch.Tensor]:
    """The inputs of a step that runs each row's last token again on its prefix's cache, each
    row k times: the token's own columns and the whole attention mask."""
    step = {
        key: _repeat_rows(key, _tokens(key, v, slice(-1, None)), k)
        for key, v in inputs.items()
        if key in _STEP_INPUTS
    }
    step["attention_mask"] = inputs["attention_mask"].repeat_interleave(k, 0)
    return step


def _patched_last_token(
    adapter: Adapter,
    inputs: dict[str, torch.Tensor],
    prefix_cache: Any,
    patches: Sequence[tuple[int, torch.Tensor]],
    bands: list[list[int]],
    return_logits: bool,
) -> torch.Tensor:
    """The last token of each row of `inputs`, run once per patch on a copy of the rows'
    prefix cache (everything but the last token): [batch, k] first tokens (or logits)."""
    size = inputs["input_ids"].shape[0]
    out: torch.Tensor | None = None
    for b, band in enumerate(bands):
        k = len(band)
        cache = prefix_cache if b == len(bands) - 1 else copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(k)
        step = _step_inputs(inputs, k)
        rows = torch.arange(size) * k
        ivs = [Intervention(patches[j][0], rows + i, -1, patches[j][1]) for i, j in enumerate(band)]
        lowest = min(patches[j][0] for j in band)
        with _skipping_up_to(adapter.layers, lowest), patched(adapter.layers, ivs):
            # `cache=` in and `.cache` out: transformers 5's names (`past_key_values` is
            # deprecated, to be removed in 5.40; tests/test_no_deprecations.py).
            logits = adapter.model(**step, cache=cache, use_cache=True).logits[:, -1]
        logits = logits.view(size, k, -1)
        got = (logits.float() if return_logits else logits.argmax(-1)).cpu()
        if out is None:
            out = torch.empty((size, len(patches), *got.shape[2:]), dtype=got.dtype)
        out[:, band] = got
    assert out is not None
    return out


def _patched_full_forwards(
    adapter: Adapter,
    inputs: dict[str, torch.Tensor],
    patches: Sequence[tuple[int, torch.Tensor]],
    return_logits: bool,
) -> torch.Tensor:
    """Each patch of every row's last token as a whole forward of the batch: [batch, k] first
    tokens (or logits). Where the KV-cached step is not exact (`KV_STEPS` off)."""
    size = inputs["input_ids"].shape[0]
    keep = last_logits_only(adapter.model)
    out: torch.Tensor | None = None
    for j, (layer, vector) in enumerate(patches):
        with patched(adapter.layers, [Intervention(layer, torch.arange(size), -1, vector)]):
            logits = adapter.model(**inputs, **keep).logits[:, -1]
        got = (logits.float() if return_logits else logits.argmax(-1)).cpu()
        if out is None:
            out = torch.empty((size, len(patches), *got.shape[1:]), dtype=got.dtype)
        out[:, j] = got
    assert out is not None
    return out


def _require_two_tokens(inputs: dict[str, torch.Tensor]) -> None:
    """A patched last token needs a prefix to continue from."""
    if inputs["input_ids"].shape[1] < 2:
        raise ValueError("a query prompt must have at least two tokens")


# Inputs laid along the token axis, cut with the tokens: token_type_ids mark image tokens that
# attend to each other both ways (Gemma 3); the last token, which is run again alone, is text.
_PER_TOKEN_INPUTS = frozenset(
    {
        "input_ids",
        "attention_mask",
        "position_ids",
        "token_type_ids",
        "mm_token_type_ids",
        "cross_attention_mask",
    }
)


def _prefix_inputs(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    _require_two_tokens(inputs)
    return {
        key: (_tokens(key, v, slice(None, -1)) if key in _PER_TOKEN_INPUTS else v)
        for key, v in inputs.items()
    }


def _auto_bands(n_prompts: int, n_patches: int) -> int:
    """As many bands as keep each step at ~300 rows or more, at most 8. Measured on SmolLM2
    (2 CPU threads, six tasks' validation sweeps, 3 seeds at once): 1 band 60 s, 3 bands 43 s,
    8 bands 33-35 s, 15 bands 38 s, one per layer 47 s (small steps cost more than they save);
    one seed alone: 1 band 27 s, 3 bands 17 s, 5 bands 19 s."""
    return max(1, min(8, n_prompts * n_patches // 300))


@torch.inference_mode()
def last_token_variants(
    adapter: Adapter,
    prompts: Sequence[Prompt],
    patches: Sequence[tuple[int, torch.Tensor]],
    max_rows: int = 1024,
    return_logits: bool = False,
    bands: int | None = None,
) -> torch.Tensor:
    """Greedy first token (or logits) of each prompt under each patch (layer, vector [d]) of
    its last token: [n, k].

    The prefix runs once per prompt; its KV cache is copied to one row per patch, and the
    patched last tokens run as single-token steps, one per band of neighbouring layers. Each
    step skips the layers up to its lowest patched layer: a patch replaces that layer's output
    at the only token run, so nothing below it can change the result. Every patch at one layer
    (many vectors compared at one layer) is one step that skips everything below it."""
    groups = _bands(patches, bands or _auto_bands(len(prompts), len(patches)))
    items_per_chunk = max(1, max_rows // max(len(g) for g in groups))
    cached = adapter.path_on(KV_STEPS)
    out = []
    for idx in ticked(length_batches(adapter, prompts, items_per_chunk)):
        batch = adapter.encode([prompts[i] for i in idx])
        if not cached:
            out.append(
                (idx, _patched_full_forwards(adapter, batch.model_inputs, patches, return_logits))
            )
            continue
        prefix = _prefix_inputs(batch.model_inputs)
        cache = adapter.model(**prefix, use_cache=True, **last_logits_only(adapter.model)).cache
        got = _patched_last_token(
            adapter, batch.model_inputs, cache, patches, groups, return_logits
        )
        out.append((idx, got))
    result = torch.empty((len(prompts), *out[0][1].shape[1:]), dtype=out[0][1].dtype)
    for idx, got in out:
        result[idx] = got
    return result


@torch.inference_mode()
def query_and_patched(
    adapter: Adapter,
    prompts: Sequence[Prompt],
    vectors: torch.Tensor,
    layer: int | None,
    batch_size: int = 32,
    max_rows: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy first token of each prompt as it is ([n]), and with each of `vectors` ([k, d],
    k may be 0) patched over `layer`'s output at its last token ([n, k]).

    The query-only methods share one pass: the unpatched forward gives the first answer and
    its KV cache, cut back by one token, is the prefix every patched row continues from (the
    no-context baseline and every seed's patch read the same queries)."""
    k = len(vectors)
    if k and layer is None:
        raise ValueError("patching needs a layer")
    patches = [(int(layer), v) for v in vectors] if k else []  # type: ignore[arg-type]
    plain = torch.empty(len(prompts), dtype=torch.long)
    patched_ids = torch.empty((len(prompts), k), dtype=torch.long)
    size = max(1, min(batch_size, max_rows // max(k, 1))) if k else batch_size
    keep = last_logits_only(adapter.model)
    cached = not k or adapter.path_on(KV_STEPS)
    for idx in ticked(length_batches(adapter, prompts, size)):
        batch = adapter.encode([prompts[i] for i in idx])
        if k:
            _require_two_tokens(batch.model_inputs)
        full = adapter.model(**batch.model_inputs, use_cache=bool(k) and cached, **keep)
        plain[idx] = full.logits[:, -1].argmax(-1).cpu()
        if k and not cached:
            patched_ids[idx] = _patched_full_forwards(adapter, batch.model_inputs, patches, False)
        elif k:
            cache = full.cache
            try:
                cache.crop(-1)  # drop the last token: the prefix every patched row continues
            except RuntimeError:  # a sliding-window layer past its window cannot roll back
                prefix_inputs = _prefix_inputs(batch.model_inputs)
                cache = adapter.model(**prefix_inputs, use_cache=True, **keep).cache
            patched_ids[idx] = _patched_last_token(
                adapter, batch.model_inputs, cache, patches, [list(range(k))], False
            )
    return plain, patched_ids
