"""`overhead` (the paper's Table 7): what a task vector saves at inference.

Three single forwards (batch 1, first token, as the methods run them) on one test query of the
first task:

- `prompt`: N = --n_context examples (default 30, drawn from the task's items, never the query)
  and the query in one context: the prompt baseline with a long specification;
- `patch`: the query alone with the session's task vector written over the session's layer at
  its last token: the cost of using a vector once it is made (making it is a one-off per task);
- `query`: the query alone, unpatched (no context).

Time: the median over --runs (default 10) calls of `engine.first_tokens` per kind, after one
warm-up of each, on the session's loaded model and device (CUDA synchronised before the clock
stops). The kinds take turns run by run, so load changes on a shared machine hit all three
alike. Tokenization is inside, as in a run, and is also timed alone (`encode_median_s`).

Memory, peak and increase over the state before the forwards (weights loaded), over a warm-up
forward and one more:
- CUDA: torch.cuda.max_memory_allocated, reset before each kind, in this process (it counts
  tensors, not the caching allocator's reserve). The peak includes the weights, like the
  paper's 8.21 GB for the query alone.
- CPU: every kind in a fresh spawned process: load, read every weight once (memory-mapped
  weights become resident only when read), return freed heap to the system (malloc_trim), read
  the resident set, reset its high-water mark (/proc/self/clear_refs, so the load's own
  transient peak is not counted), run, read the high-water mark (VmHWM). A fresh process per
  kind matters because freed activations stay in the allocator's arenas: measured one after
  another in one process, a kind after `prompt` would reuse its pages and show no growth.
  tracemalloc does not see torch's allocations, and ru_maxrss cannot be reset. The peak here is
  the whole process (interpreter and libraries too), so on CPU `memory_increase` is the ratio
  that speaks about the forward.

Ratios prompt/patch and prompt/query for time, peak memory and memory increase; the paper's
(Idefics2, GPU) are 11x in time and 2.4x in peak memory.

The N examples (--context):
- `short` (default): the task's own items, `Q:France\nA:Paris` (SmolLM2: 343 prompt tokens at
  N=30), so the prompt is far shorter than the paper's and its ratios are not comparable;
- `dense`: the paper's setting, "N=30 dense text examples" (dense image descriptions, the
  LLaVA-ReCap captions that are the text version of its VQA images). The paper does not state
  their length; we take DENSE_TOKENS = 150 tokens per description, the middle of the 100-200
  tokens that LLaVA-ReCap COCO dense captions run to (an estimate: the captions are not
  shipped, and there is no network). Each description is composed offline, deterministically
  per item: the item's own fields (`An image of Gray Wolf (Wolf).`), then the prose shipped in
  benchmark/pools (pool descriptions, label sources and rules, reasons items were dropped)
  from an offset fixed by the item's id, cut at the most words that fit DENSE_TOKENS tokens of
  the model's own tokenizer. The words do not read as a caption; the cost of a forward depends
  on how many tokens it runs, not on which. The query stays the task's usual one (the paper's
  is an image, a few dozen tokens on Idefics2). The JSON records the target, each
  description's measured length, tokens per example in the prompt, and the prompt's total,
  which must fit the model's context (an error otherwise).
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import hashlib
import multiprocessing
import os
import random
import re
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from benchmark.pools import POOLS, load_pool

from .. import engine
from ..adapters import load_adapter
from ..adapters.base import Adapter
from ..config import RunConfig
from ..errors import ConfigError
from ..templates import Prompt
from .common import Session

KINDS = ("prompt", "patch", "query")
CONTEXTS = ("short", "dense")
DENSE_TOKENS = 150
DENSE_SOURCE = (
    "Table 7 uses N=30 dense text examples (LLaVA-ReCap dense captions of COCO images) and "
    "does not state their length; 150 tokens is the middle of the 100-200 tokens such "
    "captions run to (an estimate, not measured on the captions, which are not shipped)"
)
PAPER_IDEFICS2 = {
    "time_s": {"prompt": 2.20, "patch": 0.20, "query": 0.19},
    "memory_gb": {"prompt": 20.02, "patch": 8.21, "query": 8.21},
    "ratio": {"time": 11.0, "memory": 2.44},
}
CUDA_METHOD = (
    "torch.cuda.max_memory_allocated over two forwards, reset before each kind, in one "
    "process; peak includes the weights; increase = peak - allocated before"
)
CPU_METHOD = (
    "peak resident set (VmHWM, reset via /proc/self/clear_refs after loading, reading every "
    "weight and malloc_trim) over two forwards in a fresh spawned process per kind; "
    "increase = peak - resident set before the forwards"
)


# -- one kind, timed and measured --------------------------------------------------------------
def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    if not found:
        raise OSError(f"no {field} in /proc/self/status")
    return int(found.group(1))


def _release_heap() -> None:
    """Give freed heap back to the system (glibc only), so the baseline is what is in use."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


Kind = tuple[Prompt, torch.Tensor | None]  # a prompt, and the vector patched into it


def _forward(adapter: Adapter, kind: Kind, layer: int) -> Any:
    prompt, vector = kind
    return engine.first_tokens(adapter, [prompt], 1, vector=vector, layer=layer)


def time_kinds(
    adapter: Adapter, kinds: dict[str, Kind], layer: int, runs: int
) -> dict[str, list[float]]:
    """Seconds per call of each kind, after one untimed warm-up of each. The kinds take turns
    (prompt, patch, query, prompt, ...), so a change in the machine's load while they run (a
    shared machine, a GPU clocking down) falls on all of them alike rather than on one."""
    cuda = str(adapter.device).startswith("cuda") and torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for kind in kinds.values():
        _forward(adapter, kind, layer)
    sync()
    out: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(runs):
        for name, kind in kinds.items():
            start = time.perf_counter()
            _forward(adapter, kind, layer)
            sync()
            out[name].append(time.perf_counter() - start)
    return out


@torch.inference_mode()
def _touch_weights(adapter: Adapter) -> None:
    """Read every parameter once: weights loaded from a memory-mapped file become resident
    only when first read, which would otherwise count as the first forward's growth."""
    for tensor in [*adapter.model.parameters(), *adapter.model.buffers()]:
        tensor.sum()


def memory_kind(adapter: Adapter, kind: Kind, layer: int) -> dict[str, int]:
    """Peak memory over a warm-up forward and one more, and its growth over the state before
    them (see the module's docstring for what is counted on CUDA and on CPU)."""
    cuda = str(adapter.device).startswith("cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        _touch_weights(adapter)
        _release_heap()
        before = _status_kib("VmRSS") * 1024
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    for _ in range(2):
        _forward(adapter, kind, layer)
    if cuda:
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() if cuda else _status_kib("VmHWM") * 1024
    return {
        "baseline_bytes": int(before),
        "peak_bytes": int(peak),
        "increase_bytes": int(max(0, peak - before)),
    }


def _child(config: RunConfig, device: str, kind: Kind, layer: int) -> dict[str, int]:
    """A fresh process: load the model as the session did, then measure one kind's memory."""
    config = dataclasses.replace(config, device=device)
    adapter = load_adapter(config.model, config.model_args, config)
    return memory_kind(adapter, kind, layer)


def isolated_memory(config: RunConfig, device: str, kind: Kind, layer: int) -> dict[str, int]:
    """`memory_kind` in a fresh spawned process (a clean interpreter: no fork of this one's
    heap or threads), which loads the model itself."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(_child, config, device, kind, layer).result()


def _cpu_peak_supported() -> bool:
    try:
        _status_kib("VmHWM")
        return Path("/proc/self/clear_refs").exists()
    except OSError:
        return False


# -- dense descriptions -------------------------------------------------------------------------
def _shipped_prose() -> list[str]:
    """The words of the prose shipped with the item pools: each pool's description, where its
    labels came from, its labelling rules and why items were left out. Plain English, in
    every install, and long enough (about 2,500 words) to pad many distinct descriptions."""
    texts: list[str] = []
    for name in POOLS:
        pool = load_pool(name)
        texts.append(pool["description"])
        texts += pool["label_sources"]
        texts += pool["label_rules"].values()
        texts += [d["reason"] for d in pool["dropped"]]
    return " ".join(texts).split()


def _token_count(adapter: Adapter, text: str) -> int:
    return len(adapter.tokenizer(text, add_special_tokens=False)["input_ids"])


def dense_description(
    adapter: Adapter, record: dict[str, Any], target: int, prose: list[str]
) -> str:
    """A description of `record` of about `target` tokens of the model's tokenizer (at most
    `target`, short of it by less than one word): the item's own fields, then shipped prose
    from an offset fixed by the item's id, so every example differs and reruns are equal."""
    fields = [
        str(v)
        for k, v in record.items()
        if k not in ("id", "input", "output", "split", "task") and isinstance(v, str) and v
    ]
    head = f"An image of {record['input']}" + (f" ({'; '.join(fields)})" if fields else "")
    start = int(hashlib.sha256(str(record["id"]).encode()).hexdigest(), 16) % len(prose)
    words = f"{head}.".split()
    while len(words) < 2 * target:  # every token is at least part of a word
        words += prose[start:] + prose[:start]
    low, high = 0, 2 * target  # the most words whose text is at most `target` tokens
    while low < high:
        mid = (low + high + 1) // 2
        if _token_count(adapter, " ".join(words[:mid])) <= target:
            low = mid
        else:
            high = mid - 1
    return " ".join(words[:low])


def _context_limit(adapter: Adapter) -> int | None:
    config = adapter.model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text_config, "max_position_embeddings", None)


# -- the analysis -------------------------------------------------------------------------------
def _setup(
    session: Session, n_context: int, context: str = "short", dense_tokens: int = DENSE_TOKENS
) -> dict[str, Any]:
    """The task, the query record, N examples (the task's test items, then validation ones
    when N needs more; in a `dense` context, each as a description of about `dense_tokens`
    tokens), and the examples spec whose vector is patched."""
    if context not in CONTEXTS:
        raise ConfigError(f"--context: expected one of {', '.join(CONTEXTS)}, got {context!r}")
    task = session.tasks[0]
    spec = "image_examples" if session.config.spec == "image_examples" else "text_examples"
    ctx = session.context(spec)
    pool, seen = [], set()
    for split in ("test", "validation"):
        for record in session.data[task].splits.get(split, []):
            if record["id"] not in seen:
                seen.add(record["id"])
                pool.append(record)
    if len(pool) < n_context + 1:
        raise ConfigError(
            f"task {task}: {len(pool)} items, fewer than --n_context {n_context} plus a query"
        )
    rng = random.Random(f"overhead:{session.config.seeds[0]}:{task}")
    query, *demos = rng.sample(pool, n_context + 1)
    adapter = session.adapter
    descriptions: list[str] = []
    if context == "dense":
        prose = _shipped_prose()
        descriptions = [dense_description(adapter, d, dense_tokens, prose) for d in demos]
        examples = list(zip(descriptions, [d["output"] for d in demos], strict=True))
    else:
        examples = [(ctx.spec_input(d), d["output"]) for d in demos]
    query_input = ctx.query_input(query)
    prompt = adapter.example_prompt(examples, query=query_input)
    n_tokens = int(adapter.encode([prompt]).input_ids.shape[1])
    limit = _context_limit(adapter)
    if limit and n_tokens > limit:
        raise ConfigError(
            f"the {context} prompt with --n_context {n_context} examples is {n_tokens} tokens, "
            f"more than {session.config.model}'s context of {limit}; lower --n_context"
        )
    return {
        "task": task,
        "spec": spec,
        "query_id": query["id"],
        "demo_ids": [d["id"] for d in demos],
        "prompts": {
            "prompt": prompt,
            "patch": adapter.query_prompt(query_input),
            "query": adapter.query_prompt(query_input),
        },
        "descriptions": descriptions,
        "dense_tokens": dense_tokens,
        "context_limit": limit,
        "ctx": ctx,
    }


def _dense_record(
    adapter: Adapter, setup: dict[str, Any], tokens: dict[str, int], n_context: int
) -> dict[str, Any]:
    """What the dense examples came to, measured with the model's tokenizer."""
    lengths = [_token_count(adapter, d) for d in setup["descriptions"]]
    return {
        "target_tokens": setup["dense_tokens"],
        "target_source": DENSE_SOURCE,
        "description_tokens": {
            "mean": statistics.mean(lengths),
            "min": min(lengths),
            "max": max(lengths),
        },
        # Each example in the prompt: `Q:` + description + `\nA:` + answer + separator.
        "example_tokens_mean": (tokens["prompt"] - tokens["query"]) / n_context,
        "padding": "prose shipped in benchmark/pools, after the item's own fields",
    }


def _encode_times(adapter: Adapter, prompt: Prompt, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        adapter.encode([prompt])
        out.append(time.perf_counter() - start)
    return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def run(session: Session) -> tuple[dict[str, Any], Any, str]:
    n_context = int(session.options.get("n_context") or 30)
    runs = int(session.options.get("runs") or 10)
    context = str(session.options.get("context") or "short")
    setup = _setup(session, n_context, context)  # a prompt too long fails before any vector
    layer = session.layer()
    la = layer["layer"]
    vector = setup["ctx"].vector(setup["task"], session.config.seeds[0])[la].clone()
    adapter = session.adapter
    device = str(adapter.device)
    cuda = device.startswith("cuda") and torch.cuda.is_available()
    if not cuda and not _cpu_peak_supported():
        raise ValueError("overhead on CPU reads /proc/self (Linux); run it on Linux or CUDA")
    kinds: dict[str, Kind] = {
        k: (setup["prompts"][k], vector if k == "patch" else None) for k in KINDS
    }
    seconds = time_kinds(adapter, kinds, la, runs)
    time_s = {
        k: {
            "median_s": statistics.median(seconds[k]),
            "min_s": min(seconds[k]),
            "runs_s": seconds[k],
            "encode_median_s": statistics.median(_encode_times(adapter, kinds[k][0], runs)),
        }
        for k in KINDS
    }
    memory: dict[str, dict[str, int]] = {}
    for k in KINDS:
        if cuda:
            memory[k] = memory_kind(adapter, kinds[k], la)
            continue
        memory[k] = isolated_memory(session.config, device, kinds[k], la)
    tokens = {k: int(adapter.encode([kinds[k][0]]).input_ids.shape[1]) for k in KINDS}
    dense = _dense_record(adapter, setup, tokens, n_context) if context == "dense" else None

    def ratios(get: Callable[[str], float]) -> dict[str, float | None]:
        return {f"prompt/{k}": _ratio(get("prompt"), get(k)) for k in ("patch", "query")}

    result = {
        "layer": layer,
        "n_context": n_context,
        "context": context,
        "dense": dense,
        "context_limit": setup["context_limit"],
        "runs": runs,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        # CPU times on a shared machine say little without it (2 threads on 2 busy cores: 5x).
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "task": setup["task"],
        "spec": setup["spec"],
        "query": session.config.query,
        "query_id": setup["query_id"],
        "tokens": tokens,
        "time": time_s,
        "memory": memory,
        "memory_method": CUDA_METHOD if cuda else CPU_METHOD,
        "ratio": {
            "time": ratios(lambda k: time_s[k]["median_s"]),
            "memory": ratios(lambda k: memory[k]["peak_bytes"]),
            "memory_increase": ratios(lambda k: memory[k]["increase_bytes"]),
        },
        "paper_idefics2": PAPER_IDEFICS2,
    }
    return result, lambda path: _figure(result, session.config.model, path), _table(result)


def _table(result: dict[str, Any]) -> str:
    mib = 1024 * 1024
    dense = result.get("dense")
    examples = result["spec"].replace("_", " ")
    if dense:
        examples = (
            f"dense descriptions ({dense['description_tokens']['mean']:.0f} tokens each, "
            f"{dense['example_tokens_mean']:.0f} per example)"
        )
    lines = [
        f"one forward, batch 1, on {result['device']}: N={result['n_context']} "
        f"{examples} + query vs patched query (layer "
        f"{result['layer']['layer']}) vs query; median of {result['runs']} runs",
        f"{'kind':8} {'tokens':>7} {'median s':>9} {'peak MiB':>9} {'+MiB':>8}",
    ]
    for kind in KINDS:
        t, m = result["time"][kind], result["memory"][kind]
        lines.append(
            f"{kind:8} {result['tokens'][kind]:7d} {t['median_s']:9.4f} "
            f"{m['peak_bytes'] / mib:9.1f} {m['increase_bytes'] / mib:8.1f}"
        )

    def show(v: float | None) -> str:
        return f"{v:.2f}x" if v is not None else "-"

    for name, values in result["ratio"].items():
        lines.append(f"{name:16} " + "  ".join(f"{k} {show(v)}" for k, v in values.items()))
    lines.append("paper (Idefics2, GPU, N=30): time 11x, memory 2.4x (prompt/patch)")
    lines.append(f"memory: {result['memory_method']}")
    return "\n".join(lines)


def _figure(result: dict[str, Any], model: str, path: Any) -> None:
    """Each kind's cost relative to the query alone: time, peak memory, memory increase."""
    from .plots import bars_figure

    def relative(get: Callable[[str], float]) -> list[float]:
        base = get("query")
        return [get(k) / base if base > 0 else float("nan") for k in KINDS]

    bars_figure(
        list(KINDS),
        {
            "time": relative(lambda k: result["time"][k]["median_s"]),
            "peak memory": relative(lambda k: result["memory"][k]["peak_bytes"]),
            "memory increase": relative(lambda k: result["memory"][k]["increase_bytes"]),
        },
        path,
        f"{model}: N={result['n_context']} {result['context']} examples: prompt vs patch vs "
        f"query ({result['device']})",
        "cost relative to the query alone",
    )
