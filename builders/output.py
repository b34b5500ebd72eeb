"""Output folders: a build replaces only what an earlier build of the same kind wrote.

Every build writes a small marker, `.vlm-tv-build.json`, into its folder: the kind of build
(`text-only`, `cross-modal`, `vqa`, `overriding`, or the `kind` a library caller names), the
builder's version and the files it wrote. An output folder is accepted when it

- does not exist yet, or is empty;
- holds an earlier build of the same kind (its marker says so) and no file that build did not
  write;
- holds anything at all, with `overwrite` (`--overwrite`): the whole folder is replaced.

Anything else (a file, a folder of other things, a build of another kind) is refused with
`OutputFolderError`, before any work is done; so is, even with `overwrite`, a folder that is or
holds the current folder or the home folder. A folder built before markers existed has none:
rebuild it with `--overwrite`. A marker that is damaged (not strict JSON, a `kind` that is no
name, `files` that is no list of names) is refused with the same fix: it no longer says what
the folder holds.

A build is written into a hidden sibling folder (`.<name>.<random>.build`) and swapped in only
once complete, so the result holds exactly the new build: no file of the old one is left over
(a config the new build does not make is never uploaded by `--push-to-hub`), and a build that
fails or is interrupted (Ctrl-C included) leaves the old folder as it was. Hidden names keep
these folders out of uploads and globs. A build killed outright (SIGKILL, power loss) cannot
clean up after itself, so the hidden folder records its process id (`OWNER`) and the next build
into the same `out` deletes the folders of processes that are gone, and puts back an old build
that was moved aside but never replaced.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmark.strict_json import read_json

MARKER = ".vlm-tv-build.json"
OWNER = ".vlm-tv-build.owner"  # "<host> <pid>" of the process writing a hidden build folder
SHOWN = 3  # unexpected files named in a refusal


class OutputFolderError(ValueError):
    """The output path cannot be used: a file, or a folder this build must not replace."""


def builder_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vlm-tv-eval")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "0"


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of a build folder, or None when there is none.

    A marker that cannot be trusted raises OutputFolderError (`damaged`): it is read strictly
    (`benchmark.strict_json`), since it decides which files a rebuild may delete.
    """
    path = Path(folder) / MARKER
    if not path.exists() and not path.is_symlink():
        return None
    if not path.is_file():
        raise damaged(folder, "it is not a regular file")
    doc, errors = read_json(path)
    if errors:
        first = errors[0]
        raise damaged(
            folder, first.message if first.path == "$" else f"{first.path}: {first.message}"
        )
    problem = marker_problem(doc)
    if problem:
        raise damaged(folder, problem)
    return doc


def marker_problem(doc: Any) -> str | None:
    """What makes a parsed marker unusable, or None: the fields a refusal and a rebuild use."""
    if not isinstance(doc, dict):
        return "it is not a JSON object"
    if not isinstance(doc.get("kind"), str) or not doc["kind"].strip():
        return "its 'kind' is not a build kind (a name such as 'vqa')"
    files = doc.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return "its 'files' is not a list of file names"
    return None


def damaged(folder: str | Path, why: str) -> OutputFolderError:
    return OutputFolderError(
        f"the build marker {MARKER} in {folder} is damaged ({why}), so what the folder holds "
        "is unknown; add --overwrite to replace the folder and everything in it, or delete "
        "the folder"
    )


def files_in(folder: Path) -> list[str]:
    """Every file (and link) below `folder`, as sorted POSIX paths relative to it."""
    out = []
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        names = files + [d for d in dirs if (base / d).is_symlink()]
        out += [(base / name).relative_to(folder).as_posix() for name in names]
    return sorted(out)


def _refusal(out: Path, what: str, fix: str) -> OutputFolderError:
    return OutputFolderError(f"--out {out} {what}; {fix}")


def check_out_dir(out: str | Path, kind: str, *, overwrite: bool = False) -> None:
    """Raise OutputFolderError unless a `kind` build may be written to `out` (module doc)."""
    out = Path(out)
    real = out.resolve()
    if real.exists() and not real.is_dir():
        raise _refusal(out, "is a file, not a folder", "give the path of a folder to build into")
    for parent in real.parents:
        if parent.exists():
            if not parent.is_dir():
                raise _refusal(out, f"cannot be made: {parent} is a file", "give another path")
            if not os.access(parent, os.W_OK | os.X_OK):  # refused before any input is read
                reason = f"no permission to write in {parent}"
                raise _refusal(
                    out, f"cannot be written ({reason})", "give a folder you can write to"
                )
            break
    if real.is_dir():  # the build replaces the folder whole: never one a shell may be in
        for precious, what in ((Path.cwd(), "the current folder"), (Path.home(), "your home")):
            if real == precious.resolve() or real in precious.resolve().parents:
                raise _refusal(
                    out,
                    f"is or holds {what}, and a build replaces its whole output folder",
                    "give another folder, or run the build from outside it",
                )
    if overwrite or not real.is_dir() or not any(real.iterdir()):
        return
    replace = "add --overwrite to replace the folder and everything in it"
    marker = read_marker(out)
    if marker is None:
        raise _refusal(
            out,
            f"is not empty and is not an earlier vlm-tv-build {kind} build (it has no {MARKER})",
            f"give a new or empty folder, or {replace}",
        )
    if marker["kind"] != kind:
        raise _refusal(
            out,
            f"holds a vlm-tv-build {marker['kind']} build, not a {kind} build",
            f"give another folder, or {replace}",
        )
    written = set(marker.get("files") or []) | {MARKER}
    extra = [name for name in files_in(real) if name not in written]
    if extra:
        shown = ", ".join(extra[:SHOWN]) + (
            f" and {len(extra) - SHOWN} more" if extra[SHOWN:] else ""
        )
        raise _refusal(
            out,
            f"holds an earlier {kind} build and {len(extra)} file(s) it did not write ({shown}), "
            "which a rebuild would delete",
            f"move them out, or {replace}",
        )


def write_marker(folder: Path, kind: str) -> None:
    doc = {
        "builder": "vlm-tv-build",
        "kind": kind,
        "version": builder_version(),
        "files": [name for name in files_in(folder) if name != MARKER],
    }
    (folder / MARKER).write_text(json.dumps(doc, indent=2) + "\n", "utf-8")


def _swap_in(new: Path, target: Path, token: str) -> None:
    """Put the folder `new` at `target`, the old `target` (if any) deleted afterwards."""
    if not target.exists() and not target.is_symlink():
        os.rename(new, target)
        return
    old = target.with_name(f".{target.name}.{token}.old")
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _owner_alive(folder: Path) -> bool:
    """Whether the process that made `folder` may still be writing it (unknown counts as yes)."""
    try:
        host, pid = (folder / OWNER).read_text("utf-8").split()
        pid_number = int(pid)
    except (OSError, ValueError):
        return False  # no owner file: made before owners were recorded, or never finished
    if host != os.uname().nodename:
        return True  # another machine on a shared disk: not ours to judge
    try:
        os.kill(pid_number, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(real: Path) -> list[Path]:
    """Delete hidden build folders beside `real` left by killed builds; return what was removed.

    A `.old` folder whose build never got swapped in is the previous build itself: it goes back
    to `real` when `real` is missing, and is deleted otherwise.
    """
    removed = []
    for path in sorted(real.parent.glob(f".{real.name}.*.build")):
        if path.is_dir() and not path.is_symlink() and not _owner_alive(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    for path in sorted(real.parent.glob(f".{real.name}.*.old")):
        if not path.is_dir() or path.is_symlink():
            continue
        if not real.exists() and not real.is_symlink():
            os.rename(path, real)
        else:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _make_hidden(out: Path, real: Path, token: str) -> Path:
    """The hidden build folder beside `real`, with its OWNER file; a failure names `out`.

    The hidden name is an implementation detail: a user who gave an unwritable `--out`
    (`/proc/x`, a read-only disk) is told about the path they gave.
    """
    tmp = real.with_name(f".{real.name}.{token}.build")
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        (tmp / OWNER).write_text(f"{os.uname().nodename} {os.getpid()}\n", "utf-8")
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = exc.strerror or str(exc)
        fix = "give a folder you can write to"
        raise _refusal(out, f"cannot be written ({reason})", fix) from None
    return tmp


def _naming_out(exc: OSError, tmp: Path, out: Path) -> OSError:
    """`exc` with a path inside the hidden folder `tmp` shown as the same path in `out`."""
    hidden = str(tmp)
    if not str(exc.filename or "").startswith(hidden):
        return exc
    shown = str(out) + str(exc.filename)[len(hidden) :]
    return OSError(f"cannot write {shown} (--out {out}): {exc.strerror or exc}")


@contextmanager
def build_folder(out: str | Path, kind: str, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty hidden folder beside `out` to write a `kind` build into.

    When the block ends normally the marker is added and the folder replaces `out`; when it
    raises (KeyboardInterrupt included) the folder is deleted and `out` is left as it was.
    `check_out_dir` is applied first. Errors name `out`, not the hidden folder.
    """
    out = Path(out)
    real = out.resolve()
    if real.parent.is_dir():
        clean_stale(real)
    check_out_dir(out, kind, overwrite=overwrite)
    token = secrets.token_hex(8)
    tmp = _make_hidden(out, real, token)
    try:
        yield tmp
        (tmp / OWNER).unlink()
        write_marker(tmp, kind)
        _swap_in(tmp, real, token)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _naming_out(exc, tmp, out) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
