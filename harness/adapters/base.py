"""The adapter interface: everything the harness needs from a model, and nothing more.

An adapter loads a model and its tokenizer or processor, says which modules are the decoder
layers, turns `Prompt`s into a padded batch whose task-token positions come from tokenization,
and runs forward passes. Capturing and patching are done by `harness.hooks` on the layers the
adapter names, so a new architecture needs no change to the harness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..templates import (
    Prompt,
    Template,
    get_template,
    render_examples,
    render_instruction,
    render_query,
)


@dataclass
class Batch:
    """A left-padded batch: every prompt's last token is at column -1.

    `task_index[b]` is the column of prompt b's task token; `model_inputs` goes to the model as
    keyword arguments (input_ids, attention_mask, position_ids, pixel_values, ...).
    """

    model_inputs: dict[str, torch.Tensor]
    task_index: torch.Tensor
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.task_index.shape[0])

    @property
    def input_ids(self) -> torch.Tensor:
        return self.model_inputs["input_ids"]


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """Positions that count real tokens only, so a left-padded row equals the row alone."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def left_pad(
    rows: Sequence[Sequence[int]], task_cols: Sequence[int], pad_id: int
) -> dict[str, torch.Tensor]:
    """Token rows left-padded to one width: input_ids, attention_mask, position_ids, and each
    row's task column shifted by its padding (`task_index`)."""
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    task_index = torch.empty(len(rows), dtype=torch.long)
    for b, (ids, col) in enumerate(zip(rows, task_cols, strict=True)):
        pad = width - len(ids)
        input_ids[b, pad:] = torch.tensor(list(ids))
        mask[b, pad:] = 1
        task_index[b] = pad + col
    return {
        "input_ids": input_ids,
        "attention_mask": mask,
        "position_ids": position_ids(mask),
        "task_index": task_index,
    }


class Adapter:
    """Base class. Subclasses set `name`, `default_pretrained`, and implement `load`."""

    name: str = ""
    description: str = ""
    default_pretrained: str | None = None
    default_revision: str | None = None
    default_template: str = "paper"
    supports_images: bool = False
    # The paired LLM (for a VLM) or VLM (for an LLM), for LLM->VLM transfer.
    paired_with: str | None = None

    def __init__(
        self,
        pretrained: str | None = None,
        revision: str | None = None,
        dtype: str | None = None,
        device: str = "cpu",
        load_in_4bit: bool = False,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise ValueError(
                f"model {self.name!r} does not take model_args {sorted(kwargs)}; it takes "
                "pretrained, revision, dtype, device, load_in_4bit"
            )
        self.pretrained = pretrained or self.default_pretrained
        # The pinned revision belongs to the default checkpoint, not to one the user names.
        default_revision = self.default_revision if pretrained is None else None
        self.revision = revision if revision is not None else default_revision
        self.dtype = dtype
        self.device = device
        self.load_in_4bit = load_in_4bit
        self.model: Any = None
        self.tokenizer: Any = None
        self.template: Template = get_template(self.default_template)
        # --template model: wrap every prompt in the model's own chat format (Table 10 ablation).
        self.use_chat_template = False

    # -- what subclasses provide ---------------------------------------------------------------
    def load(self) -> None:
        raise NotImplementedError

    @property
    def layers(self) -> Sequence[torch.nn.Module]:
        """The decoder layers whose outputs are captured and patched, in order."""
        raise NotImplementedError

    def encode(self, prompts: Sequence[Prompt]) -> Batch:
        raise NotImplementedError

    # -- prompts -------------------------------------------------------------------------------
    # Inputs are strings here; VLM adapters also take images, writing their placeholder into the
    # text and the image into `Prompt.images` (the processor expands it into image tokens).
    def _text_input(self, x: Any) -> str:
        if not isinstance(x, str):
            raise ValueError(f"model {self.name!r} is text-only; got a {type(x).__name__} input")
        return x

    def example_prompt(self, examples: Sequence[tuple[Any, str]], query: Any = None) -> Prompt:
        """Examples (and optionally a query) in the template; the task token is the delimiter
        before the last example's answer."""
        pairs = [(self._text_input(x), y) for x, y in examples]
        q = None if query is None else self._text_input(query)
        return self.wrap(render_examples(self.template, pairs, query=q))

    def query_prompt(self, x: Any) -> Prompt:
        return self.wrap(render_query(self.template, self._text_input(x)))

    def instruction_prompt(self, instruction: str) -> Prompt:
        return self.wrap(render_instruction(instruction))

    def wrap(self, prompt: Prompt) -> Prompt:
        """With `use_chat_template`, put the prompt in a user turn followed by the assistant's
        turn; the task character moves with it."""
        if not self.use_chat_template:
            return prompt
        before, after = self.chat_parts()
        task_char = None if prompt.task_char is None else prompt.task_char + len(before)
        return Prompt(before + prompt.text + after, list(prompt.images), task_char)

    def chat_parts(self) -> tuple[str, str]:
        """The text the chat template puts before and after a user message."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(
                f"model {self.name!r} has no chat template, so --template model cannot be used; "
                "use --template paper or spaced"
            )
        sentinel = "\u2063TASK\u2063"
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": sentinel}], tokenize=False, add_generation_prompt=True
        )
        before, after = text.split(sentinel)
        bos = getattr(self.tokenizer, "bos_token", None)
        if bos and before.startswith(bos):  # the tokenizer adds it again
            before = before[len(bos) :]
        return before, after

    # -- shared --------------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def describe(self) -> dict[str, Any]:
        """What a results file records about the model."""
        return {
            "name": self.name,
            "paired_with": self.paired_with,
            "adapter": type(self).__name__,
            "pretrained": str(self.pretrained),
            "revision": self.revision,
            "dtype": str(getattr(self.model, "dtype", self.dtype)),
            "device": self.device,
            "num_layers": self.num_layers if self.model is not None else None,
        }

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else (self.tokenizer.eos_token_id or 0)

    def decode_token(self, token_id: int) -> str:
        return self.tokenizer.decode([int(token_id)])

    def answer_token(self, query_text: str, answer_prefix: str, answer: str) -> int:
        """Id of the first token of `answer` as it follows the query (for the strict rule)."""
        full = self.tokenizer(query_text + answer_prefix + answer, add_special_tokens=False)
        head = self.tokenizer(query_text, add_special_tokens=False)
        ids, n = full["input_ids"], len(head["input_ids"])
        # A merge across the boundary would make the answer start inside the query's last
        # token; fall back to the answer tokenized on its own.
        if ids[:n] != head["input_ids"] or len(ids) == n:
            return self.tokenizer(answer_prefix + answer, add_special_tokens=False)["input_ids"][0]
        return ids[n]
