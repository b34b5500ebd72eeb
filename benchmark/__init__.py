"""What vlm-tv-eval measures: the task registry, shipped item pools and JSON Schemas.

Nothing here imports torch or any model code; the harness, builders and leaderboard read it.
"""

from .pools import POOLS, SPLITS, load_pool, load_task
from .tasks import CROSS_MODAL_TASKS, METHODS, TASKS, Task, UnknownTaskError, get_task, list_tasks
from .validation import SchemaError, kinds, validate, validate_file

__all__ = [
    "CROSS_MODAL_TASKS",
    "METHODS",
    "POOLS",
    "SPLITS",
    "TASKS",
    "SchemaError",
    "Task",
    "UnknownTaskError",
    "get_task",
    "kinds",
    "list_tasks",
    "load_pool",
    "load_task",
    "validate",
    "validate_file",
]
