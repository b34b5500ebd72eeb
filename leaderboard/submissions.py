"""Submission files: made from a harness results file, validated, and checked for duplicates.

A submission is a results file wrapped with who/when/what metadata (schema kind "submission").
They are only ever written by `make_submission` + `write_submission`, so a hand-written file
shows up as a schema error or a file that `add` would not have produced: the submission records
the sha256 of its results (`submission.results_sha256`), and `integrity.py` checks that, the
results against themselves, reported rows against the paper, and near-duplicates.
Files are read strictly (`benchmark.strict_json.loads_checked`: no NaN, no duplicate keys, no
deep nesting, no number that is not finite or has too many digits), and only when they are
regular files of bounded size (`guards.read_leaderboard_file`). A file is written under the folder's
lock and never over another (`write_submission`), so concurrent `add`s lose nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from benchmark import VQA, measurement_config, validate
from benchmark.files import atomic_create_text, atomic_write_text, slug
from benchmark.strict_json import canonical_sha256, loads_checked

from . import labels, reproductions
from .guards import read_leaderboard_file
from .integrity import near_duplicate, submission_problems


class SubmissionError(Exception):
    """A submission that cannot be made or written; the message says what to fix."""


@dataclass(frozen=True)
class Submission:
    """One submission file as loaded: its file name (inside `submissions/`) and content."""

    file: str
    data: dict[str, Any]

    @property
    def meta(self) -> dict[str, Any]:
        return self.data["submission"]

    @property
    def results(self) -> dict[str, Any]:
        return self.data["results"]

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def reported(self) -> bool:
        return bool(self.meta["reported"])

    @property
    def model(self) -> str:
        return self.results["model"]["name"]

    @property
    def spec(self) -> str:
        return self.results["config"]["spec"]

    @property
    def query(self) -> str:
        return query_of(self.results)

    @property
    def reproduces(self) -> str | None:
        """The submission file this one reruns (`add --reproduces`), or None."""
        return reproductions.target_of(self.data)

    @property
    def stem(self) -> str:
        return self.file.removesuffix(".json")

    @property
    def section(self) -> labels.Section:
        """The section of the submission as a whole (its rows may span two task families)."""
        return labels.section_of(self.results)


def query_of(results: dict[str, Any]) -> str:
    """The query modality; results written before `config.query` existed were text-only."""
    return results.get("config", {}).get("query") or "text"


def submission_filename(data: dict[str, Any]) -> str:
    """`<name>_<spec>-to-<query>.json`: one name and setting per file, readable in a listing.

    A variant of the experiment (`labels.Section`) adds `_vqa` (VQA subsets), `_from-<model>`
    (vectors from `--source_model`) and `_chat` (the model's chat template), so that the same
    name's plain run and its variants never take each other's file name. A submission of the
    overriding study is `<name>_overriding-<query>.json`, so that it never takes the file name of
    the same model's instruction-spec accuracy run. A reproduction (`add --reproduces`) adds
    `_repro-` and the start of its results' sha256, so that it never takes the file name of the
    row it reruns, whatever its --name.
    """
    results = data["results"]
    spec = results["config"]["spec"]
    name = slug(data["submission"]["name"], "submission")[:80]
    repro = ""
    if reproductions.target_of(data):
        repro = f"_repro-{data['submission']['results_sha256'][:8]}"
    if any(labels.is_overriding_task(task) for task in results.get("results", {})):
        return f"{name}_overriding-{query_of(results)}{repro}.json"
    section = labels.section_of(results)
    suffix = "_vqa" if section.family == VQA else ""
    source = labels.source_model_of(results)
    suffix += f"_from-{slug(source, 'model')[:60]}" if source else ""
    suffix += "_chat" if section.chat else ""
    return f"{name}_{slug(spec, 'submission')[:80]}-to-{query_of(results)}{suffix}{repro}.json"


def content_key(data: dict[str, Any]) -> str:
    """A hash of what was measured (model, config, per-task results), for duplicate detection."""
    results = data["results"]
    config = measurement_config(results["config"])  # the fields that decide the numbers
    config["query"] = query_of(results)
    model = results["model"]
    payload = {
        "model": [model.get("name"), model.get("revision")],
        "config": config,
        "results": results["results"],
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dumps(data: dict[str, Any]) -> str:
    """The one way a submission is serialised, so files made by `add` look alike."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def make_submission(
    results: dict[str, Any],
    *,
    name: str,
    submitted_by: str,
    date: str,
    model_card: str | None = None,
    hardware: str | None = None,
    notes: str | None = None,
    reproduces: str | None = None,
) -> dict[str, Any]:
    """Wrap a harness results file as a (reproduced, not reported) submission, with the sha256
    of the results (`benchmark.strict_json.canonical_sha256`) so that later edits show;
    `reproduces` is the submission file of the row it reruns (`reproductions.py`)."""
    meta: dict[str, Any] = {"name": name, "submitted_by": submitted_by, "date": date}
    for key, value in (("model_card", model_card), ("hardware", hardware), ("notes", notes)):
        if value:
            meta[key] = value
    if reproduces:
        meta["reproduces"] = reproduces
    meta["reported"] = False
    meta["results_sha256"] = canonical_sha256(results)
    return {"kind": "submission", "submission": meta, "results": results}


def schema_problems(data: Any, file: str) -> list[str]:
    """Schema errors as `file: $.json.path: message` lines."""
    return [f"{file}: {err.path}: {err.message}" for err in validate(data, "submission")]


def read_submission_file(path: Path) -> tuple[Any, list[str]]:
    """The parsed JSON of `path`, or None and its problems as `file: $.path: message` lines.

    Read through `guards.read_leaderboard_file`: a link, FIFO, device or oversized file in
    `submissions/` is named and skipped instead of hanging `check` or exhausting its memory.
    """
    raw, problem = read_leaderboard_file(path)
    if raw is None:
        return None, [f"{path.name}: $: {problem}"]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [f"{path.name}: $: not UTF-8 text ({exc.reason} at byte {exc.start})"]
    data, errors = loads_checked(text)
    return data, [f"{path.name}: {e.path}: {e.message}" for e in errors]


def load_submissions(folder: Path) -> tuple[list[Submission], list[str]]:
    """Every `*.json` in `folder`, sorted by file name, and the problems found.

    A file that is not strictly valid JSON, not a valid submission, or fails the checks of
    `integrity.py` is reported and left out; so is the second of two files holding the same
    measurement (or a near-duplicate of it), unless one reproduces the other
    (`reproductions.related`), and a reproduction whose row is missing or is another
    measurement (`reproductions.load_problems`).
    """
    loaded: list[Submission] = []
    problems: list[str] = []
    for path in sorted(folder.glob("*.json")):
        data, errors = read_submission_file(path)
        if errors:
            problems.extend(errors)
            continue
        found = schema_problems(data, path.name) or submission_problems(data, path.name)
        if found:
            problems.extend(found)
            continue
        why = duplicate_problem(path.name, data, loaded)
        if why:
            problems.append(f"{path.name}: {why}; delete one of the two files")
            continue
        loaded.append(Submission(path.name, data))
    broken = reproductions.load_problems({sub.file: sub.data for sub in loaded})
    problems.extend(broken.values())
    return [sub for sub in loaded if sub.file not in broken], problems


def duplicate_problem(file: str, data: dict[str, Any], others: list[Submission]) -> str | None:
    """Why `data` (in `file`) repeats one of `others`: the same measurement (model, config and
    results), or a near-duplicate of one (`integrity.near_duplicate`); None when it repeats
    none, or only a row it reproduces (or one reproducing it)."""
    key = content_key(data)
    for other in others:
        if other.file == file or reproductions.related(file, data, other.file, other.data):
            continue
        if content_key(other.data) == key:
            return f"duplicate of {other.file} (same model, config and results)"
        why = near_duplicate(data, other.data)
        if why:
            return f"near-duplicate of {other.file}: {why}"
    return None


def replace_problem(target: Path) -> str | None:
    """Why a paper row must not replace `target`, or None (nothing there, or a paper row).

    `reported` rewrites the paper's rows in place, but a file of the same name that is not a
    paper row (`reported: true`) is someone's submission, or something unreadable: it is refused,
    not skipped with a warning, because a warning scrolls by while the leaderboard silently
    lacks a paper row; the caller writes nothing until the file has been moved aside.
    """
    if not os.path.lexists(target):
        return None
    data, errors = read_submission_file(target)
    meta = data.get("submission") if isinstance(data, dict) else None
    if not errors and isinstance(meta, dict) and meta.get("reported") is True:
        return None
    return (
        f"{target} is not a paper row (it does not hold `reported: true`), and a paper row "
        "would replace it; nothing was written: move it aside (or re-add it under another "
        "--name), then rerun `vlm-tv-leaderboard reported`"
    )


def _target_problem(target: Path, replace_reported: bool) -> str | None:
    """Why `target` cannot be written: it exists, unless a paper row may replace it."""
    if replace_reported:
        return replace_problem(target)
    if os.path.lexists(target):
        return _taken(target)
    return None


def _taken(target: Path) -> str:
    return (
        f"{target} already exists; a submission's name and setting must be unique: "
        "pick another --name (nothing was written)"
    )


# How long a writer waits for another one to finish before giving up; a write takes seconds.
LOCK_WAIT_S = 120.0


def lock_path(folder: Path) -> Path:
    """The lock file of a submissions folder: beside it (`<root>/.submissions.lock`), so the
    folder holds only submissions."""
    return folder.with_name(f".{folder.name}.lock")


@contextmanager
def locked(folder: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the submissions folder's lock: a writer checks the folder (name taken, duplicates)
    and writes its file with no other writer in between. Without it, two `add`s of one --name
    both find the name free and the second silently replaces the first. The lock is the
    kernel's (flock, through `filelock`), so a writer that dies releases it."""
    lock = FileLock(lock_path(folder), timeout=wait_s)
    try:
        lock.acquire()
    except Timeout:
        raise SubmissionError(
            f"another vlm-tv-leaderboard command has been writing to {folder} for "
            f"{wait_s:.0f} s ({lock_path(folder)} is held); let it finish, then rerun"
        ) from None
    except OSError as exc:
        raise SubmissionError(
            f"cannot lock {lock_path(folder)}: {exc.strerror or exc}; --root must name a "
            "writable leaderboard folder"
        ) from None
    try:
        yield
    finally:
        lock.release()


def write_submission(data: dict[str, Any], folder: Path, *, replace_reported: bool = False) -> Path:
    """Validate and check `data`, refuse duplicates and near-duplicates of existing submissions,
    and write it to `folder`. An existing file of the same name is never replaced, except a paper
    row by a paper row (`replace_reported`, see `replace_problem`).

    The checks against the folder and the write happen under the folder's lock (`locked`), and
    a new file is created exclusively (`atomic_create_text`): of concurrent writers of one
    name, one writes and the others wait, then are refused; none is lost while told "wrote"."""
    file = submission_filename(data)
    errors = schema_problems(data, file) or submission_problems(data, file)
    if errors:
        raise SubmissionError("not a valid submission:\n  " + "\n  ".join(errors))
    if folder.exists() and not folder.is_dir():
        raise SubmissionError(f"{folder} is a file, not a folder; move it away or pick --root")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SubmissionError(
            f"cannot create {folder}: {exc.strerror or exc}; --root must name a writable "
            "leaderboard folder"
        ) from None
    with locked(folder):
        return _write_locked(data, folder, file, replace_reported)


def _write_locked(data: dict[str, Any], folder: Path, file: str, replace_reported: bool) -> Path:
    """`write_submission`'s checks against the folder and its write, under the lock."""
    target = folder / file
    problem = _target_problem(target, replace_reported)
    if problem:
        raise SubmissionError(problem)
    existing, _ = load_submissions(folder)
    reruns = reproductions.target_of(data)
    if reruns is not None:
        row = next((other for other in existing if other.file == reruns), None)
        why = (
            f"{reruns} is not a valid submission in {folder}"
            if row is None
            else reproductions.mismatch(data, row.data, reruns)
        )
        if why:
            raise SubmissionError(f"--reproduces: {why}; nothing was written")
    key = content_key(data)
    for other in existing:
        if other.file == file or reproductions.related(file, data, other.file, other.data):
            continue
        if content_key(other.data) == key:
            raise SubmissionError(
                f"these results are already submitted as {folder / other.file} "
                "(same model, config and results); a rerun of that row is added with "
                f"--reproduces {other.file}"
            )
        why = near_duplicate(data, other.data)
        if why:
            raise SubmissionError(
                f"{file} would be a near-duplicate of {folder / other.file}: {why}; "
                f"nothing was written (a rerun of that row is added with --reproduces "
                f"{other.file})"
            )
    try:
        if replace_reported:  # a paper row replaces its own file (checked above)
            atomic_write_text(target, dumps(data))
        else:
            atomic_create_text(target, dumps(data))
    except FileExistsError:  # a writer that does not take the lock got there first
        raise SubmissionError(_taken(target)) from None
    except OSError as exc:
        raise SubmissionError(
            f"cannot write {target}: {exc.strerror or exc}; --root must name a writable "
            "leaderboard folder whose submissions/ is a folder"
        ) from None
    return target
