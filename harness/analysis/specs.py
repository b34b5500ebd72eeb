"""`spec-curves`: patch accuracy per layer for each way of specifying the task, and the same
specification given in context, to tell a weak instruction vector's cause apart.

Specs: text examples, the instruction (read at its last token, as the paper does), the ensemble
(their mean), and two variants of where the instruction vector is read:
- `instruction_marker`: the instruction followed by the template's answer marker on a new line
  (`...country:\\nA:`), read at the marker's delimiter: the same kind of position the examples'
  vector and the patched query use;
- `instruction_prompt` (not a vector): the instruction and the query in one context, the prompt
  baseline for the instruction spec. If the model cannot follow the instruction in context, no
  vector read from it can carry the task, and the model's scale is the cause, not the protocol.

Every seed of `--seeds` is used: validation curves are averaged over the seeds and choose each
spec's own best layer; test accuracy is reported at that layer and at the session's layer (one
layer for all specs, as the run protocol does), and the in-context prompts draw their examples
per seed. Vectors the seeds share (the instruction's) are patched once. Paired bootstrap 95%
intervals over seeds and test items are given for each spec and prompt, and for the differences
the explanation rests on (DIFFERENCES); the per-item 0/1 scores are kept (`item_scores`).
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import torch

from benchmark import best_layer, uses_examples

from .. import engine
from ..intervals import analysis_intervals, bracket, estimates, stored_scores
from ..templates import Prompt
from ..vectors import extract_seeds_together
from .common import Session, accuracies

VECTOR_SPECS = ("text_examples", "instruction", "ensemble", "instruction_marker")
PROMPT_SPECS = ("instruction", "text_examples")  # given in context, as the prompt baseline
OWN_LAYER = "{} own layer"  # the name of a spec's test scores at its own best layer
PROMPT = "{} prompt"  # the name of a spec's in-context prompt baseline scores
# The claims, at the session layer: does the instruction (or the ensemble) carry the task as
# well as the examples; does reading the instruction at an answer marker help; can the model
# follow the instruction in context at all, against the examples in context.
DIFFERENCES = (
    ("instruction", "text_examples"),
    ("ensemble", "text_examples"),
    ("instruction_marker", "instruction"),
    (PROMPT.format("instruction"), PROMPT.format("text_examples")),
)


def _vectors(session: Session, task: str, seeds: list[int]) -> dict[str, list[torch.Tensor]]:
    """Each spec's vector for each seed (the instruction's and the marker's are the same for
    every seed: one extraction)."""
    adapter = session.adapter
    extract_seeds_together(adapter, session.context("text_examples"), task, seeds)
    examples = [session.vector(task, seed, "text_examples") for seed in seeds]
    instruction = session.vector(task, seeds[0], "instruction")
    text = session.data[task].instruction.rstrip() + "\n" + adapter.template.marker
    marker = engine.extract_task_vector(
        adapter, [adapter.wrap(Prompt(text))], session.config.batch_size
    )
    return {
        "text_examples": examples,
        "instruction": [instruction] * len(seeds),
        "ensemble": [(e + instruction) / 2 for e in examples],
        "instruction_marker": [marker] * len(seeds),
    }


def _distinct(
    vectors: dict[str, list[torch.Tensor]],
) -> tuple[list[torch.Tensor], dict[tuple[str, int], int]]:
    """The distinct vectors among all specs and seeds, and which one each (spec, seed index)
    is: a vector the seeds share is patched once, not once per seed."""
    unique: list[torch.Tensor] = []
    where: dict[tuple[str, int], int] = {}
    for spec, per_seed in vectors.items():
        for k, v in enumerate(per_seed):
            j = next((i for i, u in enumerate(unique) if u is v or torch.equal(u, v)), None)
            if j is None:
                unique.append(v)
                j = len(unique) - 1
            where[spec, k] = j
    return unique, where


def _hits(ctx: Any, task: str, items: list[dict], ids: torch.Tensor, prompts: list) -> np.ndarray:
    """The 0/1 score of each item under each column of first-token ids: [columns, items]."""
    return np.array(
        [ctx.score_tokens(task, items, col.tolist(), prompts)["lenient"] for col in ids.T],
        dtype=float,
    )


def _prompt_hits(session: Session, task: str, seeds: list[int]) -> dict[str, np.ndarray]:
    """Each spec of PROMPT_SPECS and the query in one context (its prompt baseline), for every
    seed in one pass: name -> [seeds, items]. An instruction prompt has no seeded part, so it
    runs once and stands for every seed."""
    prompts, spans = [], {}
    items = session.context().items(task, "test")
    for spec in PROMPT_SPECS:
        ctx = session.context(spec)
        drawn = seeds if uses_examples(spec) else seeds[:1]
        start = len(prompts)
        prompts += [ctx.spec_and_query_prompt(task, r, seed) for seed in drawn for r in items]
        spans[spec] = (start, len(drawn))
    ids = engine.first_tokens(session.adapter, prompts, session.config.batch_size)
    ctx, n_items = session.context(), len(items)
    out = {}
    for spec, (start, n) in spans.items():
        rows = []
        for k in range(n):
            part = slice(start + k * n_items, start + (k + 1) * n_items)
            rows.append(ctx.score_tokens(task, items, ids[part].tolist(), prompts[part])["lenient"])
        out[PROMPT.format(spec)] = np.repeat(np.array(rows, dtype=float), len(seeds) // n, axis=0)
    return out


def run(session: Session) -> tuple[dict[str, Any], Any, str]:
    layer = session.layer()["layer"]
    seeds = list(session.config.seeds)
    ctx = session.context()
    n_layers = session.adapter.num_layers
    # spec -> task -> [seed][layer] validation accuracy
    by_seed: dict[str, dict[str, list[list[float]]]] = {s: {} for s in VECTOR_SPECS}
    vectors = {}
    for task in session.progress("validation curves"):
        vectors[task] = _distinct(_vectors(session, task, seeds))
        unique, where = vectors[task]
        items = ctx.items(task, "validation")
        prompts = [ctx.query_prompt(r) for r in items]
        patches = [(la, v[la]) for v in unique for la in range(n_layers)]
        acc = accuracies(
            ctx, task, items, engine.last_token_variants(session.adapter, prompts, patches), prompts
        )
        for spec in VECTOR_SPECS:
            by_seed[spec][task] = [
                acc[where[spec, k] * n_layers : (where[spec, k] + 1) * n_layers]
                for k in range(len(seeds))
            ]
    curves = {
        s: {
            t: [statistics.fmean(c) for c in zip(*runs, strict=True)] for t, runs in by_task.items()
        }
        for s, by_task in by_seed.items()
    }
    mean_curve = {
        s: [statistics.fmean(curves[s][t][la] for t in session.tasks) for la in range(n_layers)]
        for s in VECTOR_SPECS
    }
    best = {s: best_layer(mean_curve[s]) for s in VECTOR_SPECS}
    scores: dict[str, dict[str, np.ndarray]] = {}  # task -> variant name -> [seeds, items]
    doc_ids: dict[str, list[str]] = {}
    for task in session.progress("test"):
        unique, where = vectors[task]
        items = ctx.items(task, "test")
        prompts = [ctx.query_prompt(r) for r in items]
        doc_ids[task] = [r["id"] for r in items]
        columns: dict[tuple[int, int], int] = {}  # (distinct vector, layer) -> patch
        for spec in VECTOR_SPECS:
            for k in range(len(seeds)):
                for la in (layer, best[spec]):
                    columns.setdefault((where[spec, k], la), len(columns))
        patches = [(la, unique[j][la]) for j, la in columns]
        ids = engine.last_token_variants(session.adapter, prompts, patches)
        hits = _hits(ctx, task, items, ids, prompts)
        scores[task] = {}
        for spec in VECTOR_SPECS:
            for name, la in ((spec, layer), (OWN_LAYER.format(spec), best[spec])):
                scores[task][name] = hits[[columns[where[spec, k], la] for k in range(len(seeds))]]
        scores[task].update(_prompt_hits(session, task, seeds))
    intervals = analysis_intervals(scores, DIFFERENCES)
    test = {
        s: {
            t: {
                "own_layer": float(scores[t][OWN_LAYER.format(s)].mean()),
                "session_layer": float(scores[t][s].mean()),
            }
            for t in session.tasks
        }
        for s in VECTOR_SPECS
    }
    in_context = {
        s: {t: float(scores[t][PROMPT.format(s)].mean()) for t in session.tasks}
        for s in PROMPT_SPECS
    }
    result = {
        "layer": session.layer(),
        "seeds": seeds,
        "validation_curve": curves,
        "mean_curve": mean_curve,
        "best_layer": best,
        "test": test,
        "test_average": {
            s: {
                k: statistics.fmean(test[s][t][k] for t in session.tasks)
                for k in ("own_layer", "session_layer")
            }
            for s in VECTOR_SPECS
        },
        "prompt": in_context,
        "prompt_average": {s: statistics.fmean(v.values()) for s, v in in_context.items()},
        "intervals": intervals,
        "item_scores": {"doc_ids": doc_ids, "by_task": stored_scores(scores)},
    }
    avg, bounds = result["test_average"], intervals["average"]
    lines = [
        f"patch accuracy per spec, mean over seeds {', '.join(map(str, seeds))} "
        f"[paired 95% interval], avg over tasks; session layer {layer}"
    ]
    lines.append(f"{'spec':24} {'best layer':>10} {'test@best':>20} {'test@' + str(layer):>20}")
    for s in VECTOR_SPECS:
        own = f"{avg[s]['own_layer']:.2f} {bracket(bounds[OWN_LAYER.format(s)])}"
        at = f"{avg[s]['session_layer']:.2f} {bracket(bounds[s])}"
        lines.append(f"{s:24} {best[s]:10d} {own:>20} {at:>20}")
    for s, v in result["prompt_average"].items():
        cell = f"{v:.2f} {bracket(bounds[PROMPT.format(s)])}"
        lines.append(f"{s + ' in context':24} {'':10} {'':20} {cell:>20}   (prompt, no patch)")
    point = estimates(scores, DIFFERENCES)["average"]
    for a, b in DIFFERENCES:
        name = f"{a} - {b}"
        lines.append(f"{name:45} {point[name]:+.2f} {bracket(bounds[name], signed=True)}")

    def figure(path: Any) -> None:
        from .plots import spec_curves_figure

        spec_curves_figure(
            result, path, f"{session.config.model}: patching per spec (session layer {layer})"
        )

    return result, figure, "\n".join(lines)
