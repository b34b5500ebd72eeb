"""First-token scoring: the authors' lenient rule and a strict exact first-token rule.

The rules live in `benchmark.scoring` (torch-free), so that `validate` rescoring a results
file's rows and the harness scoring a run cannot drift apart; this module is their harness name.
"""

from __future__ import annotations

from benchmark.scoring import lenient_match, strict_match

__all__ = ["lenient_match", "strict_match"]
