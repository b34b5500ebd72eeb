"""Speed and memory of the engine, against the work it cannot avoid: `python -m harness.speed`.

On the real SmolLM2-135M (or --model), for one task's items, in one run:
  - a matmul rate measured here (fp32, the shape of the model's MLP), the machine's ceiling;
  - each phase's time and its floor: the token-layer work the protocol cannot avoid (every
    token of every prompt through every layer, the sweep's patched steps through the layers
    above nothing it can skip) times the FLOPs of one token through one layer, divided by
    the measured rate;
  - the sweep against an authors'-style loop (batch 1, a full forward per query and layer, no
    cache), with the share of identical predictions;
  - peak resident memory.
Figures are printed (or written as JSON with --json), never asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
from typing import Any

import torch

from benchmark import load_task

from . import engine
from .adapters import make_adapter
from .floor import layer_gflop_per_token, linear_gflops, matmul_gflops, prompt_tokens, timed
from .items import sample_demos
from .speed_job import measure_main_job, print_main_job


def measure(model: str, task: str, n_items: int) -> dict[str, Any]:
    adapter, load_s = timed(lambda: (a := make_adapter(model), a.load(), a)[2])
    n_layers = adapter.num_layers
    items = load_task(task, "validation")[:n_items]
    specs = [
        adapter.example_prompt(
            [(d["input"], d["output"]) for d in sample_demos(items, q, 5, 0, task)]
        )
        for q in items
    ]
    queries = [adapter.query_prompt(r["input"]) for r in items]
    prompts = [
        adapter.example_prompt(
            [(d["input"], d["output"]) for d in sample_demos(items, q, 5, 1, task)],
            query=q["input"],
        )
        for q in items
    ]
    rate = max(matmul_gflops(), linear_gflops())
    per_token_layer = layer_gflop_per_token(adapter.model, n_layers)

    def floor(token_layers: float) -> float:
        return token_layers * per_token_layer / rate

    vectors, extract_s = timed(lambda: engine.extract_task_vector(adapter, specs))
    fast, sweep_s = timed(lambda: engine.sweep_layers(adapter, queries, vectors))

    def authors_loop() -> torch.Tensor:
        return torch.tensor(
            [
                [
                    int(engine.patch_last_token(adapter, [q], vectors[layer], layer, 1)[0])
                    for layer in range(n_layers)
                ]
                for q in queries
            ]
        )

    slow, authors_s = timed(authors_loop)
    _, prompt_s = timed(lambda: engine.firstprompt_tokens(adapter, prompts, batch_size=32))
    _, query_s = timed(lambda: engine.firstprompt_tokens(adapter, queries, batch_size=32))
    query_tokens = prompt_tokens(adapter, queries)
    # The sweep cannot avoid each query's prefix, and for patched layer l the layers above l
    # at the last token: sum over l of (n_layers - 1 - l) single-token layer passes.
    sweep_work = (query_tokens - len(queries)) * n_layers + len(queries) * sum(
        n_layers - 1 - la for la in range(n_layers)
    )
    phases = {
        "extraction": (extract_s, prompt_tokens(adapter, specs, up_to_task=True) * n_layers),
        "sweep": (sweep_s, sweep_work),
        "prompt": (prompt_s, prompt_tokens(adapter, prompts) * n_layers),
        "query": (query_s, query_tokens * n_layers),
    }
    return {
        "model": model,
        "task": task,
        "items": len(items),
        "layers": n_layers,
        "torch_threads": torch.get_num_threads(),
        "load_s": load_s,
        "matmul_gflops": rate,
        "gflop_per_token_layer": per_token_layer,
        "phases": {
            name: {
                "seconds": s,
                "token_layers": work,
                "floor_s": floor(work),
                "ratio_to_floor": s / floor(work),
            }
            for name, (s, work) in phases.items()
        },
        "sweep_vs_authors_loop": {
            "sweep_s": sweep_s,
            "authors_loop_s": authors_s,
            "speedup": authors_s / sweep_s,
            "same_predictions": float((fast == slow).float().mean()),
        },
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.speed")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="country_capital")
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--main-job",
        action="store_true",
        help="run the whole main job (about 6 minutes) and compare it with its floor",
    )
    args = parser.parse_args()
    if args.main_job:
        print_main_job(measure_main_job(), args.json)
        return
    got = measure(args.model, args.task, args.items)
    if args.json:
        print(json.dumps(got, indent=2))
        return
    print(
        f"model {got['model']}: {got['layers']} layers, load {got['load_s']:.1f} s, torch threads "
        f"{got['torch_threads']}; matmul {got['matmul_gflops']:.0f} GFLOP/s; "
        f"{got['gflop_per_token_layer'] * 1e3:.2f} MFLOP per token per layer"
    )
    print(f"{got['items']} items of {got['task']}:")
    print(f"  {'phase':12} {'seconds':>8} {'floor s':>8} {'ratio':>6}")
    for name, p in got["phases"].items():
        print(f"  {name:12} {p['seconds']:8.2f} {p['floor_s']:8.2f} {p['ratio_to_floor']:6.2f}")
    s = got["sweep_vs_authors_loop"]
    print(
        f"sweep {s['sweep_s']:.2f} s vs authors'-style loop (batch 1, a full forward per query "
        f"and layer) {s['authors_loop_s']:.2f} s: {s['speedup']:.1f}x, same predictions on "
        f"{s['same_predictions']:.1%}"
    )
    print(f"peak resident memory: {got['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
