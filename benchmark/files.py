"""File names, atomic writes, and the cache's place: one slug rule, one way to write output
files, one answer to where computed-once files are kept.

Every output file is written to a temporary name in its own folder and renamed into place, so
an interrupted run (Ctrl-C included) leaves the old file or none, never a half-written one.
Temporary names start with a dot (`.{name}.<random>.tmp`) so uploads and globs skip them.
`atomic_create_text` is the same write for a file that must not replace another: it fails when
the name is taken, even when two processes race for it.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def slug(text: str, default: str = "x") -> str:
    """Lower-case `text` with every run of other characters turned into one `-`.

    `default` is returned when nothing is left (an empty or all-punctuation name).
    """
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or default


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _temporary(target: Path) -> Path:
    """A hidden, random name next to `target` (nothing is created)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`.

    The block may write a file or a directory at the temporary path. A file replaces `path`.
    A directory is renamed onto `path` when `path` does not exist yet; when `path` is already a
    directory, another process finished the same output first, so the new one is discarded and
    `path` kept. When the block raises (KeyboardInterrupt included) the temporary path is
    removed and `path` is left as it was. Parent folders are created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Only a random name is chosen, nothing is created: the block makes a file or a directory.
    tmp = _temporary(target)
    try:
        yield tmp
        if tmp.is_dir() and not tmp.is_symlink():
            if target.is_dir():
                _remove(tmp)  # another process finished the same directory first: keep it
            else:
                try:
                    os.replace(tmp, target)
                except OSError:
                    if not target.is_dir():
                        raise
                    _remove(tmp)  # lost a race with another process: keep its directory
        else:
            os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically (never a half-written file)."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` as UTF-8 to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write `obj` as indented UTF-8 JSON with a final newline, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


# Errors of `os.link` on a file system without hard links (FAT, some network and FUSE mounts).
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS}


def atomic_create_text(path: str | Path, text: str) -> None:
    """Write `text` as UTF-8 to a new file `path`, atomically; FileExistsError when `path`
    exists, and then nothing is written.

    `atomic_write_text` replaces whatever is there, so two processes that each checked that a
    name was free would both write it and the last would silently win. Here the whole file is
    written under a temporary name and hard-linked onto `path`, which the kernel refuses when the
    name is taken: of two racing writers one gets FileExistsError. Where the file system has no
    hard links, the check and the rename are two steps, and only a lock held by every writer
    (as `vlm-tv-leaderboard` holds one) keeps them together.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(target)
    try:
        tmp.write_bytes(text.encode("utf-8"))
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            if os.path.lexists(target):
                raise FileExistsError(errno.EEXIST, "File exists", str(target)) from None
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def cache_root() -> Path:
    """Where the project keeps what it computes once and reuses across runs (converted
    weights, task vectors, judge verdicts, analysis layers, the builders' HTTP responses):
    `$VLM_TV_EVAL_CACHE`, else `$XDG_CACHE_HOME/vlm-tv-eval` (the XDG base-directory rule
    every Linux cache follows), else `~/.cache/vlm-tv-eval`. Everything kept there proves it
    belongs before it is reused (fingerprints, checksums); this only says where. Model
    downloads stay in Hugging Face's own cache (`HF_HOME`), which huggingface_hub manages."""
    own = os.environ.get("VLM_TV_EVAL_CACHE")
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "vlm-tv-eval"
