"""What vlm-tv-eval measures: the task registry, shipped item pools and JSON Schemas.

Nothing here imports torch or any model code; the harness, builders and leaderboard read it.
"""

from .files import atomic_output, atomic_write_bytes, atomic_write_text, slug, write_json_atomic
from .pools import POOLS, SPLITS, load_pool, load_task
from .protocol import (
    ANALYSES,
    EXECUTION_KEYS,
    FIRST_TOKEN_METHODS,
    METHOD_ID_PATTERN,
    METHODS,
    OVERRIDING_METHODS,
    QUERIES,
    SPECS,
    best_layer,
    measurement_config,
    uses_examples,
)
from .tasks import (
    CROSS_MODAL,
    CROSS_MODAL_TASKS,
    OVERRIDING,
    TASKS,
    VQA,
    Task,
    UnknownTaskError,
    get_task,
    list_tasks,
    task_family,
)
from .validation import SchemaError, kinds, validate, validate_file

__all__ = [
    "ANALYSES",
    "CROSS_MODAL",
    "CROSS_MODAL_TASKS",
    "EXECUTION_KEYS",
    "FIRST_TOKEN_METHODS",
    "OVERRIDING",
    "OVERRIDING_METHODS",
    "VQA",
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
    "best_layer",
    "get_task",
    "kinds",
    "list_tasks",
    "load_pool",
    "load_task",
    "measurement_config",
    "slug",
    "task_family",
    "uses_examples",
    "validate",
    "validate_file",
    "write_json_atomic",
]
