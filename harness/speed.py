"""Speed and memory of the engine's choices, measured in one run: `python -m harness.speed`.

Prints, on the real SmolLM2-135M (or --model), the time of:
  - the layer sweep with a shared KV-cached prefix vs. a full patched forward per layer;
  - batched vs. one-at-a-time first-token prediction;
and the peak resident memory of the process. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from benchmark import load_task

from . import engine
from .adapters import make_adapter
from .data import sample_demos


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.speed")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="country_capital")
    parser.add_argument("--items", type=int, default=30)
    args = parser.parse_args()

    adapter, load_s = _timed(lambda: (a := make_adapter(args.model), a.load(), a)[2])
    items = load_task(args.task, "validation")[: args.items]
    specs = [
        adapter.example_prompt(
            [(d["input"], d["output"]) for d in sample_demos(items, q, 5, 0, args.task)]
        )
        for q in items
    ]
    queries = [adapter.query_prompt(r["input"]) for r in items]
    vectors, extract_s = _timed(lambda: engine.extract_task_vector(adapter, specs))
    n_layers = adapter.num_layers

    fast, fast_s = _timed(lambda: engine.sweep_layers(adapter, queries, vectors))

    def naive():
        return torch.stack(
            [
                engine.patch_last_token(adapter, queries, vectors[layer], layer)
                for layer in range(n_layers)
            ],
            dim=1,
        )

    slow, slow_s = _timed(naive)
    agree = (fast == slow).float().mean().item()

    prompts = [
        adapter.example_prompt(
            [(d["input"], d["output"]) for d in sample_demos(items, q, 5, 1, args.task)],
            query=q["input"],
        )
        for q in items
    ]
    _, batched_s = _timed(lambda: engine.first_tokens(adapter, prompts, batch_size=32))
    _, single_s = _timed(lambda: engine.first_tokens(adapter, prompts, batch_size=1))

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"model {args.model}: {n_layers} layers, load {load_s:.1f} s, torch threads "
        f"{torch.get_num_threads()}"
    )
    print(f"extract task vector ({len(specs)} prompts, all layers): {extract_s:.2f} s")
    print(f"layer sweep, {len(queries)} queries x {n_layers} layers:")
    print(f"  shared-prefix KV cache: {fast_s:.2f} s")
    print(
        f"  full forward per layer: {slow_s:.2f} s  (ratio {slow_s / fast_s:.1f}x; "
        f"same predictions on {agree:.1%})"
    )
    print(
        f"prompt method, {len(prompts)} prompts: batch 32 {batched_s:.2f} s, batch 1 "
        f"{single_s:.2f} s (ratio {single_s / batched_s:.1f}x)"
    )
    print(f"peak resident memory: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
