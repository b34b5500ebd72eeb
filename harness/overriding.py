"""Task overriding (the paper's Table 5): one task set up in the prompt, a conflicting task
patched in as an instruction vector, the model answering free-form.

Three methods, one row each: `original` (the prompt alone), `system_prompt` (the overriding
instruction in the system turn; without a chat template, first in the prompt) and
`instruction_patch` (the overriding instruction's vector written over the prompt's last token
at the chosen layer, in the prompt pass only). The answers are generations; a judge says which
task an answer addresses (`judge.py`, `judging.py`). `override_text` is built here from the
shipped pools, where both tasks' labels are known, so it is also scored by exact match and
checks the judge.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from benchmark import TASKS, get_task, load_task
from benchmark.layout import IMAGE_COLUMN, config_name

from . import engine, generation
from .data import TaskData, sample_demos, sha256
from .methods import register_method
from .scoring import lenient_match
from .templates import Prompt

if TYPE_CHECKING:
    from .context import EvalContext

# Each cross-modal task and the conflicting task of its pool.
CONFLICTS = {
    "country_capital": "country_currency",
    "country_currency": "country_capital",
    "animal_latin": "animal_young",
    "animal_young": "animal_latin",
    "food_color": "food_flavor",
    "food_flavor": "food_color",
}
STOP = ("\n",)


def is_overriding(task_id: str) -> bool:
    return task_id in TASKS and get_task(task_id).family == "overriding"


def has_labels(task_id: str) -> bool:
    """Only override_text knows both answers; the image sets are judged."""
    return task_id == "override_text"


# -- data ---------------------------------------------------------------------------------------


def load_override_text() -> TaskData:
    """Every pool item under both of its pool's tasks: the original task set up in the prompt
    (`question`, labelled `question_answer`), the other patched (`override`, labelled `output`).
    Directions are interleaved so that --limit takes items of every direction."""
    splits: dict[str, list[dict[str, Any]]] = {}
    for split in ("validation", "test"):
        by_direction = []
        for original, override in CONFLICTS.items():
            labels = {r["id"]: r["output"] for r in load_task(override, split)}
            by_direction.append(
                [
                    {
                        "id": f"{original}>{override}/{r['id']}",
                        "task": "override_text",
                        "split": split,
                        "direction": f"{original}>{override}",
                        "input": r["input"],
                        "question": TASKS[original].instruction,
                        "override": TASKS[override].instruction,
                        "question_answer": r["output"],
                        "output": labels[r["id"]],
                    }
                    for r in load_task(original, split)
                ]
            )
        splits[split] = [rec for group in zip(*by_direction, strict=True) for rec in group]
    instruction = TASKS["override_text"].instruction
    return TaskData("override_text", instruction, splits, source="pools:override_text")


def load_override_set(task_id: str, data: str) -> TaskData:
    """An image overriding set built by `vlm-tv-build overriding` (test split only)."""
    import datasets

    try:
        built = datasets.load_dataset(data, config_name(task_id))
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; all mean "cannot load"
        raise ValueError(
            f"cannot load config {task_id!r} of the overriding dataset {data!r}: {exc}. Build "
            "it with `vlm-tv-build overriding --out DIR` (needs network) and pass --data DIR"
        ) from None
    if "test" not in built:
        raise ValueError(f"overriding dataset {data!r} config {task_id!r} has no test split")
    records = []
    for row in built["test"]:
        image = row[IMAGE_COLUMN]
        if image is None:
            continue
        records.append(
            {
                "id": str(row["id"]),
                "task": task_id,
                "split": "test",
                "image": image,
                "input": row["question"],
                "question": row["question"],
                "override": row["override"],
                "question_answer": row.get("question_answer"),
                "output": row.get("override_answer") or "",
            }
        )
    if not records:
        raise ValueError(f"overriding dataset {data!r} config {task_id!r} has no images")
    return TaskData(task_id, get_task(task_id).instruction, {"test": records}, source=data)


# -- prompts ------------------------------------------------------------------------------------


def _demos(ctx: EvalContext, record: dict, split: str, seed: int) -> list[tuple[Any, str]]:
    """Examples of the original task: other items of the same direction, with their original
    labels."""
    pool = [
        r for r in ctx.data[record["task"]].splits[split] if r["direction"] == record["direction"]
    ]
    demos = sample_demos(pool, record, ctx.config.n_shot, seed, record["direction"])
    return [(d["input"], d["question_answer"]) for d in demos]


def original_prompt(
    ctx: EvalContext, record: dict, seed: int, split: str = "test", system: str | None = None
) -> Prompt:
    """The original task in the prompt. override_text: its examples (or, under --spec
    instruction, its instruction) and the query; an image set: the image and question 1."""
    adapter = ctx.adapter
    if record["task"] != "override_text":
        return adapter.query_prompt((record["image"], record["question"]), system=system)
    if ctx.config.spec == "instruction":
        return adapter.query_prompt(record["input"], instruction=record["question"], system=system)
    examples = _demos(ctx, record, split, seed)
    return adapter.example_prompt(examples, query=record["input"], system=system)


def questions(record: Mapping[str, Any]) -> tuple[str, str]:
    """Question 1 (the original task) and question 2 (the overriding one), as the judge sees
    them."""
    if record["task"] == "override_text":
        return f"{record['question']} {record['input']}", f"{record['override']} {record['input']}"
    return record["question"], record["override"]


def instruction_vectors(
    adapter: Any, texts: Sequence[str], batch_size: int, layer: int | None = None
) -> dict[str, torch.Tensor]:
    """The instruction vector of each distinct text (its last token's state), at every layer
    ([n_layers, d]) or at `layer` only ([d], so a thousand questions fit in memory)."""
    unique = list(dict.fromkeys(texts))
    out: dict[str, torch.Tensor] = {}
    for start in range(0, len(unique), batch_size):
        chunk = unique[start : start + batch_size]
        states = engine.capture_task_states(
            adapter, [adapter.instruction_prompt(t) for t in chunk], batch_size
        )
        for text, state in zip(chunk, states, strict=True):
            out[text] = state if layer is None else state[layer].clone()
    return out


# -- methods ------------------------------------------------------------------------------------


def _uses_examples(spec: str) -> bool:
    return spec not in ("instruction",)


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
    if items and has_labels(items[0]["task"]):
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
            if spec == "instruction"
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
    needs_demos=_uses_examples,
    seeded=_uses_examples,
    context=_context("nothing else (the original task alone)"),
)
def original(ctx: EvalContext, task: str, seed: int, layer: int | None) -> dict:
    return _answer(ctx, task, seed)


@register_method(
    "system_prompt",
    kind="overriding",
    needs_demos=_uses_examples,
    seeded=_uses_examples,
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
    needs_demos=_uses_examples,
    seeded=_uses_examples,
    context=_context("the overriding instruction's vector patched over the last token"),
)
def instruction_patch(ctx: EvalContext, task: str, seed: int, layer: int | None) -> dict:
    if layer is None:
        raise ValueError("instruction_patch needs a layer")
    return _answer(ctx, task, seed, layer=layer)


# -- layer choice for override_text ---------------------------------------------------------------


def sweep(ctx: EvalContext, task: str, seed: int) -> dict[str, list[float]]:
    """Validation accuracy, at every layer, of patching the overriding instruction's vector:
    does the first token start the overriding label? (override_text only: it has labels.)"""
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
