"""Prompt templates, and where in a rendered prompt the task token sits.

A template renders examples as `example` strings joined by `separator`, and a query as `query`.
Rendering records the character offset of the delimiter that closes the answer marker (the `:`
of `A:`), so adapters can map it to a token through the tokenizer's offsets: the harness never
counts colons in token ids.

`--template model` writes prompts in the model's own chat format instead, as the paper's
Table 10 does: each example its own user turn and assistant answer, the query a last user turn
followed by the generation prompt. The turn strings come from the tokenizer's chat template
(`derive_chat_turns`); `--template model_one_turn` keeps an older variant, the whole Q:/A:
prompt in a single user turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from .errors import ConfigError


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


# --template values that are not Template names but the model's own chat template: the paper's
# Table 10 format (each example its own turn), and the older whole-prompt-in-one-turn variant.
# An adapter's `chat` holds one of these (or False), so the vector cache and the results file
# tell the two apart.
CHAT_TURNS = "model"
CHAT_ONE_TURN = "model_one_turn"
ChatFormat = Literal["model", "model_one_turn"]
CHAT_FORMATS: tuple[ChatFormat, ...] = (CHAT_TURNS, CHAT_ONE_TURN)


def get_template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ConfigError(
            f"unknown template {name!r}; known templates: {', '.join(TEMPLATES)}, "
            f"{CHAT_TURNS} (the model's chat format, one turn per example), {CHAT_ONE_TURN} "
            "(the whole prompt in one user turn)"
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


# -- the model's own chat format --------------------------------------------------------------

# An instruction (the instruction and ensemble specs' prompt baselines) opens the first user
# turn, set off from the first input by a blank line as in the Q:/A: templates. Not a system
# turn: the paper's chat prompts carry it in the user's message, templates without a system
# role drop or refuse one (Mistral's refuses it), and the system turn is the overriding study's
# `system_prompt` method's.
INSTRUCTION_SEPARATOR = "\n\n"

# Renders a conversation with the chat template: (messages, add_generation_prompt) -> text.
ChatRender = Callable[[list[dict[str, Any]], bool], str]


@dataclass(frozen=True)
class ChatTurns:
    """The strings a chat template writes around messages, found with sentinels.

    A conversation of examples (x, y) then a query q is written
    `preamble user x1 to_assistant y1 assistant_end user x2 ... to_assistant yn assistant_end
    user q generation`; without a query the last answer is followed by `end`.
    """

    preamble: str  # before the first user turn: a system turn or defaults, minus an own BOS
    user: str  # opens a user turn
    to_assistant: str  # closes a user turn and opens the assistant's answer (the marker)
    assistant_end: str  # closes an answer before the next user turn
    generation: str  # closes the last user turn and opens the assistant's turn to answer
    end: str  # what the template writes after the last answer of a conversation

    @property
    def marker_offset(self) -> int:
        """Where in `to_assistant` the task token sits: its last non-space character (the `:`
        of `Assistant:`), the end of the assistant's prefix before the answer."""
        return len(self.to_assistant.rstrip()) - 1

    @property
    def answer_prefix(self) -> str:
        """What an answer follows beyond the generation prompt (Idefics2: `Assistant: ` in a
        past turn, `Assistant:` to generate), for the strict first-token rule."""
        if self.to_assistant.startswith(self.generation):
            return self.to_assistant[len(self.generation) :]
        return ""

    def record(self) -> dict[str, Any]:
        """The results file's `config.template`: the example and query as written."""
        return {
            "name": CHAT_TURNS,
            "example": f"{self.user}{{x}}{self.to_assistant}{{y}}{self.assistant_end}",
            "query": f"{self.user}{{x}}{self.generation}",
            "separator": "",
            "marker": self.to_assistant.rstrip()[-1],
            "chat": {
                "format": CHAT_TURNS,
                "wraps": "each example",
                "before": self.preamble + self.user,  # around a prompt's first user message
                "after": self.generation,  # and its last
                "end": self.end,
                "instruction": f"opens the first user turn, then {INSTRUCTION_SEPARATOR!r}",
            },
        }


# The paper's Table 10 format for Idefics2, as the paper writes it: `User:{x}<end_of_utterance>
# \nAssistant:{y}` per example, no space after either colon (Idefics2's own template writes
# `User: {x}` for text and `User:<image>` for an image, and `Assistant: {y}`).
IDEFICS2_PAPER_TURNS = ChatTurns(
    preamble="",
    user="User:",
    to_assistant="<end_of_utterance>\nAssistant:",
    assistant_end="<end_of_utterance>\n",
    generation="<end_of_utterance>\nAssistant:",
    end="<end_of_utterance>\n",
)


def with_system(turns: ChatTurns, system: str | None) -> ChatTurns:
    """Fixed turns with a system turn first, written like their user turns."""
    if not system:
        return turns
    role = "System:" if turns.user == "User:" else turns.user
    return replace(turns, preamble=f"{turns.preamble}{role}{system}{turns.assistant_end}")


def _sentinel(i: int) -> str:
    # U+2063 is not whitespace, so templates that trim messages keep it.
    return f"\u2063TURN{i}\u2063"


def _render_parts(
    render: ChatRender, n: int, generation: bool, who: str, system: str | None = None
) -> list[str]:
    """The text around n alternating user/assistant sentinel messages (n + 1 parts).

    Content goes as a string first, then as a list of text parts, for templates that read only
    the structured form (Idefics2's processor template iterates content parts)."""
    roles = ("user", "assistant")
    shapes = (lambda s: s, lambda s: [{"type": "text", "text": s}])
    refused: ConfigError | None = None
    for shape in shapes:
        messages = [{"role": "system", "content": shape(system)}] if system else []
        messages += [{"role": roles[i % 2], "content": shape(_sentinel(i))} for i in range(n)]
        try:
            text = render(messages, generation)
        except ConfigError as exc:  # a template that reads content only as parts (SmolVLM's)
            refused = exc
            continue
        if all(text.count(_sentinel(i)) == 1 for i in range(n)):
            break
    else:
        if refused is not None:
            raise refused
        raise ConfigError(
            f"the chat template of {who} drops or repeats messages of a user/assistant "
            "conversation, so examples cannot be written as turns: use --template "
            f"{CHAT_ONE_TURN} or paper"
        )
    parts = []
    for i in range(n):
        before, text = text.split(_sentinel(i))
        parts.append(before)
    return [*parts, text]


def _common_suffix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[len(a) - 1 - n] == b[len(b) - 1 - n]:
        n += 1
    return a[len(a) - n :]


def derive_chat_turns(
    render: ChatRender, who: str, bos: str | None = None, system: str | None = None
) -> ChatTurns:
    """The turn strings of a chat template, checked to be the same wherever a turn falls.

    Renders [user, assistant, user] with the generation prompt (and longer conversations to
    check), splitting on sentinels; `bos`, when given, is removed from the start (pass it when
    the tokenizer adds its own). Fails with a message when the template drops or merges turns,
    writes them differently by position, or drops the system message."""
    start, to_assistant, to_user, generation = _render_parts(render, 3, True, who, system)
    longer = _render_parts(render, 5, True, who, system)
    closed = _render_parts(render, 4, False, who, system)
    if longer != [start, to_assistant, to_user, to_assistant, to_user, generation] or closed[
        :4
    ] != [start, to_assistant, to_user, to_assistant]:
        raise ConfigError(
            f"the chat template of {who} writes a turn differently depending on where it falls "
            f"in the conversation, so examples cannot be written as turns: use --template "
            f"{CHAT_ONE_TURN}"
        )
    if not to_assistant.strip() or not to_user.strip():
        raise ConfigError(
            f"the chat template of {who} merges a user turn with the assistant's (nothing "
            "between them), so there is no answer marker for the task token"
        )
    if not generation.startswith(to_assistant.rstrip()):
        raise ConfigError(
            f"the chat template of {who} has no generation prompt that opens the assistant's "
            f"turn as an answer does ({generation!r} vs {to_assistant!r})"
        )
    if system and system not in start:
        raise ConfigError(f"the chat template of {who} drops the system message")
    if bos and start.startswith(bos):
        start = start[len(bos) :]
    user = _common_suffix(start, to_user)
    return ChatTurns(
        preamble=start[: len(start) - len(user)],
        user=user,
        to_assistant=to_assistant,
        assistant_end=to_user[: len(to_user) - len(user)],
        generation=generation,
        end=closed[4],
    )


def one_turn_parts(
    render: ChatRender, who: str, bos: str | None = None, system: str | None = None
) -> tuple[str, str]:
    """`--template model_one_turn`: the text before and after one user message holding the
    whole prompt (after a system message holding `system`, if given)."""
    before, after = _render_parts(render, 1, True, who, system)
    if system and system not in before:
        raise ConfigError(f"the chat template of {who} drops the system message")
    if bos and before.startswith(bos):
        before = before[len(bos) :]
    return before, after


def _opening(instruction: str | None) -> str:
    return f"{instruction}{INSTRUCTION_SEPARATOR}" if instruction else ""


def render_turns(
    turns: ChatTurns,
    examples: Sequence[tuple[str, str]],
    query: str | None = None,
    instruction: str | None = None,
) -> Prompt:
    """Each example its own user turn and assistant answer, then optionally the query as a last
    user turn and the generation prompt (the paper's Table 10).

    The task token is the marker before the last example's answer, with or without the query
    after it, as in `render_examples` (the authors' vector prompt carries the query too)."""
    if not examples:
        raise ValueError("render_turns needs at least one example")
    text, task_char = turns.preamble + turns.user + _opening(instruction), 0
    for i, (x, y) in enumerate(examples):
        if i:
            text += turns.assistant_end + turns.user
        task_char = len(text) + len(x) + turns.marker_offset
        text += x + turns.to_assistant + y
    if query is None:
        return Prompt(text=text + turns.end, task_char=task_char)
    text += turns.assistant_end + turns.user + query + turns.generation
    return Prompt(text=text, task_char=task_char)


def render_turn_query(turns: ChatTurns, x: str, instruction: str | None = None) -> Prompt:
    """The query as the only user turn, then the generation prompt; its last token is the
    task token (no_context, patch, and an instruction's vector)."""
    text = turns.preamble + turns.user + _opening(instruction) + x + turns.generation
    return Prompt(text=text, task_char=None)
