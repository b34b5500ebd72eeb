"""The paper's reported figures, entered as `reported` submissions (never as reproduced runs).

The tables (`paper_tables.py`) are copied line for line from the project's DESIGN.md §3 (Luo,
Darrell & Bar, ICML 2025) so the two can be diffed; `vlm-tv-leaderboard reported` writes them to
`submissions/`.
Each row is recorded the way the harness records a run of the same experiment (`config.spec`,
`config.query`, `config.tasks`, `config.template`, and for LLM → VLM `config.source_model` and the
`transfer` cosines), so a reproduction lands in the same leaderboard section next to it
(`labels.Section`):

- Table 2: cross-modal patching onto image queries (the paper's headline);
- Tables 3 and 11: LLM → VLM, vectors from the VLM's base LLM (Vicuna-7B for LLaVA-1.5,
  Mistral-7B for Idefics2) patched into the VLM; Table 3's mean cosine similarity of the two
  vectors goes into `transfer.mean_cosine`, as the harness records it. Table 3's mismatched-task
  figure (.58) is one number for no stated model, so it is in the notes only;
- Table 4: the VQA subsets on Idefics2;
- Table 10: Idefics2 in its own chat format (`--template model`);
- Table 12: patching for every spec → query pair; its new rows are text → text and image → text;
- Table 5 (task overriding): one reported submission whose tasks are the four overriding
  settings, shown in the leaderboard's overriding section. The paper names GPT-4o as the judge
  but no dated snapshot or temperature: the submission's `judge` says so instead of guessing.

Rows that repeat figures already entered (Table 11's VLM-VLM and Table 12's I→I and T→I rows are
Table 2's patch rows) are not entered twice; the tests check that they are equal. "–" (not run in
the paper) makes no row. The paper's own Avg column is kept in each submission's notes; the
leaderboard recomputes averages from the per-task values, as for every row, so a reported average
can differ from the paper's by 0.01 (rounding). Every average the paper gives (text → text,
image → text, LLM → VLM, VQA) has its per-task values in these tables, so no row holds an average
alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from benchmark.strict_json import canonical_sha256

from .paper_tables import (
    TABLE_2,
    TABLE_3,
    TABLE_4,
    TABLE_5,
    TABLE_10,
    TABLE_11,
    TABLE_12,
    TASKS,
    VQA_TASKS,
)

PAPER = "Luo et al. 2025 (ICML)"
SOURCE = f"{PAPER}, Table 2"
CITATION = (
    "Luo, Darrell & Bar, Vision-Language Models Create Cross-Modal Task Representations, "
    "ICML 2025, arXiv:2410.22330"
)
ENTERED = "2026-11-22"  # when these rows were entered; fixed so regenerating them is a no-op
SUBMITTED_BY = "vlm-tv-eval developers"
QUERY = "image"  # Table 2 patches onto image queries

# The paper's prompt template, as the harness records its `paper` template in `config.template`.
PAPER_TEMPLATE = {
    "name": "paper",
    "example": "Q:{x}\nA:{y}",
    "query": "Q:{x}\nA:",
    "separator": "\n\n",
    "marker": "A:",
}
# Table 10: Idefics2's chat format around each example. The harness records a chat run's
# wrapping in `config.template.chat`; the paper gives no separator.
CHAT_TEMPLATE = {
    "name": "model",
    "example": "User:{x}<end_of_utterance>\nAssistant:{y}",
    "query": "User:{x}<end_of_utterance>\nAssistant:",
    "chat": {"before": "User:", "after": "<end_of_utterance>\nAssistant:", "wraps": "each example"},
}

SOURCE_TABLE_5 = f"{PAPER}, Table 5"
TABLE_5_TASKS = ("override_semantic", "override_syntax", "override_creative", "override_factual")
TABLE_5_METHODS = {
    "Original": "original",
    "+ System Prompt": "system_prompt",
    "+ Instruction Patch": "instruction_patch",
}
# The model of the overriding study: Idefics2 as far as this project knows; the notes say it was
# not checked against the paper's text.
TABLE_5_MODEL = "Idefics2"
# The paper's judge is GPT-4o; it gives no dated snapshot and no temperature.
TABLE_5_JUDGE = {
    "model": "gpt-4o (paper; snapshot not stated)",
    "temperature": None,
    "base_url": None,
}

# Paper model name -> (model id as the harness names it, leaderboard display name).
MODELS = {
    "—": ("random", "Random baseline (paper)"),
    "LLaVA-1.5": ("llava-1.5", "LLaVA-1.5 (paper)"),
    "Mantis-Fuyu": ("mantis-fuyu", "Mantis-Fuyu (paper)"),
    "Idefics2": ("idefics2", "Idefics2 (paper)"),
}
# The VLM's base LLM (Table 11), as the harness names it (`--source_model`), and as the paper does.
BASE_LLMS = {"LLaVA-1.5": ("vicuna-7b", "Vicuna-7B"), "Idefics2": ("mistral-7b", "Mistral-7B")}

# Paper row label -> (spec, or None when the row does not depend on the examples; method id).
METHODS = {
    "Random (majority)": (None, "majority"),
    "No Context": (None, "no_context"),
    "Image Examples Prompt": ("image_examples", "prompt"),
    "Image Examples Patch": ("image_examples", "patch"),
    "Text Examples Prompt": ("text_examples", "prompt"),
    "Text Examples Patch": ("text_examples", "patch"),
}

# A table's row label -> (spec or None, query, method id), or the label of the Table 2 row that
# holds the same figures (entered there, not again).
RowMap = Mapping[str, "tuple[str | None, str, str] | str"]
IMAGE_QUERY_ROWS: RowMap = {label: (spec, "image", m) for label, (spec, m) in METHODS.items()}
TABLE_11_ROWS: RowMap = {
    "VLM-VLM": "Text Examples Patch",
    "LLM-VLM (Vicuna)": ("text_examples", "image", "patch"),
    "LLM-VLM (Mistral)": ("text_examples", "image", "patch"),
}
TABLE_12_ROWS: RowMap = {
    "I→I": "Image Examples Patch",
    "T→I": "Text Examples Patch",
    "T→T": ("text_examples", "text", "patch"),
    "I→T": ("image_examples", "text", "patch"),
}


class Line(NamedTuple):
    """One line of a table: paper model, row label, per-task figures and the paper's Avg
    (both None for "–", not run)."""

    model: str
    label: str
    values: dict[str, float] | None
    avg: float | None


@dataclass(frozen=True)
class Table:
    """A table of per-task test accuracies and how its rows are recorded."""

    cite: str  # "Table 2"; the submissions' source is "Luo et al. 2025 (ICML), <cite>"
    text: str
    rows: RowMap
    tasks: tuple[str, ...] = TASKS
    what: str = ""  # what the table measured, for the notes
    template: Mapping[str, Any] = field(default_factory=lambda: PAPER_TEMPLATE)
    from_base_llm: bool = False  # vectors from the VLM's base LLM (BASE_LLMS)

    @property
    def source(self) -> str:
        return f"{PAPER}, {self.cite}"

    def lines(self) -> list[Line]:
        out = []
        for line in self.text.strip().splitlines():
            model, label, values = (part.strip() for part in line.split("|"))
            if label not in self.rows:
                raise ValueError(f"{self.cite}: unknown row label {label!r}: {line}")
            if values == "–":
                out.append(Line(model, label, None, None))
                continue
            per_task, avg = values.split("/")
            numbers = [float(v) for v in per_task.split()]
            if len(numbers) != len(self.tasks):
                raise ValueError(
                    f"{self.cite} line has {len(numbers)} values, not {len(self.tasks)}: {line}"
                )
            out.append(Line(model, label, dict(zip(self.tasks, numbers, strict=True)), float(avg)))
        return out


TABLES = {
    "Table 2": Table("Table 2", TABLE_2, IMAGE_QUERY_ROWS),
    "Table 11": Table(
        "Tables 3 and 11",
        TABLE_11,
        TABLE_11_ROWS,
        what="LLM → VLM: task vectors from text examples in the base LLM ({llm}), patched into "
        "the VLM at the same layer, on image queries. Table 3: mean cosine similarity of the "
        "LLM's and the VLM's vectors for the same task {cosine}; for mismatched tasks "
        "(its Random row) {mismatched}, one figure in the paper, not given per model. Table 11's "
        "VLM-VLM row is Table 2's Text Examples Patch row, entered there.",
        from_base_llm=True,
    ),
    "Table 4": Table(
        "Table 4",
        TABLE_4,
        IMAGE_QUERY_ROWS,
        tasks=VQA_TASKS,
        what="VQA subsets of VQAv2 (one question asked of many images) on image queries; the "
        "text version of an image is its dense caption (LLaVA-ReCap), so text examples are "
        "caption → answer pairs.",
    ),
    "Table 10": Table(
        "Table 10",
        TABLE_10,
        IMAGE_QUERY_ROWS,
        what="In the model's chat template, each example as "
        "User:{x}<end_of_utterance>\\nAssistant:{y}. The harness's `--template model` writes "
        "exactly these turns for Idefics2 (other models: the turns of their own chat template; "
        "`--template model_one_turn` is the other ablation: the whole Q:/A: prompt in one user "
        "turn).",
        template=CHAT_TEMPLATE,
    ),
    "Table 12": Table(
        "Table 12",
        TABLE_12,
        TABLE_12_ROWS,
        what="Patch for each spec → query pair; these are its text-query rows (T→T, I→T). "
        "Its I→I and T→I rows are Table 2's patch rows, entered there; a dash (not run) "
        "makes no row. The paper's text → text and image → text averages are these rows' "
        "means.",
    ),
}


def cosines() -> dict[str, float]:
    """Table 3: paper model (or "Random (mismatched)") -> mean cosine similarity."""
    out = {}
    for line in TABLE_3.strip().splitlines():
        model, value = (part.strip() for part in line.split("|"))
        out[model] = float(value)
    return out


def table_rows() -> list[Line]:
    """(paper model, paper method label, per-task accuracy, paper's Avg) for each line of
    Table 2."""
    return TABLES["Table 2"].lines()


def paper_submissions() -> list[dict[str, Any]]:
    """Every reported submission: Tables 2, 3/11, 4, 10 and 12, then Table 5's."""
    subs = [sub for table in TABLES.values() for sub in table_submissions(table)]
    return subs + [table_5_submission()]


def table_2_submissions() -> list[dict[str, Any]]:
    return table_submissions(TABLES["Table 2"])


def _entered(table: Table) -> list[Line]:
    """The lines that make rows: not "–", and not a repeat of a row entered from Table 2."""
    return [
        line
        for line in table.lines()
        if line.values is not None and not isinstance(table.rows[line.label], str)
    ]


def table_submissions(table: Table) -> list[dict[str, Any]]:
    """One reported submission per (model, spec, query) of a table.

    Rows that do not depend on the examples (No Context, Random) are repeated under each spec
    the model has in the table, so every setting's table shows its baselines; the notes say so.
    """
    lines = _entered(table)
    every = _settings(table, lines)
    out = []
    for paper_model, (model_id, display) in MODELS.items():
        own = [line for line in lines if line.model == paper_model]
        if not own:
            continue
        for spec, query in _settings(table, own) or every:
            chosen = []
            for line in own:
                row_spec, row_query, method = table.rows[line.label]
                if row_spec in (None, spec) and row_query == query:
                    chosen.append((line, method, row_spec is None))
            out.append(_submission(table, paper_model, model_id, display, spec, query, chosen))
    return out


def _settings(table: Table, lines: list[Line]) -> list[tuple[str, str]]:
    """The (spec, query) pairs the lines cover, in table order."""
    found = []
    for line in lines:
        spec, query, _ = table.rows[line.label]
        if spec and (spec, query) not in found:
            found.append((spec, query))
    return found


def _submission(
    table: Table,
    paper_model: str,
    model_id: str,
    display: str,
    spec: str,
    query: str,
    chosen: list[tuple[Line, str, bool]],
) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {task: {} for task in table.tasks}
    for line, method, _ in chosen:
        for task, acc in (line.values or {}).items():
            results[task][method] = {"acc": acc}
    model: dict[str, Any] = {"name": model_id}
    config: dict[str, Any] = {"spec": spec, "query": query}
    what = table.what
    transfer = None
    if table.from_base_llm:
        llm, llm_name = BASE_LLMS[paper_model]
        cos = cosines()
        model["source_model"] = {"name": llm}
        config["source_model"] = llm
        transfer = {"source_model": llm, "mean_cosine": cos[paper_model]}
        what = what.format(
            llm=llm_name,
            cosine=f"{cos[paper_model]:.2f}",
            mismatched=f"{cos['Random (mismatched)']:.2f}",
        )
    config["tasks"] = list(table.tasks)
    config["template"] = dict(table.template)
    avgs = "; ".join(f"{line.label} {line.avg:.2f}" for line, _, _ in chosen)
    notes = (
        f"Reported in {CITATION} ({table.cite}); not reproduced. "
        + (f"{what} " if what else "")
        + f"Test accuracy, 3 seeds averaged; no std or layer given. Paper's Avg column: {avgs}."
    )
    if any(shared for _, _, shared in chosen):
        notes += (
            " Rows that do not depend on the examples (No Context, Random) are the same "
            "figures in each setting."
        )
    body: dict[str, Any] = {"model": model, "config": config, "results": results}
    if transfer:
        body["transfer"] = transfer
    return _reported(display, notes, table.source, body)


def _reported(name: str, notes: str, source: str, results: dict[str, Any]) -> dict[str, Any]:
    """A reported submission, with the sha256 of its results as `add` records it."""
    return {
        "kind": "submission",
        "submission": {
            "name": name,
            "submitted_by": SUBMITTED_BY,
            "date": ENTERED,
            "notes": notes,
            "reported": True,
            "source": source,
            "results_sha256": canonical_sha256(results),
        },
        "results": results,
    }


def table_5_rows() -> list[tuple[str, dict[str, float]]]:
    """(paper method label, rate per overriding setting) for each line of Table 5."""
    rows = []
    for line in TABLE_5.strip().splitlines():
        method, values = (part.strip() for part in line.split("|"))
        numbers = [float(v) for v in values.split()]
        if len(numbers) != len(TABLE_5_TASKS):
            raise ValueError(f"Table 5 line has {len(numbers)} values, not 4: {line}")
        rows.append((method, dict(zip(TABLE_5_TASKS, numbers, strict=True))))
    return rows


def table_5_submission() -> dict[str, Any]:
    """Table 5 as one reported submission: the overriding settings, three methods each."""
    model_id, display = MODELS[TABLE_5_MODEL]
    results: dict[str, dict[str, Any]] = {task: {} for task in TABLE_5_TASKS}
    for label, per_task in table_5_rows():
        for task, rate in per_task.items():
            results[task][TABLE_5_METHODS[label]] = {"acc": rate}
    notes = (
        f"Reported in {CITATION}; not reproduced. Task overriding: the image and the original "
        "question in the prompt; the conflicting task left out (Original), written into the "
        "system prompt, or patched as an instruction vector. Each figure is the share of "
        "answers that the judge, GPT-4o, sorts as addressing the overriding task or both "
        "(choice B or C). The paper gives no judge snapshot or temperature, and no std, n or "
        f"layer. The model is recorded as {TABLE_5_MODEL} as far as this project knows: not "
        "confirmed against the paper's text when this row was entered."
    )
    return _reported(
        display,
        notes,
        SOURCE_TABLE_5,
        {
            "model": {"name": model_id},
            "config": {"spec": "instruction", "query": QUERY},
            "judge": dict(TABLE_5_JUDGE),
            "results": results,
        },
    )
