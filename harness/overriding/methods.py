"""Task overriding (the paper's Table 5): one task set up in the prompt, a conflicting task
patched in as an instruction vector, the model answering free-form.

Three methods, one row each: `original` (the prompt alone), `system_prompt` (the overriding
instruction in the system turn; without a chat template, first in the prompt) and
`instruction_patch` (the overriding instruction's vector written over the prompt's last token
at the chosen layer, in the prompt pass only). The answers are generations; a judge says which
task an answer addresses (`judge.py`, `scoring.py`). `override_text`, where both tasks'
labels are known, is also scored by exact match, which checks the judge.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from benchmark import get_task, uses_examples
from benchmark.scoring import lenient_match

from .. import engine, generation
from ..items import sample_demos, sha256
from ..methods import register_method
from ..templates import Prompt

if TYPE_CHECKING:
    from ..context import EvalContext

STOP = ("\n",)


# -- prompts ------------------------------------------------------------------------------------


def _demos(ctx: EvalContext, record: dict, split: str, seed: int) -> list[tuple[Any, str]]:
    """Examples of the original task: other items of the same direction, with their original
    labels."""
    pool = [
        r for r in ctx.data[record["task"]].splits[split] if r["direction"] == record["direction"]
    ]
    config = ctx.config
    demos = sample_demos(pool, record, config.n_shot, seed, record["direction"], config.demo_draw)
    return [(d["input"], d["question_answer"]) for d in demos]


def original_prompt(
    ctx: EvalContext, record: dict, seed: int, split: str = "test", system: str | None = None
) -> Prompt:
    """The original task in the prompt. override_text: its examples (or, under --spec
    instruction, its instruction) and the query; an image set: the image and question 1."""
    adapter = ctx.adapter
    if record["task"] != "override_text":
        return adapter.query_prompt((record["image"], record["question"]), system=system)
    if not uses_examples(ctx.config.spec):
        return adapter.query_prompt(record["input"], instruction=record["question"], system=system)
    examples = _demos(ctx, record, split, seed)
    return adapter.example_prompt(examples, query=record["input"], system=system)


# How an overriding task's vector is read, as results files record it.
OVERRIDE_VECTOR_READ = (
    "the overriding instruction without a trailing '?', ending in ':'; its vector is the state "
    "at that ':' (the authors' demo.ipynb, Instruction Conflict)"
)


def override_instruction(text: str) -> str:
    """The overriding task as the authors' released code writes it: a question loses its `?`
    and, like every instruction, ends in the delimiter `:`, where its vector is read ("What is
    the green vegetable?" -> "What is the green vegetable:"; an instruction that ends in `:`
    already is unchanged)."""
    text = text.rstrip()
    text = text[:-1].rstrip() if text.endswith("?") else text
    return text if text.endswith(":") else f"{text}:"


def instruction_vectors(
    adapter: Any, texts: Sequence[str], batch_size: int, layer: int | None = None
) -> dict[str, torch.Tensor]:
    """The vector of each distinct overriding instruction (`override_instruction`), at every
    layer ([n_layers, d]) or at `layer` only ([d], so a thousand questions fit in memory)."""
    unique = list(dict.fromkeys(texts))
    out: dict[str, torch.Tensor] = {}
    for start in range(0, len(unique), batch_size):
        chunk = unique[start : start + batch_size]
        prompts = [adapter.instruction_prompt(override_instruction(t)) for t in chunk]
        states = engine.capture_task_states(adapter, prompts, batch_size)
        for text, state in zip(chunk, states, strict=True):
            out[text] = state if layer is None else state[layer].clone()
    return out


# -- methods ------------------------------------------------------------------------------------


def _answer(
    ctx: EvalContext, task: str, seed: int, *, system: bool = False, layer: int | None = None
) -> dict[str, Any]:
    """Generate for every test item: the original prompt, with the overriding instruction as
    the system prompt (`system`) or its vector patched at `layer`; then score."""
    items = ctx.items(task, "test")
    prompts = [
        original_prompt(ctx, r, seed, system=r["override"] if system else None) for r in items
    ]
    patch: dict[str, Any] = {}
    if layer is not None:
        vectors = instruction_vectors(
            ctx.adapter, [r["override"] for r in items], ctx.config.batch_size, layer
        )
        patch = {"vector": torch.stack([vectors[r["override"]] for r in items]), "layer": layer}
    answers = generation.generate(
        ctx.adapter,
        prompts,
        ctx.config.max_new_tokens,
        batch_size=ctx.config.batch_size,
        stop=STOP,
        **patch,
    )
    return score_generations(items, answers, prompts, ctx.config.case_insensitive)


def score_generations(
    items: list[dict], answers: list[str], prompts: list[Prompt], case_insensitive: bool
) -> dict[str, Any]:
    """A unit of an overriding method: the answers, and where both labels are known, whether
    each starts like the overriding label (`exact_override`) or the original one."""
    out: dict[str, Any] = {
        "doc_ids": [r["id"] for r in items],
        "preds": answers,
        "prompt_hashes": [sha256(p.text) for p in prompts],
    }
    if items and get_task(items[0]["task"]).has_labels:
        out["exact_override"] = [
            lenient_match(a, r["output"], case_insensitive)
            for a, r in zip(answers, items, strict=True)
        ]
        out["exact_original"] = [
            lenient_match(a, r["question_answer"], case_insensitive)
            for a, r in zip(answers, items, strict=True)
        ]
    return out


def _context(row: str):
    def describe(spec: str, n_shot: int) -> str:
        setup = (
            "the original task's instruction"
            if not uses_examples(spec)
            else (
                f"{n_shot} examples of the original task (override_text), or the image and "
                "question 1"
            )
        )
        return f"{setup} and the query; {row}"

    return describe


@register_method(
    "original",
    kind="overriding",
    needs_demos=uses_examples,
    seeded=uses_examples,
    context=_context("nothing else (the original task alone)"),
)
def original(ctx: EvalContext, task: str, seed: int, layer: int | None) -> dict:
    return _answer(ctx, task, seed)


@register_method(
    "system_prompt",
    kind="overriding",
    needs_demos=uses_examples,
    seeded=uses_examples,
    context=_context(
        "the overriding instruction in the system turn (first in the prompt without a chat "
        "template)"
    ),
)
def system_prompt(ctx: EvalContext, task: str, seed: int, layer: int | None) -> dict:
    return _answer(ctx, task, seed, system=True)


@register_method(
    "instruction_patch",
    kind="overriding",
    needs_vector=True,
    needs_demos=uses_examples,
    seeded=uses_examples,
    context=_context("the overriding instruction's vector patched over the last token"),
)
def instruction_patch(ctx: EvalContext, task: str, seed: int, layer: int | None) -> dict:
    if layer is None:
        raise ValueError("instruction_patch needs a layer")
    return _answer(ctx, task, seed, layer=layer)


# -- layer choice on the overriding target (--override_layer target) ------------------------------


def sweep(ctx: EvalContext, task: str, seed: int) -> dict[str, list[float]]:
    """Validation accuracy, at every layer, of patching the overriding instruction's vector:
    does the first token start the overriding label? (override_text only: it has labels.)
    Only under --override_layer target: by default an overriding run patches at the model's
    main layer, chosen on the six tasks (`evaluator`), as the authors patch."""
    items = ctx.items(task, "validation")
    prompts = [original_prompt(ctx, r, seed, split="validation") for r in items]
    vectors = instruction_vectors(
        ctx.adapter, [r["override"] for r in items], ctx.config.batch_size
    )
    n_layers = ctx.adapter.num_layers
    ids = torch.empty(len(items), n_layers, dtype=torch.long)
    for text, vector in vectors.items():
        rows = [i for i, r in enumerate(items) if r["override"] == text]
        ids[rows] = engine.sweep_layers(ctx.adapter, [prompts[i] for i in rows], vector)
    per_layer = [
        ctx.score_tokens(task, items, ids[:, layer].tolist(), prompts) for layer in range(n_layers)
    ]
    return {
        "acc": [statistics.fmean(s["lenient"]) for s in per_layer],
        "acc_strict": [statistics.fmean(s["strict"]) for s in per_layer],
    }
