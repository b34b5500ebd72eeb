"""The adapter contract: everything the harness needs from a model, and nothing more.

An adapter loads a model and its tokenizer or processor (`load`), says which modules are the
decoder layers (`layers`, `num_layers`, `hidden_size`), and turns `Prompt`s into a left-padded
batch whose task-token columns come from tokenization (`encode`). Capturing and patching are
done by `harness.hooks` on the layers the adapter names, so a new architecture needs no change
to the harness. How prompts are written (template, chat format) is fixed at construction:
a run never changes an adapter after it is made.
"""

from __future__ import annotations

import hashlib
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..checkpoints import Checkpoint
from ..errors import ConfigError
from ..templates import (
    CHAT_ONE_TURN,
    CHAT_TURNS,
    ChatFormat,
    ChatTurns,
    Prompt,
    Template,
    derive_chat_turns,
    get_template,
    one_turn_parts,
    render_examples,
    render_instruction,
    render_query,
    render_turn_query,
    render_turns,
    with_system,
)
from .chat import chat_format, chat_renderer, own_bos


@dataclass
class Batch:
    """A left-padded batch: every prompt's last token is at column -1.

    `task_index[b]` is the column of prompt b's task token; `model_inputs` goes to the model as
    keyword arguments (input_ids, attention_mask, position_ids, pixel_values, ...).
    """

    model_inputs: dict[str, torch.Tensor]
    task_index: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.task_index.shape[0])

    @property
    def input_ids(self) -> torch.Tensor:
        return self.model_inputs["input_ids"]


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """Positions that count real tokens only, so a left-padded row equals the row alone."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


# The engine's shared paths: each gives a plain forward's numbers for a causal decoder whose
# positions and attention the prompt's text alone sets. An adapter names those that would not
# be exact for its model (`Adapter.paths_off`); the engine then runs plain forwards there.
KV_STEPS = "kv_cached_last_token"  # a prompt's last token run alone on its prefix's KV cache
SHARED_PREFIXES = "shared_prefixes"  # common beginnings of prompts run once
CUT_AFTER_TASK_TOKEN = "cut_after_task_token"  # spec prompts run only up to their task token
BATCHED_IMAGES = "batched_image_prompts"  # prompts with images run together, left-padded
ENGINE_PATHS = {
    KV_STEPS: "the layer sweep, patch variants and the one-pass query and patch run each "
    "patched last token alone on its prompt's KV cache",
    SHARED_PREFIXES: "prompts that begin alike run their common beginning once",
    CUT_AFTER_TASK_TOKEN: "task vectors read spec prompts cut after their task token",
    BATCHED_IMAGES: "prompts holding images run together in one left-padded batch",
}


def left_pad(
    rows: Sequence[Sequence[int]], task_cols: Sequence[int], pad_id: int
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Token rows left-padded to one width (input_ids, attention_mask, position_ids), and each
    row's task column shifted by its padding."""
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    task_index = torch.empty(len(rows), dtype=torch.long)
    for b, (ids, col) in enumerate(zip(rows, task_cols, strict=True)):
        pad = width - len(ids)
        input_ids[b, pad:] = torch.tensor(list(ids))
        mask[b, pad:] = 1
        task_index[b] = pad + col
    inputs = {"input_ids": input_ids, "attention_mask": mask, "position_ids": position_ids(mask)}
    return inputs, task_index


def token_covering(offsets: Sequence[tuple[int, int]], char: int, text: str = "") -> int:
    """The index of the token whose character span covers `char` (from a tokenizer's
    offset_mapping): how a template's task character becomes a token column."""
    for i, (start, end) in enumerate(offsets):
        if start <= char < end:
            return i
    shown = f" ({text[char]!r})" if 0 <= char < len(text) else ""
    raise ValueError(f"no token covers character {char}{shown} of the prompt")


class Adapter(ABC):
    """Base class. Subclasses implement the abstract members; `checkpoint` (a row of
    `checkpoints.CHECKPOINTS`) supplies the name, pinned weights and prompt defaults."""

    name: str = ""  # a plug-in adapter's model name; built-ins take theirs from the checkpoint
    description: str = ""
    supports_images: bool = False
    default_template: str = "paper"

    def __init__(
        self,
        pretrained: str | None = None,
        revision: str | None = None,
        dtype: str | None = None,
        device: str = "cpu",
        load_in_4bit: bool = False,
        *,
        template: str | Template | None = None,
        chat: bool | str = False,
        checkpoint: Checkpoint | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConfigError(
                f"model {checkpoint.name if checkpoint else self.name!r} does not take model_args "
                f"{sorted(unknown)}; it takes pretrained, revision, dtype, device, load_in_4bit"
            )
        self.checkpoint = checkpoint
        if checkpoint is not None:
            self.name = checkpoint.name
            self.description = checkpoint.description
        default_pretrained = checkpoint.pretrained if checkpoint else None
        self.pretrained = pretrained or default_pretrained
        # The pinned revision belongs to the default checkpoint, not to one the user names.
        pinned = checkpoint.revision if checkpoint and pretrained is None else None
        self.revision = revision if revision is not None else pinned
        self.dtype = dtype
        self.device = device
        self.load_in_4bit = load_in_4bit
        if template is None:
            template = checkpoint.template if checkpoint else self.default_template
        self.template: Template = get_template(template) if isinstance(template, str) else template
        # chat: the model's own chat format, "model" (each example a turn: the paper's Table 10)
        # or "model_one_turn" (the whole prompt in one user turn); False: none.
        self.chat: ChatFormat | bool = chat_format(chat)
        self._turns: dict[str | None, ChatTurns] = {}
        self.model: Any = None
        self.tokenizer: Any = None

    # -- the contract ---------------------------------------------------------------------------
    @abstractmethod
    def load(self) -> None:
        """Load weights and tokenizer/processor onto `device`."""

    @property
    @abstractmethod
    def layers(self) -> Sequence[torch.nn.Module]:
        """The decoder layers whose outputs are captured and patched, in order."""

    @abstractmethod
    def encode(self, prompts: Sequence[Prompt]) -> Batch:
        """A left-padded batch on the adapter's device, task columns from tokenization."""

    @property
    @abstractmethod
    def hidden_size(self) -> int:
        """Width of a decoder layer's output: the size of a task vector."""

    @property
    @abstractmethod
    def num_layers(self) -> int:
        """How many decoder layers there are (valid --layer values are 0..num_layers-1)."""

    # -- shared by every adapter ----------------------------------------------------------------
    def preflight(self) -> None:
        """Checks that need at most the checkpoint's config, run before any weights are
        fetched (an architecture the adapter cannot serve is refused here); none by default."""
        return None

    def peek_num_layers(self) -> int | None:
        """Layer count without loading weights, to check --layer before a long load; None when
        it cannot be known yet (it is checked again after loading)."""
        ckpt = self.checkpoint
        if ckpt and ckpt.num_layers and self.pretrained == ckpt.pretrained:
            return ckpt.num_layers
        return None

    def prompt_lengths(self, prompts: Sequence[Prompt]) -> list[int]:
        """How long each prompt is, to batch prompts of similar length together: characters
        here (an image's tokens cannot be counted without running the processor); adapters
        that can count tokens cheaply do."""
        return [len(p.text) for p in prompts]

    def token_rows(self, prompts: Sequence[Prompt]) -> list[list[int]] | None:
        """Each prompt's tokens, exactly as `encode` would feed them, for work that splits
        prompts by token (shared beginnings run once); None where prompts are not plain token
        rows (images, processors), which keeps them on the whole-batch path."""
        return None

    def to_batch(self, inputs: dict[str, torch.Tensor], task_index: torch.Tensor) -> Batch:
        """Every tensor moved to the adapter's device, once, here."""
        moved = {k: v.to(self.device) for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        return Batch(moved, task_index.to(self.device))

    # Inputs are strings here; VLM adapters also take images, writing their placeholder into the
    # text and the image into `Prompt.images` (the processor expands it into image tokens). A
    # tuple of inputs is one input in parts, written one after the other (an image, then a
    # question about it: `<image>What is...?`, as the authors' demo writes it).
    def split_input(self, x: Any) -> tuple[str, list[Any]]:
        if isinstance(x, tuple):
            texts, images = zip(*(self.split_input(part) for part in x), strict=True)
            return "".join(texts), [img for imgs in images for img in imgs]
        if not isinstance(x, str):
            raise ValueError(f"model {self.name!r} is text-only; got a {type(x).__name__} input")
        return x, []

    def example_prompt(
        self,
        examples: Sequence[tuple[Any, str]],
        query: Any = None,
        instruction: str | None = None,
        system: str | None = None,
    ) -> Prompt:
        """Examples (then optionally a query) in the template, after an optional instruction;
        the task token is the delimiter before the last example's answer. `system`: see
        `wrap`."""
        pairs, images = [], []
        for x, y in examples:
            text, imgs = self.split_input(x)
            pairs.append((text, y))
            images += imgs
        q = None
        if query is not None:
            q, imgs = self.split_input(query)
            images += imgs
        if self.chat == CHAT_TURNS:
            prompt = render_turns(self.chat_turns(system), pairs, q, instruction)
            prompt.images = images
            return prompt
        prompt = render_examples(self.template, pairs, query=q, instruction=instruction)
        prompt.images = images
        return self.wrap(prompt, system)

    def query_prompt(
        self, x: Any, instruction: str | None = None, system: str | None = None
    ) -> Prompt:
        """The bare query (after an optional instruction); its last token is patched."""
        text, images = self.split_input(x)
        if self.chat == CHAT_TURNS:
            prompt = render_turn_query(self.chat_turns(system), text, instruction)
            prompt.images = images
            return prompt
        prompt = render_query(self.template, text, instruction=instruction)
        prompt.images = images
        return self.wrap(prompt, system)

    def instruction_prompt(self, instruction: str) -> Prompt:
        """The raw instruction; in a chat format, the user's message before the generation
        prompt. Its last token carries the task."""
        if self.chat == CHAT_TURNS:
            return render_turn_query(self.chat_turns(), instruction)
        return self.wrap(render_instruction(instruction))

    def wrap(self, prompt: Prompt, system: str | None = None) -> Prompt:
        """With `--template model_one_turn`, put the prompt in a user turn followed by the
        assistant's turn, after a system turn holding `system`. Without chat there is no system
        turn: `system` goes first, set off like an example. The task character moves with the
        text. (`--template model` writes turns itself and never wraps.)"""
        if self.chat:
            before, after = self.chat_parts(system)
        else:
            before, after = (f"{system}{self.template.separator}" if system else ""), ""
        if not before and not after:
            return prompt
        task_char = None if prompt.task_char is None else prompt.task_char + len(before)
        return Prompt(before + prompt.text + after, list(prompt.images), task_char)

    def chat_turns(self, system: str | None = None) -> ChatTurns:
        """`--template model`: the turn strings (after a system turn holding `system`, if
        given): the paper's own where the checkpoint table records them (Idefics2, Table 10),
        else derived once from the chat template."""
        fixed = self.checkpoint.chat_turns if self.checkpoint else None
        if fixed is not None:
            return with_system(fixed, system)
        if system not in self._turns:
            render = chat_renderer(self.tokenizer, getattr(self, "processor", None), self.name)
            bos = own_bos(self.tokenizer)
            self._turns[system] = derive_chat_turns(render, repr(self.name), bos, system)
        return self._turns[system]

    def chat_parts(self, system: str | None = None) -> tuple[str, str]:
        """The text the chat template puts before and after a user message (after a system
        message holding `system`, if given). Called right after loading to fail early, so with
        `--template model` it checks the turns too."""
        if self.chat == CHAT_TURNS:
            self.chat_turns(system)
        render = chat_renderer(self.tokenizer, getattr(self, "processor", None), self.name)
        return one_turn_parts(render, repr(self.name), own_bos(self.tokenizer), system)

    def prompting(self) -> dict[str, Any]:
        """How prompts are written, exactly, for the results file; `chat.format` names the chat
        format (the run id differs too: it hashes the --template value)."""
        if self.chat == CHAT_TURNS:
            return self.chat_turns().record()
        out: dict[str, Any] = self.template.record()
        if self.chat:
            before, after = self.chat_parts()
            wraps = "the whole prompt"
            out["chat"] = {
                "format": CHAT_ONE_TURN,
                "wraps": wraps,
                "before": before,
                "after": after,
            }
        return out

    def paths_off(self) -> dict[str, str]:
        """The engine's shared paths (`ENGINE_PATHS`) that would not give this model a plain
        forward's numbers: path -> why. The engine runs plain forwards there instead (exact,
        slower) and says so; a results file records them."""
        return {}

    def body(self) -> torch.nn.Module:
        """The model without its LM head, where only layer states or caches are wanted: the
        base model, which merges image features into the prompt. Not `get_decoder()`: for a
        VLM that is the text model alone, which takes `pixel_values` as an unknown keyword and
        reads every image token as its placeholder embedding (an image prompt's states then
        do not depend on the image)."""
        return self.model.base_model

    def path_on(self, path: str) -> bool:
        """Whether the engine may take `path` for this model. The first refusal of each path
        is said on stderr; results files record them all (`describe`)."""
        why = self.paths_off().get(path)
        if why is None:
            return True
        said = self.__dict__.setdefault("_paths_said_off", set())
        if path not in said:
            said.add(path)
            print(
                f"note: {self.describe()['name']}: plain forwards instead of the shared path "
                f"where {ENGINE_PATHS[path]}: {why}",
                file=sys.stderr,
            )
        return False

    def positions(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The position ids the model is fed for a left-padded batch: real tokens counted from
        0. A model whose positions follow other rules (image-grid M-RoPE) overrides this; the
        token axis is always the last, the batch axis the one before it."""
        return position_ids(inputs["attention_mask"])

    def describe(self) -> dict[str, Any]:
        """What a results file records about the model."""
        off = self.paths_off() if self.model is not None else {}
        return {
            "name": self.name,
            "paired_with": self.checkpoint.paired_with if self.checkpoint else None,
            "adapter": type(self).__name__,
            "pretrained": str(self.pretrained),
            "revision": self.revision,
            "dtype": str(getattr(self.model, "dtype", self.dtype)),
            "device": self.device,
            "num_layers": self.num_layers if self.model is not None else None,
            "fingerprint": getattr(self, "_fingerprint", None),
            **({"engine_paths_off": off} if off else {}),
        }

    def inputs_fingerprint(self) -> str:
        """A hash of what turns a prompt into the model's inputs: the tokenizer as it will split
        text, and the image processor's class and settings (sizes, splitting). Cached task
        vectors are keyed by it, since a tokenizer or image-processor change (a fix, or
        `image_splitting=false`) changes neither the weights nor the prompt text."""
        if getattr(self, "_inputs_fingerprint", None) is None:
            backend = getattr(self.tokenizer, "backend_tokenizer", None)
            tokens = backend.to_str() if backend is not None else repr(self.tokenizer.get_vocab())
            processor = getattr(getattr(self, "processor", None), "image_processor", None)
            images = type(processor)
            text = f"{tokens}\n{images.__module__}.{images.__qualname__}"
            if processor is not None and hasattr(processor, "to_json_string"):
                text += "\n" + processor.to_json_string()  # its settings: sizes, splitting
            self._inputs_fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self._inputs_fingerprint

    @property
    def paired_with(self) -> str | None:
        return self.checkpoint.paired_with if self.checkpoint else None

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else (self.tokenizer.eos_token_id or 0)

    def decode_token(self, token_id: int) -> str:
        return self.tokenizer.decode([int(token_id)])

    def answer_token(self, query_text: str, answer: str) -> int:
        """Id of the first token of `answer` as it follows the query (for the strict rule)."""
        turns = self.chat_turns() if self.chat == CHAT_TURNS else None
        answer_prefix = turns.answer_prefix if turns else self.template.answer_prefix
        full = self.tokenizer(query_text + answer_prefix + answer, add_special_tokens=False)
        head = self.tokenizer(query_text, add_special_tokens=False)
        ids, n = full["input_ids"], len(head["input_ids"])
        # A merge across the boundary would make the answer start inside the query's last
        # token; fall back to the answer tokenized on its own.
        if ids[:n] != head["input_ids"] or len(ids) == n:
            return self.tokenizer(answer_prefix + answer, add_special_tokens=False)["input_ids"][0]
        return ids[n]
