"""VQA subsets: one VQAv2 question asked of many images, its consensus answer, a dense caption.

For each question (`What kind of food is this?`, `What color is the man's shirt?`, `What is the
man holding?`, and any given with `--question`) the builder keeps the VQAv2 items whose
question is exactly that text (case and spacing ignored), shuffles them with a seeded RNG, and
takes, in that order, the first items that have

- a consensus answer: after normalising (lower case, spaces collapsed, a final period dropped)
  the most common of the annotators' answers must be given by at least `min_votes` (default
  4) of them (normally 10) and by more annotators than any other answer; ties and weaker
  agreement are dropped;
- a dense caption (LLaVA-ReCap, COCO) for the image: the text version of the item;
- the COCO image file, readable.

The first `n_validation` (30) go to `validation`, the next `n_test` (100) to `test`. The same
inputs and seed give the same rows. Every skip is counted and printed.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .images import CorruptImageError
from .sources import CocoImages
from .vqa_inputs import MIN_CAPTION_COVERAGE, QA, check_caption_coverage, normalise_text
from .vqa_inputs import load_qas as load_qas

DEFAULT_QUESTIONS = {
    "vqa_food_class": "What kind of food is this?",
    "vqa_shirt_color": "What color is the man's shirt?",
    "vqa_man_holding": "What is the man holding?",
}
MIN_VOTES = 4


def normalise_answer(answer: str) -> str:
    return " ".join(answer.lower().split()).rstrip(" .")


def consensus(answers: Sequence[str], min_votes: int = MIN_VOTES) -> str | None:
    """The answer most annotators gave, if at least `min_votes` gave it and it is unique."""
    counts = Counter(normalise_answer(a) for a in answers if a and a.strip())
    counts.pop("", None)
    if not counts:
        return None
    ranked = counts.most_common(2)
    best, votes = ranked[0]
    if votes < min_votes or (len(ranked) > 1 and ranked[1][1] == votes):
        return None
    return best


def question_configs(extra: Sequence[str] = ()) -> dict[str, str]:
    """The default configs plus `--question` values: "TEXT" or "config_name=TEXT".

    Config names always start with `vqa_` (added when missing), like the paper's three.
    """
    out = dict(DEFAULT_QUESTIONS)
    for value in extra:
        name, sep, text = value.partition("=")
        if sep and re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", name.strip()):
            name, text = name.strip(), text.strip()
        else:
            text = value.strip()
            name = "_".join(re.findall(r"[a-z0-9]+", text.lower()))
        if not name.startswith("vqa_"):
            name = f"vqa_{name}"
        if not text:
            raise ValueError(f"--question {value!r} has no question text")
        out[name] = text
    return out


def features() -> Any:
    from datasets import Features, Image, Sequence, Value

    return Features(
        {
            "id": Value("string"),
            "task": Value("string"),
            "split": Value("string"),
            "question": Value("string"),
            "image": Image(),
            "caption": Value("string"),
            "output": Value("string"),
            "answers": Sequence(Value("string")),
            "image_id": Value("int64"),
            "question_id": Value("int64"),
        }
    )


class NotEnoughItemsError(ValueError):
    pass


def select(
    config: str,
    question: str,
    qas: Sequence[QA],
    captions: Mapping[int, str],
    images: CocoImages,
    *,
    seed: int = 0,
    n_validation: int = 30,
    n_test: int = 100,
    min_votes: int = MIN_VOTES,
) -> tuple[dict[str, list[dict[str, Any]]], Counter]:
    """The rows of one config by split, and why candidates were skipped."""
    wanted = normalise_text(question)
    candidates = sorted(
        (qa for qa in qas if normalise_text(qa.question) == wanted), key=lambda q: q.question_id
    )
    random.Random(f"vlm-tv-eval:{config}:{seed}").shuffle(candidates)
    need = n_validation + n_test
    skipped: Counter = Counter()
    chosen: list[dict[str, Any]] = []
    used_images: set[int] = set()
    bar = tqdm(total=need, desc=config, unit="item", disable=None)
    for qa in candidates:
        if len(chosen) == need:
            break
        answer = consensus(qa.answers, min_votes)
        if answer is None:
            skipped["no consensus answer"] += 1
            continue
        if qa.image_id in used_images:
            skipped["image already used"] += 1
            continue
        caption = captions.get(qa.image_id)
        if not caption:
            skipped["no dense caption"] += 1
            continue
        try:
            found = images.read(qa.image_id)
        except CorruptImageError:
            skipped["corrupt COCO image"] += 1
            continue
        if found is None:
            skipped["no COCO image file"] += 1
            continue
        data, name = found
        used_images.add(qa.image_id)
        chosen.append(
            {
                "id": str(qa.question_id),
                "task": config,
                "question": qa.question,
                "image": {"bytes": data, "path": name},
                "caption": caption,
                "output": answer,
                "answers": list(qa.answers),
                "image_id": qa.image_id,
                "question_id": qa.question_id,
            }
        )
        bar.update()
    bar.close()
    if len(chosen) < need:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) or "none"
        raise NotEnoughItemsError(
            f"{config}: {len(candidates)} VQAv2 item(s) ask {question!r}; only {len(chosen)} "
            f"usable, {need} needed (skipped: {reasons})"
        )
    by_split = {
        "validation": sorted(chosen[:n_validation], key=lambda r: r["question_id"]),
        "test": sorted(chosen[n_validation:], key=lambda r: r["question_id"]),
    }
    for split, rows in by_split.items():
        for row in rows:
            row["split"] = split
    return by_split, skipped


def make_card(
    rows_by_config: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
    questions: Mapping[str, str],
    skipped: Mapping[str, Counter],
    *,
    seed: int,
    min_votes: int,
    sources: Mapping[str, Any],
    caption_coverage: float | None = None,
) -> str:
    from . import card
    from .cross_modal import row_counts
    from .layout import config_splits

    splits = config_splits(rows_by_config)
    counts = row_counts(rows_by_config)
    table = card.configs_table(splits, counts)
    asked = "\n".join(f'- `{c}`: "{questions[c]}"' for c in splits)
    skips = "\n".join(
        f"- `{c}`: " + (", ".join(f"{k} {v}" for k, v in sorted(s.items())) or "none")
        for c, s in skipped.items()
    )
    inputs = "\n".join(f"- {k}: `{v}`" for k, v in sources.items())
    selection = (
        f"Items whose question is exactly the config's question (case and spacing ignored), "
        f"shuffled with `random.Random('vlm-tv-eval:<config>:{seed}')`, taken in that order "
        f"while they have a consensus answer, a dense caption and a readable COCO image, one "
        f"item per image. Consensus: after lower-casing, collapsing spaces and dropping a final "
        f"period, the most common annotator answer, given by at least {min_votes} annotators "
        f"and by more than any other answer; other items are dropped. The first rows taken "
        f"form `validation`, the rest `test`.\n\nSkipped while selecting:\n{skips}"
    )
    if caption_coverage is not None:
        selection += (
            f"\n\nThe dense captions covered {caption_coverage:.1%} of the COCO images asked "
            "the configs' questions (LLaVA-ReCap-118K captions COCO train2017, which holds "
            "most, not all, of val2014)."
        )
    columns = (
        "`id` (the VQAv2 question id, as text), `task`, `split`, `question`, `image` (the COCO "
        "image, original JPEG), `caption` (the image's dense caption from LLaVA-ReCap: the text "
        "version of the item), `output` (consensus answer), `answers` (all annotators' raw "
        "answers), `image_id` (COCO), `question_id` (VQAv2)."
    )
    licences = (
        "VQAv2 questions and answers: CC BY 4.0 (visualqa.org). COCO images: the Flickr terms "
        "of use of each image (COCO annotations are CC BY 4.0); the images are not owned by "
        "the dataset authors. Dense captions: LLaVA-ReCap (lmms-lab), under the terms of its "
        "dataset card. The selection code is part of vlm-tv-eval (Apache-2.0)."
    )
    title = "vlm-tv-eval: VQA subsets (VQAv2 + LLaVA-ReCap captions)"
    sections = [
        ("Configs", table + "\n\n" + asked),
        ("Columns", columns),
        ("Selection", selection),
        ("Inputs", inputs),
        ("Licences", licences),
        (
            "Citation",
            card.citations(
                card.PAPER_BIBTEX, card.VQAV2_BIBTEX, card.COCO_BIBTEX, card.RECAP_BIBTEX
            ),
        ),
    ]
    front = card.front_matter(splits, pretty_name=title, counts=counts, **card.COCO_VQA_LICENCE)
    return card.render(front, title, sections)


@dataclass
class BuildReport:
    """What a VQA or overriding build wrote, and how many candidates it skipped and why."""

    out_dir: Path
    counts: dict[str, dict[str, int]]
    skipped: dict[str, Counter]


def build_vqa(
    out_dir: str | Path,
    qas: Sequence[QA],
    captions: Mapping[int, str],
    images: CocoImages,
    *,
    questions: Mapping[str, str] = DEFAULT_QUESTIONS,
    seed: int = 0,
    n_validation: int = 30,
    n_test: int = 100,
    min_votes: int = MIN_VOTES,
    min_caption_coverage: float = MIN_CAPTION_COVERAGE,
    sources: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> BuildReport:
    """Select every config's rows, check them against `row_vqa`, write Parquet and the card.

    The captions must cover `min_caption_coverage` of the candidate images first
    (`check_caption_coverage`).
    """
    from .cross_modal import check_rows, row_counts
    from .layout import write_configs

    coverage = check_caption_coverage(questions, qas, captions, min_caption_coverage)
    rows_by_config: dict[str, dict[str, list[dict[str, Any]]]] = {}
    skipped: dict[str, Counter] = {}
    for config, question in questions.items():
        rows_by_config[config], skipped[config] = select(
            config,
            question,
            qas,
            captions,
            images,
            seed=seed,
            n_validation=n_validation,
            n_test=n_test,
            min_votes=min_votes,
        )
    check_rows(rows_by_config, "row_vqa")
    text = make_card(
        rows_by_config,
        questions,
        skipped,
        seed=seed,
        min_votes=min_votes,
        sources=sources or {},
        caption_coverage=coverage,
    )
    write_configs(out_dir, rows_by_config, features(), text, kind="vqa", overwrite=overwrite)
    return BuildReport(Path(out_dir), row_counts(rows_by_config), skipped)
