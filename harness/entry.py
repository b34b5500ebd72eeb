"""The `vlm-tv-eval` console script: `harness.cli.main`, imported inside a guard.

The command-line module imports the benchmark package and argparse set-up at import time; a
Ctrl-C in that second would otherwise print a traceback from the console-script wrapper, before
`main` could catch anything.
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        print("\nvlm-tv-eval: interrupted", file=sys.stderr)
        return 130
    return cli_main()
