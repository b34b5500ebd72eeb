"""Data parallelism over processes started by `accelerate launch`.

Each process takes every n-th unit of work (a task vector, a validation sweep, one method on
test); units are files in the run folder, so after a barrier every process can read what the
others computed and the main process writes the results. Nothing else is shared.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


def _no_barrier() -> None:
    return None


@dataclass
class Shard:
    index: int = 0
    count: int = 1
    barrier: Callable[[], None] = field(default=_no_barrier)
    device: str | None = None  # this process's accelerator, when there are several

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def take(self, jobs: Sequence[T]) -> list[T]:
        return list(jobs[self.index :: self.count])


def current_shard() -> Shard:
    """One shard per process under `accelerate launch` (or torchrun); a single shard otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Shard()
    from accelerate import PartialState

    state = PartialState()
    return Shard(
        state.process_index, state.num_processes, state.wait_for_everyone, str(state.device)
    )
