"""The project README's figures that come from the committed CPU submissions, written by code so
they cannot drift from the JSON: `python -m leaderboard.findings` rewrites the block between
the markers in ../README.md, and a test fails when the block differs from what this writes.

Two blocks. `cpu-scores`, for each CPU model: the first-token accuracy (the paper's rule) of
`prompt` and `patch` with its 95% paired bootstrap interval, the same answers scored whole
(exactly, and normalised), the patch one layer off the chosen one, and the paired difference
patch - prompt with its interval. `paper-findings`: each claim of the paper (leaderboard.claims)
with the paper's number, each model's, and whether it reproduces, by the claim's stated rule;
then the template question (the paper's `Q:{x}\nA:{y}` against `spaced`) from the runs
committed under docs/<model>/template-paper/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from . import ROOT, claims
from .claims import interval, num, signed, task_mean

README = ROOT.parent / "README.md"
BEGIN = "<!-- cpu-scores: written by `python -m leaderboard.findings` from the submissions -->"
END = "<!-- /cpu-scores -->"
FINDINGS_BEGIN = (
    "<!-- paper-findings: written by `python -m leaderboard.findings` from docs/ and the "
    "submissions -->"
)
FINDINGS_END = "<!-- /paper-findings -->"
TEMPLATE_DOCS = "template-paper"  # docs/template-paper/<model>/: results.json, analysis/
MODELS = {m.label: m.submission for m in claims.MODELS}  # column label -> submission
METHODS = ("prompt", "patch")


def scores_block(submissions: Path = ROOT / "submissions") -> str:
    """The block's Markdown: one column per (model, method)."""
    docs = {
        m: json.loads((submissions / f).read_text("utf-8"))["results"] for m, f in MODELS.items()
    }
    head = ["score (mean of the six tasks, 3 seeds)"]
    head += [f"{m} {method}" for m in docs for method in METHODS]
    rows: list[list[str]] = []

    def row(label: str, cell: Any) -> None:
        """A row of cells; "—" where a submission does not carry the figure (a run made before
        whole answers or intervals were recorded)."""

        def shown(doc: dict[str, Any], method: str) -> str:
            try:
                return cell(doc, method)
            except KeyError:
                return "—"

        rows.append([label] + [shown(doc, method) for doc in docs.values() for method in METHODS])

    row("first token (the paper's rule)", lambda d, m: num(task_mean(d, m, "acc")))
    row("its 95% interval", lambda d, m: interval(d["intervals"]["average"][m]))
    row("whole answer, exactly", lambda d, m: num(task_mean(d, m, "whole_answer", "acc")))
    row("its 95% interval", lambda d, m: interval(d["intervals"]["whole_answer"]["average"][m]))
    row(
        "whole answer, normalised",
        lambda d, m: num(task_mean(d, m, "whole_answer", "acc_normalised")),
    )

    def near(d: dict[str, Any], m: str) -> str:
        if m != "patch":
            return ""
        first = next(iter(d["results"].values()))["patch"]
        layer = first["layer"]
        shown = [
            f"L{n}: {num(task_mean(d, 'patch', 'neighbour_layers', str(n)))}"
            for n in (layer - 1, layer + 1)
            if str(n) in first.get("neighbour_layers", {})
        ]
        if not shown:
            raise KeyError("neighbour_layers")
        return f"L{layer}; " + ", ".join(shown)

    row("patch one layer off (test)", near)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    diffs = []
    for model, d in docs.items():
        if "whole_answer" not in d.get("intervals", {}):
            continue
        first = task_mean(d, "patch", "acc") - task_mean(d, "prompt", "acc")
        whole = task_mean(d, "patch", "whole_answer", "acc")
        whole -= task_mean(d, "prompt", "whole_answer", "acc")
        diffs.append(
            f"{model}: patch - prompt {signed(first)} "
            f"{interval(d['intervals']['average']['patch - prompt'])} on the first token, "
            f"{signed(whole)} "
            f"{interval(d['intervals']['whole_answer']['average']['patch - prompt'])} "
            "on whole answers"
        )
    tail = ["", "; ".join(diffs) + "."] if diffs else []
    return "\n".join([BEGIN, "", *lines, *tail, "", END])


def findings_block(docs: Path = claims.DOCS, submissions: Path = ROOT / "submissions") -> str:
    """The claims table (paper | each model | reproduces?) and the template comparison."""
    labels = [m.label for m in claims.MODELS]
    head = ["the paper's claim", "paper", *labels, "reproduces?"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in claims.verdicts(docs, submissions):
        cells = [row["by_model"][label] for label in labels]
        found = {verdict for _, verdict in cells}
        overall = (
            found.pop()
            if len(found) == 1
            else "; ".join(f"{label}: {v}" for label, (_, v) in zip(labels, cells, strict=True))
        )
        lines.append(
            "| "
            + " | ".join([row["claim"], row["paper"], *(text for text, _ in cells), overall])
            + " |"
        )
    return "\n".join(
        [FINDINGS_BEGIN, "", *lines, "", *template_lines(docs, submissions), "", FINDINGS_END]
    )


def template_lines(docs: Path, submissions: Path) -> list[str]:
    """Mean first-token accuracy under `spaced` (the submissions and docs/<model>/analysis) and
    the paper's template (the runs committed under docs/template-paper/<model>/): prompt,
    patch, their paired difference, and the instruction's vector (spec-curves)."""
    head = ["model", "template", "prompt", "patch", "patch - prompt", "instruction patch"]
    templates = (
        ("spaced `Q: {x}\\nA: {y}`", docs, lambda e: e.results()),
        ("paper `Q:{x}\\nA:{y}`", docs / TEMPLATE_DOCS, lambda e: e.file("results.json")),
    )
    rows = []
    for model in claims.MODELS:
        for name, root, load in templates:
            cells = [model.label, name]
            evidence = claims.Evidence(model, root, submissions)
            try:
                doc = load(evidence)
                prompt, patch = task_mean(doc, "prompt", "acc"), task_mean(doc, "patch", "acc")
                pair = doc["intervals"]["average"]["patch - prompt"]
                cells += [num(prompt), num(patch), f"{signed(patch - prompt)} {interval(pair)}"]
            except claims.NotRun:
                cells += ["not run"] * 3
            try:
                avg = evidence.analysis("spec-curves")["test_average"]["instruction"]
                cells.append(num(avg["session_layer"]))
            except claims.NotRun:
                cells.append("not run")
            rows.append(cells)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def current_block(readme: str, begin: str = BEGIN, end: str = END) -> str | None:
    start, stop = readme.find(begin), readme.find(end)
    return readme[start : stop + len(end)] if 0 <= start < stop else None


def main() -> int:
    readme = README.read_text("utf-8")
    for begin, end, write in (
        (BEGIN, END, scores_block),
        (FINDINGS_BEGIN, FINDINGS_END, findings_block),
    ):
        block = current_block(readme, begin, end)
        if block is None:
            print(f"{README}: no {begin!r} ... {end!r} block to write", file=sys.stderr)
            return 1
        readme = readme.replace(block, write())
    README.write_text(readme, "utf-8")
    print(f"wrote the CPU scores and paper findings blocks of {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
