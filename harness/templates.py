"""Prompt templates, and where in a rendered prompt the task token sits.

A template renders examples as `example` strings joined by `separator`, and a query as `query`.
Rendering records the character offset of the delimiter that closes the answer marker (the `:`
of `A:`), so adapters can map it to a token through the tokenizer's offsets: the harness never
counts colons in token ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Template:
    name: str
    example: str  # with {x} and {y}; must contain `marker` between {x} and {y}
    query: str  # with {x}; must end with `marker`
    separator: str = "\n\n"
    marker: str = "A:"

    def __post_init__(self) -> None:
        if "{x}" not in self.example or "{y}" not in self.example or "{x}" not in self.query:
            raise ValueError(f"template {self.name!r}: example needs {{x}} and {{y}}, query {{x}}")
        between = self.example.split("{x}", 1)[1].split("{y}", 1)[0]
        if self.marker not in between or not self.query.endswith(self.marker):
            raise ValueError(
                f"template {self.name!r}: the answer marker {self.marker!r} must come between "
                "{x} and {y} in the example and end the query"
            )

    @property
    def answer_prefix(self) -> str:
        """What the template puts between the answer marker and the answer (" " or "")."""
        mid = self.example.split("{x}", 1)[1].split("{y}", 1)[0]
        return mid[mid.rindex(self.marker) + len(self.marker) :]

    def record(self) -> dict[str, str]:
        return asdict(self)


TEMPLATES: dict[str, Template] = {
    # The paper's generic template: no space after the colons.
    "paper": Template("paper", "Q:{x}\nA:{y}", "Q:{x}\nA:"),
    # For tokenizers whose words carry a leading space (GPT-2/Llama-3/SmolLM2 BPE): without the
    # space the answer starts with an unusual token and in-context learning collapses.
    "spaced": Template("spaced", "Q: {x}\nA: {y}", "Q: {x}\nA:"),
}


def get_template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValueError(
            f"unknown template {name!r}; known templates: {', '.join(TEMPLATES)}"
        ) from None


@dataclass
class Prompt:
    """A prompt to encode: text, images in order of their placeholders, and the character offset
    of the token whose hidden state is the task token (None: the last token)."""

    text: str
    images: list[Any] = field(default_factory=list)
    task_char: int | None = None


def _preamble(template: Template, instruction: str | None) -> str:
    """An instruction placed before examples or a query, set off like one more example."""
    return f"{instruction}{template.separator}" if instruction else ""


def render_examples(
    template: Template,
    examples: Sequence[tuple[str, str]],
    query: str | None = None,
    instruction: str | None = None,
) -> Prompt:
    """Examples (x, y) joined by the separator, then optionally a query; an instruction, if
    given, comes first (the ensemble spec's prompt baseline).

    The task token is the delimiter of the last example's answer marker (the authors' choice:
    it sees n-1 complete examples and the n-th input, and is unaffected by what follows).
    Inputs may contain colons or the marker itself: offsets come from the template's parts.
    """
    if not examples:
        raise ValueError("render_examples needs at least one example")
    pre, rest = template.example.split("{x}", 1)
    mid, post = rest.split("{y}", 1)
    marker_in_mid = mid.rindex(template.marker) + len(template.marker) - 1
    text, task_char = _preamble(template, instruction), 0
    for i, (x, y) in enumerate(examples):
        if i:
            text += template.separator
        task_char = len(text) + len(pre) + len(x) + marker_in_mid
        text += pre + x + mid + y + post
    if query is not None:
        text += template.separator + render_query(template, query).text
    return Prompt(text=text, task_char=task_char)


def render_query(template: Template, x: str, instruction: str | None = None) -> Prompt:
    """The bare query (after an optional instruction: the instruction spec's prompt baseline);
    the model answers after it, and the patch goes on its last token."""
    pre, post = template.query.split("{x}", 1)
    return Prompt(text=_preamble(template, instruction) + pre + x + post, task_char=None)


def render_instruction(instruction: str) -> Prompt:
    """An instruction is the raw string; its last token carries the task."""
    return Prompt(text=instruction, task_char=None)
