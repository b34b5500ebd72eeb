"""The factual overriding set's inputs and rows: OK-VQA and A-OKVQA questions of one image.

`load_aokvqa` checks A-OKVQA records as it reads them (one `InputError` line naming the file
and record); `factual_rows` pairs each COCO image both datasets ask about: the OK-VQA question
in the prompt, a different A-OKVQA question as the override. `coco_image` is shared with the
other overriding settings: a skipped image is counted, never silently dropped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from .images import CorruptImageError
from .sources import CocoImages, InputError, json_type, read_records
from .vqa import MIN_VOTES, consensus, normalise_answer
from .vqa_inputs import QA, normalise_text, record_id, record_text


def coco_image(images: CocoImages, image_id: int, skipped: Counter) -> dict[str, Any] | None:
    """An image row value, or None with the reason counted in `skipped`."""
    try:
        found = images.read(image_id)
    except CorruptImageError:
        skipped["corrupt COCO image"] += 1
        return None
    if found is None:
        skipped["no COCO image file"] += 1
        return None
    return {"bytes": found[0], "path": found[1]}


def load_aokvqa(spec: str) -> list[dict[str, Any]]:
    """A-OKVQA records (a JSON list, JSONL or Parquet), checked: `image_id` (integer),
    `question_id` and `question`; `choices` / `direct_answers` lists of strings and
    `correct_choice_idx` an integer where present. InputError names the file and record."""
    records = []
    for i, record in enumerate(read_records(spec)):
        where = f"{spec}: record {i}"
        record_id(record, "image_id", where)
        if not isinstance(record.get("question_id"), (str, int)):
            if "question_id" not in record:
                raise InputError(f"{where} has no 'question_id'")
            kind = json_type(record["question_id"])
            raise InputError(f"{where}: 'question_id' is {kind}, expected a string or integer")
        record_text(record, "question", where)
        for key in ("choices", "direct_answers"):
            value = record.get(key)
            if value is not None and not (
                isinstance(value, list) and all(isinstance(v, str) for v in value)
            ):
                raise InputError(f"{where}: {key!r} is not a list of strings")
        idx = record.get("correct_choice_idx")
        if idx is not None and (not isinstance(idx, int) or isinstance(idx, bool)):
            raise InputError(
                f"{where}: 'correct_choice_idx' is {json_type(idx)}, expected an integer"
            )
        records.append(record)
    return records


def aokvqa_answer(record: Mapping[str, Any]) -> str | None:
    choices, idx = record.get("choices"), record.get("correct_choice_idx")
    if isinstance(choices, list) and isinstance(idx, int) and 0 <= idx < len(choices):
        return choices[idx]
    direct = [normalise_answer(a) for a in record.get("direct_answers") or [] if a]
    return Counter(direct).most_common(1)[0][0] if direct else None


def factual_rows(
    okvqa: Sequence[QA],
    aokvqa: Sequence[Mapping[str, Any]],
    images: CocoImages,
    *,
    n: int | None = None,
    min_votes: int = MIN_VOTES,
) -> tuple[list[dict[str, Any]], Counter]:
    first_ok: dict[int, QA] = {}
    for qa in sorted(okvqa, key=lambda q: q.question_id):
        first_ok.setdefault(qa.image_id, qa)
    by_image: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for record in sorted(aokvqa, key=lambda r: str(r["question_id"])):
        by_image[record_id(record, "image_id", "an A-OKVQA record")].append(record)
    rows: list[dict[str, Any]] = []
    skipped: Counter = Counter()
    for image_id in sorted(set(first_ok) & set(by_image)):
        if n is not None and len(rows) == n:
            break
        ok = first_ok[image_id]
        other = next(
            (
                r
                for r in by_image[image_id]
                if normalise_text(r["question"]) != normalise_text(ok.question)
            ),
            None,
        )
        if other is None:
            skipped["the same question in both datasets"] += 1
            continue
        image = coco_image(images, image_id, skipped)
        if image is None:
            continue
        rows.append(
            {
                "id": f"factual_{image_id}",
                "setting": "factual",
                "image": image,
                "question": ok.question,
                "override": other["question"],
                "question_answer": consensus(ok.answers, min_votes) if ok.answers else None,
                "override_answer": aokvqa_answer(other),
                "image_id": image_id,
                "source": "okvqa+aokvqa",
            }
        )
    return rows, skipped
