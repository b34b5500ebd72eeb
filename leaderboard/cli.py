"""`vlm-tv-leaderboard`: add submissions, regenerate the leaderboard, check it is up to date.

    vlm-tv-leaderboard add runs/.../results.json --name "My model (A100)" --submitted-by "me"
    vlm-tv-leaderboard add ... --allow_partial   # a --limit run or some tasks: shown, not ranked
    vlm-tv-leaderboard add ... --reproduces FILE  # a rerun of a row already on the board
    vlm-tv-leaderboard add ... --init --root my-board   # start a new leaderboard in my-board/
    vlm-tv-leaderboard reported     # (re)write the paper's reported rows (leaderboard/paper.py)
    vlm-tv-leaderboard build        # README.md, leaderboard.csv, index.html, plots/*.png and,
                                    # with overriding runs, leaderboard_overriding.csv
    vlm-tv-leaderboard check        # what CI runs: valid, consistent, unedited, no (near-)
                                    # duplicates, reported rows as in paper.py, files current

`--root` (before or after the command) must be a leaderboard (a folder holding submissions/);
`add --init` and `reported --init` create one. `add` takes only runs that are ranked
(`standing.py`: every task of the setting, full test splits, the protocol's seeds) unless given
`--allow_partial`, and no task outside the benchmark registry. Exit status: 0 on success, 1 when
something is invalid, refused or out of date, 2 on a usage error (a bad flag value or --root).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark import validate_file
from benchmark.flags import HelpFormatter, spellings
from benchmark.strict_json import read_json

from . import ROOT, build, paper, reproductions, standing
from .guards import (
    TEXT_LIMITS,
    date_problem,
    read_leaderboard_file,
    root_problem,
    text_problem,
    today_utc,
)
from .integrity import run_id_problem
from .submissions import (
    SubmissionError,
    load_submissions,
    make_submission,
    replace_problem,
    submission_filename,
    write_submission,
)

INIT_HELP = "create --root and its submissions/ if missing (otherwise --root must be a leaderboard)"
FIX_STALE = "run `vlm-tv-leaderboard build` and commit the regenerated files"


ROOT_HELP = "the leaderboard folder, holding submissions/ (default: %s)"
PARTIAL_HELP = (
    "add a run that would not be ranked (--limit, some of the setting's tasks, other seeds): "
    "it is shown apart from the ranked rows"
)
REPRODUCES_HELP = (
    "this run reruns the row in submissions/FILE (its file name or display name) with the same "
    "model and config: shown beside it as a reproduction, not refused as a duplicate"
)


def _parser() -> argparse.ArgumentParser:
    """The command line. `--root` is accepted before the command and after it: each command
    takes it from a parent parser whose default is left unset, so that a --root given before
    the command is not overwritten by the command's default."""
    parser = argparse.ArgumentParser(
        prog="vlm-tv-leaderboard",
        description="Leaderboard of cross-modal task vectors: submissions in, tables out. "
        "Each flag of two words answers to --flag-name and --flag_name.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--root", type=Path, default=ROOT, help=ROOT_HELP % ROOT)
    rooted = argparse.ArgumentParser(add_help=False)
    rooted.add_argument("--root", type=Path, default=argparse.SUPPRESS, help=ROOT_HELP % ROOT)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    shown = {"parents": [rooted], "formatter_class": HelpFormatter}  # defaults, both spellings
    add = commands.add_parser("add", help="turn a harness results.json into a submission", **shown)
    add.add_argument("results", type=Path, help="a results.json written by vlm-tv-eval")
    add.add_argument("--name", required=True, help='display name, e.g. "Idefics2-8B (A100)"')
    add.add_argument(*spellings("--submitted-by"), required=True, help="who submits it")
    add.add_argument("--date", help="YYYY-MM-DD (default: today, UTC)")
    add.add_argument(*spellings("--model-card"), help="link to the model card")
    add.add_argument("--hardware", help='what it ran on, e.g. "1x A100 80GB"')
    add.add_argument("--notes", help="anything a reader should know")
    add.add_argument("--init", action="store_true", help=INIT_HELP)
    add.add_argument(*spellings("--allow_partial"), action="store_true", help=PARTIAL_HELP)
    add.add_argument("--reproduces", metavar="FILE", help=REPRODUCES_HELP)

    reported = commands.add_parser("reported", help="write the paper's reported rows", **shown)
    reported.add_argument("--init", action="store_true", help=INIT_HELP)
    commands.add_parser(
        "build", help="regenerate README.md, the CSV files, index.html, plots", **shown
    )
    commands.add_parser(
        "check", help="fail unless submissions are valid and files up to date", **shown
    )
    return parser


def _usage_error(command: str, message: str) -> int:
    """One line on stderr, `vlm-tv-leaderboard COMMAND: problem; fix`, and exit status 2."""
    print(f"vlm-tv-leaderboard {command}: {message}", file=sys.stderr)
    return 2


def _metadata_problem(args: argparse.Namespace) -> str | None:
    """The first flag of `add` whose value cannot go on the leaderboard, as `--flag problem;
    fix`; checked before any file is read, so a usage error costs nothing."""
    for key in TEXT_LIMITS:
        value = getattr(args, key)
        flag = "--" + key.replace("_", "-")
        why = text_problem(value, key) if value is not None else None
        if why:
            return f"{flag} {why}"
    if args.date is not None:
        why = date_problem(args.date, today_utc())
        if why:
            return f"--date {why}: give the day the run was submitted, or leave --date out"
    return None


def _open_root(args: argparse.Namespace) -> str | None:
    """Why `--root` cannot be used, or None; with `--init` (add, reported) a missing leaderboard
    is created first. Without it a typo in --root would silently start a new, empty one."""
    folder = args.root / build.SUBMISSIONS
    if getattr(args, "init", False):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create {folder}: {exc.strerror or exc}; pick another --root"
    why = root_problem(args.root, folder)
    if why is None:
        return None
    start = f", or `{args.command} --init` to start a new one there" if "init" in args else ""
    return f"{why}: pass the leaderboard folder (default: {ROOT}){start}"


def _results_problem(path: Path) -> str | None:
    """Why the results file cannot be read at all: a FIFO or device would make the validator
    wait forever, an enormous file exhaust memory. A run folder, or the pending results of an
    overriding run not yet judged, is named as such with its fix."""
    if path.is_dir() and (path / "results.json").is_file():
        return f"{path} is a run folder: give the results file in it, {path / 'results.json'}"
    pending = path.name == "pending_results.json" and path.is_file()
    if pending or (path / "pending_results.json").is_file():
        folder = path.parent if pending else path
        return (
            f"{path} holds the results of an overriding run not judged yet (no number): run "
            f"`vlm-tv-eval judge {folder}` until it writes {folder / 'results.json'}, and add that"
        )
    _, why = read_leaderboard_file(path, follow_symlinks=True)
    return f"{path} {why}; add takes a results.json written by vlm-tv-eval" if why else None


def _custom_task_problem(path: Path, results: dict) -> str | None:
    """Why results holding a task the benchmark registry does not know cannot be added, with
    the fix; checked before the schema would name the first such task in a JSON path."""
    custom = standing.unregistered_tasks(results)
    if custom:
        return (
            f"{path} holds tasks that are not in the benchmark registry ({', '.join(custom)}): "
            "the leaderboard compares the registry's tasks only, so custom-task results stay "
            "with the run; rerun on registry tasks (`vlm-tv-eval --tasks`) to submit"
        )
    return None


def _partial_problem(path: Path, results: dict) -> str | None:
    """Why the run would not be ranked (`standing.partial_reasons`), with the fixes: a full
    rerun, or --allow_partial."""
    reasons = standing.partial_reasons(results)
    if not reasons:
        return None
    seeds = ", ".join(str(s) for s in standing.PROTOCOL_SEEDS)
    return (
        f"{path} would not be ranked ({'; '.join(reasons)}): rerun on every task of its setting "
        f"without --limit and with seeds {seeds} (the defaults), or {standing.FIX}"
    )


def _reproduced_file(args: argparse.Namespace, results: dict) -> tuple[str | None, str | None]:
    """The submission file `--reproduces` names, or None and why it cannot be used."""
    if args.reproduces is None:
        return None, None
    existing, _ = load_submissions(args.root / build.SUBMISSIONS)
    probe = make_submission(results, name=args.name, submitted_by="", date="")
    return reproductions.resolve(args.reproduces, probe, {s.file: s.data for s in existing})


def _add(args: argparse.Namespace) -> int:
    problem = _metadata_problem(args) or _results_problem(args.results) or _open_root(args)
    if problem:
        return _usage_error("add", problem)
    errors = validate_file(args.results, "results")
    if errors:  # one line: the first problem (file: $.json.path: problem) and how many more
        more = f" (and {len(errors) - 1} more: `vlm-tv-eval validate {args.results}`)"
        print(
            f"vlm-tv-leaderboard add: {args.results} is not a valid results file: {errors[0]}"
            f"{more if len(errors) > 1 else ''}; add takes a results.json written by vlm-tv-eval",
            file=sys.stderr,
        )
        return 1
    results, errors = read_json(args.results)
    if errors:  # changed since validate read it
        print("\n".join(map(str, errors)), file=sys.stderr)
        return 1
    refused = _custom_task_problem(args.results, results)
    if not refused and (why := run_id_problem(results)):
        refused = f"{args.results}: $.run_id: {why}"
    if not refused and not args.allow_partial:
        refused = _partial_problem(args.results, results)
    reproduces = None
    if not refused:
        reproduces, refused = _reproduced_file(args, results)
    if refused:
        print(f"vlm-tv-leaderboard add: {refused}", file=sys.stderr)
        return 1
    data = make_submission(
        results,
        name=args.name,
        submitted_by=args.submitted_by,
        date=args.date or today_utc().isoformat(),
        model_card=args.model_card,
        hardware=args.hardware,
        notes=args.notes,
        reproduces=reproduces,
    )
    try:
        path = write_submission(data, args.root / build.SUBMISSIONS)
    except SubmissionError as exc:
        print(f"vlm-tv-leaderboard add: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}; now run `vlm-tv-leaderboard build`")
    return 0


def _reported(args: argparse.Namespace) -> int:
    """Write the paper's rows, all or none: a file of the same name that is not a paper row
    (a user's submission) is never replaced (`submissions.replace_problem`)."""
    problem = _open_root(args)
    if problem:
        return _usage_error("reported", problem)
    folder = args.root / build.SUBMISSIONS
    rows = paper.paper_submissions()
    refused = [why for data in rows if (why := replace_problem(folder / submission_filename(data)))]
    for why in refused:
        print(f"vlm-tv-leaderboard reported: {why}", file=sys.stderr)
    if refused:
        return 1
    try:
        for data in rows:
            print(f"wrote {write_submission(data, folder, replace_reported=True)}")
    except SubmissionError as exc:
        print(f"vlm-tv-leaderboard reported: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_problems(problems: list[str]) -> None:
    print(f"{len(problems)} problem(s) with the submissions:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def _build(args: argparse.Namespace) -> int:
    problem = _open_root(args)
    if problem:
        return _usage_error("build", problem)
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
    problem = _open_root(args)
    if problem:
        return _usage_error("check", problem)
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
