"""Whether a run's prompts fit the model's context, counted in tokens before any work.

Characters say little about tokens: a short string of rare characters (CJK, emoji, accents a
byte-level tokenizer splits) can be ten times more tokens than letters, and an instruction is
as long as whoever wrote it. So the model's own tokenizer measures every item, and for each
task every kind of prompt the run builds (the examples prompt, the instruction with the query,
the instruction alone, the query alone) is rendered from the token-longest items, with the
instruction wherever the spec uses it, and counted, plus the tokens a generation adds. Over the
model's context, the run stops before loading any work; an unusually long item is a warning.

Prompts with images are not measured: an image's tokens depend on the processor's tiling and
are counted only by running it. Those runs rely on the model's own error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from benchmark.protocol import uses_examples

from .context import EvalContext
from .errors import ConfigError
from .progress import say
from .templates import Prompt

# An item (input and label together) longer than this is named in a warning: the shipped tasks'
# items are under 30 tokens, so one this long is usually a mistake in a task file.
LONG_ITEM_TOKENS = 256


def count_tokens(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Each text's length in the model's tokens, without special tokens."""
    if not texts:
        return []
    return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def _longest(records: list[dict], sizes: list[int], n: int) -> list[dict]:
    order = sorted(range(len(records)), key=lambda i: sizes[i], reverse=True)
    return [records[i] for i in order[:n]]


def _task_prompts(ctx: EvalContext, task: str, records: list[dict]) -> Iterator[tuple[str, Prompt]]:
    """(kind, prompt) for each kind of prompt the run builds for `task`, from its token-longest
    items (a cross-modal or VQA task: input -> output)."""
    adapter, config = ctx.adapter, ctx.config
    tokenizer = adapter.tokenizer
    inputs = count_tokens(tokenizer, [r["input"] for r in records])
    outputs = count_tokens(tokenizer, [r["output"] for r in records])
    sizes = [i + o for i, o in zip(inputs, outputs, strict=True)]
    for record, size in zip(records, sizes, strict=True):
        if size > LONG_ITEM_TOKENS:
            say(f"warning: {task}/{record['id']} is {size} tokens long (input and label)")
    query = _longest(records, inputs, 1)[0]["input"]
    instruction = ctx.data[task].instruction
    if uses_examples(config.spec):
        pairs = [(r["input"], r["output"]) for r in _longest(records, sizes, config.n_shot)]
        with_instruction = instruction if config.spec == "ensemble" else None
        yield "examples", adapter.example_prompt(pairs, query=query, instruction=with_instruction)
    if (not uses_examples(config.spec) or config.spec == "ensemble") and instruction:
        yield "instruction", adapter.query_prompt(query, instruction=instruction)
        yield "instruction alone", adapter.instruction_prompt(instruction)
    yield "query", adapter.query_prompt(query)


def _overriding_prompts(
    ctx: EvalContext, task: str, records: list[dict]
) -> Iterator[tuple[str, Prompt]]:
    """The same for override_text (input, question, question_answer; the overriding instruction
    `override` in the system prompt); the image sets' prompts hold images and are skipped."""
    if task != "override_text":
        return
    adapter, config = ctx.adapter, ctx.config
    tokenizer = adapter.tokenizer
    inputs = count_tokens(tokenizer, [r["input"] for r in records])
    questions = count_tokens(tokenizer, [r["question"] for r in records])
    answers = count_tokens(tokenizer, [r["question_answer"] for r in records])
    overrides = count_tokens(tokenizer, [r["override"] for r in records])
    query = _longest(records, inputs, 1)[0]["input"]
    question = _longest(records, questions, 1)[0]["question"]
    system = _longest(records, overrides, 1)[0]["override"]
    if uses_examples(config.spec):
        sizes = [i + a for i, a in zip(inputs, answers, strict=True)]
        longest = _longest(records, sizes, config.n_shot)
        pairs = [(r["input"], r["question_answer"]) for r in longest]
        yield "examples", adapter.example_prompt(pairs, query=query, system=system)
    else:
        yield "instruction", adapter.query_prompt(query, instruction=question, system=system)
    yield "overriding instruction", adapter.instruction_prompt(system)


def check_prompt_lengths(ctx: EvalContext) -> None:
    """Stop before any work when a prompt the run builds would not fit the model's context
    (`ConfigError` naming the task, the kind of prompt, its tokens and the fix)."""
    config, adapter = ctx.config, ctx.adapter
    if config.uses_images and not config.overriding:
        return
    text_config = adapter.model.config.get_text_config()
    limit = getattr(text_config, "max_position_embeddings", None)
    generated = config.max_new_tokens if (config.overriding or ctx.whole_answers) else 0
    for task, data in ctx.data.items():
        records = [r for rs in data.splits.values() for r in rs]
        if not records:
            continue
        kinds = _overriding_prompts if config.overriding else _task_prompts
        for kind, prompt in kinds(ctx, task, records):
            n_tokens = len(adapter.tokenizer(prompt.text)["input_ids"]) + generated
            if limit and n_tokens > limit:
                fix = (
                    "lower --n_shot or shorten the items"
                    if kind == "examples"
                    else "shorten the instruction (--instruction or the task file's)"
                    if "instruction" in kind
                    else "shorten the items"
                )
                plus = f" (with {generated} generated)" if generated else ""
                raise ConfigError(
                    f"task {task}: its longest {kind} prompt is {n_tokens} tokens{plus}, more "
                    f"than {config.model}'s context of {limit}; {fix}"
                )
