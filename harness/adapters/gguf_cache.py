"""A GGUF checkpoint de-quantized once into a transformers folder, and proven on every load.

The conversion takes ~20 s, announced before with a rough duration and after with the real
one; later runs read the folder. The folder holds `fingerprint.json`: the sha256 of the source
GGUF and of every file written. A folder whose files no longer match (an
edited tensor, a changed config, a truncated or empty folder left by a crash) is never used: it
is rebuilt, with a warning naming it. Conversion happens under a file lock, into a temporary
folder renamed into place, so two first runs at once convert once and a kill leaves nothing
half-written behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmark.files import atomic_output, write_json_atomic
from benchmark.strict_json import read_json

FINGERPRINT = "fingerprint.json"


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


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a second first run waits for the first one
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


def converted(gguf: Path, folder: Path, convert) -> tuple[Path, str]:
    """The verified conversion of `gguf` at `folder` (made with `convert(tmp_folder)` when
    missing or not proven), and a fingerprint of its weights."""
    gguf_sha = file_sha256(gguf)
    with _locked(folder.with_name(folder.name + ".lock")):
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
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            print(conversion_notice(gguf, folder), file=sys.stderr, flush=True)
            start = time.perf_counter()
            with atomic_output(folder) as tmp:
                convert(tmp)
                hashes = _folder_hashes(tmp)
                write_json_atomic(tmp / FINGERPRINT, {"gguf_sha256": gguf_sha, "files": hashes})
            seconds = time.perf_counter() - start
            print(f"converted {gguf.name} in {seconds:.0f} s", file=sys.stderr, flush=True)
        fingerprint, _ = read_json(folder / FINGERPRINT)  # verified or written just now
    return folder, fingerprint["files"]["model.safetensors"][:16]
