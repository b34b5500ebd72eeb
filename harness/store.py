"""The run folder: its id, the resumable units, and the files a finished run leaves.

`<output_path>/<model>/<spec>-<hash>/` where the hash covers the measurement config and every
item, so the same command finds the same folder and an edited task file gets a new one. Each
unit of work (a validation sweep, one method on one task for one seed) is written atomically to
`parts/` when done; a rerun reads it back instead of computing it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, TypeVar

from benchmark.files import atomic_write_text, slug, write_json_atomic
from benchmark.reading import read_bytes, read_text
from benchmark.strict_json import loads_checked

from .config import RunConfig
from .errors import ConfigError, RunFolderError
from .items import TaskData, record_digest, sha256
from .progress import say

T = TypeVar("T")
OTHER_WEIGHTS = "computed with other weights (the model file changed at the same path)"


def layer_from_digest(path: str) -> str:
    """The sha256 of a `--layer_from` file's bytes: the layer it names changes every patched
    number, so another file at the same path is another run."""
    try:
        return hashlib.sha256(read_bytes(path)).hexdigest()
    except OSError as exc:
        raise ConfigError(f"--layer_from {path}: {exc}; give a results.json file") from None


def run_id(
    config: RunConfig, data: Mapping[str, TaskData], layer_from_sha256: str | None = None
) -> str:
    """`<spec>-<12 hex>`: the items themselves are part of the identity, and so is the content
    of a `--layer_from` file (its path alone says nothing of the layer in it; its digest is
    read here unless given)."""
    items = {
        t: {s: [record_digest(r) for r in rs] for s, rs in d.splits.items()}
        for t, d in data.items()
    }
    identity = config.identity()
    if config.layer_from:
        identity["layer_from_sha256"] = layer_from_sha256 or layer_from_digest(config.layer_from)
    return f"{config.spec}-{sha256([identity, items])[:12]}"


@functools.cache
def code_version() -> str:
    """A fingerprint of the code that computes numbers (harness/ and benchmark/ sources, the
    shipped pools and schemas): a unit written by other code is not reused."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for package in ("harness", "benchmark"):
        for path in sorted((root / package).rglob("*")):
            if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _checksum(data: Any) -> str:
    return sha256(json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=True))


def _warn(message: str) -> None:
    say(f"warning: {message}")  # above a running progress bar, not through it


def check_output_path(path: str) -> None:
    """Refuse an --output_path that cannot become a folder, before the run: as root
    `os.access` says yes to everything, so names too long for the file system and a file in
    the way are checked by hand (a path under /proc is caught when the folder is made)."""
    out = Path(path)
    for name in out.parts:
        size = len(os.fsencode(name))
        if size > 255:
            raise ConfigError(
                f"--output_path: the name {name[:40]}... is {size} bytes long; a file system "
                "allows 255: give a shorter path"
            )
    try:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--output_path {out} is a file; give a folder")
        existing = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    except OSError as exc:
        raise ConfigError(f"--output_path {out} cannot be used ({exc.strerror or exc})") from None
    if not existing.is_dir():
        raise ConfigError(f"--output_path {out}: {existing} is a file, not a folder; give a folder")
    if not os.access(existing, os.W_OK):
        raise ConfigError(f"--output_path {out}: {existing} is not writable")


def _read_checked(path: Path) -> tuple[Any, str | None]:
    """A JSON file parsed strictly (deep nesting and duplicate keys refused, never a crash),
    or None and why not."""
    try:
        obj, errors = loads_checked(read_text(path))
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable ({exc})"
    return obj, (f"unreadable ({errors[0].path}: {errors[0].message})" if errors else None)


def _clear_non_file(path: Path) -> None:
    """Something other than a file where a unit or state file belongs (a folder, a link to
    nothing): the harness never makes one, and the atomic write would fail on it, so it is
    stale: removed, with a warning, and the file computed again."""
    if path.is_file() or not (path.exists() or path.is_symlink()):
        return
    _warn(f"{path} is not a file; it is treated as stale and replaced (nothing to delete)")
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        raise RunFolderError(f"{path} is in the way and cannot be removed ({exc})") from None


def _rank() -> str:
    """This process's rank under `accelerate launch` (or torchrun); "0" when it runs alone."""
    return os.environ.get("RANK", "0") if int(os.environ.get("WORLD_SIZE", "1")) > 1 else "0"


def _is_main_process() -> bool:
    return _rank() == "0"


def _lock_name() -> str:
    """Each process of an `accelerate launch` locks its own rank: the ranks of one launch share
    the folder, and a second launch's rank N meets the first one's."""
    rank = _rank()
    return ".lock" if rank == "0" else f".lock-rank{rank}"


@contextmanager
def folder_lock(folder: Path, name: str = ".lock") -> Iterator[None]:
    """An exclusive lock on a run folder (`judge` takes the run's own lock too: judging while
    the run still generates would score half its answers). The OS drops a flock when its
    process dies, so a killed run never blocks the resume; the pid inside is for messages."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = (folder / name).open("a+", encoding="utf-8")
    except OSError as exc:
        raise RunFolderError(
            f"cannot make the run folder {folder} ({exc.strerror or exc}); give "
            "--output_path a folder this user can write to"
        ) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            raise RunFolderError(
                f"another vlm-tv-eval is running in {folder} (pid {pid}); wait for it or "
                "use another --output_path"
            ) from None
        except OSError as exc:  # a file system without locks: run unguarded
            _warn(f"cannot lock {folder} ({exc}); do not start the same run twice")
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def unit_kind(name: str) -> str:
    """The kind a unit's time is counted under: the part of its last path component before the
    first '-' (`country_capital/patch-s0-L22` -> `patch`)."""
    return name.split("/")[-1].split("-")[0]


UNIT_KEYS = ("unit", "run_id", "code", "items", "weights", "checksum", "data")


def unit_file_problem(path: Path, parts: Path) -> str | None:
    """Why the unit file at `path` (under the run's `parts`) is damaged, judged by what it
    records about itself: the unit its path names, content matching its checksum, item ids
    that hash to the items it records. Whether a run would reuse it (same run id, code
    version and items) is `RunStore.unit`'s question: a unit of older code is stale, not
    damaged. For `vlm-tv-eval validate RUN_DIR`."""
    stored, problem = _read_checked(path)
    if problem:
        return problem
    if not isinstance(stored, dict) or not set(UNIT_KEYS) <= set(stored):
        return f"not a unit this harness wrote (a unit records {', '.join(UNIT_KEYS)})"
    name = path.relative_to(parts).with_suffix("").as_posix()
    if stored["unit"] != name:
        return f"records unit {stored['unit']!r}, but its path names {name!r} (moved?)"
    data = stored["data"]
    if stored["checksum"] != _checksum(data):
        return "its content does not match the checksum it was written with (edited?)"
    if isinstance(data, dict) and "doc_ids" in data and sha256(data["doc_ids"]) != stored["items"]:
        return "its item ids are not the items it records (edited?)"
    return None


class RunStore:
    def __init__(self, config: RunConfig, data: Mapping[str, TaskData]):
        # The --layer_from file's digest, as the run id took it: the run checks the file it
        # reads again against it (`evaluator`), so a file replaced meanwhile is not used.
        self.layer_from_sha256 = layer_from_digest(config.layer_from) if config.layer_from else None
        self.run_id = run_id(config, data, self.layer_from_sha256)
        self.dir = Path(config.output_path) / slug(config.model, "model") / self.run_id
        self.parts = self.dir / "parts"
        self.new = not os.path.lexists(self.dir)  # this call makes the folder
        # Seconds per kind (see `time`): `timings` over every call of the run, this one's
        # included so far; `this_call` this call's own; `_earlier` what state.json held when
        # this call began. `_call_start` runs this call's clock (`begin_call`).
        self.timings: dict[str, float] = {}
        self.this_call: dict[str, float] = {}
        self._earlier: dict[str, float] = {}
        self._call_start: float | None = None
        self.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        # The loaded weights' fingerprints (`bind_weights`): the run id is known before the
        # model loads, so a model file replaced at the same path keeps it; units prove the
        # weights they were computed with instead.
        self.weights: list[str | None] = []
        self._stored_weights: list[str | None] | None = None
        self._weights_announced = False
        self._lock: IO[str] | None = None
        self._load_state()

    def discard_if_unused(self) -> None:
        """Remove the run folder when this call made it and nothing of a run is in it yet (a
        run refused at model load or by a length check): an empty folder with a config.json
        would look like a run that was started. Anything a unit wrote keeps it."""
        if not self.new or not self.dir.is_dir() or os.path.lexists(self.parts):
            return
        ours = {"config.json", "state.json"}
        if all(p.name in ours or p.name.startswith(".lock") for p in self.dir.iterdir()):
            shutil.rmtree(self.dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                self.dir.parent.rmdir()  # the model's folder, when it holds no other run

    # -- one run per folder at a time ---------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the run folder while the block runs: a second identical
        run would otherwise redo every unit beside the first."""
        with folder_lock(self.dir, _lock_name()):
            yield

    # -- the run's first start and its time, kept over interruptions --------------------------
    def _load_state(self) -> None:
        path = self.dir / "state.json"
        _clear_non_file(path)
        if not path.is_file():
            return
        state, problem = _read_checked(path)
        try:
            if problem:
                raise ValueError(problem)
            created, timings = state["created"], state["timings"]
            if not isinstance(created, str) or not all(
                isinstance(v, (int, float)) for v in timings.values()
            ):
                raise TypeError("bad types")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            _warn(f"{path} is damaged ({exc}); the run's start time and timings start anew")
            return
        self.created, self._earlier = created, {k: float(v) for k, v in timings.items()}
        phases = sum(v for k, v in self._earlier.items() if k != "total")
        if self._earlier.get("total", 0.0) < phases:
            # An interrupted call of older code saved its units' time but not its own: the
            # run's total is at least the time its phases took.
            _warn(
                f"{path}: the run's total ({self._earlier.get('total', 0.0):.1f} s) is less "
                f"than the time its phases took ({phases:.1f} s): an interrupted call's time "
                "was not saved; the run's total counts it as the phases' time (a lower bound)"
            )
            self._earlier["total"] = phases
        self.timings = dict(self._earlier)
        weights = state.get("weights")
        if isinstance(weights, list):
            self._stored_weights = weights

    def _save_state(self) -> None:
        """Write state.json with the run's timings as they stand now (this call's running
        `total` included), so a call interrupted or killed keeps the time it spent up to its
        last save. Only the main process writes it: under `accelerate launch` the ranks share
        the folder, and each rank's own view would overwrite the others' (the timings are the
        main process's)."""
        self._tick()
        if not _is_main_process():
            return
        state = {"created": self.created, "timings": self.timings}
        if self.weights:
            state["weights"] = self.weights
        write_json_atomic(self.dir / "state.json", state)

    def bind_weights(self, *fingerprints: str | None) -> None:
        """Record the fingerprints of the weights this call loaded (the model's, and a
        `--source_model`'s); every unit is then written with them and reused only by the same
        weights. When the folder's earlier calls loaded other weights (a GGUF or checkpoint
        replaced at the same path), say so once: each unit is computed again."""
        self.weights = list(fingerprints)
        before = self._stored_weights
        if before is not None and before != self.weights:
            _warn(
                f"{self.dir}: this run's earlier calls loaded other weights (fingerprint "
                f"{before} now {self.weights}): the model file changed at the same path, so "
                "every stored unit is computed again and results.json is replaced"
            )
            self._weights_announced = True
        self._save_state()

    # -- timings ------------------------------------------------------------------------------
    # Every value is seconds of this process's wall clock. `total` is a call's elapsed time from
    # `begin_call` (the start of `evaluate`, before the model loads) to `report_timings` (the
    # results file assembled) or to its interruption; `load` is the model's loading (under
    # LLM->VLM transfer, the source model's vectors too); each unit kind (sweep, no_context,
    # majority, prompt, patch, ...) is the time spent computing units of that kind. A reused
    # unit costs nothing. The phases are disjoint stretches of the call, so in every call, and
    # over the run, `total` >= the sum of the other kinds. The run's values (no suffix) add up
    # over all its calls -- a resumed run counts each call's model load and the time its
    # interrupted calls spent, including on units they did not finish -- and `<kind>_this_call`
    # is this call's own. The time a killed process spent after its last finished unit is lost.

    def begin_call(self) -> None:
        """Start this call's clock: its `total` runs from here and is saved in state.json with
        every finished unit, so an interrupted or killed call keeps the time it spent."""
        self._call_start = time.perf_counter()
        self.this_call = {"total": 0.0}

    def end_call(self) -> None:
        """Stop this call's clock and save its time (a call interrupted or failing included);
        nothing to do once `report_timings` has stopped it, or before `begin_call`."""
        if self._call_start is None:
            return
        try:
            self._save_state()
        except OSError as exc:  # never hide the error that ends the call
            _warn(f"cannot save this call's time in {self.dir / 'state.json'} ({exc})")
        self._call_start = None

    def _tick(self) -> None:
        """Bring this call's running `total` and the run's timings up to now."""
        if self._call_start is not None:
            self.this_call["total"] = time.perf_counter() - self._call_start
        kinds = {**self._earlier, **self.this_call}
        self.timings = {k: self._earlier.get(k, 0.0) + self.this_call.get(k, 0.0) for k in kinds}

    def time(self, kind: str, seconds: float) -> None:
        """Add `seconds` to this call's `kind` (and so to the run's, kept in state.json so a
        resumed run's times add up over its calls). `total` is not given this way: it is the
        call's clock (`begin_call`)."""
        if kind == "total":
            raise ValueError("`total` is the call's clock (begin_call), not a phase")
        self.this_call[kind] = self.this_call.get(kind, 0.0) + seconds
        self._save_state()

    def report_timings(self) -> dict[str, float]:
        """The results file's timings, and the end of this call's clock: the run's, over all
        its calls (`total` >= the sum of the other kinds), and this call's own as
        `<kind>_this_call` for every kind it recorded (`total_this_call` always): a resumed
        run's `total` is not this call's. state.json is saved with the same numbers."""
        self._save_state()
        self._call_start = None
        return {**self.timings, **{f"{k}_this_call": v for k, v in self.this_call.items()}}

    # -- units --------------------------------------------------------------------------------
    def unit(self, name: str, compute: Callable[[], T], items: Sequence[str]) -> T:
        """The unit's stored result, or `compute()` saved under `parts/<name>.json`.

        A stored unit is reused only if it proves it belongs here: this run id, this code
        version, the same item ids in the same order, and content matching the checksum taken
        when it was written. Otherwise it is recomputed, with a warning naming the file.
        Time spent computing (and writing) it is added to `timings` under the unit's kind (the
        part of its last path component before the first '-': sweep, prompt, patch, ...), and
        state.json saved with the call's running `total`; a reused unit adds nothing."""
        path = self.parts / f"{name}.json"
        expected = self._expected(name, items)
        _clear_non_file(path)
        if path.is_file():
            stored, problem = self._read_unit(path, expected, list(items))
            if problem is None:
                return stored
            if not (problem == OTHER_WEIGHTS and self._weights_announced):
                _warn(f"{path}: {problem}; computing it again (it is replaced: nothing to delete)")
        start = time.perf_counter()
        out = compute()
        kind = unit_kind(name)
        write_json_atomic(path, {**expected, "checksum": _checksum(out), "data": out})
        self.time(kind, time.perf_counter() - start)
        return out

    def _expected(self, name: str, items: Sequence[str]) -> dict[str, str]:
        """What a stored unit must record to be reused by this run."""
        return {
            "unit": name,
            "run_id": self.run_id,
            "code": code_version(),
            "items": sha256(list(items)),
            "weights": sha256(self.weights),
        }

    def stored(self, name: str, items: Sequence[str]) -> bool:
        """Whether unit `name` is stored and would be reused (see `unit`)."""
        path = self.parts / f"{name}.json"
        if not path.is_file():
            return False
        expected = self._expected(name, items)
        return self._read_unit(path, expected, list(items))[1] is None

    @staticmethod
    def _read_unit(path: Path, expected: dict, items: list[str]) -> tuple[Any, str | None]:
        stored, problem = _read_checked(path)
        if problem:
            return None, problem
        if not isinstance(stored, dict) or not {"checksum", "data", *expected} <= set(stored):
            return None, "not a unit this harness wrote"
        for key, problem in (
            ("run_id", "written by another run"),
            ("code", "written by another version of the harness code"),
            ("unit", "written by another unit"),
            ("items", "computed on other items"),
            ("weights", OTHER_WEIGHTS),
        ):
            if stored[key] != expected[key]:
                return None, problem
        data = stored["data"]
        if stored["checksum"] != _checksum(data):
            return None, "its content does not match the checksum it was written with (edited?)"
        if isinstance(data, dict) and "doc_ids" in data and data["doc_ids"] != items:
            return None, "its item ids differ from this run's"
        return data, None

    def write_config(self, config: RunConfig) -> None:
        write_json_atomic(self.dir / "config.json", config.as_dict())

    def write_results(self, doc: dict[str, Any]) -> Path:
        path = self.dir / "results.json"
        write_json_atomic(path, doc)
        return path

    def write_samples(self, task: str, rows: list[dict[str, Any]]) -> None:
        lines = [json.dumps(r, ensure_ascii=False) for r in rows]
        atomic_write_text(self.dir / f"samples_{slug(task)}.jsonl", "\n".join(lines) + "\n")
