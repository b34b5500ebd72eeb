"""`vlm-tv-leaderboard`: add submissions, regenerate the leaderboard, check it is up to date.

    vlm-tv-leaderboard add runs/.../results.json --name "My model (A100)" --submitted-by "me"
    vlm-tv-leaderboard reported     # (re)write the paper's reported rows (leaderboard/paper.py)
    vlm-tv-leaderboard build        # README.md, leaderboard.csv, index.html, plots/*.png and,
                                    # with overriding runs, leaderboard_overriding.csv
    vlm-tv-leaderboard check        # what CI runs: valid, consistent, unedited, no (near-)
                                    # duplicates, reported rows as in paper.py, files current

Exit status: 0 on success, 1 when something is invalid or out of date, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from benchmark import validate_file
from benchmark.strict_json import read_json

from . import ROOT, build, paper
from .submissions import SubmissionError, make_submission, write_submission

FIX_STALE = "run `vlm-tv-leaderboard build` and commit the regenerated files"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vlm-tv-leaderboard",
        description="Leaderboard of cross-modal task vectors: submissions in, tables out.",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="the leaderboard folder, holding submissions/ (default: %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add = commands.add_parser("add", help="turn a harness results.json into a submission")
    add.add_argument("results", type=Path, help="a results.json written by vlm-tv-eval")
    add.add_argument("--name", required=True, help='display name, e.g. "Idefics2-8B (A100)"')
    add.add_argument("--submitted-by", required=True, help="who submits it")
    add.add_argument("--date", help="YYYY-MM-DD (default: today, UTC)")
    add.add_argument("--model-card", help="link to the model card")
    add.add_argument("--hardware", help='what it ran on, e.g. "1x A100 80GB"')
    add.add_argument("--notes", help="anything a reader should know")

    commands.add_parser("reported", help="write the paper's reported rows to submissions/")
    commands.add_parser("build", help="regenerate README.md, the CSV files, index.html, plots")
    commands.add_parser("check", help="fail unless submissions are valid and files up to date")
    return parser


# Longest accepted values (the submission schema's maxLength): a name is also a file name.
TEXT_LIMITS = {"name": 80, "submitted_by": 80, "hardware": 200, "model_card": 500, "notes": 2000}


def _add(args: argparse.Namespace) -> int:
    for key, limit in TEXT_LIMITS.items():
        value = getattr(args, key)
        if value is not None and len(value) > limit:
            flag = "--" + key.replace("_", "-")
            print(
                f"vlm-tv-leaderboard add: {flag} is {len(value)} characters long; the limit is "
                f"{limit}: shorten it (long explanations belong in --notes)",
                file=sys.stderr,
            )
            return 2
    errors = validate_file(args.results, "results")
    if errors:
        print(f"{args.results} is not a valid results file:", file=sys.stderr)
        for error in errors:
            print(f"  {error.path}: {error.message}", file=sys.stderr)
        print("add takes a results.json written by vlm-tv-eval.", file=sys.stderr)
        return 1
    results, errors = read_json(args.results)
    if errors:  # changed since validate read it
        print("\n".join(map(str, errors)), file=sys.stderr)
        return 1
    date = args.date or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    data = make_submission(
        results,
        name=args.name,
        submitted_by=args.submitted_by,
        date=date,
        model_card=args.model_card,
        hardware=args.hardware,
        notes=args.notes,
    )
    try:
        path = write_submission(data, args.root / build.SUBMISSIONS)
    except SubmissionError as exc:
        print(f"vlm-tv-leaderboard add: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}; now run `vlm-tv-leaderboard build`")
    return 0


def _reported(args: argparse.Namespace) -> int:
    folder = args.root / build.SUBMISSIONS
    for data in paper.paper_submissions():
        print(f"wrote {write_submission(data, folder, overwrite=True)}")
    return 0


def _print_problems(problems: list[str]) -> None:
    print(f"{len(problems)} problem(s) with the submissions:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def _build(args: argparse.Namespace) -> int:
    submissions, problems = build.load(args.root)
    if problems:
        _print_problems(problems)
        print("nothing was written; fix or remove those files first.", file=sys.stderr)
        return 1
    changed = build.write(args.root, build.render(submissions))
    for relative in changed:
        print(f"wrote {args.root / relative}")
    print(f"{len(submissions)} submissions; {len(changed) or 'no'} file(s) changed")
    return 0


def _check(args: argparse.Namespace) -> int:
    submissions, problems = build.load(args.root)
    if problems:
        _print_problems(problems)
        return 1
    stale = build.stale(args.root, build.render(submissions))
    if stale:
        print("generated files are not up to date with submissions/:", file=sys.stderr)
        for line in stale:
            print(f"  {line}", file=sys.stderr)
        print(f"fix: {FIX_STALE}", file=sys.stderr)
        return 1
    print(
        f"ok: {len(submissions)} submissions valid and consistent, no duplicates, generated "
        "files up to date"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = {"add": _add, "reported": _reported, "build": _build, "check": _check}
    return command[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
