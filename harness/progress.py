"""Progress a researcher can trust, and messages that do not break it.

A run's steps are units (a task's validation sweep, one method on one task for one seed) that
take seconds to minutes each, and a bar that counts units sits at 0/6 for minutes. `ItemBar`
counts items instead: its total is every unit's items, each unit adds its own when done, and
code inside a unit may tick it sooner (`advance`), never past that unit's items.

Warnings (Python's, logging's, the harness's own) printed while a bar is drawn would split it
over lines; inside `routed_output` they go through `tqdm.write`, which clears the bar, prints
the line and draws the bar again. `say` is that for the harness's own messages.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

T = TypeVar("T")

# Libraries that print through their own console handler, not the root logger's.
OWN_HANDLER_LOGGERS = ("transformers", "datasets", "accelerate", "huggingface_hub")


def say(message: str) -> None:
    """One line on stderr that leaves any progress bar drawn whole."""
    tqdm.write(message, file=sys.stderr)


@contextmanager
def routed_output() -> Iterator[None]:
    """While the block runs, Python warnings and console log records are written through
    `tqdm.write`, so they appear above the bars instead of inside them."""
    previous = warnings.showwarning

    def show(message: Any, category: Any, filename: str, lineno: int, file=None, line=None):
        text = warnings.formatwarning(message, category, filename, lineno, line)
        tqdm.write(text.rstrip("\n"), file=sys.stderr)

    # The root logger, and a library logger only where it prints itself (one that merely
    # propagates to the root would print each line twice).
    loggers = [logging.root] + [
        logger
        for logger in map(logging.getLogger, OWN_HANDLER_LOGGERS)
        if any(isinstance(h, logging.StreamHandler) for h in logger.handlers)
    ]
    warnings.showwarning = show
    try:
        with logging_redirect_tqdm(loggers=loggers, tqdm_class=tqdm):
            yield
    finally:
        warnings.showwarning = previous


_active: list[ItemBar] = []


def advance(n: int) -> None:
    """Tick the innermost running bar by `n` items (code that works through a unit's items in
    batches calls this); a no-op when no bar runs."""
    if _active:
        _active[-1].advance(n)


class ItemBar:
    """A bar over units whose total is their items: `size(job)` items each."""

    def __init__(
        self,
        jobs: Sequence[Any],
        size: Callable[[Any], int],
        desc: str,
        enabled: bool = True,
        unit: str = "item",
        ticks: bool = True,
    ):
        self.size = size
        self.ticks = ticks  # False: the engine's batches are not this bar's items
        total = sum(size(j) for j in jobs)
        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)
        self._done = 0  # items of finished units
        self._cap = 0  # items the running unit may still tick

    def advance(self, n: int) -> None:
        if not self.ticks:
            return
        step = max(0, min(n, self._cap))
        self._cap -= step
        self.bar.update(step)

    @contextmanager
    def unit(self, job: Any, name: str = "") -> Iterator[None]:
        """One unit's work runs in the block, the bar showing `name`; its items are counted
        when the block ends, whatever `advance` ticked meanwhile."""
        items = self.size(job)
        self._cap = items
        if name:
            self.bar.set_postfix_str(name, refresh=True)
        _active.append(self)
        try:
            yield
        finally:
            _active.remove(self)
            self._cap = 0
        self._done += items
        self.bar.update(self._done - self.bar.n)

    def run(self, job: Any, work: Callable[[], T], name: str = "") -> T:
        """`work()` for one unit (see `unit`)."""
        with self.unit(job, name):
            return work()

    def close(self) -> None:
        self.bar.set_postfix_str("", refresh=False)  # done: no unit is running
        self.bar.close()
