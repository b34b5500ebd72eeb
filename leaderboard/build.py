"""Regeneration: submissions in, the generated files out, as bytes in memory first.

`render` is a pure function of the submissions, so `build` (write the bytes) and `check`
(compare them with what is committed) can never disagree about what is up to date.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.files import atomic_write_bytes

from .csv_out import OVERRIDING_CSV, render_csv, render_overriding_csv
from .html_page import render_html
from .markdown import render_markdown
from .overriding import is_overriding, override_rows
from .plots import render_plots
from .submissions import Submission, load_submissions
from .table import all_rows

SUBMISSIONS = "submissions"
PLOTS = "plots"
# The generated files besides plots/*.png; everything in plots/ is generated too, and so is
# OVERRIDING_CSV once an overriding submission exists.
GENERATED = ("README.md", "leaderboard.csv", "index.html")


def ordered(submissions: list[Submission]) -> list[Submission]:
    """The order submissions are listed and plotted in: the same as the tables' rows, the
    overriding study (its own section, after the accuracy tables) last."""
    return sorted(
        submissions,
        key=lambda s: (
            is_overriding(s),
            s.section.key,
            s.reported,
            s.name.lower(),
            s.file,
        ),
    )


def load(root: Path) -> tuple[list[Submission], list[str]]:
    folder = root / SUBMISSIONS
    if not folder.is_dir():
        return [], [f"{folder}: no submissions folder"]
    submissions, problems = load_submissions(folder)
    return ordered(submissions), problems


def render(submissions: list[Submission]) -> dict[str, bytes]:
    """Every generated file, keyed by its path relative to the leaderboard folder."""
    submissions = ordered(submissions)
    rows = all_rows(submissions)
    overriding = override_rows(submissions)
    files = {
        "README.md": render_markdown(submissions, rows, overriding).encode("utf-8"),
        "leaderboard.csv": render_csv(rows).encode("utf-8"),
        "index.html": render_html(rows, overriding).encode("utf-8"),
    }
    if overriding:
        files[OVERRIDING_CSV] = render_overriding_csv(overriding).encode("utf-8")
    files.update(render_plots(submissions, rows, overriding))
    return files


def _existing_optional(root: Path) -> list[str]:
    """Generated files that only some submissions make: the plots and the overriding CSV."""
    folder = root / PLOTS
    found = sorted(f"{PLOTS}/{p.name}" for p in folder.glob("*.png")) if folder.is_dir() else []
    return found + ([OVERRIDING_CSV] if (root / OVERRIDING_CSV).is_file() else [])


def write(root: Path, files: dict[str, bytes]) -> list[str]:
    """Write the files that changed and delete optional files no submission makes (plots, the
    overriding CSV); return what changed."""
    changed = []
    for relative, content in sorted(files.items()):
        path = root / relative
        if path.is_file() and path.read_bytes() == content:
            continue
        atomic_write_bytes(path, content)
        changed.append(relative)
    for relative in _existing_optional(root):
        if relative not in files:
            (root / relative).unlink()
            changed.append(f"{relative} (removed)")
    return changed


def stale(root: Path, files: dict[str, bytes]) -> list[str]:
    """What differs between `files` and the folder: one line per missing, stale or extra file."""
    out = []
    for relative, content in sorted(files.items()):
        path = root / relative
        if not path.is_file():
            out.append(f"{relative}: missing")
        elif path.read_bytes() != content:
            out.append(f"{relative}: out of date")
    for relative in _existing_optional(root):
        if relative not in files:
            out.append(f"{relative}: made by no submission")
    return out
