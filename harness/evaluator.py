"""`evaluate`: load the model, make task vectors, sweep layers on validation, choose a layer, run
every method on test, aggregate, write the results file.

Each step is a set of units stored in the run folder (`store.py`), so an interrupted run
resumes. Under `accelerate launch` every process takes its share of each step's units
(`parallel.py`), waits for the others, then reads back all units; the main process writes.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Mapping
from typing import Any

import torch
from tqdm.auto import tqdm

from benchmark import validate
from benchmark.files import slug

from . import engine, judging, overriding
from .adapters import Adapter, make_adapter
from .config import ConfigError, RunConfig, check_layer, layer_from_results
from .context import EvalContext
from .data import TaskData
from .methods import Method, get_method
from .parallel import Shard, current_shard
from .results import (
    aggregate,
    choose_layer,
    results_document,
    sample_rows,
    transfer_similarity,
)
from .store import RunStore
from .vectors import extract_seeds_together, task_vector


def load_adapter(model: str, model_args: Mapping[str, Any], config: RunConfig) -> Adapter:
    """An adapter made with the run's prompt format and device, loaded."""
    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    shard = current_shard()
    if shard.count > 1 and shard.device and device.startswith("cuda"):
        device = shard.device  # one GPU per process
    args = {"device": device, **model_args}
    adapter = make_adapter(model, template=config.named_template, chat=config.chat, **args)
    adapter.load()
    if adapter.chat:
        adapter.chat_parts()  # fails now, with a clear message, if there is no chat template
    return adapter


def _check_pair(source: Adapter, target: Adapter, config: RunConfig) -> None:
    if source.hidden_size != target.hidden_size:
        raise ConfigError(
            f"--source_model {config.source_model} has hidden size {source.hidden_size} but "
            f"{config.model} has {target.hidden_size}: vectors can only move between a VLM and "
            "its own base LLM (idefics2 <- mistral-7b, llava-1.5 <- vicuna-7b)"
        )
    if source.num_layers != target.num_layers:
        raise ConfigError(
            f"--source_model has {source.num_layers} layers, {config.model} has "
            f"{target.num_layers}: patching 'at the same layer' needs equal depth"
        )


def _release_memory() -> None:
    """Give a dropped model's memory back (GPU memory for the patched model)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _sharded(shard: Shard, jobs: list, desc: str, run: Any, unit: str = "it") -> None:
    for job in tqdm(shard.take(jobs), desc=desc, unit=unit, disable=not shard.is_main):
        run(*job)
    shard.barrier()


def _seed_key(method_seeded: bool, seed: int) -> str:
    return f"-s{seed}" if method_seeded else ""


def evaluate(
    config: RunConfig, data: Mapping[str, TaskData], store: RunStore
) -> dict[str, Any] | None:
    """Run every unit not done yet and write results.json; None in a non-main process."""
    start = time.perf_counter()
    shard = current_shard()
    methods: list[Method] = [get_method(m) for m in config.methods]
    needs_vectors = any(m.needs_vector for m in methods)
    # An instruction vector is the same for every seed: extracted, swept and patched once.
    vector_seeded = config.spec != "instruction"
    task_seeds = [(t, s) for t in data for s in config.seeds]
    store.dir.mkdir(parents=True, exist_ok=True)
    store.write_config(config)

    adapter = load_adapter(config.model, config.model_args, config)
    source_vectors: dict[tuple[str, int], torch.Tensor] = {}
    source_description = None
    if config.source_model:
        source = load_adapter(config.source_model, config.source_model_args, config)
        _check_pair(source, adapter, config)
        if needs_vectors:
            source_ctx = EvalContext(config, data, source, vectors=_no_vectors)

            def source_vector(task: str, seed: int) -> torch.Tensor:
                return task_vector(source, source_ctx, task, seed)

            _sharded(shard, task_seeds, f"vectors from {config.source_model}", source_vector)
            source_vectors = {(t, s): source_vector(t, s) for t, s in task_seeds}  # cached now
        source_description = source.describe()
        del source
        _release_memory()
    store.time("load", time.perf_counter() - start)
    if config.layer is not None:
        check_layer(config.layer, config.model, adapter.num_layers)

    own_ctx = EvalContext(config, data, adapter, vectors=_no_vectors)
    if not config.overriding:
        _check_lengths(own_ctx)

    def own_vector(task: str, seed: int) -> torch.Tensor:
        return task_vector(adapter, own_ctx, task, seed)

    def own_vectors_together(task: str, seeds: list[int]) -> None:
        extract_seeds_together(adapter, own_ctx, task, seeds)

    patched = (lambda t, s: source_vectors[t, s]) if config.source_model else own_vector
    mine: list[tuple[str, Method, int]] = []  # this process's test units, set below
    layer: int | None = None

    def unit_name(task: str, method: Method, seed: int) -> str:
        name = f"{slug(task)}/{method.name}{_seed_key(method.seeded(config.spec), seed)}"
        return f"{name}-L{layer}" if method.needs_vector else name

    def pending(task: str, method_name: str) -> list[int]:
        ids = [r["id"] for r in ctx.items(task, "test")]
        return [
            s
            for t, m, s in mine
            if t == task and m.name == method_name and not store.stored(unit_name(t, m, s), ids)
        ]

    ctx = EvalContext(config, data, adapter, vectors=patched, pending=pending)

    selection = None
    if needs_vectors and config.layer_from:
        selection = layer_from_results(config.layer_from, config.model, adapter.num_layers)
    elif needs_vectors:
        sweeps: dict[str, dict[int, dict]] = {t: {} for t in data}
        if config.layer is None:
            tasks = [(t,) for t in data]
            warm = None if config.source_model else own_vectors_together
            _sharded(shard, tasks, "validation sweep", lambda t: _sweep(ctx, store, t, warm))
            for task in data:  # read back the units every process wrote
                got = _sweep(ctx, store, task)
                for seed in config.seeds:
                    sweeps[task][seed] = got[seed if vector_seeded else config.seeds[0]]
        selection = choose_layer(sweeps, adapter.num_layers, config.layer)
    layer = selection["layer"] if selection else None

    def test_unit(task: str, method: Method, seed: int) -> dict[str, Any]:
        # A method whose result does not depend on the seed is computed once and counted for
        # every seed.
        name = unit_name(task, method, seed)
        seed = seed if method.seeded(config.spec) else config.seeds[0]
        ids = [r["id"] for r in ctx.items(task, "test")]
        return store.unit(name, lambda: method(ctx, task, seed, layer), items=ids)

    jobs = [
        (t, m, s)
        for t in data
        for m in methods
        for s in config.seeds
        if m.seeded(config.spec) or s == config.seeds[0]
    ]
    mine[:] = shard.take(jobs)
    _sharded(shard, jobs, "test", test_unit, unit="unit")
    if not shard.is_main:
        return None
    units = {
        (t, m.name, s): test_unit(t, m, s) for t in data for m in methods for s in config.seeds
    }
    store.time("total", time.perf_counter() - start)
    if config.overriding:
        return _finish_overriding(config, data, store, ctx, units, methods, selection, layer)

    results = aggregate(units, list(data), methods, config.seeds, config.spec, config.n_shot, layer)
    model = {**adapter.describe(), "source_model": source_description}
    doc = results_document(
        run_id=store.run_id,
        config=config,
        data=data,
        items=ctx.items,
        model=model,
        prompting=adapter.prompting(),
        results=results,
        selection=selection,
        timings=store.timings,
        created=store.created,
    )
    if source_vectors and selection:
        own = {(t, s): own_vector(t, s) for t, s in task_seeds}
        doc["transfer"] = transfer_similarity(
            source_vectors, own, list(data), config.seeds, selection["layer"], config.source_model
        )
    errors = validate(doc, "results")
    if errors:  # a bug in the harness, not the user's input
        raise RuntimeError("results do not match the schema: " + "; ".join(map(str, errors)))
    store.write_results(doc)
    if config.log_samples:
        for task in data:
            rows = sample_rows(
                task, ctx.items(task, "test"), units, methods, config.seeds, config.spec, layer
            )
            store.write_samples(task, rows)
    return doc


LONG_ITEM_CHARS = 500


def _check_lengths(ctx: EvalContext) -> None:
    """The longest prompt a run can build must fit the model's context (an error before any
    work), and an unusually long item is named in a warning."""
    config, adapter = ctx.config, ctx.adapter
    text_config = adapter.model.config.get_text_config()
    limit = getattr(text_config, "max_position_embeddings", None)
    for task, data in ctx.data.items():
        records = [r for rs in data.splits.values() for r in rs]
        for r in records:
            size = len(r["input"]) + len(r["output"])
            if size > LONG_ITEM_CHARS:
                print(f"warning: {task}/{r['id']} is {size} characters long", file=sys.stderr)
        if not limit or config.uses_images:
            continue
        longest = sorted(records, key=lambda r: len(r["input"]) + len(r["output"]))
        worst = longest[-(config.n_shot + 1) :]
        instruction = data.instruction if config.spec == "ensemble" else None
        prompt = adapter.example_prompt(
            [(r["input"], r["output"]) for r in worst[:-1]] or [(worst[0]["input"], "")],
            query=worst[-1]["input"],
            instruction=instruction,
        )
        n_tokens = len(adapter.tokenizer(prompt.text)["input_ids"])
        if n_tokens > limit:
            raise ConfigError(
                f"task {task}: a prompt with its {config.n_shot} longest examples is {n_tokens} "
                f"tokens, more than {config.model}'s context of {limit}; lower --n_shot or "
                "shorten the items"
            )


def _no_vectors(task: str, seed: int) -> torch.Tensor:
    raise RuntimeError("this context has no task vectors")


def _sweep(
    ctx: EvalContext, store: RunStore, task: str, warm: Any = None
) -> dict[int, dict[str, Any]]:
    """Validation accuracy of patching at every layer, per seed (one unit per task and seed;
    one per task when the vector does not depend on the seed).

    The seeds' vectors patch the same validation queries, so the seeds still to do are swept
    in one call: their patched rows share each query's prefix. `warm(task, seeds)`, where
    given, first extracts those seeds' vectors together (their spec prompts begin alike)."""
    config = ctx.config
    seeded = config.spec != "instruction"
    seeds = list(config.seeds) if seeded else [config.seeds[0]]
    items = ctx.items(task, "validation")
    ids = [r["id"] for r in items]
    names = {s: f"{slug(task)}/sweep{_seed_key(seeded, s)}" for s in seeds}
    swept: dict[int, dict[str, Any]] = {}

    def compute(seed: int) -> dict[str, Any]:
        if config.overriding:
            return overriding.sweep(ctx, task, seed)
        if seed not in swept:
            todo = [s for s in seeds if s == seed or not store.stored(names[s], ids)]
            prompts = [ctx.query_prompt(r) for r in items]
            if warm is not None:
                warm(task, todo)
            vectors = torch.stack([ctx.vector(task, s) for s in todo])
            got = engine.sweep_layers(ctx.adapter, prompts, vectors)  # [n, seeds, layers]
            for i, s in enumerate(todo):
                per_layer = [
                    ctx.score_tokens(task, items, got[:, i, layer].tolist(), prompts)
                    for layer in range(got.shape[2])
                ]
                swept[s] = {
                    "acc": [statistics.fmean(p["lenient"]) for p in per_layer],
                    "acc_strict": [statistics.fmean(p["strict"]) for p in per_layer],
                }
        return swept[seed]

    return {s: store.unit(names[s], lambda s=s: compute(s), items=ids) for s in seeds}


def _finish_overriding(
    config: RunConfig,
    data: Mapping[str, TaskData],
    store: RunStore,
    ctx: EvalContext,
    units: Mapping[tuple[str, str, int], Any],
    methods: list[Method],
    selection: dict[str, Any] | None,
    layer: int | None,
) -> dict[str, Any]:
    """Write the generations, judge them if a judge was named, and score the run."""
    for task in data:
        rows = judging.generation_rows(
            task, ctx.items(task, "test"), units, methods, config.seeds, layer
        )
        judging.write_rows(store.dir / f"generations_{slug(task)}.jsonl", rows)
    doc = results_document(
        run_id=store.run_id,
        config=config,
        data=data,
        items=ctx.items,
        model=ctx.adapter.describe(),
        prompting=ctx.adapter.prompting(),
        results={},
        selection=selection,
        timings=store.timings,
        created=store.created,
        metric=(
            "free-form greedy generation (stop at a newline or max_new_tokens); image sets: the "
            "judge's success rate (choice B or C) over judged answers; override_text: acc = the "
            "answer starts like the overriding label (lenient), judged also judge_acc"
        ),
    )
    judge = None
    if config.judge or config.judge_base_url:
        from .adapters.causal_lm import cache_root
        from .judge import DEFAULT_JUDGE, Judge

        judge = Judge(
            config.judge or DEFAULT_JUDGE, config.judge_base_url, cache_dir=cache_root() / "judge"
        )
    doc, path = judging.finish(store.dir, doc, methods, judge)
    doc["path"] = str(path)
    return doc
