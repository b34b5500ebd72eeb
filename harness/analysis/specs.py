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

Validation curves choose each spec's own best layer; test accuracy is reported at that layer and
at the session's layer (one layer for all specs, as the run protocol does).
"""

from __future__ import annotations

import statistics
from typing import Any

import torch

from benchmark import best_layer

from .. import engine
from ..templates import Prompt
from .common import Session, accuracies

VECTOR_SPECS = ("text_examples", "instruction", "ensemble", "instruction_marker")


def _vectors(session: Session, task: str, seed: int) -> dict[str, torch.Tensor]:
    adapter = session.adapter
    examples = session.vector(task, seed, "text_examples")
    instruction = session.vector(task, seed, "instruction")
    text = session.data[task].instruction.rstrip() + "\n" + adapter.template.marker
    marker = engine.extract_task_vector(
        adapter, [adapter.wrap(Prompt(text))], session.config.batch_size
    )
    return {
        "text_examples": examples,
        "instruction": instruction,
        "ensemble": (examples + instruction) / 2,
        "instruction_marker": marker,
    }


def _prompt_accuracy(session: Session, task: str, spec: str, seed: int) -> float:
    """The specification and the query in one context (the prompt baseline of `spec`)."""
    ctx = session.context(spec)
    items = ctx.items(task, "test")
    prompts = [ctx.spec_and_query_prompt(task, r, seed) for r in items]
    ids = engine.first_tokens(session.adapter, prompts, session.config.batch_size)
    return accuracies(ctx, task, items, ids, prompts)[0]


def run(session: Session) -> tuple[dict[str, Any], Any, str]:
    layer = session.layer()["layer"]
    seed = session.config.seeds[0]
    ctx = session.context()
    n_layers = session.adapter.num_layers
    curves: dict[str, dict[str, list[float]]] = {s: {} for s in VECTOR_SPECS}
    vectors = {}
    for task in session.progress("validation curves"):
        vectors[task] = _vectors(session, task, seed)
        items = ctx.items(task, "validation")
        prompts = [ctx.query_prompt(r) for r in items]
        patches = [(la, vectors[task][s][la]) for s in VECTOR_SPECS for la in range(n_layers)]
        acc = accuracies(
            ctx, task, items, engine.last_token_variants(session.adapter, prompts, patches), prompts
        )
        for i, spec in enumerate(VECTOR_SPECS):
            curves[spec][task] = acc[i * n_layers : (i + 1) * n_layers]
    mean_curve = {
        s: [statistics.fmean(curves[s][t][la] for t in session.tasks) for la in range(n_layers)]
        for s in VECTOR_SPECS
    }
    best = {s: best_layer(mean_curve[s]) for s in VECTOR_SPECS}
    test: dict[str, dict[str, dict[str, float]]] = {s: {} for s in VECTOR_SPECS}
    for task in session.progress("test"):
        items = ctx.items(task, "test")
        prompts = [ctx.query_prompt(r) for r in items]
        patches = [(la, vectors[task][s][la]) for s in VECTOR_SPECS for la in (best[s], layer)]
        acc = accuracies(
            ctx, task, items, engine.last_token_variants(session.adapter, prompts, patches), prompts
        )
        for i, spec in enumerate(VECTOR_SPECS):
            test[spec][task] = {"own_layer": acc[2 * i], "session_layer": acc[2 * i + 1]}
    in_context = {
        spec: {t: _prompt_accuracy(session, t, spec, seed) for t in session.tasks}
        for spec in ("instruction", "text_examples")
    }
    result = {
        "layer": session.layer(),
        "seed": seed,
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
    }
    avg = result["test_average"]
    lines = [f"patch accuracy per spec (seed {seed}); session layer {layer}"]
    lines.append(f"{'spec':20} {'best layer':>10} {'test@best':>10} {'test@' + str(layer):>10}")
    for s in VECTOR_SPECS:
        lines.append(
            f"{s:20} {best[s]:10d} {avg[s]['own_layer']:10.2f} {avg[s]['session_layer']:10.2f}"
        )
    for s, v in result["prompt_average"].items():
        lines.append(f"{s + ' in context':20} {'':10} {v:10.2f}   (prompt baseline, no patch)")

    def figure(path: Any) -> None:
        from .plots import lines_figure

        zeros = [0.0] * n_layers
        lines_figure(
            {s: (list(range(n_layers)), mean_curve[s], zeros) for s in VECTOR_SPECS},
            path,
            f"{session.config.model}: validation accuracy of patching, per spec",
            "layer",
            "accuracy (mean over tasks)",
            mark=layer,
        )

    return result, figure, "\n".join(lines)
