"""Where the harness keeps what it computes once and reuses across runs: converted weights,
task vectors, judge verdicts, analysis layers. Everything stored there proves it belongs
before it is reused (fingerprints, checksums); this module only says where."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$VLM_TV_EVAL_CACHE`, else `~/.cache/vlm-tv-eval`."""
    return Path(os.environ.get("VLM_TV_EVAL_CACHE", Path.home() / ".cache" / "vlm-tv-eval"))
