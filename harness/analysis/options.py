"""Each analysis's own options and their defaults: data, read by the command (`analyze`) and by
the identity an analysis file records (`common.identity`). Here, in a module of its own that
imports nothing, so both can read it without importing each other or torch."""

from __future__ import annotations

from typing import Any

# name -> the analysis options its module reads, at the value it uses when the flag is left
# out. With the name and the run's flags they are the analysis's identity (`common.identity`),
# recorded in its JSON: a file of another identity at the same path is refused, never replaced.
# An option a module reads but this does not name would change numbers outside the identity;
# a test (tests/test_analysis.py) reads each module for the options it uses.
OPTIONS: dict[str, dict[str, Any]] = {
    "logit-lens": {"runs": 100},
    "tsne": {"points": 30, "instruction_points": "vector"},
    "scaling": {"max_r": 6},
    "noise": {"swaps": [0, 1, 2], "swap_scope": "instruction"},
    "overhead": {"n_context": 30, "runs": 10, "context": "short"},
    "cosine": {},
    "spec-curves": {},
}
