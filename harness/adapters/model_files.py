"""Where a checkpoint's files come from, and what goes wrong reading them.

Before any download: a local folder, or a copy in the local Hugging Face cache, is used as is;
an id that is neither, with no Hub to ask (an offline variable set, or one quick request that
gets no answer), is one line with the fix instead of a minute of retries. While loading: the
files are noted first, so an error from files that changed or vanished mid-load says so
(`reading`), and every other read error becomes one `ModelLoadError` line (`load_error`).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import HarnessError, ModelLoadError

# Seconds the one connection check waits for the Hub before a checkpoint that is neither on disk
# nor in the Hugging Face cache is refused (huggingface_hub itself retries for about a minute).
HUB_CHECK_SECONDS = 5.0


class HubUnreachable(OSError):
    """The Hub cannot be asked for a checkpoint that is not on this machine: found before any
    download is tried, so no retries run."""


def _first_sentence(exc: BaseException) -> str:
    text = " ".join(str(exc).split()).split(". ")[0][:200]
    return text or type(exc).__name__


def is_local_folder(path: str) -> bool:
    try:
        return Path(path).expanduser().is_dir()
    except (OSError, ValueError):  # a name over the file system's limit, a NUL byte
        return False


def file_stats(path: Path) -> list[tuple[str, int, int]] | None:
    """(name, size, mtime) of a file, or of every file under a folder, in order; None when the
    path is gone or a file vanished while being listed. What a load compares before and after
    to tell files that changed under it from files that were never loadable."""
    try:
        if path.is_file():
            st = path.stat()
            return [(path.name, st.st_size, st.st_mtime_ns)]
        if not path.is_dir():
            return None
        out = []
        for p in sorted(path.rglob("*")):
            if p.is_file():
                st = p.stat()
                out.append((p.relative_to(path).as_posix(), st.st_size, st.st_mtime_ns))
        return out
    except OSError:
        return None


def local_copy(pretrained: str, revision: str | None = None) -> Path | None:
    """Where a checkpoint's files are on this machine without asking the Hub: the folder
    itself, or its snapshot in the local Hugging Face cache; None when neither."""
    if is_local_folder(pretrained):
        return Path(pretrained).expanduser()
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(pretrained, "config.json", revision=revision)
    except (ValueError, OSError):  # not a valid repo id: transformers says what is wrong with it
        return None
    return Path(found).parent if isinstance(found, str) else None


def _offline_variable() -> str | None:
    """The environment variable that turns on offline mode now, if one does."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return name
    return None


@functools.cache
def _hub_answer(endpoint: str) -> str | None:
    """One HEAD request to the Hub with a short timeout, no retries (its answer, whatever the
    status, means it is reachable); why not, or None. The request runs in a thread so that a
    name lookup that hangs cannot hold the run past the timeout."""
    from huggingface_hub import get_session

    answer: list[str | None] = []

    def ask() -> None:
        try:
            get_session().head(endpoint, timeout=HUB_CHECK_SECONDS)
            answer.append(None)
        except Exception as exc:  # noqa: BLE001 - any failure to connect means unreachable
            answer.append(f"no connection to {endpoint}: {_first_sentence(exc)}")

    thread = threading.Thread(target=ask, name="hub-check", daemon=True)
    thread.start()
    thread.join(HUB_CHECK_SECONDS + 1)
    return answer[0] if answer else f"no answer from {endpoint} in {HUB_CHECK_SECONDS:.0f} s"


def hub_unreachable() -> str | None:
    """Why the Hugging Face Hub cannot be asked now (offline mode, or no connection); None when
    it answers."""
    from huggingface_hub import constants

    variable = _offline_variable()
    if variable or constants.is_offline_mode():
        return f"{variable or 'HF_HUB_OFFLINE'} is set"
    return _hub_answer(constants.ENDPOINT)


def load_error(
    pretrained: str,
    exc: Exception,
    *,
    scheme: str | None = "hf",
    revision: str | None = None,
    vanished: bool = False,
    rebuilt: bool = False,
) -> ModelLoadError:
    """A checkpoint that will not load, in one line with the way out. transformers raises a
    multi-line OSError (offline: after a minute of retries) that says neither which option
    takes a local copy nor that --layer could not be checked before the load.

    `scheme`: the --model prefix that takes a local folder for this adapter (None: only
    --model_args pretrained= does). `vanished`: the files at `pretrained` changed or went while
    they were read (`rebuilt`: a folder the harness makes again on the next run)."""
    reason = _first_sentence(exc)  # its first sentence
    if vanished:
        if not Path(pretrained).exists():  # transformers would say it is no repo id
            reason = "it is gone"
        again = "run again; the folder is made again on the next run" if rebuilt else "run again"
        return ModelLoadError(
            f"the model files in {pretrained} changed or disappeared while loading ({reason}): "
            f"{again}"
        )
    if is_local_folder(pretrained):
        return ModelLoadError(
            f"cannot load the checkpoint folder {pretrained} ({reason}); it needs the files "
            "save_pretrained writes (config.json, tokenizer, weights)"
        )
    folder = "--model_args pretrained=/path/to/folder"
    if scheme:
        folder = f"--model {scheme}:/path/to/folder or {folder}"
    if isinstance(exc, HubUnreachable):
        from huggingface_hub import constants

        pinned = f" --revision {revision}" if revision else ""
        return ModelLoadError(
            f"cannot reach the Hub for {pretrained} ({reason}), and it is neither a folder on "
            f"disk nor in the local Hugging Face cache ({constants.HF_HUB_CACHE}): download it "
            f"first on a machine with network (`hf download {pretrained}{pinned}` fills that "
            "cache, `--local-dir /path/to/folder` a folder; `huggingface-cli download` with an "
            f"older huggingface_hub), or pass a local folder with {folder}"
        )
    offline = any(w in reason.lower() for w in ("connect", "offline", "resolve", "network"))
    problem = f"cannot reach the Hub for {pretrained}" if offline else f"cannot load {pretrained}"
    return ModelLoadError(
        f"{problem} ({reason}); download it on a machine with network and pass the local "
        f"folder with {folder}"
    )


def _vanished(path: Path, before: list[tuple[str, int, int]] | None) -> bool:
    """Whether files that were at `path` before a read are gone or changed (files added, as a
    download adds them to a cache snapshot, are not a change)."""
    now = file_stats(path)
    return before is None or now is None or bool(set(before) - set(now))


@contextmanager
def reading(
    path: Path | None,
    error: Any,
    *,
    kinds: tuple[type[BaseException], ...] = (),
    rebuilt: bool = False,
) -> Iterator[None]:
    """Reading a checkpoint's files at `path` (None: they come from the Hub). Whatever fails
    while those files changed or disappeared is `load_error`'s line saying to run again
    (`rebuilt`: the folder is the harness's own, made again on the next run); an OSError,
    ValueError or safetensors error otherwise (or one of `kinds`) is `error(exc)`, one line.
    A HarnessError passes as it is; anything else is a bug, and keeps its traceback."""
    from safetensors import SafetensorError

    before = file_stats(path) if path is not None else None
    try:
        yield
    except HarnessError:
        raise
    except Exception as exc:
        if path is not None and _vanished(path, before):
            raise load_error(str(path), exc, vanished=True, rebuilt=rebuilt) from None
        if isinstance(exc, (OSError, ValueError, SafetensorError, *kinds)):
            raise error(exc) from None
        raise
