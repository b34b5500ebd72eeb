"""`evaluate`: load the model, make task vectors, sweep layers on validation, choose a layer, run
every method on test, aggregate, write the results file.

Each step is a set of units stored in the run folder (`store.py`), so an interrupted run
resumes. Under `accelerate launch` every process takes its share of each step's units
(`parallel.py`), waits for the others, then reads back all units; the main process writes.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from benchmark import CROSS_MODAL_TASKS, uses_examples, validate
from benchmark.files import cache_root, slug

from . import engine
from .adapters import load_adapter
from .adapters.base import Adapter
from .config import RunConfig
from .context import EvalContext, Scored
from .errors import ConfigError
from .intervals import interval_block
from .items import TaskData, sha256
from .layer_choice import check_layer, choose_layer, layer_from_results
from .lengths import check_prompt_lengths
from .methods import Method, get_method
from .overriding import scoring as overriding_scoring
from .overriding.judge import DEFAULT_JUDGE, Judge
from .overriding.methods import OVERRIDE_VECTOR_READ
from .overriding.methods import sweep as overriding_sweep
from .parallel import Shard, current_shard
from .prepare import load_run_data
from .progress import ItemBar, routed_output
from .results import (
    PromptText,
    aggregate,
    results_document,
    sample_rows,
    timings_block,
    transfer_similarity,
)
from .store import RunStore, layer_from_digest
from .vectors import extract_seeds_together, task_vector

Vectors = dict[tuple[str, int], torch.Tensor]


def evaluate(
    config: RunConfig, data: Mapping[str, TaskData], store: RunStore
) -> dict[str, Any] | None:
    """Run every unit not done yet and write results.json; None in a non-main process.
    Warnings and log lines printed meanwhile go above the progress bars, not through them."""
    with routed_output():
        store.begin_call()  # this call's `total` runs from here (see RunStore's timings)
        try:
            return _evaluate(config, data, store)
        finally:
            store.end_call()  # an interrupted or failed call keeps the time it spent


def _evaluate(
    config: RunConfig, data: Mapping[str, TaskData], store: RunStore
) -> dict[str, Any] | None:
    start = time.perf_counter()
    shard = current_shard()
    methods = [get_method(m) for m in config.methods]
    needs_vectors = any(m.needs_vector for m in methods)
    store.dir.mkdir(parents=True, exist_ok=True)
    store.write_config(config)

    # 1. Under LLM->VLM transfer the source model's vectors first, the source model dropped
    # before the evaluated one loads (two 7B models in bf16 would need ~30 GB at once); then
    # the model.
    source: Vectors = {}
    source_model: dict[str, Any] = {}
    if config.source_model:
        source, source_model = _source_vectors(config, data, shard, needs_vectors)
        _release_memory()  # the source model, dropped with its adapter
    adapter = load_adapter(config.model, config.model_args, config)
    if config.source_model:
        _check_pair(source_model, adapter, config)
    store.bind_weights(
        adapter.describe()["fingerprint"], source_model.get("describe", {}).get("fingerprint")
    )
    store.time("load", time.perf_counter() - start)
    if config.layer is not None:
        check_layer(config.layer, config.model, adapter.num_layers)
    own_ctx = EvalContext(config, data, adapter, vectors=_no_vectors)
    check_prompt_lengths(own_ctx)

    # 2. The vectors that are patched: the source model's, or the model's own (cached on disk).
    def own_vector(task: str, seed: int) -> torch.Tensor:
        return task_vector(adapter, own_ctx, task, seed)

    patched: Callable[[str, int], torch.Tensor] = (
        (lambda t, s: source[t, s]) if config.source_model else own_vector
    )
    sweep_ctx = EvalContext(config, data, adapter, vectors=patched)

    # 3. The layer: from another run, given, or chosen on a validation sweep (an overriding
    # run's by default on the six tasks, as the main job chooses: the model's main layer).
    selection = None
    if needs_vectors and config.layer_from:
        selection = layer_from_results(config.layer_from, config.model, adapter.num_layers)
        if layer_from_digest(config.layer_from) != store.layer_from_sha256:  # in the run id
            raise ConfigError(
                f"--layer_from {config.layer_from} changed while this run started; run the "
                "command again (its run folder follows the file's content)"
            )
    elif needs_vectors and config.sweeps_override_layer and config.override_layer == "main":
        selection = _main_layer(config, adapter, store, shard)
    elif needs_vectors:
        warm = None if config.source_model else own_vectors_warmer(adapter, own_ctx)
        sweeps = _sweeps(sweep_ctx, store, shard, warm) if config.layer is None else {}
        selection = choose_layer(sweeps, adapter.num_layers, config.layer)
        if config.sweeps_override_layer:
            selection["source"] = TARGET_LAYER_SOURCE
    layer = selection["layer"] if selection else None

    # 4. Every method on test, one unit per (task, method, seed) the method's seeding needs.
    plan = MethodUnits(config, list(data), own_ctx.items, methods, layer, store, shard)
    ctx = EvalContext(config, data, adapter, vectors=patched, pending=plan.pending)
    _sharded(
        shard,
        plan.jobs,
        "test",
        lambda t, m, s: plan.run(ctx, t, m, s),
        size=lambda t, m, s: len(plan.ids(t)),
        name=plan.name,
    )
    if not shard.is_main:
        return None
    units = {
        (t, m.name, s): plan.run(ctx, t, m, s) for t in data for m in methods for s in config.seeds
    }

    # 5. The results file (an overriding run: its generations, judged where a judge is named).
    if config.overriding:
        return _finish_overriding(config, data, store, ctx, units, methods, selection, layer)
    results = aggregate(units, list(data), methods, config.seeds, config.spec, config.n_shot, layer)
    names = [m.name for m in methods]
    intervals = interval_block(units, list(data), names, config.seeds)
    doc = results_document(
        run_id=store.run_id,
        config=config,
        data=data,
        items=ctx.items,
        model={**adapter.describe(), "source_model": source_model.get("describe")},
        prompting=adapter.prompting(),
        results=results,
        selection=selection,
        timings={},  # set once everything is computed, below
        created=store.created,
    )
    doc["intervals"] = intervals
    if source and selection:
        own = {(t, s): own_vector(t, s) for t in data for s in config.seeds}
        doc["transfer"] = transfer_similarity(
            source, own, list(data), config.seeds, selection["layer"], config.source_model or ""
        )
    doc["timings"] = timings_block(store.report_timings())  # the call's clock ends here
    errors = validate(doc, "results")
    if errors:  # a bug in the harness, not the user's input
        raise RuntimeError("results do not match the schema: " + "; ".join(map(str, errors)))
    store.write_results(doc)
    if config.log_samples:
        for task in data:
            records = ctx.items(task, "test")
            rows = sample_rows(
                task,
                records,
                units,
                methods,
                config.seeds,
                config.spec,
                layer,
                prompt_text=prompt_texts(ctx, task),
            )
            store.write_samples(task, rows)
    return doc


def prompt_texts(ctx: EvalContext, task: str) -> PromptText:
    """The logged rows' prompt text, rebuilt rather than kept in every unit (a 16-shot prompt
    per item, seed and method would swell the run folder): the bare query (no_context, patch,
    majority), else the specification and the query for the row's seed (prompt). A text is
    returned only when it hashes to the unit's own prompt hash, so a logged prompt is the one
    the model saw; images appear as their placeholders only."""

    def text(record: Any, seed: int, digest: str) -> str | None:
        for build in (
            lambda: ctx.query_prompt(record),
            lambda: ctx.spec_and_query_prompt(task, record, seed),
        ):
            got = build().text
            if sha256(got) == digest:
                return got
        return None

    return text


@dataclass
class MethodUnits:
    """The test step's units: their names (the layer is part of a patching method's name, so a
    unit made at another layer is never reused), this process's share, and which of a task's
    seeds are still to compute (a method whose seeds share work computes them together)."""

    config: RunConfig
    tasks: list[str]
    items: Callable[[str, str], list[dict[str, Any]]]
    methods: list[Method]
    layer: int | None
    store: RunStore
    shard: Shard
    jobs: list[tuple[str, Method, int]] = field(init=False)
    mine: list[tuple[str, Method, int]] = field(init=False)

    def __post_init__(self) -> None:
        config = self.config
        self.jobs = [
            (t, m, s)
            for t in self.tasks
            for m in self.methods
            for s in config.seeds
            if m.seeded(config.spec) or s == config.seeds[0]
        ]
        self.mine = self.shard.take(self.jobs)

    def name(self, task: str, method: Method, seed: int) -> str:
        name = f"{slug(task)}/{method.name}{_seed_key(method.seeded(self.config.spec), seed)}"
        return f"{name}-L{self.layer}" if method.needs_vector else name

    def ids(self, task: str) -> list[str]:
        return [r["id"] for r in self.items(task, "test")]

    def pending(self, task: str, method_name: str) -> list[int]:
        """This process's seeds of (task, method) whose units are not stored yet."""
        return [
            s
            for t, m, s in self.mine
            if t == task
            and m.name == method_name
            and not self.store.stored(self.name(t, m, s), self.ids(t))
        ]

    def run(self, ctx: EvalContext, task: str, method: Method, seed: int) -> Scored:
        """The unit's stored result, or the method run now. A method whose result does not
        depend on the seed is computed once and counted for every seed."""
        name = self.name(task, method, seed)
        seed = seed if method.seeded(self.config.spec) else self.config.seeds[0]
        return self.store.unit(
            name, lambda: method(ctx, task, seed, self.layer), items=self.ids(task)
        )


# Where an overriding run's swept layer came from, as `layer_selection.source` records it.
MAIN_LAYER_SOURCE = "six-task validation sweep"
TARGET_LAYER_SOURCE = "override_text validation sweep (the overriding target)"


def main_layer_config(config: RunConfig) -> RunConfig:
    """The main job's setting for the model of overriding run `config`: the six tasks, text
    examples -> text queries, patched, at the run's seeds, n_shot, template, demo draw and
    --limit. Their items are the shipped pools (an image set's build holds none of them), so
    every overriding run, image sets included, can sweep them."""
    return replace(
        config,
        tasks=CROSS_MODAL_TASKS,
        spec="text_examples",
        query="text",
        methods=("patch",),
        score="first_token",
        layer=None,
        layer_from=None,
        data=None,
        instruction=None,
        source_model=None,
        source_model_args={},
    )


def _main_layer(config: RunConfig, adapter: Adapter, store: RunStore, shard: Shard) -> dict:
    """The model's main layer, where the authors patch an overriding instruction: the main
    job's validation sweep and choice (`_sweeps`, `choose_layer`), computed here. Its units are
    kept in this run's folder (named by task, so they cannot meet the overriding units), its
    vectors in the vector cache, shared with the main job's."""
    main = main_layer_config(config)
    data = load_run_data(main)
    own_ctx = EvalContext(main, data, adapter, vectors=_no_vectors)
    check_prompt_lengths(own_ctx)

    def own_vector(task: str, seed: int) -> torch.Tensor:
        return task_vector(adapter, own_ctx, task, seed)

    ctx = EvalContext(main, data, adapter, vectors=own_vector)
    sweeps = _sweeps(ctx, store, shard, own_vectors_warmer(adapter, own_ctx))
    return {**choose_layer(sweeps, adapter.num_layers, None), "source": MAIN_LAYER_SOURCE}


def own_vectors_warmer(adapter: Adapter, ctx: EvalContext) -> Callable[[str, list[int]], None]:
    """Extracts a task's pending seeds' vectors together (their spec prompts begin alike)."""

    def warm(task: str, seeds: list[int]) -> None:
        extract_seeds_together(adapter, ctx, task, seeds)

    return warm


def _source_vectors(
    config: RunConfig, data: Mapping[str, TaskData], shard: Shard, needs_vectors: bool
) -> tuple[Vectors, dict[str, Any]]:
    """The source model's vectors for every (task, seed), and what the pair check and the
    results need of it (its description, width and depth); the model is dropped on return."""
    source = load_adapter(config.source_model or "", config.source_model_args, config)
    vectors: Vectors = {}
    if needs_vectors:
        ctx = EvalContext(config, data, source, vectors=_no_vectors)
        jobs = [(t, s) for t in data for s in config.seeds]
        desc = f"vectors from {config.source_model}"
        run = lambda t, s: task_vector(source, ctx, t, s)  # noqa: E731
        _sharded(shard, jobs, desc, run, name=lambda t, s: f"{t} seed {s}")
        vectors = {(t, s): task_vector(source, ctx, t, s) for t, s in jobs}  # cached now
    shape = {"hidden_size": source.hidden_size, "num_layers": source.num_layers}
    return vectors, {"describe": source.describe(), **shape}


def _check_pair(source: Mapping[str, Any], target: Adapter, config: RunConfig) -> None:
    if source["hidden_size"] != target.hidden_size:
        raise ConfigError(
            f"--source_model {config.source_model} has hidden size {source['hidden_size']} but "
            f"{config.model} has {target.hidden_size}: vectors can only move between a VLM and "
            "its own base LLM (idefics2 <- mistral-7b, llava-1.5 <- vicuna-7b)"
        )
    if source["num_layers"] != target.num_layers:
        raise ConfigError(
            f"--source_model has {source['num_layers']} layers, {config.model} has "
            f"{target.num_layers}: patching 'at the same layer' needs equal depth"
        )


def _release_memory() -> None:
    """Give a dropped model's memory back (GPU memory for the patched model)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _sharded(
    shard: Shard,
    jobs: list,
    desc: str,
    run: Any,
    size: Callable[..., int] | None = None,
    name: Callable[..., str] | None = None,
) -> None:
    """This process's share of `jobs`, run under a bar that counts items (`size(*job)` each;
    without `size`, the jobs themselves) and names the running unit; then the barrier."""
    mine = shard.take(jobs)
    count = (lambda job: size(*job)) if size else (lambda job: 1)
    bar = ItemBar(mine, count, desc, shard.is_main, unit="item" if size else "it")
    try:
        for job in mine:
            bar.run(job, lambda job=job: run(*job), name(*job) if name else "")
    finally:
        bar.close()
    shard.barrier()


def _seed_key(method_seeded: bool, seed: int) -> str:
    return f"-s{seed}" if method_seeded else ""


def _sweeps(
    ctx: EvalContext, store: RunStore, shard: Shard, warm: Any
) -> dict[str, dict[int, dict[str, Any]]]:
    """Every task's validation curve per seed: each process sweeps its share of the tasks,
    then all read back every unit (a seed-free vector's curve counts for every seed)."""
    config = ctx.config
    _sharded(
        shard,
        [(t,) for t in ctx.data],
        "validation sweep",
        lambda t: _sweep(ctx, store, t, warm),
        size=lambda t: len(ctx.items(t, "validation")),
        name=lambda t: t,
    )
    sweeps: dict[str, dict[int, dict[str, Any]]] = {}
    for task in ctx.data:
        got = _sweep(ctx, store, task)
        seed_of = {s: s if uses_examples(config.spec) else config.seeds[0] for s in config.seeds}
        sweeps[task] = {s: got[seed_of[s]] for s in config.seeds}
    return sweeps


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
    seeded = uses_examples(config.spec)
    seeds = list(config.seeds) if seeded else [config.seeds[0]]
    items = ctx.items(task, "validation")
    ids = [r["id"] for r in items]
    names = {s: f"{slug(task)}/sweep{_seed_key(seeded, s)}" for s in seeds}
    swept: dict[int, dict[str, Any]] = {}

    def compute(seed: int) -> dict[str, Any]:
        if config.overriding:
            return overriding_sweep(ctx, task, seed)
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
        rows = overriding_scoring.generation_rows(
            task, ctx.items(task, "test"), units, methods, config.seeds, layer
        )
        overriding_scoring.write_rows(store.dir / f"generations_{slug(task)}.jsonl", rows)
    doc = results_document(
        run_id=store.run_id,
        config=config,
        data=data,
        items=ctx.items,
        model=ctx.adapter.describe(),
        prompting=ctx.adapter.prompting(),
        results={},
        selection=selection,
        timings=store.report_timings(),
        created=store.created,
        metric=(
            "free-form greedy generation (stop at a newline or max_new_tokens); image sets: the "
            "judge's success rate (choice B or C) over judged answers; override_text: acc = the "
            "answer starts like the overriding label (lenient), judged also judge_acc"
        ),
    )
    doc["config"]["override_vector"] = OVERRIDE_VECTOR_READ
    if config.judge or config.judge_base_url:
        judge = config.judge or DEFAULT_JUDGE
        with Judge(judge, config.judge_base_url, cache_dir=cache_root() / "judge") as judged_by:
            doc, path = overriding_scoring.finish(store.dir, doc, methods, judged_by)
    else:
        doc, path = overriding_scoring.finish(store.dir, doc, methods, None)
    doc["path"] = str(path)
    return doc
