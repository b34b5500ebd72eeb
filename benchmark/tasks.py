"""The task registry: what the benchmark measures, kept apart from any model code.

Every task the harness, the builders and the leaderboard know of is declared here once. A task
names where its items come from (a shipped pool, or a dataset the builders make), how it is
specified to a model (an instruction; examples come from the items), and how it is scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .protocol import FIRST_TOKEN_METHODS, OVERRIDING_METHODS

# Task families: what kind of items a task has and how a run treats them.
CROSS_MODAL = "cross_modal"  # shipped pools; text or image queries; first-token scoring
VQA = "vqa"  # one VQAv2 question over many images, from a built VQA dataset
OVERRIDING = "overriding"  # free-form answers to a conflicting patched task, judged
FAMILIES: tuple[str, ...] = (CROSS_MODAL, VQA, OVERRIDING)

# Scoring rules. The cross-modal and VQA tasks compare the first generated token with the label;
# the overriding tasks ask a judge model which question an answer addresses.
FIRST_TOKEN = "first_token"
JUDGE = "judge"
# Free-form answers whose labels are known: exact match against both tasks' labels, and the judge
# (which the exact match then checks).
EXACT_AND_JUDGE = "exact_and_judge"


@dataclass(frozen=True)
class Task:
    """One benchmark task. `source` is a shipped pool name or a builder's dataset family."""

    id: str
    family: str  # one of FAMILIES
    source: str  # pool name ("countries") or builder family ("vqav2", "overriding")
    instruction: str
    answer_type: str
    scoring: str
    description: str
    methods: tuple[str, ...] = field(default=FIRST_TOKEN_METHODS)
    # What a run of this task alone uses when --spec / --query are not given: the image
    # overriding sets are set up by their image and question, so their spec is the overriding
    # instruction; the VQA subsets are questions about images, so their queries are images.
    default_spec: str = "text_examples"
    default_query: str = "text"

    @property
    def has_shipped_pool(self) -> bool:
        return self.family == CROSS_MODAL

    @property
    def has_labels(self) -> bool:
        """Whether both answers of a free-form task are known (override_text), so it is scored
        by exact match as well as by the judge; every first-token task has its label."""
        return self.scoring != JUDGE


TASKS: dict[str, Task] = {
    t.id: t
    for t in [
        Task(
            id="country_capital",
            family=CROSS_MODAL,
            source="countries",
            instruction="The capital city of the country:",
            answer_type="city",
            scoring=FIRST_TOKEN,
            description="Country (name or flag) -> its capital city.",
        ),
        Task(
            id="country_currency",
            family=CROSS_MODAL,
            source="countries",
            instruction="The last word of the official currency of the country:",
            answer_type="word",
            scoring=FIRST_TOKEN,
            description="Country (name or flag) -> last word of its official currency's name.",
        ),
        Task(
            id="animal_latin",
            family=CROSS_MODAL,
            source="animals",
            instruction="The scientific name of the animal's species in latin:",
            answer_type="binomial",
            scoring=FIRST_TOKEN,
            description="Mammal (name or photo) -> its binomial name in Latin.",
        ),
        Task(
            id="animal_young",
            family=CROSS_MODAL,
            source="animals",
            instruction="The term for the baby of the animal:",
            answer_type="word",
            scoring=FIRST_TOKEN,
            description="Mammal (name or photo) -> the English term for its young.",
        ),
        Task(
            id="food_color",
            family=CROSS_MODAL,
            source="foods",
            instruction="The color of the food:",
            answer_type="color",
            scoring=FIRST_TOKEN,
            description="Food (name or photo) -> its iconic colour.",
        ),
        Task(
            id="food_flavor",
            family=CROSS_MODAL,
            source="foods",
            instruction="The flavor descriptor of the food:",
            answer_type="flavor",
            scoring=FIRST_TOKEN,
            description="Food (name or photo) -> its dominant flavour descriptor.",
        ),
        Task(
            id="vqa_food_class",
            family=VQA,
            source="vqav2",
            instruction="What kind of food is this?",
            answer_type="short_answer",
            scoring=FIRST_TOKEN,
            default_query="image",
            description=(
                "VQAv2 images asked 'What kind of food is this?'; text version = dense caption."
            ),
        ),
        Task(
            id="vqa_shirt_color",
            family=VQA,
            source="vqav2",
            instruction="What color is the man's shirt?",
            answer_type="color",
            scoring=FIRST_TOKEN,
            default_query="image",
            description=(
                "VQAv2 images asked 'What color is the man's shirt?'; text version = dense caption."
            ),
        ),
        Task(
            id="vqa_man_holding",
            family=VQA,
            source="vqav2",
            instruction="What is the man holding?",
            answer_type="short_answer",
            scoring=FIRST_TOKEN,
            default_query="image",
            description=(
                "VQAv2 images asked 'What is the man holding?'; text version = dense caption."
            ),
        ),
        Task(
            id="override_semantic",
            family=OVERRIDING,
            source="vqav2",
            instruction="Answer the overriding question about the image.",
            answer_type="free_text",
            scoring=JUDGE,
            default_spec="instruction",
            description=(
                "Image + question 1 in the prompt; a different VQAv2 question patched as a vector."
            ),
            methods=OVERRIDING_METHODS,
        ),
        Task(
            id="override_syntax",
            family=OVERRIDING,
            source="vqav2",
            instruction="Answer in the overriding format (ALL CAPS, quotes or JSON).",
            answer_type="free_text",
            scoring=JUDGE,
            default_spec="instruction",
            description=(
                "Image + one formatting instruction in the prompt; a conflicting one patched."
            ),
            methods=OVERRIDING_METHODS,
        ),
        Task(
            id="override_creative",
            family=OVERRIDING,
            source="vqav2",
            instruction=(
                "Answer with the overriding creative output "
                "(book title, character or company name)."
            ),
            answer_type="free_text",
            scoring=JUDGE,
            default_spec="instruction",
            description=(
                "Image + one creative instruction in the prompt; a conflicting one patched."
            ),
            methods=OVERRIDING_METHODS,
        ),
        Task(
            id="override_factual",
            family=OVERRIDING,
            source="okvqa",
            instruction="Answer the overriding knowledge question about the image.",
            answer_type="free_text",
            scoring=JUDGE,
            default_spec="instruction",
            description="OK-VQA / A-OKVQA images with two conflicting knowledge questions.",
            methods=OVERRIDING_METHODS,
        ),
        Task(
            id="override_text",
            family=OVERRIDING,
            source="pools",
            instruction="Answer the conflicting task of the same pool (patched as an instruction).",
            answer_type="free_text",
            scoring=EXACT_AND_JUDGE,
            description=(
                "Text-only, from the shipped pools: a query set up for one task (capital, latin, "
                "color...) while the pool's other task (currency, young, flavor...) is patched; "
                "both labels are known, so it is scored by exact match and by the judge."
            ),
            methods=OVERRIDING_METHODS,
        ),
    ]
}

CROSS_MODAL_TASKS: tuple[str, ...] = tuple(t.id for t in TASKS.values() if t.family == CROSS_MODAL)


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


def task_family(task_id: str) -> str:
    """A task's family; a task file (a path, not a registered id) holds first-token items like
    the six cross-modal tasks."""
    return TASKS[task_id].family if task_id in TASKS else CROSS_MODAL


def list_tasks(family: str | None = None) -> list[Task]:
    return [t for t in TASKS.values() if family is None or t.family == family]
