"""A GGUF checkpoint de-quantized once into a transformers folder, and proven on every load.

The conversion takes ~20 s, announced before with a rough duration and after with the real
one; later runs read the folder. The folder holds `fingerprint.json`: the sha256 of the source
GGUF and of every file written. A folder whose files no longer match (an
edited tensor, a changed config, a truncated or empty folder left by a crash) is never used: it
is rebuilt, with a warning naming it. Conversion happens under a file lock, into a temporary
folder renamed into place, so two first runs at once convert once and a kill leaves nothing
half-written behind.

Each folder's fingerprint also names the GGUF it was converted from (`source`, the resolved
path). A GGUF replaced or touched at the same path gets a new folder (its name carries the
file's size and time); identical content is then linked from the old folder instead of
converted again, and once the new folder is proven, the older folders of the same path are
removed (with a line saying how much was freed). Only folders whose fingerprint names this very
path and that hold nothing but the files it lists are removed, each under its own locks: a run
still loading an old folder (`conversion` marks it in use) keeps it, for a later run to remove.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from benchmark.files import atomic_output, write_json_atomic
from benchmark.strict_json import read_json

FINGERPRINT = "fingerprint.json"


class ConversionGone(FileNotFoundError):
    """The converted folder went between its check and its read (deleted by hand, or by
    another process): it is made again on the next run."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _folder_hashes(folder: Path) -> dict[str, str]:
    return {
        p.name: file_sha256(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != FINGERPRINT
    }


def _lock_file(folder: Path) -> Path:
    """Held exclusively while the folder is checked, converted, linked from or removed."""
    return folder.with_name(folder.name + ".lock")


def _use_file(folder: Path) -> Path:
    """Held shared while a run loads the folder's weights: a removal needs it exclusively."""
    return folder.with_name(folder.name + ".use")


def _acquire(path: Path, mode: int, wait: bool = True) -> IO[str] | None:
    """The file at `path` opened and flocked (`fcntl.LOCK_EX` or `LOCK_SH`; closing it lets
    go), or None where `wait` is False and another process holds it. A removed folder's lock
    files are deleted while held, so a lock taken on a file no longer at `path` is taken again
    on the one that is: two processes never both hold "the" lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = path.open("a", encoding="utf-8")
        try:
            fcntl.flock(handle, mode if wait else mode | fcntl.LOCK_NB)
            current = os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
        except BlockingIOError:
            handle.close()
            return None
        except FileNotFoundError:
            current = False
        except BaseException:
            handle.close()
            raise
        if current:
            return handle
        handle.close()


@contextmanager
def _locked(lock_path: Path, mode: int = fcntl.LOCK_EX) -> Iterator[None]:
    handle = _acquire(lock_path, mode)  # a second first run waits for the first one
    assert handle is not None
    with handle:
        yield


def verify(folder: Path, gguf_sha256: str) -> str | None:
    """None when the folder is the conversion of that GGUF, untouched; else what is wrong."""
    if not folder.is_dir():
        return "missing"
    # Read strictly: a damaged or deeply nested file is "not valid", never a crash.
    expected, errors = read_json(folder / FINGERPRINT)
    files = expected.get("files") if isinstance(expected, dict) else None
    if errors or not isinstance(files, dict):
        return "it has no valid fingerprint.json (an old or interrupted conversion)"
    if expected.get("gguf_sha256") != gguf_sha256:
        return "it was converted from another GGUF file"
    if not files or "model.safetensors" not in files:
        return "it holds no weights"
    actual = _folder_hashes(folder)
    changed = sorted(set(files) ^ set(actual) | {n for n in files if actual.get(n) != files[n]})
    if changed:
        return f"its files changed since conversion: {', '.join(changed)}"
    return None


# De-quantizing and writing float32 safetensors runs at about this many MB of GGUF a second on
# a laptop CPU (SmolLM2-135M's 98 MB: 20 s idle, 50 s on a busy two-core machine).
CONVERT_MB_PER_SECOND = 3.0


def conversion_notice(gguf: Path, folder: Path) -> str:
    """The line printed before a conversion: that it happens once, where it is kept, and
    roughly how long it takes (from the file's size), so a silent minute is not a hang."""
    megabytes = gguf.stat().st_size / 1e6
    seconds = max(5, round(megabytes / CONVERT_MB_PER_SECOND, -1))
    return (
        f"converting {gguf.name} ({megabytes:.0f} MB) to float32 weights: once, kept in "
        f"{folder} for later runs; roughly {seconds:.0f} s on a CPU"
    )


def converted(gguf: Path, folder: Path, convert: Callable[[Path], Any]) -> tuple[Path, str]:
    """The verified conversion of `gguf` at `folder` (made with `convert(tmp_folder)` when
    missing or not proven), and a fingerprint of its weights (see `conversion`)."""
    with conversion(gguf, folder, convert) as got:
        return got


@contextmanager
def conversion(
    gguf: Path, folder: Path, convert: Callable[[Path], Any]
) -> Iterator[tuple[Path, str]]:
    """The verified conversion of `gguf` at `folder`, and a fingerprint of its weights, kept in
    use (a shared lock) while the block runs: load the weights inside it.

    A missing or unproven folder is made with `convert(tmp_folder)`, or linked from an older
    folder of the same path holding a conversion of the same content (a touched file). Then
    the older folders of the same path are removed (`_remove_older`)."""
    stat = gguf.stat()
    source = str(gguf.resolve())
    gguf_sha = file_sha256(gguf)
    with _locked(_lock_file(folder)):
        problem = verify(folder, gguf_sha)
        if problem is not None:
            if problem != "missing":
                print(
                    f"warning: the converted model cache {folder} is not usable ({problem}); "
                    "converting the GGUF again (the folder is replaced: nothing to delete)",
                    file=sys.stderr,
                )
                shutil.rmtree(folder, ignore_errors=True)
            for stale in folder.parent.glob(f".{folder.name}.*.tmp"):  # left by a kill
                shutil.rmtree(stale, ignore_errors=True)
            try:
                linked = _link_same_content(gguf, folder, source, gguf_sha)
            except OSError:
                linked = False
            if not linked:
                _convert(gguf, folder, convert, source, gguf_sha)
        fingerprint, _ = read_json(folder / FINGERPRINT)  # verified or written just now
        if not isinstance(fingerprint, dict):  # deleted by hand since: no run removes it
            raise ConversionGone(f"{folder} disappeared right after it was checked")
        if "source" not in fingerprint:  # converted by older code: this path's, proven now
            try:
                write_json_atomic(folder / FINGERPRINT, {**fingerprint, "source": source})
            except OSError:  # a read-only cache: used as it is, never tidied
                pass
        in_use = _acquire(_use_file(folder), fcntl.LOCK_SH)
    assert in_use is not None
    with in_use:
        if _same_file(stat, gguf):  # else the file changed meanwhile: not ours to tidy
            try:
                _remove_older(folder, source)
            except OSError as exc:  # tidying is never worth a failed load
                print(
                    f"warning: older conversions of {source} not removed ({exc})", file=sys.stderr
                )
        yield folder, fingerprint["files"]["model.safetensors"][:16]


def _same_file(before: os.stat_result, gguf: Path) -> bool:
    try:
        after = gguf.stat()
    except OSError:
        return False
    return (before.st_ino, before.st_size, before.st_mtime_ns) == (
        after.st_ino,
        after.st_size,
        after.st_mtime_ns,
    )


def _convert(
    gguf: Path, folder: Path, convert: Callable[[Path], Any], source: str, gguf_sha: str
) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(conversion_notice(gguf, folder), file=sys.stderr, flush=True)
    start = time.perf_counter()
    with atomic_output(folder) as tmp:
        convert(tmp)
        hashes = _folder_hashes(tmp)
        write_json_atomic(
            tmp / FINGERPRINT, {"gguf_sha256": gguf_sha, "source": source, "files": hashes}
        )
    seconds = time.perf_counter() - start
    print(f"converted {gguf.name} in {seconds:.0f} s", file=sys.stderr, flush=True)


def _proven_conversion(folder: Path) -> dict[str, Any] | None:
    """The fingerprint of `folder` where it is provably a conversion made here: a real folder
    (no link) whose valid fingerprint.json names its GGUF's content and source path, holding
    nothing but the plain files the fingerprint lists; else None (never removed)."""
    if folder.is_symlink() or not folder.is_dir():
        return None
    fingerprint, errors = read_json(folder / FINGERPRINT)
    if errors or not isinstance(fingerprint, dict):
        return None
    files, source = fingerprint.get("files"), fingerprint.get("source")
    if not (
        isinstance(files, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
        and isinstance(fingerprint.get("gguf_sha256"), str)
        and isinstance(source, str)
        and source
    ):
        return None
    try:
        entries = list(folder.iterdir())
    except OSError:
        return None
    for entry in entries:
        if entry.name != FINGERPRINT and entry.name not in files:
            return None
        if entry.is_symlink() or not entry.is_file():
            return None
    return fingerprint


def _older(folder: Path, source: str) -> list[Path]:
    """The other folders beside `folder` proven to be conversions of the GGUF at `source`."""
    try:
        siblings = sorted(folder.parent.iterdir())
    except OSError:
        return []
    return [
        other
        for other in siblings
        if other != folder
        and not other.name.startswith(".")  # a conversion's temporary folder
        and (_proven_conversion(other) or {}).get("source") == source
    ]


def _link_same_content(gguf: Path, folder: Path, source: str, gguf_sha: str) -> bool:
    """Make `folder` from an older folder of the same path whose conversion is of this very
    content (the file was touched or copied over with the same bytes): its files hard-linked,
    no conversion, nothing taken from a run using it. False where there is none, or it cannot
    be linked (then the GGUF is converted)."""
    for other in _older(folder, source):
        lock = _acquire(_lock_file(other), fcntl.LOCK_EX, wait=False)
        if lock is None:  # being checked or removed: convert instead
            continue
        with lock:
            fingerprint = _proven_conversion(other)
            if fingerprint is None or fingerprint.get("source") != source:
                continue
            if verify(other, gguf_sha) is not None:  # another content, or damaged
                continue
            try:
                with atomic_output(folder) as tmp:  # the files just verified, linked
                    tmp.mkdir()
                    for entry in other.iterdir():
                        os.link(entry, tmp / entry.name)
            except OSError:
                continue  # a file system without hard links
        print(
            f"{gguf.name} has a new file time but the same content: its conversion in "
            f"{other.name} is reused as {folder.name} (nothing converted)",
            file=sys.stderr,
            flush=True,
        )
        return True
    return False


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _remove_older(folder: Path, source: str) -> None:
    """Remove the older conversions of the GGUF at `source` (`_older`), each only while this
    process holds its lock and its in-use lock, so no run loading or checking it loses it (one
    in use is kept, for a later run to remove); one line says what was removed and freed."""
    removed: list[str] = []
    kept: list[str] = []
    freed = 0
    for other in _older(folder, source):
        lock = _acquire(_lock_file(other), fcntl.LOCK_EX, wait=False)
        if lock is None:
            kept.append(other.name)
            continue
        with lock:
            in_use = _acquire(_use_file(other), fcntl.LOCK_EX, wait=False)
            if in_use is None:
                kept.append(other.name)
                continue
            with in_use:
                fingerprint = _proven_conversion(other)  # again, now that it is ours
                if fingerprint is None or fingerprint.get("source") != source:
                    continue
                size = _folder_bytes(other)
                try:
                    shutil.rmtree(other)
                except OSError as exc:
                    print(
                        f"warning: cannot remove the older conversion {other} ({exc})",
                        file=sys.stderr,
                    )
                    continue
                freed += size
                removed.append(other.name)
                _use_file(other).unlink(missing_ok=True)  # deleted while held: see _acquire
                _lock_file(other).unlink(missing_ok=True)
    if not (removed or kept):
        return
    said = []
    if removed:
        count = f"{len(removed)} older conversion{'s' if len(removed) > 1 else ''}"
        said.append(
            f"removed {count} of {source} from {folder.parent} "
            f"({freed / 1e6:.0f} MB freed): {', '.join(removed)}"
        )
    if kept:
        said.append(f"kept {', '.join(kept)} (in use by another run; a later run removes it)")
    print("; ".join(said), file=sys.stderr, flush=True)
