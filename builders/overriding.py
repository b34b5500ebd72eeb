"""Task-overriding sets: an image and a task in the prompt, a conflicting task to patch in.

Each row has the image, `question` (task 1, written in the prompt) and `override` (task 2, the
conflicting task given to the model as an instruction vector). A judge later decides which
task an answer addresses. Four settings, one config each, `test` split only:

- semantic: two different VQAv2 questions asked of the same COCO image. Per image, questions
  with a consensus answer (the VQA rule, `vqa.consensus`) that is not yes/no; the pair must
  differ in question text and in answer. Images are drawn with a seeded RNG until `n` (1000)
  have a pair and a readable image file.
- syntax: the same images; question 1 of the semantic pair plus one formatting instruction
  in the prompt, a different formatting instruction (ALL CAPS / quotes / JSON) as the override.
  The reference answers are the consensus answer rendered in each format: upper-cased, in
  double quotes, or as the JSON object `{"answer": ...}`.
- creative: the same images; two different creative instructions (book title / character name
  / company name). No reference answers.
- factual: COCO images asked questions in both OK-VQA and A-OKVQA: the OK-VQA question (lowest
  question id) in the prompt, the first A-OKVQA question with a different text as the override.
  Answers: the OK-VQA consensus (when its annotations are given) and A-OKVQA's correct choice
  (or the most common direct answer). The paper's factual set has 148 images; the build
  prints its own count and warns when it is more than 25% away from that.

The formatting and creative instructions are the paper's fixed pools, word for word (its
Figure 9).
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .factual import coco_image, factual_rows
from .sources import CocoImages
from .vqa import MIN_VOTES, BuildReport, NotEnoughItemsError, consensus
from .vqa_inputs import QA, normalise_text

SETTINGS = ("semantic", "syntax", "creative", "factual")
# The paper's fixed pools, word for word (Luo, Darrell & Bar, ICML 2025, Figure 9).
FORMATS = {
    "all_caps": "Format your answer in ALL CAPS.",
    "quotes": "Put your answer in quotes.",
    "json": "Answer in JSON format.",
}
CREATIVE = {
    "book_title": "Write a creative book title that matches the image.",
    "character_name": "Invent a name for the main character of the image.",
    "company_name": "Name a company that could use this image in an advertisement.",
}
# The factual set of the paper: COCO images shared by OK-VQA and A-OKVQA.
PAPER_FACTUAL_IMAGES = 148
# A factual build further than this fraction from the paper's count gets a warning.
FACTUAL_TOLERANCE = 0.25


def ordered_pairs(keys: Sequence[str]) -> list[tuple[str, str]]:
    return [(a, b) for a in keys for b in keys if a != b]


def render_format(fmt: str, answer: str) -> str:
    if fmt == "all_caps":
        return answer.upper()
    if fmt == "quotes":
        return f'"{answer}"'
    return json.dumps({"answer": answer})


def features() -> Any:
    from datasets import Features, Image, Value

    return Features(
        {
            "id": Value("string"),
            "setting": Value("string"),
            "image": Image(),
            "question": Value("string"),
            "override": Value("string"),
            "question_answer": Value("string"),
            "override_answer": Value("string"),
            "image_id": Value("int64"),
            "source": Value("string"),
        }
    )


@dataclass
class Pair:
    """One image with its two questions (and their answers, when known)."""

    image_id: int
    image: dict[str, Any]
    question: str
    override: str
    question_answer: str | None
    override_answer: str | None


def semantic_pairs(
    qas: Sequence[QA],
    images: CocoImages,
    *,
    n: int = 1000,
    seed: int = 0,
    min_votes: int = MIN_VOTES,
) -> tuple[list[Pair], Counter]:
    by_image: dict[int, list[tuple[QA, str]]] = defaultdict(list)
    for qa in sorted(qas, key=lambda q: q.question_id):
        if qa.answer_type == "yes/no":
            continue
        answer = consensus(qa.answers, min_votes)
        if answer is not None and answer not in ("yes", "no"):
            by_image[qa.image_id].append((qa, answer))
    rng = random.Random(f"vlm-tv-eval:override_semantic:{seed}")
    order = sorted(by_image)
    rng.shuffle(order)
    pairs: list[Pair] = []
    skipped: Counter = Counter()
    bar = tqdm(total=n, desc="override pairs", unit="image", disable=None)
    for image_id in order:
        if len(pairs) == n:
            break
        options = list(by_image[image_id])
        rng.shuffle(options)
        first = options[0]
        second = next(
            (
                o
                for o in options[1:]
                if normalise_text(o[0].question) != normalise_text(first[0].question)
                and o[1] != first[1]
            ),
            None,
        )
        if second is None:
            skipped["no two different questions with different answers"] += 1
            continue
        image = coco_image(images, image_id, skipped)
        if image is None:
            continue
        pairs.append(
            Pair(image_id, image, first[0].question, second[0].question, first[1], second[1])
        )
        bar.update()
    bar.close()
    return sorted(pairs, key=lambda p: p.image_id), skipped


def semantic_rows(pairs: Sequence[Pair]) -> list[dict[str, Any]]:
    return [
        {
            "id": f"semantic_{p.image_id}",
            "setting": "semantic",
            "image": p.image,
            "question": p.question,
            "override": p.override,
            "question_answer": p.question_answer,
            "override_answer": p.override_answer,
            "image_id": p.image_id,
            "source": "vqav2",
        }
        for p in pairs
    ]


def syntax_rows(pairs: Sequence[Pair], seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(f"vlm-tv-eval:override_syntax:{seed}")
    choices = ordered_pairs(list(FORMATS))
    rows = []
    for p in pairs:
        first, second = rng.choice(choices)
        answer = p.question_answer
        rows.append(
            {
                "id": f"syntax_{p.image_id}",
                "setting": "syntax",
                "image": p.image,
                "question": f"{p.question} {FORMATS[first]}",
                "override": FORMATS[second],
                "question_answer": render_format(first, answer) if answer else None,
                "override_answer": render_format(second, answer) if answer else None,
                "image_id": p.image_id,
                "source": "vqav2",
            }
        )
    return rows


def creative_rows(pairs: Sequence[Pair], seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(f"vlm-tv-eval:override_creative:{seed}")
    choices = ordered_pairs(list(CREATIVE))
    rows = []
    for p in pairs:
        first, second = rng.choice(choices)
        rows.append(
            {
                "id": f"creative_{p.image_id}",
                "setting": "creative",
                "image": p.image,
                "question": CREATIVE[first],
                "override": CREATIVE[second],
                "question_answer": None,
                "override_answer": None,
                "image_id": p.image_id,
                "source": "vqav2",
            }
        )
    return rows


def factual_count_report(n: int) -> tuple[str, str | None]:
    """A line stating the factual set's image count, and a warning when it is far from the
    paper's (more than FACTUAL_TOLERANCE away from PAPER_FACTUAL_IMAGES), else None."""
    paper = PAPER_FACTUAL_IMAGES
    line = f"override_factual: {n} image(s) (the paper's factual set has {paper})"
    if abs(n - paper) <= FACTUAL_TOLERANCE * paper:
        return line, None
    side = "fewer" if n < paper else "more"
    warning = (
        f"warning: override_factual has {n} image(s), far from the paper's {paper} "
        f"({abs(n - paper) / paper:.0%} {side}; more than {FACTUAL_TOLERANCE:.0%} off). Check "
        "that the inputs are the OK-VQA val2014 and A-OKVQA val files and that --n-factual "
        "is not set lower than intended; numbers on this set are not comparable with the "
        "paper's Factual column."
    )
    return line, warning


def make_card(
    rows_by_config: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
    skipped: Mapping[str, Counter],
    *,
    seed: int,
    sources: Mapping[str, Any],
) -> str:
    from . import card
    from .cross_modal import row_counts
    from .layout import config_splits

    splits = config_splits(rows_by_config)
    counts = row_counts(rows_by_config)
    table = card.configs_table(splits, counts)
    skips = "\n".join(
        f"- `{c}`: " + (", ".join(f"{k} {v}" for k, v in sorted(s.items())) or "none")
        for c, s in skipped.items()
    )
    formats = "\n".join(f'  - `{k}`: "{v}"' for k, v in FORMATS.items())
    creative = "\n".join(f'  - `{k}`: "{v}"' for k, v in CREATIVE.items())
    factual = ""
    if "override_factual" in rows_by_config:
        n = sum(len(rows) for rows in rows_by_config["override_factual"].values())
        factual = f"\n\nFactual images: {n} (the paper's factual set: {PAPER_FACTUAL_IMAGES})."
    construction = (
        (__doc__ or "").split("test` split only:", 1)[-1].strip()
        + f"\n\nSeed: {seed}. Formatting instructions (the paper's, word for word):\n"
        f"{formats}\n\nCreative instructions (the paper's, word for word):\n{creative}"
        f"{factual}\n\nSkipped while selecting:\n{skips}"
    )
    columns = (
        "`id`, `setting`, `image` (COCO image, original JPEG), `question` (task 1, in the "
        "prompt), `override` (task 2, the conflicting task to patch in as an instruction "
        "vector), `question_answer` / `override_answer` (reference answers where known, else "
        "null), `image_id` (COCO), `source`. Only a `test` split: these sets are for "
        "evaluation, and the layer comes from the cross-modal validation sweep."
    )
    inputs = "\n".join(f"- {k}: `{v}`" for k, v in sources.items())
    licences = (
        "VQAv2 questions and answers: CC BY 4.0. COCO images: the Flickr terms of use of each "
        "image. OK-VQA and A-OKVQA questions and answers: under the terms of those datasets. "
        "The instructions and the selection code are part of vlm-tv-eval (Apache-2.0)."
    )
    bib = [card.PAPER_BIBTEX, card.VQAV2_BIBTEX, card.COCO_BIBTEX]
    if "override_factual" in rows_by_config:
        bib += [card.OKVQA_BIBTEX, card.AOKVQA_BIBTEX]
    title = "vlm-tv-eval: task-overriding sets"
    sections = [
        ("Configs", table),
        ("Columns", columns),
        ("Construction", construction),
        ("Inputs", inputs),
        ("Licences", licences),
        ("Citation", card.citations(*bib)),
    ]
    front = card.front_matter(splits, pretty_name=title, counts=counts, **card.COCO_VQA_LICENCE)
    return card.render(front, title, sections)


def build_overriding(
    out_dir: str | Path,
    images: CocoImages,
    *,
    settings: Sequence[str] = SETTINGS,
    vqa: Sequence[QA] = (),
    okvqa: Sequence[QA] = (),
    aokvqa: Sequence[Mapping[str, Any]] = (),
    n_semantic: int = 1000,
    n_factual: int | None = None,
    seed: int = 0,
    min_votes: int = MIN_VOTES,
    sources: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> BuildReport:
    """Build the chosen settings, check each row against `row_overriding`, write them."""
    from .cross_modal import check_rows, row_counts
    from .layout import write_configs

    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; use {', '.join(SETTINGS)}")
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    skipped: dict[str, Counter] = {}
    if {"semantic", "syntax", "creative"} & set(settings):
        pairs, skip = semantic_pairs(vqa, images, n=n_semantic, seed=seed, min_votes=min_votes)
        if len(pairs) < n_semantic:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(skip.items())) or "none"
            raise NotEnoughItemsError(
                f"only {len(pairs)} VQAv2 image(s) have two usable questions and an image file; "
                f"{n_semantic} needed (skipped: {reasons})"
            )
        made = {
            "semantic": semantic_rows(pairs),
            "syntax": syntax_rows(pairs, seed),
            "creative": creative_rows(pairs, seed),
        }
        for setting in ("semantic", "syntax", "creative"):
            if setting in settings:
                rows[f"override_{setting}"] = {"test": made[setting]}
                skipped[f"override_{setting}"] = skip
    if "factual" in settings:
        factual, skip = factual_rows(okvqa, aokvqa, images, n=n_factual, min_votes=min_votes)
        if not factual:
            raise ValueError("no COCO image is shared by the OK-VQA and A-OKVQA inputs")
        rows["override_factual"] = {"test": factual}
        skipped["override_factual"] = skip
    check_rows(rows, "row_overriding")
    text = make_card(rows, skipped, seed=seed, sources=sources or {})
    write_configs(out_dir, rows, features(), text, kind="overriding", overwrite=overwrite)
    return BuildReport(Path(out_dir), row_counts(rows), skipped)
