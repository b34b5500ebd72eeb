"""What a method sees: the config, the items, the loaded adapter and the task vectors.

`EvalContext` is made once the model is loaded and the vectors are known, and does not change
after: methods read from it and return scored predictions. It also turns items into prompts in
the configured modalities, and scores first tokens and whole answers the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

import torch

from benchmark import uses_examples
from benchmark.scoring import (
    lenient_match,
    strict_match,
    whole_answer_match,
    whole_answer_scores,
)

from .adapters.base import Adapter
from .config import RunConfig
from .items import TaskData, sample_demos, sha256
from .templates import Prompt


class Scored(TypedDict):
    """One method on one task for one seed: what the run folder stores as a unit. Under
    `--score whole_answer` also each greedy answer up to its first newline and its two whole-
    answer scores (`benchmark.scoring.whole_answer_scores`)."""

    doc_ids: list[str]
    preds: list[str]
    lenient: list[bool]
    strict: list[bool]
    prompt_hashes: list[str]
    answers: NotRequired[list[str]]
    whole: NotRequired[list[bool]]
    whole_normalised: NotRequired[list[bool]]
    # patch: the predictions and lenient hits one layer off, by layer
    neighbours: NotRequired[dict[str, dict[str, list[Any]]]]


# Tokens an answer may run to before its newline: the labels are a few words.
ANSWER_TOKENS = 16


@dataclass(frozen=True)
class EvalContext:
    config: RunConfig
    data: Mapping[str, TaskData]
    adapter: Adapter
    # (task, seed) -> [n_layers, d]: the vector that is patched (the source model's, under
    # LLM->VLM transfer).
    vectors: Callable[[str, int], torch.Tensor] = field(repr=False)
    _first_tokens: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict, repr=False)
    # Work that several units share (one pass over a task's queries for no_context and every
    # seed's patch), kept while the run lasts.
    shared: dict[Any, Any] = field(default_factory=dict, repr=False)
    # (task, method) -> the seeds whose units this process still has to compute: a method
    # whose seeds share work computes them together, and no more (a resumed run, or a seed
    # another process of an `accelerate launch` takes, is left out). None: only the seed asked.
    pending: Callable[[str, str], list[int]] | None = field(default=None, repr=False)

    # -- items ---------------------------------------------------------------------------------
    def items(self, task: str, split: str) -> list[dict[str, Any]]:
        records = self.data[task].splits[split]
        return records[: self.config.limit] if self.config.limit else records

    def demos(self, task: str, split: str, query: dict[str, Any], seed: int) -> list[dict]:
        """Demos come from the whole split (not only the limited items), never the query."""
        data = self.data[task]
        return sample_demos(
            data.splits[split],
            query,
            self.config.n_shot,
            seed,
            data.demo_key or task,
            self.config.demo_draw,
        )

    def vector(self, task: str, seed: int) -> torch.Tensor:
        return self.vectors(task, seed)

    # -- prompts in the configured modalities ----------------------------------------------------
    def spec_input(self, record: dict[str, Any]) -> Any:
        return record["image"] if self.config.spec == "image_examples" else record["input"]

    def query_input(self, record: dict[str, Any]) -> Any:
        return record["image"] if self.config.query == "image" else record["input"]

    def query_prompt(self, record: dict[str, Any]) -> Prompt:
        return self.adapter.query_prompt(self.query_input(record))

    def spec_and_query_prompt(self, task: str, record: dict[str, Any], seed: int) -> Prompt:
        """The specification followed by the query, in one context (the prompt baseline)."""
        spec = self.config.spec
        query = self.query_input(record)
        if not uses_examples(spec):
            return self.adapter.query_prompt(query, instruction=self.data[task].instruction)
        examples = [
            (self.spec_input(d), d["output"]) for d in self.demos(task, "test", record, seed)
        ]
        instruction = self.data[task].instruction if spec == "ensemble" else None
        return self.adapter.example_prompt(examples, query=query, instruction=instruction)

    # -- scoring ---------------------------------------------------------------------------------
    def score_tokens(
        self, task: str, items: list[dict], pred_ids: Sequence[int], prompts: Sequence[Prompt]
    ) -> Scored:
        """First generated tokens, by the lenient rule and the strict first-token rule."""
        ci = self.config.case_insensitive
        preds = [self.adapter.decode_token(i) for i in pred_ids]
        firsts = [self.target_first_token(task, r) for r in items]
        strict = [
            strict_match(p, text, ci, int(i), target)
            for p, i, (target, text) in zip(preds, pred_ids, firsts, strict=True)
        ]
        return {
            "doc_ids": [r["id"] for r in items],
            "preds": preds,
            "lenient": [
                lenient_match(p, r["output"], ci) for p, r in zip(preds, items, strict=True)
            ],
            "strict": strict,
            "prompt_hashes": [sha256(p.text) for p in prompts],
        }

    def score_strings(
        self, items: list[dict], answers: list[str], prompts: Sequence[Prompt]
    ) -> Scored:
        """Whole answers (the majority baseline's labels), scored by the same rules; strict
        means the whole label is right."""
        ci = self.config.case_insensitive
        return {
            "doc_ids": [r["id"] for r in items],
            "preds": answers,
            "lenient": [
                lenient_match(a, r["output"], ci) for a, r in zip(answers, items, strict=True)
            ],
            "strict": [
                whole_answer_match(a, r["output"], ci) for a, r in zip(answers, items, strict=True)
            ],
            "prompt_hashes": [sha256(p.text) for p in prompts],
        }

    @property
    def whole_answers(self) -> bool:
        return self.config.score == "whole_answer"

    def with_answers(self, scored: Scored, items: list[dict], answers: Sequence[str]) -> Scored:
        """`scored` with each whole answer and its scores against the item's label."""
        ci = self.config.case_insensitive
        targets = [r["output"] for r in items]
        pairs = [whole_answer_scores(a, t, ci) for a, t in zip(answers, targets, strict=True)]
        return {
            **scored,
            "answers": list(answers),
            "whole": [exact for exact, _ in pairs],
            "whole_normalised": [loose for _, loose in pairs],
        }

    def target_first_token(self, task: str, record: dict[str, Any]) -> tuple[int, str]:
        """The label's first token (id and text) as it follows the text query, for the strict
        rule; computed once per item rather than once per layer of the sweep."""
        key = (task, record["id"])
        if key not in self._first_tokens:
            query = self.adapter.query_prompt(record["input"]).text
            token = self.adapter.answer_token(query, record["output"])
            self._first_tokens[key] = (int(token), self.adapter.decode_token(token))
        return self._first_tokens[key]
