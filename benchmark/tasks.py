"""The task registry: what the benchmark measures, kept apart from any model code.

Every task the harness, the builders and the leaderboard know of is declared here once. A task
names where its items come from (a shipped pool, or a dataset the builders make), how it is
specified to a model (an instruction; examples come from the items), and how it is scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Scoring rules. The cross-modal and VQA tasks compare the first generated token with the label;
# the overriding tasks ask a judge model which question an answer addresses.
FIRST_TOKEN = "first_token"
JUDGE = "judge"

# Method ids a results file may hold. The first four apply to every first-token task; the last
# two belong to the overriding study.
METHODS = ("no_context", "majority", "prompt", "patch", "system_prompt", "instruction_patch")


@dataclass(frozen=True)
class Task:
    """One benchmark task. `source` is a shipped pool name or a builder's dataset family."""

    id: str
    family: str  # "cross_modal" | "vqa" | "overriding"
    source: str  # pool name ("countries") or builder family ("vqav2", "overriding")
    instruction: str
    answer_type: str
    scoring: str
    description: str
    methods: tuple[str, ...] = field(default=("no_context", "majority", "prompt", "patch"))

    @property
    def has_shipped_pool(self) -> bool:
        return self.family == "cross_modal"


_OVERRIDE_METHODS = ("no_context", "system_prompt", "instruction_patch")

TASKS: dict[str, Task] = {
    t.id: t
    for t in [
        Task(
            "country_capital",
            "cross_modal",
            "countries",
            "The capital city of the country:",
            "city",
            FIRST_TOKEN,
            "Country (name or flag) -> its capital city.",
        ),
        Task(
            "country_currency",
            "cross_modal",
            "countries",
            "The last word of the official currency of the country:",
            "word",
            FIRST_TOKEN,
            "Country (name or flag) -> last word of its official currency's name.",
        ),
        Task(
            "animal_latin",
            "cross_modal",
            "animals",
            "The scientific name of the animal's species in latin:",
            "binomial",
            FIRST_TOKEN,
            "Mammal (name or photo) -> its binomial name in Latin.",
        ),
        Task(
            "animal_young",
            "cross_modal",
            "animals",
            "The term for the baby of the animal:",
            "word",
            FIRST_TOKEN,
            "Mammal (name or photo) -> the English term for its young.",
        ),
        Task(
            "food_color",
            "cross_modal",
            "foods",
            "The color of the food:",
            "color",
            FIRST_TOKEN,
            "Food (name or photo) -> its iconic colour.",
        ),
        Task(
            "food_flavor",
            "cross_modal",
            "foods",
            "The flavor descriptor of the food:",
            "flavor",
            FIRST_TOKEN,
            "Food (name or photo) -> its dominant flavour descriptor.",
        ),
        Task(
            "vqa_food_class",
            "vqa",
            "vqav2",
            "What kind of food is this?",
            "short_answer",
            FIRST_TOKEN,
            "VQAv2 images asked 'What kind of food is this?'; text version = dense caption.",
        ),
        Task(
            "vqa_shirt_color",
            "vqa",
            "vqav2",
            "What color is the man's shirt?",
            "color",
            FIRST_TOKEN,
            "VQAv2 images asked 'What color is the man's shirt?'; text version = dense caption.",
        ),
        Task(
            "vqa_man_holding",
            "vqa",
            "vqav2",
            "What is the man holding?",
            "short_answer",
            FIRST_TOKEN,
            "VQAv2 images asked 'What is the man holding?'; text version = dense caption.",
        ),
        Task(
            "override_semantic",
            "overriding",
            "vqav2",
            "Answer the overriding question about the image.",
            "free_text",
            JUDGE,
            "Image + question 1 in the prompt; a different VQAv2 question patched as a vector.",
            _OVERRIDE_METHODS,
        ),
        Task(
            "override_syntax",
            "overriding",
            "vqav2",
            "Answer in the overriding format (ALL CAPS, quotes or JSON).",
            "free_text",
            JUDGE,
            "Image + one formatting instruction in the prompt; a conflicting one patched.",
            _OVERRIDE_METHODS,
        ),
        Task(
            "override_creative",
            "overriding",
            "vqav2",
            "Answer with the overriding creative output (book title, character or company name).",
            "free_text",
            JUDGE,
            "Image + one creative instruction in the prompt; a conflicting one patched.",
            _OVERRIDE_METHODS,
        ),
        Task(
            "override_factual",
            "overriding",
            "okvqa",
            "Answer the overriding knowledge question about the image.",
            "free_text",
            JUDGE,
            "OK-VQA / A-OKVQA images with two conflicting knowledge questions.",
            _OVERRIDE_METHODS,
        ),
    ]
}

CROSS_MODAL_TASKS: tuple[str, ...] = tuple(
    t.id for t in TASKS.values() if t.family == "cross_modal"
)


class UnknownTaskError(KeyError):
    """Raised for a task id that is not registered; the message lists the known ids."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def get_task(task_id: str) -> Task:
    try:
        return TASKS[task_id]
    except KeyError:
        known = ", ".join(TASKS)
        raise UnknownTaskError(
            f"unknown task id {task_id!r}. Known task ids: {known}. "
            "A task of your own can be given as a path to a JSONL file."
        ) from None


def list_tasks(family: str | None = None) -> list[Task]:
    return [t for t in TASKS.values() if family is None or t.family == family]
