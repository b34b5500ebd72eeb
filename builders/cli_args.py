"""The `vlm-tv-build` command line: its options and the checks argparse applies to them.

Every value is checked where it is parsed, so a bad one ends in argparse's one-line usage
error (exit 2) before any input is read: counts are whole numbers above 0, shares lie from 0
to 1, `--min-votes` from 1 to VQA_ANSWERS (VQAv2 asks ten annotators per question, so more
votes than that would drop every item), task and setting names are known ones.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from benchmark import CROSS_MODAL_TASKS

DEFAULT_RATE = 2.0  # requests per second, serial: well inside Wikimedia's API etiquette
TASKS_HELP = "all (default) or a comma list of cross-modal task ids"
VQA_ANSWERS = 10  # annotator answers per VQAv2 (and OK-VQA) question: the most --min-votes


def parse_tasks(value: str) -> list[str]:
    if value == "all":
        return list(CROSS_MODAL_TASKS)
    tasks = [t.strip() for t in value.split(",") if t.strip()]
    if not tasks:
        raise argparse.ArgumentTypeError(f"no task given; {TASKS_HELP}")
    unknown = [t for t in tasks if t not in CROSS_MODAL_TASKS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown cross-modal task(s) {', '.join(unknown)}; use {', '.join(CROSS_MODAL_TASKS)}"
        )
    return tasks


def parse_settings(value: str) -> list[str]:
    from .overriding import SETTINGS

    if value == "all":
        return list(SETTINGS)
    settings = list(dict.fromkeys(s.strip() for s in value.split(",") if s.strip()))
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        what = f"unknown setting(s) {', '.join(unknown)}" if unknown else "no setting given"
        raise argparse.ArgumentTypeError(f"{what}; use all or a comma list of {','.join(SETTINGS)}")
    return settings


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(f"must be a number greater than 0, not {value}")
    return number


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None


def positive_int(value: str) -> int:
    number = _int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number greater than 0, not {number}")
    return number


def fraction(value: str) -> float:
    """A share from 0 to 1 (0.8 = 80%)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(number) or not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"must be a share from 0 to 1, not {value}")
    return number


def non_negative_int(value: str) -> int:
    number = _int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {number}")
    return number


def vote_count(value: str) -> int:
    """`--min-votes`: 1 to VQA_ANSWERS, since no question has more answers to agree."""
    number = _int(value)
    if not 1 <= number <= VQA_ANSWERS:
        raise argparse.ArgumentTypeError(
            f"must be from 1 to {VQA_ANSWERS} (VQAv2 has {VQA_ANSWERS} answers per question), "
            f"not {number}"
        )
    return number


def existing_dir(value: str) -> Path:
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"folder {value} does not exist")
    if not path.is_dir():
        what = "a file, not a folder" if path.is_file() else "not a folder"
        raise argparse.ArgumentTypeError(f"{value} is {what}")
    return path


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output dataset folder")
    parser.add_argument("--push-to-hub", metavar="REPO", help="upload to this Hub dataset repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out and everything in it (by default only a new or empty folder, or an "
        "earlier build of the same kind, is built into)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vlm-tv-build",
        description="Build the vlm-tv-eval datasets in the Hub's Parquet layout.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    text = sub.add_parser("text-only", help="cross-modal configs without images (offline)")
    _common(text)
    text.add_argument("--tasks", type=parse_tasks, default=list(CROSS_MODAL_TASKS), help=TASKS_HELP)

    cm = sub.add_parser("cross-modal", help="cross-modal configs with Wikipedia images")
    _common(cm)
    cm.add_argument("--tasks", type=parse_tasks, default=list(CROSS_MODAL_TASKS), help=TASKS_HELP)
    cm.add_argument("--cache-dir", type=Path, default=None, help="download cache (resumable)")
    cm.add_argument("--allow-missing", action="store_true", help="build without failed items")
    cm.add_argument("--contact", help="e-mail or URL for the User-Agent (or VLM_TV_BUILD_CONTACT)")
    cm.add_argument("--user-agent", help="a full User-Agent of your own (must hold a contact)")
    cm.add_argument(
        "--rate-limit", type=positive_float, default=DEFAULT_RATE, help="requests per second"
    )
    cm.add_argument(
        "--max-retries", type=non_negative_int, default=4, help="retries per request (0 or more)"
    )
    cm.add_argument("--timeout", type=positive_float, default=60.0, help="read timeout, seconds")
    cm.add_argument("--api-url", default=None, help="MediaWiki api.php (default: en.wikipedia)")

    vqa = sub.add_parser("vqa", help="VQAv2 subsets with LLaVA-ReCap dense captions")
    _common(vqa)
    _vqa_inputs(vqa)
    vqa.add_argument(
        "--captions",
        action="append",
        required=True,
        metavar="PATH",
        help="LLaVA-ReCap COCO captions: JSON/JSONL/Parquet, globs, hf:// URLs",
    )
    vqa.add_argument(
        "--question",
        action="append",
        default=[],
        metavar="[NAME=]TEXT",
        help="another question to build a config for (repeatable)",
    )
    vqa.add_argument(
        "--min-caption-coverage",
        type=fraction,
        default=0.8,
        metavar="SHARE",
        help="share of candidate images that must have a caption (default 0.8)",
    )
    vqa.add_argument("--n-validation", type=positive_int, default=30, help="rows per config")
    vqa.add_argument("--n-test", type=positive_int, default=100, help="rows per config")

    ov = sub.add_parser("overriding", help="task-overriding sets (semantic/syntax/creative/...)")
    _common(ov)
    _vqa_inputs(ov)
    ov.add_argument(
        "--okvqa-questions",
        action="append",
        help="OpenEnded_mscoco_val2014_questions.json (repeatable: several files are merged)",
    )
    ov.add_argument(
        "--okvqa-annotations",
        action="append",
        help="mscoco_val2014_annotations.json (OK-VQA; repeatable)",
    )
    ov.add_argument("--aokvqa", help="aokvqa_v1p0_val.json (A-OKVQA)")
    ov.add_argument(
        "--settings",
        type=parse_settings,
        default="all",
        help="comma list of semantic,syntax,creative,factual (default all)",
    )
    ov.add_argument("--n-semantic", type=positive_int, default=1000, help="images (pairs)")
    ov.add_argument(
        "--n-factual", type=positive_int, default=None, help="default: every shared image"
    )

    au = sub.add_parser("import-authors", help="the paper authors' items and images, our layout")
    _common(au)
    au.add_argument("--annotations", required=True, type=Path, help="their data/annotations")
    au.add_argument("--images", required=True, type=Path, help="where images.zip was unzipped")
    au.add_argument("--tasks", type=parse_tasks, default=list(CROSS_MODAL_TASKS), help=TASKS_HELP)
    return parser


def _vqa_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--questions",
        action="append",
        required=True,
        metavar="PATH",
        help="VQAv2 questions JSON (local path or hf://datasets/... URL); repeatable: train "
        "and val files are merged, a question id given twice is an error",
    )
    parser.add_argument(
        "--annotations",
        action="append",
        required=True,
        metavar="PATH",
        help="VQAv2 annotations JSON (local path or hf://datasets/... URL); repeatable",
    )
    parser.add_argument(
        "--coco-dir",
        action="append",
        required=True,
        type=existing_dir,
        metavar="DIR",
        help="folder of COCO images (repeatable; searched recursively)",
    )
    parser.add_argument("--seed", type=_int, default=0)
    parser.add_argument(
        "--min-votes",
        type=vote_count,
        default=4,
        help=f"annotators who must give the consensus answer (1 to {VQA_ANSWERS}; default 4)",
    )
