"""`vlm-tv-build`: make the benchmark's Hub datasets, locally, optionally pushing them.

vlm-tv-build text-only   --out DIR                      the six cross-modal configs, no images
vlm-tv-build cross-modal --out DIR --contact EMAIL      the same with Wikipedia images
vlm-tv-build vqa         --out DIR --questions ... --annotations ... --captions ... --coco-dir ...
vlm-tv-build overriding  --out DIR --questions ... --annotations ... --coco-dir ... [OK-VQA ...]

Every subcommand takes --push-to-hub ORG/NAME (prints the commit revision) and --overwrite.
--out must be a new or empty folder or an earlier build of the same kind (`builders.output`);
--overwrite replaces any folder. The build is swapped in only when complete: nothing of the old
folder is left over, and a failed or interrupted build leaves it as it was.

Exit status: 0 built; 1 the build failed (items without images, too few usable items, a write
or network error); 2 usage: bad options, an --out that is a file or a folder the build must not
replace, an input that is missing or unusable (not UTF-8, not JSON or Parquet, wrong keys or
types; the message names the file); 130 interrupted.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark import CROSS_MODAL_TASKS

from . import hub
from .http import ContactMissingError, DiskCache, HttpClient, user_agent
from .output import OutputFolderError, check_out_dir
from .sources import InputError

DEFAULT_RATE = 2.0  # requests per second, serial: well inside Wikimedia's API etiquette
TASKS_HELP = "all (default) or a comma list of cross-modal task ids"


def default_cache_dir() -> Path:
    root = os.environ.get("VLM_TV_EVAL_CACHE", Path.home() / ".cache" / "vlm-tv-eval")
    return Path(root) / "wikipedia"


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


def existing_dir(value: str) -> Path:
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"folder {value} does not exist")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a file, not a folder")
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
        type=positive_int,
        default=4,
        help="annotators who must give the consensus answer (of 10)",
    )


def _counts_line(counts: dict[str, dict[str, int]]) -> str:
    return "; ".join(
        f"{c}: " + ", ".join(f"{s} {n}" for s, n in by.items()) for c, by in counts.items()
    )


def describe_input(spec: str | Sequence[str]) -> str:
    """How inputs are named in a card: Hub URLs whole, local files by name only."""
    if not isinstance(spec, str):
        return ", ".join(describe_input(s) for s in spec)
    return spec if "://" in spec else Path(spec).name


def _push(args: argparse.Namespace) -> None:
    if args.push_to_hub:
        revision = hub.push_to_hub(args.out, args.push_to_hub, private=args.private)
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")
        print(f"revision: {revision}")


def make_client(args: argparse.Namespace) -> HttpClient:
    cache_dir = args.cache_dir or default_cache_dir()
    return HttpClient(
        user_agent(args.contact, args.user_agent),
        cache=DiskCache(cache_dir),
        min_interval=1.0 / args.rate_limit,
        max_retries=args.max_retries,
        timeout=(10.0, args.timeout),
    )


def cmd_text_only(args: argparse.Namespace) -> int:
    from .cross_modal import build_text_only

    report = build_text_only(args.out, args.tasks, overwrite=args.overwrite)
    print(f"wrote {report.out_dir} ({_counts_line(report.counts)})")
    _push(args)
    return 0


def cmd_cross_modal(args: argparse.Namespace) -> int:
    from .cross_modal import build_with_images
    from .wiki import API_URL, WikiImages

    try:
        client = make_client(args)
    except ContactMissingError as exc:
        print(f"vlm-tv-build cross-modal: {exc}", file=sys.stderr)
        return 2
    wiki = WikiImages(client, api_url=args.api_url or API_URL)
    try:
        report = build_with_images(
            args.out, args.tasks, wiki, allow_missing=args.allow_missing, overwrite=args.overwrite
        )
    except KeyboardInterrupt:
        print(
            f"interrupted after {client.requests_made} request(s); what was downloaded is "
            "cached: run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    print(
        f"requests: {report.requests_made} sent, {report.cache_hits} answered from the cache "
        f"({client.cache.root if client.cache else 'no cache'})"
    )
    for item, reason in sorted(report.missing.items()):
        print(f"MISSING {item}: {reason}", file=sys.stderr)
    if not report.written:
        print(
            f"nothing written: {len(report.missing)} item(s) have no image (listed above). "
            "Re-run the same command to retry failed downloads (what was fetched comes from "
            "the cache), or add --allow-missing to build without them (the card lists them).",
            file=sys.stderr,
        )
        return 1
    if report.missing:
        print(f"built without {len(report.missing)} item(s) (--allow-missing)", file=sys.stderr)
    print(f"wrote {report.out_dir} ({_counts_line(report.counts)})")
    _push(args)
    return 0


def cmd_vqa(args: argparse.Namespace) -> int:
    from .sources import CocoImages, load_captions
    from .vqa import build_vqa, load_qas, question_configs

    try:
        questions = question_configs(args.question)
    except ValueError as exc:
        print(f"vlm-tv-build vqa: {exc}", file=sys.stderr)
        return 2
    qas = load_qas(args.questions, args.annotations)
    captions = load_captions(args.captions)
    report = build_vqa(
        args.out,
        qas,
        captions,
        CocoImages(args.coco_dir),
        questions=questions,
        seed=args.seed,
        n_validation=args.n_validation,
        n_test=args.n_test,
        min_votes=args.min_votes,
        min_caption_coverage=args.min_caption_coverage,
        sources={
            "VQAv2 questions": describe_input(args.questions),
            "VQAv2 annotations": describe_input(args.annotations),
            "captions": ", ".join(describe_input(c) for c in args.captions),
        },
        overwrite=args.overwrite,
    )
    for config, skipped in report.skipped.items():
        if skipped:
            print(f"{config}: skipped " + ", ".join(f"{k} {v}" for k, v in skipped.items()))
    print(f"wrote {report.out_dir} ({_counts_line(report.counts)})")
    _push(args)
    return 0


def cmd_overriding(args: argparse.Namespace) -> int:
    from .overriding import build_overriding, factual_count_report, load_aokvqa
    from .sources import CocoImages
    from .vqa import load_qas

    settings = args.settings  # a list: argparse applies parse_settings to the default too
    if "factual" in settings and not (args.okvqa_questions and args.aokvqa):
        print(
            "vlm-tv-build overriding: the factual setting needs --okvqa-questions and --aokvqa "
            "(or leave it out: --settings semantic,syntax,creative)",
            file=sys.stderr,
        )
        return 2
    sources = {
        "VQAv2 questions": describe_input(args.questions),
        "VQAv2 annotations": describe_input(args.annotations),
    }
    okvqa, aokvqa = [], []
    if "factual" in settings:
        okvqa = load_qas(args.okvqa_questions, args.okvqa_annotations)
        aokvqa = load_aokvqa(args.aokvqa)
        sources["OK-VQA questions"] = describe_input(args.okvqa_questions)
        if args.okvqa_annotations:
            sources["OK-VQA annotations"] = describe_input(args.okvqa_annotations)
        sources["A-OKVQA"] = describe_input(args.aokvqa)
    report = build_overriding(
        args.out,
        CocoImages(args.coco_dir),
        settings=settings,
        vqa=load_qas(args.questions, args.annotations),
        okvqa=okvqa,
        aokvqa=aokvqa,
        n_semantic=args.n_semantic,
        n_factual=args.n_factual,
        seed=args.seed,
        min_votes=args.min_votes,
        sources=sources,
        overwrite=args.overwrite,
    )
    if "override_factual" in report.counts:
        line, warning = factual_count_report(sum(report.counts["override_factual"].values()))
        print(line)
        if warning:
            print(warning, file=sys.stderr)
    print(f"wrote {report.out_dir} ({_counts_line(report.counts)})")
    _push(args)
    return 0


def cmd_import_authors(args: argparse.Namespace) -> int:
    from .authors import import_authors

    report = import_authors(
        args.annotations, args.images, args.out, args.tasks, overwrite=args.overwrite
    )
    print(f"wrote {report.out_dir} ({_counts_line(report.counts)})")
    _push(args)
    return 0


COMMANDS = {
    "text-only": cmd_text_only,
    "cross-modal": cmd_cross_modal,
    "vqa": cmd_vqa,
    "overriding": cmd_overriding,
    "import-authors": cmd_import_authors,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    name = f"vlm-tv-build {args.command}"
    try:
        # Refused before any input is read or downloaded; checked again when writing.
        check_out_dir(args.out, args.command, overwrite=args.overwrite)
        return COMMANDS[args.command](args)
    except (OutputFolderError, InputError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"{name}: interrupted; {args.out} holds the last complete build, if any (an "
            "unfinished build is never swapped in)",
            file=sys.stderr,
        )
        return 130
    except (OSError, ValueError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
