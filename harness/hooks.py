"""Reading and writing decoder-layer outputs, described as data.

An `Intervention` says: at the output of layer `layer`, for batch rows `rows`, at token column
`position`, write `vector` (replace, not add). Capturing is the mirror image. Hooks handle both
transformers 5 (a layer returns a Tensor) and 4.x (a tuple whose first item is the hidden state).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch


@dataclass
class Intervention:
    layer: int
    rows: torch.Tensor  # long, batch rows to patch
    position: int | torch.Tensor  # a column for all rows, or one column per row
    vector: torch.Tensor  # [d] or [len(rows), d]


def _hidden(output: torch.Tensor | tuple) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output[0]


def _replace_hidden(output: torch.Tensor | tuple, hidden: torch.Tensor) -> torch.Tensor | tuple:
    return hidden if isinstance(output, torch.Tensor) else (hidden, *output[1:])


@contextmanager
def patched(layers: Sequence[torch.nn.Module], interventions: Sequence[Intervention]) -> Iterator:
    """Apply interventions during the forward passes run inside the block."""
    by_layer: dict[int, list[Intervention]] = {}
    for iv in interventions:
        if not 0 <= iv.layer < len(layers):
            raise IndexError(f"layer {iv.layer} out of range 0..{len(layers) - 1}")
        by_layer.setdefault(iv.layer, []).append(iv)

    def make_hook(ivs: list[Intervention]):
        def hook(_module, _args, output):
            hidden = _hidden(output).clone()
            for iv in ivs:
                rows = iv.rows.to(hidden.device)
                hidden[
                    rows,
                    iv.position if isinstance(iv.position, int) else iv.position.to(hidden.device),
                ] = iv.vector.to(hidden.dtype).to(hidden.device)
            return _replace_hidden(output, hidden)

        return hook

    with ExitStack() as stack:
        for layer, ivs in by_layer.items():
            handle = layers[layer].register_forward_hook(make_hook(ivs))
            stack.callback(handle.remove)
        yield


@contextmanager
def captured(
    layers: Sequence[torch.nn.Module], positions: torch.Tensor, into: list[torch.Tensor | None]
) -> Iterator:
    """Record every layer's output at one column per row: `into[l]` becomes [batch, d]."""
    into[:] = [None] * len(layers)
    rows = torch.arange(positions.shape[0])

    def make_hook(index: int):
        def hook(_module, _args, output):
            hidden = _hidden(output)
            into[index] = hidden[rows.to(hidden.device), positions.to(hidden.device)].detach()

        return hook

    with ExitStack() as stack:
        for i, layer in enumerate(layers):
            handle = layer.register_forward_hook(make_hook(i))
            stack.callback(handle.remove)
        yield
