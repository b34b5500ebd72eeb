"""Reading the VQA builders' VQAv2-style inputs, and checking the captions cover them.

`load_qas` joins questions files with annotations files by `question_id` (VQAv2 and OK-VQA
share the layout; train and val files may be given together); every record is checked, so a
file of the wrong shape ends in one `InputError` line naming the file and the record.
`check_caption_coverage` refuses captions that cover too few of the images asked about.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .sources import InputError, json_type, read_json

# Share of candidate images that must have a caption (see check_caption_coverage).
MIN_CAPTION_COVERAGE = 0.8


def normalise_text(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass
class QA:
    """A VQAv2-style question joined with its annotation (answers empty without one)."""

    question_id: int
    image_id: int
    question: str
    answers: list[str] = field(default_factory=list)
    answer_type: str | None = None
    question_type: str | None = None


def _list_field(doc: Any, key: str, source: str) -> list[Any]:
    """The `key` list of a VQAv2-style JSON object; InputError naming what is wrong."""
    expected = f"expected a VQAv2-style JSON object holding the {key!r} list"
    if not isinstance(doc, dict):
        raise InputError(f"{source}: {expected}, found {json_type(doc)}")
    if key not in doc:
        keys = ", ".join(repr(k) for k in list(doc)[:8]) or "none"
        raise InputError(f"{source}: no {key!r} key ({expected}; its keys: {keys})")
    if not isinstance(doc[key], list):
        raise InputError(f"{source}: {key!r} is {json_type(doc[key])}, expected a list")
    return doc[key]


def record_id(record: Any, key: str, where: str) -> int:
    """An integer id field of a record (digits in a string are accepted), else InputError."""
    if not isinstance(record, dict):
        raise InputError(f"{where} is {json_type(record)}, expected an object")
    if key not in record:
        raise InputError(f"{where} has no {key!r}")
    value = record[key]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise InputError(f"{where}: {key!r} is {json_type(value)} {value!r:.40}, expected an integer")


def record_text(record: dict[str, Any], key: str, where: str, *, required: bool = True) -> Any:
    """A string field of a record (None when optional and absent or null), else InputError."""
    value = record.get(key)
    if value is None and not required:
        return None
    if key not in record:
        raise InputError(f"{where} has no {key!r}")
    if not isinstance(value, str):
        raise InputError(f"{where}: {key!r} is {json_type(value)}, expected a string")
    return value


def _answers(ann: dict[str, Any], where: str) -> list[str]:
    if "answers" not in ann:
        raise InputError(f"{where} has no 'answers'")
    answers = ann["answers"]
    if not isinstance(answers, list):
        raise InputError(f"{where}: 'answers' is {json_type(answers)}, expected a list")
    out = []
    for i, answer in enumerate(answers):
        if not isinstance(answer, dict):
            raise InputError(f"{where}: answers[{i}] is {json_type(answer)}, expected an object")
        out.append(record_text(answer, "answer", f"{where}: answers[{i}]"))
    return out


def _specs(value: str | Sequence[str] | None) -> list[str]:
    """One input or several (`--questions` train and val) as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _by_question_id(
    specs: str | Sequence[str] | None, field: str, verb: str
) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(where, question_id, record) for every record of `field` in every file, refusing a
    question_id seen before (in this file or an earlier one) with both places named."""
    seen: dict[int, str] = {}
    for spec in _specs(specs):
        for i, record in enumerate(_list_field(read_json(spec), field, spec)):
            where = f"{spec}: {field}[{i}]"
            qid = record_id(record, "question_id", where)
            if qid in seen:
                raise InputError(f"{where}: question_id {qid} is {verb} twice ({seen[qid]})")
            seen[qid] = where
            yield where, qid, record


def load_qas(
    questions: str | Sequence[str], annotations: str | Sequence[str] | None = None
) -> list[QA]:
    """Join questions files ({"questions": [...]}) with annotations files by question_id.

    Several files of each (VQAv2 train and val) are merged. A question_id given twice, in
    one file or two, is refused (`InputError` naming both places): the same file given twice,
    or files that do not belong together, would otherwise double items or swap answers.
    Files or records of the wrong shape raise `InputError` naming the file and the record.
    """
    notes: dict[int, tuple[list[str], str | None, str | None]] = {}
    for where, qid, ann in _by_question_id(annotations, "annotations", "annotated"):
        notes[qid] = (
            _answers(ann, where),
            record_text(ann, "answer_type", where, required=False),
            record_text(ann, "question_type", where, required=False),
        )
    out = []
    for where, qid, q in _by_question_id(questions, "questions", "asked"):
        answers, answer_type, question_type = notes.get(qid, ([], None, None))
        out.append(
            QA(
                question_id=qid,
                image_id=record_id(q, "image_id", where),
                question=record_text(q, "question", where),
                answers=answers,
                answer_type=answer_type,
                question_type=question_type,
            )
        )
    return out


def check_caption_coverage(
    questions: Mapping[str, str],
    qas: Sequence[QA],
    captions: Mapping[int, str],
    min_coverage: float = MIN_CAPTION_COVERAGE,
) -> float:
    """The share of candidate images (those asked a config's question) that have a caption.

    Below `min_coverage` the captions are refused (`InputError`): LLaVA-ReCap-118K covers
    COCO train2017, which holds about 88% of the val2014 images VQAv2 val asks about, so far
    less means the wrong caption files, or ids mapped to the wrong images, and the selection
    would quietly draw from a small, skewed remainder.
    """
    wanted = {normalise_text(q) for q in questions.values()}
    images = {qa.image_id for qa in qas if normalise_text(qa.question) in wanted}
    if not images:
        return 1.0
    covered = sum(1 for image_id in images if captions.get(image_id))
    share = covered / len(images)
    if share < min_coverage:
        raise InputError(
            f"captions: only {covered} of the {len(images)} COCO images asked the configs' "
            f"questions ({share:.0%}) have a dense caption, under the {min_coverage:.0%} "
            "expected; check that the captions are LLaVA-ReCap-118K (COCO) and that their "
            "ids are the images' COCO ids (or lower --min-caption-coverage)"
        )
    return share
