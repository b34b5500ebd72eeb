"""The whole main job against its floor: `python -m harness.speed --main-job [--json]`.

The job runs as `vlm-tv-eval` runs it, in a scratch folder with a fresh task-vector cache, timed
by its own results file. Its floor is the token-layer work the protocol cannot avoid, phase by
phase (`main_job_work`), at a matmul rate sampled around every unit of work, because this
machine's speed drifts within a run.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmark.files import cache_root

from .adapters import make_adapter
from .arguments import parse_run_config
from .context import EvalContext
from .evaluator import evaluate
from .floor import layer_gflop_per_token, linear_gflops, matmul_gflops, prompt_tokens
from .prepare import load_run_data
from .store import RunStore, unit_kind


def main_job_work(config: Any, data: Any, adapter: Any, layer: int) -> dict[str, float]:
    """Token-layer work the main job cannot avoid, per phase of its timings:
    - sweep: every spec prompt up to its task token through every layer (extraction), each
      validation query's prefix once per task, and per seed, for patched layer l, the layers
      above l at the last token;
    - no_context + patch: each test query once, plus per seed the layers above the chosen
      layer at its last token;
    - prompt: every token of every test prompt through every layer."""
    ctx = EvalContext(config, data, adapter, vectors=lambda t, s: torch.empty(0))
    n_layers = adapter.num_layers
    above = n_layers * (n_layers - 1) // 2  # sum over patched layers l of (n_layers - 1 - l)
    work = {"sweep": 0.0, "no_context+patch": 0.0, "prompt": 0.0}
    seeds = len(config.seeds)
    for task in data:
        validation, test = ctx.items(task, "validation"), ctx.items(task, "test")
        for seed in config.seeds:
            specs = [
                adapter.example_prompt(
                    [(d["input"], d["output"]) for d in ctx.demos(task, "validation", q, seed)]
                )
                for q in validation
            ]
            work["sweep"] += prompt_tokens(adapter, specs, up_to_task=True) * n_layers
            prompts = [ctx.spec_and_query_prompt(task, r, seed) for r in test]
            work["prompt"] += prompt_tokens(adapter, prompts) * n_layers
        queries = [ctx.query_prompt(r) for r in validation]
        work["sweep"] += (prompt_tokens(adapter, queries) - len(queries)) * n_layers
        work["sweep"] += seeds * len(queries) * above
        tests = [ctx.query_prompt(r) for r in test]
        work["no_context+patch"] += prompt_tokens(adapter, tests) * n_layers
        work["no_context+patch"] += seeds * len(tests) * (n_layers - 1 - layer)
    return work


def answer_rows(config: Any, data: Any, n_layers: int) -> dict[str, int]:
    """Answers each phase reads off the vocabulary: one LM-head projection (2 x d x vocab
    FLOPs) each, work the token-layer floor leaves out. The sweep reads one per validation
    query, seed and layer; the test queries one per query and one per (query, seed) patched;
    the prompt method one per prompt."""
    rows = {"sweep": 0, "no_context+patch": 0, "prompt": 0}
    seeds = len(config.seeds)
    for task in data:
        validation = data[task].splits["validation"]
        test = data[task].splits["test"]
        n_val = min(len(validation), config.limit or len(validation))
        n_test = min(len(test), config.limit or len(test))
        rows["sweep"] += n_val * seeds * n_layers
        rows["no_context+patch"] += n_test * (1 + seeds)
        rows["prompt"] += n_test * seeds
    return rows


def measure_main_job() -> dict[str, Any]:
    """The main job (`vlm-tv-eval` with no arguments) in a scratch folder, with a fresh task
    vector cache, timed by its own results file, against the floor of its unavoidable work."""
    # This machine's speed drifts within a run (the same batch ran 26 s and 32 s minutes
    # apart), so the rate is sampled just before and after every unit, and each phase's floor
    # uses the rate of its own units, weighted by their time. Sampling is not counted.
    samples: list[tuple[str, float]] = []  # (phase, rate) per unit, weighted below by time
    unit_seconds: list[float] = []
    sampling = [0.0]
    real_unit = RunStore.unit

    def sampled_unit(self: RunStore, name: str, compute: Any, items: Any) -> Any:
        start = time.perf_counter()
        before = linear_gflops(tokens=1024, repeats=2)
        sampling[0] += time.perf_counter() - start
        ran = [0.0]

        def timed() -> Any:
            t0 = time.perf_counter()
            out = compute()
            ran[0] = time.perf_counter() - t0
            return out

        out = real_unit(self, name, timed, items)
        start = time.perf_counter()
        after = linear_gflops(tokens=1024, repeats=2)
        sampling[0] += time.perf_counter() - start
        kind = unit_kind(name)
        phase = "no_context+patch" if kind in ("no_context", "patch") else kind
        samples.append((phase, (before + after) / 2))
        unit_seconds.append(ran[0])
        return out

    rates = [matmul_gflops(), linear_gflops()]
    models = cache_root() / "models"
    with tempfile.TemporaryDirectory(prefix="vlm-tv-speed-") as tmp:
        scratch = Path(tmp) / "cache"
        scratch.mkdir()
        if models.is_dir():  # the de-quantized model is reused; the vectors are not
            (scratch / "models").symlink_to(models)
        previous = os.environ.get("VLM_TV_EVAL_CACHE")
        os.environ["VLM_TV_EVAL_CACHE"] = str(scratch)
        try:
            config = parse_run_config(["--output_path", str(Path(tmp) / "out")])
            data = load_run_data(config)
            RunStore.unit = sampled_unit  # type: ignore[method-assign]
            doc = evaluate(config, data, RunStore(config, data))
        finally:
            RunStore.unit = real_unit  # type: ignore[method-assign]
            if previous is None:
                del os.environ["VLM_TV_EVAL_CACHE"]
            else:
                os.environ["VLM_TV_EVAL_CACHE"] = previous
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert doc is not None
    rates += [matmul_gflops(), linear_gflops()]

    def phase_rate(phase: str) -> float:
        got = [(r, t) for (p, r), t in zip(samples, unit_seconds, strict=True) if p == phase]
        weight = sum(t for _, t in got)
        return sum(r * t for r, t in got) / weight if weight else max(rates)

    adapter = make_adapter(config.model)
    adapter.load()
    work = main_job_work(config, data, adapter, doc["layer_selection"]["layer"])
    per_token_layer = layer_gflop_per_token(adapter.model, adapter.num_layers)
    timings = doc["timings"]
    seconds = {
        "sweep": timings.get("sweep", 0.0),
        "no_context+patch": timings.get("no_context", 0.0) + timings.get("patch", 0.0),
        "prompt": timings.get("prompt", 0.0),
    }
    phases = {
        name: {
            "seconds": seconds[name],
            "token_layers": w,
            "gflops": phase_rate(name),
            "floor_s": w * per_token_layer / phase_rate(name),
            "ratio_to_floor": seconds[name] / (w * per_token_layer / phase_rate(name)),
        }
        for name, w in work.items()
    }
    # The floor as issue 14 defined it counts token-layer work only; the LM head's projections
    # are unavoidable too (every answer needs one), reported beside it.
    vocab, d = adapter.model.get_output_embeddings().weight.shape
    for name, n in answer_rows(config, data, adapter.num_layers).items():
        head_s = n * 2 * d * vocab / 1e9 / phase_rate(name)
        phases[name]["answer_rows"] = n
        phases[name]["floor_with_unembedding_s"] = phases[name]["floor_s"] + head_s
    floor = sum(p["floor_s"] for p in phases.values())
    floor_head = sum(p["floor_with_unembedding_s"] for p in phases.values())
    total = timings["total"] - sampling[0]  # the job's own time, without the rate sampling
    return {
        "rates_gflops_before_after": rates,
        "phases": phases,
        "load_s": timings.get("load", 0.0),
        "sampling_s": sampling[0],
        "total_s": total,
        "floor_s": floor,
        "ratio_to_floor": total / floor,
        "ratio_to_floor_without_load": (total - timings.get("load", 0.0)) / floor,
        "floor_with_unembedding_s": floor_head,
        "ratio_to_floor_with_unembedding": total / floor_head,
        "peak_rss_mib": peak,
        "results": {t: r for t, r in doc["results"].items()},
    }


def print_main_job(got: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(got, indent=2))
        return
    rates = ", ".join(f"{r:.0f}" for r in got["rates_gflops_before_after"])
    print(
        f"main job (SmolLM2-135M, six tasks, 3 seeds); fp32 GFLOP/s before and after: {rates}; "
        "each phase's floor at the rate sampled around its units"
    )
    print(f"  {'phase':18} {'seconds':>8} {'GFLOP/s':>8} {'floor s':>8} {'ratio':>6}")
    for name, p in got["phases"].items():
        print(
            f"  {name:18} {p['seconds']:8.1f} {p['gflops']:8.0f} {p['floor_s']:8.1f} "
            f"{p['ratio_to_floor']:6.2f}"
        )
    print(
        f"  {'total':18} {got['total_s']:8.1f} {'':8} {got['floor_s']:8.1f} "
        f"{got['ratio_to_floor']:6.2f}"
        f"  (load {got['load_s']:.1f} s; without it {got['ratio_to_floor_without_load']:.2f})"
    )
    print(
        "  counting the LM head's projections too (one per answer read): floor "
        f"{got['floor_with_unembedding_s']:.1f} s, "
        f"ratio {got['ratio_to_floor_with_unembedding']:.2f}"
    )
    print(f"peak resident memory: {got['peak_rss_mib']:.0f} MiB")
