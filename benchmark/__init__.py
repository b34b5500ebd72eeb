"""What vlm-tv-eval measures: the task registry, shipped item pools and JSON Schemas.

Nothing here imports torch or any model code; the harness, builders and leaderboard read it.
"""

from .files import atomic_output, atomic_write_bytes, atomic_write_text, slug, write_json_atomic
from .pools import POOLS, SPLITS, load_pool, load_task
from .protocol import (
    EXECUTION_KEYS,
    FIRST_TOKEN_METHODS,
    LAYERED_METHODS,
    METHOD_ID_PATTERN,
    METHODS,
    QUERIES,
    SPECS,
    measurement_config,
)
from .tasks import CROSS_MODAL_TASKS, TASKS, Task, UnknownTaskError, get_task, list_tasks
from .validation import SchemaError, kinds, validate, validate_file

__all__ = [
    "CROSS_MODAL_TASKS",
    "EXECUTION_KEYS",
    "FIRST_TOKEN_METHODS",
    "LAYERED_METHODS",
    "METHODS",
    "METHOD_ID_PATTERN",
    "POOLS",
    "QUERIES",
    "SPECS",
    "SPLITS",
    "TASKS",
    "SchemaError",
    "Task",
    "UnknownTaskError",
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_text",
    "get_task",
    "kinds",
    "list_tasks",
    "load_pool",
    "load_task",
    "measurement_config",
    "slug",
    "validate",
    "validate_file",
    "write_json_atomic",
]
