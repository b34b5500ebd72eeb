"""`vlm-tv-build`: not available in this version yet."""

import sys


def main() -> int:
    print(
        "vlm-tv-build: this command is not implemented yet in this "
        "version of vlm-tv-eval; the builders/ package is planned (see the project's issues).",
        file=sys.stderr,
    )
    return 2
