"""Display names and orderings, kept in one place so every output lists things the same way."""

from __future__ import annotations

from benchmark import METHODS, QUERIES, SPECS, TASKS

# Settings in the order the paper discusses them: image queries first (QUERIES lists text first)
# so that its headline, text examples patched onto image queries, leads; then text queries.
# Specs in SPECS order within each. A setting not listed here sorts after these, alphabetically.
SETTING_ORDER: tuple[tuple[str, str], ...] = tuple(
    (spec, query) for query in reversed(QUERIES) for spec in SPECS
)

SPEC_LABELS = {
    "text_examples": "Text examples",
    "image_examples": "Image examples",
    "instruction": "Instruction",
    "ensemble": "Ensemble (instruction + examples)",
}

METHOD_LABELS = {
    "no_context": "No context",
    "majority": "Random (majority)",
    "prompt": "Prompt",
    "patch": "Patch",
    "original": "Original task",
    "system_prompt": "System prompt",
    "instruction_patch": "Instruction patch",
}

# Short column headers, as in the paper's tables.
TASK_LABELS = {
    "country_capital": "Capital",
    "country_currency": "Currency",
    "animal_latin": "Latin",
    "animal_young": "Young",
    "food_color": "Color",
    "food_flavor": "Flavor",
    "vqa_food_class": "Food-Class",
    "vqa_shirt_color": "Shirt-Color",
    "vqa_man_holding": "Man-Holding",
    "override_semantic": "Semantic",
    "override_syntax": "Syntax",
    "override_creative": "Creative",
    "override_factual": "Factual",
    "override_text": "Text (pools)",
}


# The task-overriding study (the paper's Table 5) has a section of its own: its numbers are
# override rates, not first-token accuracies. Its tasks are the registry's "overriding" family.
OVERRIDING_TITLE = "Task overriding (Table 5)"
OVERRIDING_TASKS: tuple[str, ...] = tuple(
    t for t, task in TASKS.items() if task.family == "overriding"
)
# The four image settings are always columns of the overriding table; others only when present.
OVERRIDING_SETTINGS: tuple[str, ...] = (
    "override_semantic",
    "override_syntax",
    "override_creative",
    "override_factual",
)
# As the paper's Table 5 labels its rows: the two interventions are added to the original task.
OVERRIDING_METHOD_LABELS = {
    "original": "Original task",
    "system_prompt": "+ System prompt",
    "instruction_patch": "+ Instruction patch",
}


def overriding_label(query: str) -> str:
    """`Task overriding, image queries`: how plots and lists name the study's setting."""
    return f"Task overriding, {query} queries"


def is_overriding_task(task: str) -> bool:
    return task in OVERRIDING_TASKS


def overriding_method_label(method: str) -> str:
    return OVERRIDING_METHOD_LABELS.get(method, method_label(method))


def setting_id(spec: str, query: str) -> str:
    """`text_examples→image`: the key used in the CSV, the page's filter and file names."""
    return f"{spec}→{query}"


def setting_label(spec: str, query: str) -> str:
    return f"{SPEC_LABELS.get(spec, spec)} → {query} queries"


def setting_key(spec: str, query: str) -> tuple[int, str, str]:
    known = (spec, query)
    rank = SETTING_ORDER.index(known) if known in SETTING_ORDER else len(SETTING_ORDER)
    return (rank, spec, query)


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def method_key(method: str) -> tuple[int, str]:
    return (METHODS.index(method) if method in METHODS else len(METHODS), method)


def task_label(task: str) -> str:
    return TASK_LABELS.get(task, task)


def task_key(task: str) -> tuple[int, str]:
    order = list(TASKS)
    return (order.index(task) if task in order else len(order), task)
