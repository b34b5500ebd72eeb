"""The scoring rules, without torch, in one place: the harness scores a run with them, and
`validate` re-scores the rows a run logged with them, so a row whose flags were edited is
caught."""

from __future__ import annotations

import re

# Methods whose prediction is a whole answer, not a token (the majority baseline reads the
# demos' labels): their strict flag is "the whole label is right", decidable from the row.
WHOLE_ANSWER_METHODS: tuple[str, ...] = ("majority",)


def _norm(text: str, case_insensitive: bool) -> str:
    text = text.strip()
    return text.casefold() if case_insensitive else text


def lenient_match(prediction: str, target: str, case_insensitive: bool = False) -> bool:
    """The authors' rule (after Hendel et al.): strip both; a hit if either is a prefix of the
    other. An empty prediction is a miss (otherwise every target would start with it)."""
    p, t = _norm(prediction, case_insensitive), _norm(target, case_insensitive)
    return bool(p) and bool(t) and (p.startswith(t) or t.startswith(p))


def strict_match(
    prediction: str,
    target_first_token: str,
    case_insensitive: bool = False,
    prediction_id: int | None = None,
    target_id: int | None = None,
) -> bool:
    """The predicted first token is the target's first token: the same token id, or the same
    text once stripped (" Paris" and "Paris" are one word). A token that decodes to U+FFFD is a
    fragment of a character's bytes, not text: it matches by id only, so a byte fragment cannot
    "strictly" match 東京."""
    if prediction_id is not None and prediction_id == target_id:
        return True
    if "\ufffd" in prediction or "\ufffd" in target_first_token:
        return False
    p = _norm(prediction, case_insensitive)
    return bool(p) and p == _norm(target_first_token, case_insensitive)


def whole_answer_match(answer: str, target: str, case_insensitive: bool = False) -> bool:
    """The strict rule for a whole answer (the majority baseline): the label exactly."""
    return answer.casefold() == target.casefold() if case_insensitive else answer == target


# `--score`: the first generated token (the paper's rule, comparable with its numbers), or
# that and the whole greedy answer up to the first newline.
SCORES = ("first_token", "whole_answer")


def _normalised(text: str) -> str:
    """Case, spacing, surrounding punctuation and grammatical number set aside: "Cubs." and
    "cub" are one answer, as are "Swiss Franc" and "Swiss francs"."""
    words = re.findall(r"[^\W_]+(?:[-'][^\W_]+)*", text.casefold())
    return " ".join(w[:-2] if w.endswith("es") and len(w) > 4 else w[:-1] if w.endswith("s")
                    and len(w) > 3 else w for w in words)  # fmt: skip


def whole_answer_scores(
    answer: str, target: str, case_insensitive: bool = False
) -> tuple[bool, bool]:
    """A generated answer (up to its first newline) against the label: (the label exactly,
    stripped; the same once case, spacing, punctuation and number are set aside). A first
    token of one letter that the lenient rule counts ("P" for "Panthera leo") is a miss here,
    and a right answer in several tokens a hit."""
    exact = whole_answer_match(answer.strip(), target.strip(), case_insensitive)
    loose = bool(_normalised(answer)) and _normalised(answer) == _normalised(target)
    return exact, loose


def matches_by_id_only(prediction: str) -> bool:
    """A predicted token with no text to compare (only whitespace, or a byte fragment that
    decodes to U+FFFD) can be a strict hit only through its token id, which a logged row does
    not keep; it is the one way a strict hit is not also a lenient hit."""
    return not prediction.strip() or "\ufffd" in prediction


def strict_is_possible(prediction: str, target: str, case_insensitive: bool = False) -> bool:
    """Whether a row may say `strict: true`. A strict hit by text is the target's first token,
    which the lenient rule accepts, so a strict hit that is a lenient miss must be an id-only
    match (`matches_by_id_only`)."""
    return lenient_match(prediction, target, case_insensitive) or matches_by_id_only(prediction)
