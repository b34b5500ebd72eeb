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


def _input_hidden(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _with_input_hidden(args: tuple, kwargs: dict, hidden: torch.Tensor) -> tuple[tuple, dict]:
    if args:
        return (hidden, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


def _patch(hidden: torch.Tensor, ivs: list[Intervention]) -> torch.Tensor:
    hidden = hidden.clone()
    for iv in ivs:
        rows = iv.rows.to(hidden.device)
        column = iv.position if isinstance(iv.position, int) else iv.position.to(hidden.device)
        hidden[rows, column] = iv.vector.to(hidden.dtype).to(hidden.device)
    return hidden


@contextmanager
def patched(layers: Sequence[torch.nn.Module], interventions: Sequence[Intervention]) -> Iterator:
    """Apply interventions during the forward passes run inside the block.

    A layer may not run at all in a pass (Mllama skips its cross-attention layers for a prompt
    without an image), handing its input on unchanged: its output is then the input of the
    next layer that runs, so a patch of it goes there (else it would be lost silently)."""
    by_layer: dict[int, list[Intervention]] = {}
    for iv in interventions:
        if not 0 <= iv.layer < len(layers):
            raise IndexError(f"layer {iv.layer} out of range 0..{len(layers) - 1}")
        by_layer.setdefault(iv.layer, []).append(iv)

    def on_output(ivs: list[Intervention], state: dict[str, bool]):
        def hook(_module, _args, output):
            state["applied"] = True
            return _replace_hidden(output, _patch(_hidden(output), ivs))

        return hook

    def on_later_input(ivs: list[Intervention], state: dict[str, bool]):
        def hook(_module, args, kwargs):
            if state["applied"]:
                return None
            state["applied"] = True  # the patched layer did not run in this pass
            return _with_input_hidden(args, kwargs, _patch(_input_hidden(args, kwargs), ivs))

        return hook

    def on_earlier_input(state: dict[str, bool]):
        def hook(_module, _args, _kwargs):
            state["applied"] = False  # a new pass begins below the patched layer
            return None

        return hook

    with ExitStack() as stack:
        for layer, ivs in by_layer.items():
            state = {"applied": False}
            handles = [layers[layer].register_forward_hook(on_output(ivs, state))]
            handles += [
                later.register_forward_pre_hook(on_later_input(ivs, state), with_kwargs=True)
                for later in layers[layer + 1 :]
            ]
            handles += [
                earlier.register_forward_pre_hook(on_earlier_input(state), with_kwargs=True)
                for earlier in layers[: layer + 1]
            ]
            for handle in handles:
                stack.callback(handle.remove)
        yield


@contextmanager
def captured(
    layers: Sequence[torch.nn.Module], positions: torch.Tensor, into: list[torch.Tensor | None]
) -> Iterator:
    """Record every layer's output at one column per row: `into[l]` becomes [batch, d]. A layer
    that did not run (see `patched`) has as output the input of the next layer that ran."""
    into[:] = [None] * len(layers)
    entering: list[torch.Tensor | None] = [None] * len(layers)
    rows = torch.arange(positions.shape[0])

    def at_columns(hidden: torch.Tensor) -> torch.Tensor:
        return hidden[rows.to(hidden.device), positions.to(hidden.device)].detach()

    def make_hook(index: int):
        def hook(_module, _args, output):
            into[index] = at_columns(_hidden(output))

        return hook

    def make_pre_hook(index: int):
        def hook(_module, args, kwargs):
            entering[index] = at_columns(_input_hidden(args, kwargs))

        return hook

    with ExitStack() as stack:
        for i, layer in enumerate(layers):
            handle = layer.register_forward_hook(make_hook(i))
            stack.callback(handle.remove)
            if i:
                handle = layer.register_forward_pre_hook(make_pre_hook(i), with_kwargs=True)
                stack.callback(handle.remove)
        yield
        for i in range(len(layers)):
            if into[i] is None:
                into[i] = next((x for x in entering[i + 1 :] if x is not None), None)
