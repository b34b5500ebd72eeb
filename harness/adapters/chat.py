"""Rendering conversations with a model's own chat template, for `--template model` and
`--template model_one_turn` (the turn strings themselves are derived in `harness.templates`)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..templates import CHAT_FORMATS, CHAT_ONE_TURN, CHAT_TURNS, ChatFormat, ChatRender


def chat_format(chat: bool | str) -> ChatFormat | bool:
    """An adapter's `chat`: a --template chat value or False. The value keys the vector cache,
    so the formats never share a vector."""
    if chat is not False and chat not in CHAT_FORMATS:
        raise ValueError(f"chat must be one of {', '.join(CHAT_FORMATS)} or False, not {chat!r}")
    return chat


def chat_renderer(tokenizer: Any, processor: Any, name: str) -> ChatRender:
    """(messages, add_generation_prompt) -> text through the tokenizer's chat template, or the
    processor's when only it has one (Idefics2 and LLaVA keep theirs on the processor). Template
    errors (roles it refuses, a system role it lacks) become one-line ConfigErrors."""
    template = getattr(tokenizer, "chat_template", None) or getattr(
        processor, "chat_template", None
    )
    if not template:
        raise ConfigError(
            f"model {name!r} has no chat template, so --template {CHAT_TURNS} or "
            f"{CHAT_ONE_TURN} cannot be used; use --template paper or spaced"
        )

    def render(messages: list[dict[str, Any]], generation: bool) -> str:
        try:
            return tokenizer.apply_chat_template(
                messages, chat_template=template, tokenize=False, add_generation_prompt=generation
            )
        except Exception as exc:  # noqa: BLE001 - Jinja's errors, and templates' raise_exception
            roles = "/".join(dict.fromkeys(m["role"] for m in messages))
            raise ConfigError(
                f"the chat template of {name!r} cannot write a {roles} conversation ({exc})"
            ) from None

    return render


def own_bos(tokenizer: Any) -> str | None:
    """The BOS text when the tokenizer adds a BOS itself; a template's own BOS is then removed
    from the prompt text, so the model sees one, not two."""
    bos, bos_id = tokenizer.bos_token, tokenizer.bos_token_id
    ids = tokenizer("a")["input_ids"]
    return bos if bos and bos_id is not None and ids[:1] == [bos_id] else None
