"""Display names and orderings, kept in one place so every output lists things the same way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from benchmark import CROSS_MODAL, METHODS, OVERRIDING, QUERIES, SPECS, TASKS, VQA

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
    t for t, task in TASKS.items() if task.family == OVERRIDING
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


# --- sections: a setting and the variant of the experiment, read from the results file ---------
#
# Besides spec -> query, three things in a results file make a different experiment, each a
# table of its own, so that a reproduction lands next to the paper's row for it:
# - the tasks' family: the VQA subsets (paper, Table 4) are not the six cross-modal tasks;
# - `config.source_model` (`--source_model`): vectors made in another model, the VLM's base
#   LLM in the paper (Tables 3 and 11), patched into the model;
# - a chat template (`--template model`; the harness records `config.template.chat`): the
#   model's own chat format (Table 10).


@dataclass(frozen=True)
class Section:
    """Where a row is shown: its setting and the variant of the experiment."""

    spec: str
    query: str
    family: str = CROSS_MODAL  # the tasks' family: CROSS_MODAL or VQA
    from_source: bool = False  # vectors from another model (`--source_model`)
    chat: bool = False  # the model's own chat format (`--template model`)

    @property
    def id(self) -> str:
        """`text_examples→image`, plus `+vqa`, `+source_model`, `+chat` for a variant: the
        key used in the CSV, the page's filter and the submissions list."""
        suffix = "+vqa" if self.family == VQA else ""
        suffix += "+source_model" if self.from_source else ""
        suffix += "+chat" if self.chat else ""
        return setting_id(self.spec, self.query) + suffix

    @property
    def qualifiers(self) -> list[str]:
        out = ["VQA subsets"] if self.family == VQA else []
        out += ["task vectors from another model (LLM → VLM)"] if self.from_source else []
        out += ["the model's chat template"] if self.chat else []
        return out

    @property
    def label(self) -> str:
        base = setting_label(self.spec, self.query)
        return f"{base}: {', '.join(self.qualifiers)}" if self.qualifiers else base

    @property
    def short_label(self) -> str:
        """The label with short qualifiers, for plot titles."""
        short = ["VQA subsets"] if self.family == VQA else []
        short += ["LLM → VLM"] if self.from_source else []
        short += ["chat template"] if self.chat else []
        return ", ".join([setting_label(self.spec, self.query), *short])

    @property
    def key(self) -> tuple:
        """The paper's order: the plain settings, then LLM → VLM, the VQA subsets, the chat
        template; within each, settings in SETTING_ORDER."""
        variant = (self.chat, self.family != CROSS_MODAL, self.from_source, self.family)
        return (variant, setting_key(self.spec, self.query))


def family_of(tasks: Iterable[str]) -> str:
    """The tasks' family: "vqa" when every task is a VQA subset, else "cross_modal"."""
    tasks = list(tasks)
    vqa = bool(tasks) and all(t in TASKS and TASKS[t].family == VQA for t in tasks)
    return VQA if vqa else CROSS_MODAL


def source_model_of(results: Mapping[str, Any]) -> str | None:
    """The model the patched vectors came from (`config.source_model`); None: the model's own."""
    value = (results.get("config") or {}).get("source_model")
    return value if isinstance(value, str) and value else None


def uses_chat(results: Mapping[str, Any]) -> bool:
    """True for a run in the model's chat format: the harness records the chat wrapping in
    `config.template.chat` (the CLI value `--template model` is accepted too)."""
    template = (results.get("config") or {}).get("template")
    return template == "model" or (isinstance(template, Mapping) and bool(template.get("chat")))


def section_of(results: Mapping[str, Any], tasks: Iterable[str] | None = None) -> Section:
    """The section of a results file's `tasks` (default: all of its tasks)."""
    config = results.get("config") or {}
    return Section(
        spec=config.get("spec"),
        query=config.get("query") or "text",
        family=family_of(results.get("results", {}) if tasks is None else tasks),
        from_source=source_model_of(results) is not None,
        chat=uses_chat(results),
    )


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def method_key(method: str) -> tuple[int, str]:
    return (METHODS.index(method) if method in METHODS else len(METHODS), method)


def task_label(task: str) -> str:
    return TASK_LABELS.get(task, task)


def task_key(task: str) -> tuple[int, str]:
    order = list(TASKS)
    return (order.index(task) if task in order else len(order), task)
