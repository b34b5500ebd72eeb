"""`vlm-tv-build`: make the benchmark's Hub datasets, locally, optionally pushing them.

vlm-tv-build text-only   --out DIR                      the six cross-modal configs, no images
vlm-tv-build cross-modal --out DIR --contact EMAIL      the same with Wikipedia images
vlm-tv-build vqa         --out DIR --questions ... --annotations ... --captions ... --coco-dir ...
vlm-tv-build overriding  --out DIR --questions ... --annotations ... --coco-dir ... [OK-VQA ...]
vlm-tv-build import-authors --out DIR --annotations DIR --images DIR   the paper's own items

Every subcommand takes --push-to-hub ORG/NAME (prints the commit revision) and --overwrite.
--out must be a new or empty folder or an earlier build of the same kind (`builders.output`);
--overwrite replaces any folder. The build is swapped in only when complete: nothing of the old
folder is left over, and a failed or interrupted build leaves it as it was.

Exit status: 0 built; 1 the build failed (items without images, too few usable items, a write
or network error, an hf:// input that cannot be reached); 2 usage: bad options (checked in
`builders.cli_args`), an --out that is a file, cannot be written or is a folder the build must
not replace (a damaged build marker included), an input that is missing or unusable (a
folder or FIFO, not UTF-8, not strict JSON or Parquet, wrong keys or types; the message names
the file); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark.files import cache_root

from . import hub
from .cli_args import DEFAULT_RATE as DEFAULT_RATE
from .cli_args import build_parser
from .http import ContactMissingError, DiskCache, HttpClient, user_agent
from .output import OutputFolderError, check_out_dir
from .sources import InputError


def default_cache_dir() -> Path:
    return cache_root() / "wikipedia"


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
    from .factual import load_aokvqa
    from .overriding import build_overriding, factual_count_report
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
