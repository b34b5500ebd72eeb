"""Checks on what a hostile or careless user hands the leaderboard, before anything is parsed or
written: the text of a submission's metadata, its date, the `--root` folder, and the files read.

A submission's name becomes a file name, a table cell, a plot title and a link; characters that
render as nothing or reorder the text around them (bidi overrides, zero-width spaces) would let
two rows look alike, or one look like another, so they are refused rather than shown. A file
read from `submissions/` may be anything a pull request can hold (a link to /dev/zero, a FIFO, a
gigabyte of JSON); it is read through `benchmark.reading` (opened without blocking, checked to
be a regular file, read no further than a bound), with a tighter bound than a run's files and no
symbolic links, so `check` cannot hang, run out of memory, or read outside the folder.
"""

from __future__ import annotations

import datetime
import os
import re
import unicodedata
from pathlib import Path

from benchmark.reading import read_capped

# Longest accepted values (the submission schema's maxLength): a name is also a file name.
TEXT_LIMITS = {"name": 80, "submitted_by": 80, "hardware": 200, "model_card": 500, "notes": 2000}
# Unicode categories refused in any submission text: controls (Cc), format characters (Cf: bidi
# overrides such as U+202E, zero-width U+200B/U+200D, the BOM), surrogates (Cs), private use
# (Co) and the line/paragraph separators (Zl, Zp). None of them is visible as itself.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
# Notes may run over several lines; every other field is one line.
MULTILINE_FIELDS = frozenset({"notes"})
MULTILINE_OK = frozenset("\n\t")
# No submission or results file comes near this (the largest committed one is ~20 kB).
MAX_FILE_BYTES = 20 * 1024 * 1024
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def text_problem(value: str, field: str) -> str | None:
    """Why `value` cannot be the submission's `field`, and the fix, or None: blank, too long, or
    holding a character that is invisible or moves the text around it (`REFUSED_CATEGORIES`)."""
    limit = TEXT_LIMITS.get(field)
    if limit is not None and len(value) > limit:
        return (
            f"is {len(value)} characters long; the limit is {limit}: shorten it (long "
            "explanations belong in --notes)"
        )
    if not value.strip():
        return "is empty or only whitespace: give a visible value, or leave it out if optional"
    allowed = MULTILINE_OK if field in MULTILINE_FIELDS else frozenset()
    for char in value:
        if char not in allowed and unicodedata.category(char) in REFUSED_CATEGORIES:
            name = unicodedata.name(char, "a control character")
            return (
                f"holds U+{ord(char):04X} ({name}), which is invisible or reorders the text: "
                "remove it"
            )
    return None


def today_utc() -> datetime.date:
    """The date in UTC, the time zone `add` writes its default date in."""
    return datetime.datetime.now(datetime.timezone.utc).date()


def date_problem(value: str, today: datetime.date) -> str | None:
    """Why `value` cannot be a submission date, or None. One day past `today` (UTC) is allowed:
    a submitter east of UTC may already be on the next day."""
    if not _DATE.fullmatch(value):
        return f"{value!r} is not a date written YYYY-MM-DD"
    try:
        day = datetime.date.fromisoformat(value)
    except ValueError:
        return f"{value!r} is not a day of the calendar"
    if day > today + datetime.timedelta(days=1):
        return f"{value} is in the future (today is {today} UTC)"
    return None


def root_problem(root: Path, submissions: Path) -> str | None:
    """Why `root` is not a leaderboard folder, or None. A leaderboard holds `submissions/`
    (a README.md alone proves nothing: most folders have one), so a mistyped `--root` is refused
    instead of silently starting an empty leaderboard."""
    if not root.exists():
        return f"--root {root} does not exist"
    if not root.is_dir():
        return f"--root {root} is not a folder"
    if not os.path.lexists(submissions):
        return f"--root {root} holds no submissions/ folder, so it is not a leaderboard"
    return None


def read_leaderboard_file(
    path: Path, *, follow_symlinks: bool = False
) -> tuple[bytes | None, str | None]:
    """The bytes of a file the leaderboard reads, or None and why not (`read_capped` with the
    leaderboard's bound, and links refused unless `follow_symlinks`: a file named on the
    command line may be one, a file inside `submissions/` may not)."""
    return read_capped(path, follow_symlinks=follow_symlinks, limit=MAX_FILE_BYTES)
