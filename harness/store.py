"""The run folder: its id, the resumable units, and the files a finished run leaves.

`<output_path>/<model>/<spec>-<hash>/` where the hash covers the measurement config and every
item, so the same command finds the same folder and an edited task file gets a new one. Each
unit of work (a validation sweep, one method on one task for one seed) is written atomically to
`parts/` when done; a rerun reads it back instead of computing it again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from benchmark.files import atomic_write_text, slug, write_json_atomic

from .config import RunConfig
from .data import TaskData, record_digest, sha256

T = TypeVar("T")


def run_id(config: RunConfig, data: Mapping[str, TaskData]) -> str:
    """`<spec>-<12 hex>`: the items themselves are part of the identity."""
    items = {
        t: {s: [record_digest(r) for r in rs] for s, rs in d.splits.items()}
        for t, d in data.items()
    }
    return f"{config.spec}-{sha256([config.identity(), items])[:12]}"


class RunStore:
    def __init__(self, config: RunConfig, data: Mapping[str, TaskData]):
        self.run_id = run_id(config, data)
        self.dir = Path(config.output_path) / slug(config.model, "model") / self.run_id
        self.parts = self.dir / "parts"
        self.timings: dict[str, float] = {}

    def unit(self, name: str, compute: Callable[[], T]) -> T:
        """The unit's stored result, or `compute()` saved under `parts/<name>.json`.

        Time spent computing is added to `timings` under the unit's kind (the part of its
        last path component before the first '-': sweep, prompt, patch, ...)."""
        path = self.parts / f"{name}.json"
        if path.is_file():
            return json.loads(path.read_text("utf-8"))
        start = time.perf_counter()
        out = compute()
        kind = name.split("/")[-1].split("-")[0]
        self.timings[kind] = self.timings.get(kind, 0.0) + time.perf_counter() - start
        write_json_atomic(path, out)
        return out

    def time(self, kind: str, seconds: float) -> None:
        self.timings[kind] = self.timings.get(kind, 0.0) + seconds

    def write_config(self, config: RunConfig) -> None:
        write_json_atomic(self.dir / "config.json", config.as_dict())

    def write_results(self, doc: dict[str, Any]) -> Path:
        path = self.dir / "results.json"
        write_json_atomic(path, doc)
        return path

    def write_samples(self, task: str, rows: list[dict[str, Any]]) -> None:
        lines = [json.dumps(r, ensure_ascii=False) for r in rows]
        atomic_write_text(self.dir / f"samples_{slug(task)}.jsonl", "\n".join(lines) + "\n")
