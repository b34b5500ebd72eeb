"""First-token scoring: the authors' lenient rule and a strict exact first-token rule."""

from __future__ import annotations


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
