"""The floor a phase of work is measured against: the machine's fp32 matmul rate, measured now,
and the FLOPs of the token-layer work the protocol cannot avoid (`speed`, `speed_job`)."""

from __future__ import annotations

import time
from typing import Any

import torch


def timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def matmul_gflops(m: int = 2048, k: int = 576, n: int = 1536, repeats: int = 20) -> float:
    """fp32 GFLOP/s of one large matmul on this machine (the best of `repeats`)."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b  # warm-up
    best = min(timed(lambda: a @ b)[1] for _ in range(repeats))
    return 2 * m * k * n / best / 1e9


def linear_gflops(tokens: int = 2048, d: int = 576, hidden: int = 1536, repeats: int = 10) -> float:
    """fp32 GFLOP/s of the MLP's two linear layers (x W^T, as nn.Linear multiplies) on a batch
    of `tokens` rows: the other way of asking the machine's ceiling; the higher one is used."""
    up, down = torch.randn(hidden, d), torch.randn(d, hidden)
    x, h = torch.randn(tokens, d), torch.randn(tokens, hidden)

    def both() -> None:
        torch.nn.functional.linear(x, up)
        torch.nn.functional.linear(h, down)

    both()
    best = min(timed(both)[1] for _ in range(repeats))
    return 2 * 2 * tokens * d * hidden / best / 1e9


def layer_gflop_per_token(model: torch.nn.Module, n_layers: int) -> float:
    """2 x the non-embedding parameters per layer: the FLOPs of one token through one layer."""
    embeddings = {
        id(p)
        for m in (model.get_input_embeddings(), model.get_output_embeddings())
        for p in (m.parameters() if m is not None else [])
    }
    params = sum(p.numel() for p in model.parameters() if id(p) not in embeddings)
    return 2 * params / n_layers / 1e9


def prompt_tokens(adapter: Any, prompts: list, up_to_task: bool = False) -> int:
    """Tokens the model must read: whole prompts, or up to each prompt's task token."""
    total = 0
    for p in prompts:
        batch = adapter.encode([p])
        n = int(batch.model_inputs["attention_mask"].sum())
        total += int(batch.task_index[0]) + 1 - (batch.input_ids.shape[1] - n) if up_to_task else n
    return total
