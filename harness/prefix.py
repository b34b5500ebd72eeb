"""Prompts that begin with the same tokens run that beginning once.

Few-shot prompts draw their demos at random from one split, so many begin with the same example:
in the main job, 7.5% of the prompt method's tokens within one (task, seed) repeat another
prompt's beginning, and more across a task's seeds. Each group of such prompts runs its common
beginning once; its keys and values are then copied under every member, whose own rest runs as a
continuation of that cache. A causal model's states at a token depend only on the tokens before
it, so the answer is the same as the whole prompt's up to float rounding (tested).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import DynamicCache

from .adapters.base import SHARED_PREFIXES, Adapter, left_pad
from .hooks import captured

Rows = Sequence[Sequence[int]]


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def shared_prefix_groups(rows: Rows, min_shared: int = 4) -> list[tuple[list[int], int]]:
    """Rows grouped by a common beginning: (member indices, tokens they share).

    Neighbours in sorted order join a group while the tokens it saves, (members - 1) x shared
    length, do not fall; every member keeps at least its last token to run. A row that shares
    fewer than `min_shared` tokens with its neighbour stays alone (shared length 0)."""
    order = sorted(range(len(rows)), key=lambda i: list(rows[i]))
    groups: list[tuple[list[int], int]] = []
    members: list[int] = []
    shared = 0
    for i in order:
        if members:
            common = min(shared, _common_length(rows[members[-1]], rows[i]), len(rows[i]) - 1)
            if common >= min_shared and len(members) * common >= (len(members) - 1) * shared:
                members.append(i)
                shared = common
                continue
            groups.append((members, shared if len(members) > 1 else 0))
        members, shared = [i], len(rows[i]) - 1
    if members:
        groups.append((members, shared if len(members) > 1 else 0))
    return groups


def can_share(adapter: Adapter, rows: Rows) -> bool:
    """Sharing needs the model's own KV cache, and a model the adapter does not rule out
    (`SHARED_PREFIXES`); a sliding window shorter than a prompt would make the cached
    beginning differ from the whole prompt's, so it is not used then. The window is the text
    model's (a VLM's top-level config does not carry it)."""
    if not adapter.path_on(SHARED_PREFIXES):
        return False
    window = getattr(adapter.model.config.get_text_config(), "sliding_window", None)
    return not window or max(len(r) for r in rows) < window


def _on_device(adapter: Adapter, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.to(adapter.device) for k, v in inputs.items()}


def _prefix_states(
    adapter: Adapter, rows: Rows, groups: list[tuple[list[int], int]], batch_size: int
) -> dict[int, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Keys and values of each shared beginning, per layer ([heads, shared, head_dim])."""
    shared = [g for g, (members, n) in enumerate(groups) if n]
    states: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for start in range(0, len(shared), batch_size):
        part = shared[start : start + batch_size]
        starts = [rows[groups[g][0][0]][: groups[g][1]] for g in part]
        inputs, _ = left_pad(starts, [0] * len(part), pad_id=0)
        inputs["position_ids"] = adapter.positions(inputs)
        cache = adapter.body()(**_on_device(adapter, inputs), use_cache=True).cache
        for j, g in enumerate(part):
            n = groups[g][1]
            states[g] = [(layer.keys[j, :, -n:], layer.values[j, :, -n:]) for layer in cache.layers]
    return states


def _continuation_inputs(
    adapter: Adapter,
    rows: Rows,
    batch: list[int],
    shared_len: list[int],
    prefix: list[list[tuple[torch.Tensor, torch.Tensor]] | None],
) -> dict:
    """Model inputs for the rest of each row in `batch`, continuing a cache that holds each
    row's shared beginning right-aligned over the batch's longest one (padding masked out)."""
    width = max(shared_len[i] for i in batch)
    rests, _ = left_pad([rows[i][shared_len[i] :] for i in batch], [0] * len(batch), pad_id=0)
    if width == 0:
        return _on_device(adapter, rests)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    cache = DynamicCache(config=adapter.model.config)
    some = next(p for p in prefix if p is not None)
    for layer, (k0, _) in enumerate(some):
        keys = k0.new_zeros((len(batch), k0.shape[0], width, k0.shape[2]))
        values = torch.zeros_like(keys)
        for b, states in enumerate(prefix):
            if states is not None:
                n = states[layer][0].shape[1]
                keys[b, :, width - n :] = states[layer][0]
                values[b, :, width - n :] = states[layer][1]
                mask[b, width - n :] = 1
        cache.update(keys, values, layer)
    # The rests' positions are those of the rows' last tokens when each row runs whole: the
    # rests are the rows' ends, so both left-padded, their columns line up from the right.
    whole, _ = left_pad([rows[i] for i in batch], [0] * len(batch), pad_id=0)
    rest_width = rests["input_ids"].shape[1]
    inputs = {
        "input_ids": rests["input_ids"],
        "attention_mask": torch.cat([mask, rests["attention_mask"]], dim=1),
        "position_ids": adapter.positions(whole)[..., -rest_width:],
    }
    return {**_on_device(adapter, inputs), "cache": cache}


@torch.inference_mode()
def continuations(
    adapter: Adapter, rows: Rows, batch_size: int = 32, min_shared: int = 4
) -> Iterator[tuple[list[int], dict[str, Any]]]:
    """(row indices, model inputs), batch by batch: each row's last token is the inputs' last
    column, and the rows' shared beginnings, run once, are in the inputs' `cache`."""
    groups = shared_prefix_groups(rows, min_shared)
    shared_len = [0] * len(rows)
    group_of = [0] * len(rows)
    for g, (members, n) in enumerate(groups):
        for i in members:
            shared_len[i], group_of[i] = n, g
    states = _prefix_states(adapter, rows, groups, batch_size)
    # Batches of similar rest lengths: the rests are what runs in full.
    order = sorted(range(len(rows)), key=lambda i: (len(rows[i]) - shared_len[i], shared_len[i]))
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        prefix = [states.get(group_of[i]) if shared_len[i] else None for i in batch]
        yield batch, _continuation_inputs(adapter, rows, batch, shared_len, prefix)


@torch.inference_mode()
def states_at_task_tokens(
    adapter: Adapter, prompts: Sequence[Any], batch_size: int = 32
) -> torch.Tensor | None:
    """Every layer's output at each prompt's task token, shared beginnings run once:
    [n, n_layers, d] (float32); None where the prompts are not token rows or cannot share.
    Each prompt is cut after its task token, which then is its last."""
    rows = adapter.token_rows(prompts)
    if not rows:
        return None
    cut = [
        r[: int(adapter.encode([p]).task_index[0]) + 1] for p, r in zip(prompts, rows, strict=True)
    ]
    if not can_share(adapter, cut):
        return None
    states = torch.empty(len(cut), adapter.num_layers, adapter.hidden_size)
    for batch, inputs in continuations(adapter, cut, batch_size):
        got: list[torch.Tensor | None] = []
        last = torch.full((len(batch),), inputs["input_ids"].shape[1] - 1, device=adapter.device)
        with captured(adapter.layers, last, got):
            adapter.body()(**inputs, use_cache=True)
        states[batch] = torch.stack(got, dim=1).float().cpu()  # type: ignore[arg-type]
    return states


@torch.inference_mode()
def last_logits_sharing_prefixes(
    adapter: Adapter,
    rows: Rows,
    batch_size: int = 32,
    min_shared: int = 4,
    keep: dict[str, int] | None = None,
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """(row indices, their last position's logits), batch by batch, common beginnings run
    once. `keep`: the model's keyword for computing the last position's logits only."""
    for batch, inputs in continuations(adapter, rows, batch_size, min_shared):
        yield batch, adapter.model(**inputs, use_cache=True, **(keep or {})).logits[:, -1]
