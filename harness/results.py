"""The results file: config, versions, git hash, seeds, layer curve, per-task accuracies."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def git_hash() -> str | None:
    """The commit of the harness checkout, `-dirty` if it has uncommitted changes; None outside
    a git checkout (an installed wheel)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "") if head else None


def versions() -> dict[str, Any]:
    return {
        "vlm_tv_eval": _version("vlm-tv-eval"),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "accelerate": _version("accelerate"),
        "git_hash": git_hash(),
        "python": platform.python_version(),
    }


def method_summary(
    per_seed: list[float], per_seed_strict: list[float], n: int, **extra: Any
) -> dict[str, Any]:
    """Mean and population std over seeds (ddof=0: the seeds are the whole population run)."""
    return {
        "acc": statistics.fmean(per_seed),
        "acc_std": statistics.pstdev(per_seed),
        "acc_strict": statistics.fmean(per_seed_strict),
        "acc_strict_std": statistics.pstdev(per_seed_strict),
        "n": n,
        "per_seed": per_seed,
        **extra,
    }


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write via a temporary file and rename, so an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", "utf-8")
    os.replace(tmp, path)
