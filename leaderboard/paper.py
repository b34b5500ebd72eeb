"""The paper's reported figures, entered as `reported` submissions (never as reproduced runs).

The rows below are Table 2 of Luo, Darrell & Bar (ICML 2025), cross-modal patching onto image
queries, copied line for line from the project's DESIGN.md §3 so the two can be diffed.
`vlm-tv-leaderboard reported` writes them to `submissions/`. The paper's own Avg column is kept
in each submission's notes; the leaderboard recomputes averages from the per-task values, as it
does for every row, so a reported average can differ from the paper's by 0.01 (rounding).

Left out: the text->text and image->text patch averages and the LLM->VLM figures, which the
paper gives without per-task values; a reported submission holds per-task accuracies only.
"""

from __future__ import annotations

from typing import Any

SOURCE = "Luo et al. 2025 (ICML), Table 2"
CITATION = (
    "Luo, Darrell & Bar, Vision-Language Models Create Cross-Modal Task Representations, "
    "ICML 2025, arXiv:2410.22330"
)
ENTERED = "2026-11-22"  # when these rows were entered; fixed so regenerating them is a no-op
SUBMITTED_BY = "vlm-tv-eval developers"
QUERY = "image"  # Table 2 patches onto image queries

# Column order of the table.
TASKS = (
    "country_capital",
    "country_currency",
    "animal_latin",
    "animal_young",
    "food_color",
    "food_flavor",
)

# model | method | Capital Currency Latin Young Color Flavor / Avg
TABLE_2 = """
— | Random (majority) | .00 .12 .00 .18 .24 .31 / .14
LLaVA-1.5 | No Context | .00 .00 .00 .00 .00 .00 / .00
LLaVA-1.5 | Text Examples Prompt | .02 .18 .03 .23 .28 .37 / .18
LLaVA-1.5 | Text Examples Patch | .31 .30 .26 .18 .53 .31 / .32
Mantis-Fuyu | No Context | .00 .00 .00 .00 .00 .00 / .00
Mantis-Fuyu | Image Examples Prompt | .11 .13 .24 .05 .34 .23 / .18
Mantis-Fuyu | Image Examples Patch | .17 .03 .16 .05 .50 .31 / .20
Mantis-Fuyu | Text Examples Prompt | .09 .06 .08 .02 .23 .04 / .09
Mantis-Fuyu | Text Examples Patch | .32 .23 .36 .09 .51 .36 / .31
Idefics2 | No Context | .03 .00 .03 .00 .01 .01 / .01
Idefics2 | Image Examples Prompt | .71 .57 .43 .12 .41 .35 / .43
Idefics2 | Image Examples Patch | .58 .32 .40 .03 .39 .17 / .31
Idefics2 | Text Examples Prompt | .11 .03 .41 .13 .21 .18 / .18
Idefics2 | Text Examples Patch | .61 .40 .48 .62 .53 .39 / .51
"""

# Paper model name -> (model id as the harness names it, leaderboard display name).
MODELS = {
    "—": ("random", "Random baseline (paper)"),
    "LLaVA-1.5": ("llava-1.5", "LLaVA-1.5 (paper)"),
    "Mantis-Fuyu": ("mantis-fuyu", "Mantis-Fuyu (paper)"),
    "Idefics2": ("idefics2", "Idefics2 (paper)"),
}

# Paper row label -> (spec, or None when the row does not depend on the examples; method id).
METHODS = {
    "Random (majority)": (None, "majority"),
    "No Context": (None, "no_context"),
    "Image Examples Prompt": ("image_examples", "prompt"),
    "Image Examples Patch": ("image_examples", "patch"),
    "Text Examples Prompt": ("text_examples", "prompt"),
    "Text Examples Patch": ("text_examples", "patch"),
}


def table_rows() -> list[tuple[str, str, dict[str, float], float]]:
    """(paper model, paper method label, per-task accuracy, paper's Avg) for each line."""
    rows = []
    for line in TABLE_2.strip().splitlines():
        model, method, values = (part.strip() for part in line.split("|"))
        per_task, avg = values.split("/")
        numbers = [float(v) for v in per_task.split()]
        if len(numbers) != len(TASKS):
            raise ValueError(f"Table 2 line has {len(numbers)} values, not {len(TASKS)}: {line}")
        rows.append((model, method, dict(zip(TASKS, numbers, strict=True)), float(avg)))
    return rows


def _settings() -> list[str]:
    """The specs Table 2 covers, in file order."""
    specs = [spec for spec, _ in METHODS.values() if spec]
    return sorted(set(specs), key=specs.index)


def paper_submissions() -> list[dict[str, Any]]:
    """One reported submission per (model, spec) of Table 2.

    Rows that do not depend on the examples (No Context, Random) are repeated under each spec
    the model has in the table, so every setting's table shows its baselines; the notes say so.
    """
    rows = table_rows()
    out = []
    for paper_model, (model_id, display) in MODELS.items():
        own = [r for r in rows if r[0] == paper_model]
        model_specs = {METHODS[label][0] for _, label, _, _ in own} - {None}
        for spec in [s for s in _settings() if s in model_specs or not model_specs]:
            results: dict[str, dict[str, Any]] = {task: {} for task in TASKS}
            paper_avgs = []
            for _, label, per_task, avg in own:
                row_spec, method = METHODS[label]
                if row_spec not in (None, spec):
                    continue
                for task, acc in per_task.items():
                    results[task][method] = {"acc": acc}
                paper_avgs.append(f"{label} {avg:.2f}")
            notes = (
                f"Reported in {CITATION}; not reproduced. Test accuracy, 3 seeds averaged; no "
                f"std or layer given. Paper's Avg column: {'; '.join(paper_avgs)}. "
                "Rows that do not depend on the examples (No Context, Random) are the same "
                "figures in each setting."
            )
            out.append(
                {
                    "kind": "submission",
                    "submission": {
                        "name": display,
                        "submitted_by": SUBMITTED_BY,
                        "date": ENTERED,
                        "notes": notes,
                        "reported": True,
                        "source": SOURCE,
                    },
                    "results": {
                        "model": {"name": model_id},
                        "config": {"spec": spec, "query": QUERY},
                        "results": results,
                    },
                }
            )
    return out
