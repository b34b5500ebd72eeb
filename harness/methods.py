"""Methods: how a model is asked to do a task on the test split, one registered function each.

A method is `fn(ctx, task, seed, layer) -> Scored`: it builds prompts for the test items,
runs the model through `engine`, and scores what came out with `ctx.score_tokens` or
`ctx.score_strings`. `@register_method` declares what the method needs, so the evaluator can
plan the run (task vectors and a layer; demos from the test split) and knows whether the
number depends on the seed under a given spec. Another package adds a method by decorating a
function (imported by the user, or found through the `vlm_tv_eval.methods` entry-point group);
nothing else changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import torch

from benchmark import METHOD_ID_PATTERN

from . import engine
from .data import majority_answer

if TYPE_CHECKING:
    from .context import EvalContext, Scored

ENTRY_POINT_GROUP = "vlm_tv_eval.methods"
METHOD_KINDS = ("first_token", "overriding")

MethodFn = Callable[["EvalContext", str, int, "int | None"], "Scored"]


@dataclass(frozen=True)
class Method:
    name: str
    fn: MethodFn
    kind: str  # "first_token" (scored by the first token) or "overriding" (free-form answers)
    needs_vector: bool  # patches a task vector, so the run extracts vectors and picks a layer
    needs_demos: Callable[[str], bool]  # spec -> draws demos from the test split
    seeded: Callable[[str], bool]  # spec -> the result depends on the seed
    context: Callable[[str, int], str]  # (spec, n_shot) -> what the model saw, for results

    def __call__(self, ctx: EvalContext, task: str, seed: int, layer: int | None) -> Scored:
        return self.fn(ctx, task, seed, layer)


_METHODS: dict[str, Method] = {}


def _as_rule(value: bool | Callable[[str], bool]) -> Callable[[str], bool]:
    return value if callable(value) else (lambda _spec: bool(value))


def register_method(
    name: str,
    *,
    kind: str = "first_token",
    needs_vector: bool = False,
    needs_demos: bool | Callable[[str], bool] = False,
    seeded: bool | Callable[[str], bool] = True,
    context: str | Callable[[str, int], str] = "",
) -> Callable[[MethodFn], MethodFn]:
    """Decorator: make `fn` available as `--methods <name>`."""
    if not re.fullmatch(METHOD_ID_PATTERN, name):
        raise ValueError(f"method id {name!r} must match {METHOD_ID_PATTERN}")
    if kind not in METHOD_KINDS:
        raise ValueError(f"method kind {kind!r}: use one of {', '.join(METHOD_KINDS)}")

    def decorate(fn: MethodFn) -> MethodFn:
        describe = context if callable(context) else (lambda _spec, _n: context)
        _METHODS[name] = Method(
            name, fn, kind, needs_vector, _as_rule(needs_demos), _as_rule(seeded), describe
        )
        return fn

    return decorate


def get_method(name: str) -> Method:
    if name not in _METHODS:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == name:
                ep.load()  # importing the plug-in registers it
    if name not in _METHODS:
        raise ValueError(f"unknown method {name!r}; use some of {', '.join(method_names())}")
    return _METHODS[name]


def method_names() -> list[str]:
    return list(_METHODS)


def _uses_examples(spec: str) -> bool:
    return spec != "instruction"


def _spec_context(spec: str, n_shot: int) -> str:
    examples = f"{n_shot} {'image' if spec == 'image_examples' else 'text'} examples"
    return {
        "instruction": "the instruction, then the query",
        "ensemble": f"the instruction, {n_shot} text examples, then the query",
    }.get(spec, f"{examples}, then the query")


# -- the first-token methods --------------------------------------------------------------------


def _query_pass(ctx: EvalContext, task: str, layer: int | None) -> dict[Any, list[int]]:
    """First tokens of the task's test queries as they are ("plain") and patched with each
    seed's vector at `layer` (by seed), from one pass: no_context and every seed's patch read
    the same queries, so the patched rows continue from the unpatched pass's cache
    (`engine.query_and_patched`). Kept in `ctx.shared` for the units that follow."""
    key = ("queries", task, layer)
    if key not in ctx.shared:
        items = ctx.items(task, "test")
        queries = [ctx.query_prompt(r) for r in items]
        patch_method = _METHODS["patch"]
        seeds: list[int] = []
        if layer is not None and "patch" in ctx.config.methods:
            seeded = patch_method.seeded(ctx.config.spec)
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
    return ctx.score_tokens(task, items, _query_pass(ctx, task, layer)["plain"], queries)


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
    return ctx.score_strings(items, answers, queries)


@register_method(
    "prompt",
    needs_demos=_uses_examples,
    seeded=_uses_examples,
    context=_spec_context,
)
def prompt(ctx: EvalContext, task: str, seed: int, layer: int | None) -> Scored:
    """The specification and the query in one context: the baseline a patch is compared with
    (examples + query; the instruction + query under --spec instruction)."""
    items = ctx.items(task, "test")
    prompts = [ctx.spec_and_query_prompt(task, r, seed) for r in items]
    return ctx.score_tokens(task, items, _prompt_pass(ctx, task, seed), prompts)


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
    seeded=_uses_examples,
    context=lambda spec, n: (
        f"the query, its last token patched with the task vector "
        f"({_spec_context(spec, n).removesuffix(', then the query')})"
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
    return ctx.score_tokens(task, items, shared[seed], queries)
