"""The first-token methods: `no_context`, `majority`, `prompt` and `patch`.

Each scores the model's first generated token on the test queries (the majority baseline: the
demos' most common label). `no_context` and every seed's `patch` share one pass over the
queries; `prompt` runs a task's pending seeds together, sharing prompt beginnings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from benchmark import uses_examples

from .. import engine, generation
from ..context import ANSWER_TOKENS
from ..items import majority_answer
from . import register_method

if TYPE_CHECKING:
    from ..context import EvalContext, Scored


def spec_context(spec: str, n_shot: int) -> str:
    """What the model saw before the query under `spec`, for the results file."""
    examples = f"{n_shot} {'image' if spec == 'image_examples' else 'text'} examples"
    return {
        "instruction": "the instruction, then the query",
        "ensemble": f"the instruction, {n_shot} text examples, then the query",
    }.get(spec, f"{examples}, then the query")


def _query_pass(ctx: EvalContext, task: str, layer: int | None) -> dict[Any, list[int]]:
    """First tokens of the task's test queries as they are ("plain") and patched with each
    seed's vector at `layer` (by seed), from one pass: no_context and every seed's patch read
    the same queries, so the patched rows continue from the unpatched pass's cache
    (`engine.query_and_patched`). Kept in `ctx.shared` for the units that follow."""
    key = ("queries", task, layer)
    if key not in ctx.shared:
        items = ctx.items(task, "test")
        queries = [ctx.query_prompt(r) for r in items]
        seeds: list[int] = []
        if layer is not None and "patch" in ctx.config.methods:
            seeded = uses_examples(ctx.config.spec)  # as `patch` declares below
            seeds = list(ctx.config.seeds) if seeded else [ctx.config.seeds[0]]
        vectors = (
            torch.stack([ctx.vector(task, s)[layer] for s in seeds])
            if seeds
            else torch.empty(0, ctx.adapter.hidden_size)
        )
        plain, patched = engine.query_and_patched(
            ctx.adapter, queries, vectors, layer, ctx.config.batch_size
        )
        got: dict[Any, list[int]] = {"plain": plain.tolist()}
        got.update({s: patched[:, i].tolist() for i, s in enumerate(seeds)})
        ctx.shared[key] = got
    return ctx.shared[key]


@register_method("no_context", seeded=False, context="the query alone")
def no_context(ctx: EvalContext, task: str, seed: int, layer: int | None) -> Scored:
    items = ctx.items(task, "test")
    queries = [ctx.query_prompt(r) for r in items]
    scored = ctx.score_tokens(task, items, _query_pass(ctx, task, layer)["plain"], queries)
    return _with_answers(ctx, scored, items, queries)


def _with_answers(
    ctx: EvalContext,
    scored: Scored,
    items: list[dict],
    prompts: list,
    vector: torch.Tensor | None = None,
    layer: int | None = None,
) -> Scored:
    """Under `--score whole_answer`, each prompt's greedy answer up to its first newline (the
    patch in the prompt's pass only, as the first token had it) and its whole-answer scores."""
    if not ctx.whole_answers:
        return scored
    answers = generation.generate(
        ctx.adapter, prompts, ANSWER_TOKENS, vector, layer, ctx.config.batch_size
    )
    return ctx.with_answers(scored, items, answers)


@register_method(
    "majority",
    needs_demos=True,
    context=lambda _spec, n: f"no model: the most common answer among {n} demos",
)
def majority(ctx: EvalContext, task: str, seed: int, layer: int | None) -> Scored:
    """The paper's Random baseline. It draws its demos as the text-examples prompt does,
    whatever the spec: it only reads their answers."""
    items = ctx.items(task, "test")
    answers = [majority_answer(ctx.demos(task, "test", r, seed)) for r in items]
    queries = [ctx.query_prompt(r) for r in items]
    scored = ctx.score_strings(items, answers, queries)
    return ctx.with_answers(scored, items, answers) if ctx.whole_answers else scored


@register_method(
    "prompt",
    needs_demos=uses_examples,
    seeded=uses_examples,
    context=spec_context,
)
def prompt(ctx: EvalContext, task: str, seed: int, layer: int | None) -> Scored:
    """The specification and the query in one context: the baseline a patch is compared with
    (examples + query; the instruction + query under --spec instruction)."""
    items = ctx.items(task, "test")
    prompts = [ctx.spec_and_query_prompt(task, r, seed) for r in items]
    scored = ctx.score_tokens(task, items, _prompt_pass(ctx, task, seed), prompts)
    return _with_answers(ctx, scored, items, prompts)


def _prompt_pass(ctx: EvalContext, task: str, seed: int) -> list[int]:
    """First tokens of `seed`'s prompts, computed with those of the task's other pending seeds
    (`ctx.pending`): every seed draws its demos from the same split, so across seeds more
    prompts begin alike and run their common beginning once (on food_flavor, 14% of the tokens
    across three seeds against 8% within one). Kept in `ctx.shared` for the units that follow."""
    got = ctx.shared.setdefault(("prompt", task), {})
    if seed not in got:
        others = ctx.pending(task, "prompt") if ctx.pending else []
        seeds = [seed] + [s for s in others if s != seed and s not in got]
        items = ctx.items(task, "test")
        prompts = [ctx.spec_and_query_prompt(task, r, s) for s in seeds for r in items]
        ids = engine.first_tokens(ctx.adapter, prompts, ctx.config.batch_size).tolist()
        for i, s in enumerate(seeds):
            got[s] = ids[i * len(items) : (i + 1) * len(items)]
    return got.pop(seed)


@register_method(
    "patch",
    needs_vector=True,
    seeded=uses_examples,
    context=lambda spec, n: (
        f"the query, its last token patched with the task vector "
        f"({spec_context(spec, n).removesuffix(', then the query')})"
    ),
)
def patch(ctx: EvalContext, task: str, seed: int, layer: int | None) -> Scored:
    if layer is None:
        raise ValueError("patch needs a layer")
    items = ctx.items(task, "test")
    queries = [ctx.query_prompt(r) for r in items]
    shared = _query_pass(ctx, task, layer)
    if seed not in shared:  # a seed the shared pass did not cover (a plug-in calling patch)
        vector = ctx.vector(task, seed)[layer]
        ids = engine.patch_last_token(ctx.adapter, queries, vector, layer, ctx.config.batch_size)
        shared[seed] = ids.tolist()
    scored = ctx.score_tokens(task, items, shared[seed], queries)
    scored = _at_neighbours(ctx, task, seed, layer, items, queries, scored)
    return _with_answers(ctx, scored, items, queries, ctx.vector(task, seed)[layer], layer)


def _at_neighbours(
    ctx: EvalContext,
    task: str,
    seed: int,
    layer: int,
    items: list[dict],
    queries: list,
    scored: Scored,
) -> Scored:
    """The same patch one layer below and one above the chosen layer, on the test queries: a
    layer chosen on 30 validation items can sit on a peak (the lenient hits per item, by
    layer, in `neighbours`)."""
    vector = ctx.vector(task, seed)
    layers = [n for n in (layer - 1, layer + 1) if 0 <= n < ctx.adapter.num_layers]
    if not layers:
        return scored
    ids = engine.last_token_variants(ctx.adapter, queries, [(n, vector[n]) for n in layers])
    near = {}
    for j, n in enumerate(layers):
        got = ctx.score_tokens(task, items, ids[:, j].tolist(), queries)
        near[str(n)] = {"preds": got["preds"], "lenient": got["lenient"]}
    return {**scored, "neighbours": near}
