"""`logit-lens`: what each layer's output at the task token would say if it were the last layer.

The paper's continuous view (its Figure 12): at the delimiter of the last example, every layer's
output goes through the final norm and the unembedding, and a softmax is taken over three tokens
only: the input token, the task word (capital, currency, ...) and the answer. Averaged over
`--runs` sets of N examples (the instruction spec is one prompt, so one run), the three curves
show the phases the paper reports (input ~50% of depth, task ~40%, answer ~10%). The discrete
view (Figure 13) is the top-1 token per layer; Tables 6 and 13 are the top-5 tokens of the task
vector (the mean over runs) at one layer. The runs are spread evenly over the run's seeds, each
seed drawing its own; the phase shares of each seed are kept, to show how stable they are.

Relative probabilities alone mislead where all three tokens are improbable: at layer 0 a
"winner" of 1e-6 against 1e-7 is no phase. So the file has, beside the relative curves, the
absolute probabilities (mean, std over runs) and the vocabulary rank of each token (median and
quartiles; 1 = the top token), and a second phase count (`phases_ranked`, `phase_share_ranked`)
where a layer belongs to its winner only if the winner's median rank is within RANK_FLOOR; else
to "none".

The input token: the paper's Idefics2 curves use "auf", a token Mistral's early layers happen to
decode to. That choice does not carry over to another vocabulary, so the input token here is the
token the model reads at that position (the delimiter itself): early layers of a residual stream
decode to their own input token, most of all with tied embeddings. The file records the ids.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import torch

from benchmark import TASKS

from .. import engine
from .common import Session, mean_std, read_out

# The task word of each task, as the paper's Figure 12 names it.
TASK_WORDS = {
    "country_capital": "capital",
    "country_currency": "currency",
    "animal_latin": "species",
    "animal_young": "baby",
    "food_color": "color",
    "food_flavor": "flavor",
}
LABELS = ("input", "task", "answer")
# A layer's phase counts only where its winner is at most this far down the whole vocabulary
# (median over runs): three tiny probabilities (1e-6 each) have a "winner" that the model
# would never say, and early layers of small models are full of those.
RANK_FLOOR = 100


def task_word(task: str) -> str:
    if task in TASK_WORDS:
        return TASK_WORDS[task]
    # A task without a named word: the instruction's last word stands for the task.
    instruction = TASKS[task].instruction if task in TASKS else ""
    words = [w.strip(":.,").lower() for w in instruction.split()]
    return next((w for w in reversed(words) if w.isalpha()), "task")


def _runs(session: Session, task: str, spec: str, n_runs: int) -> list[dict]:
    """Prompts for one spec: `n_runs` sets of N examples drawn from the test split, spread
    evenly over the run's seeds (each seed's draws seeded by it), or the instruction once.
    Each knows its answer and its seed."""
    ctx = session.context(spec)
    adapter = session.adapter
    if spec == "instruction":
        instruction = session.data[task].instruction
        answers = sorted({r["output"] for r in ctx.items(task, "test")})
        prompt = adapter.instruction_prompt(instruction)
        return [{"prompt": prompt, "answers": answers, "seed": session.config.seeds[0]}]
    items = ctx.items(task, "test")
    n = session.config.n_shot
    if len(items) < n:
        raise ValueError(f"task {task}: {len(items)} test items, fewer than N={n}")
    seeds = list(session.config.seeds)
    out = []
    for i, seed in enumerate(seeds):
        rng = random.Random(f"logit-lens:{seed}:{task}:{spec}")
        for _ in range(n_runs // len(seeds) + (i < n_runs % len(seeds))):
            chosen = rng.sample(items, n)
            prompt = adapter.example_prompt([(ctx.spec_input(r), r["output"]) for r in chosen])
            out.append({"prompt": prompt, "answers": [chosen[-1]["output"]], "seed": seed})
    return out


def _token_ids(session: Session, task: str, run: dict, prompt_ids: list[int]) -> dict[str, Any]:
    """The three tokens of one run: input (the token read at the task position), task word
    and answer(s), each as the first token it would be generated as after the delimiter."""
    adapter = session.adapter
    query = "x"  # any query text: answer_token reads the template's answer prefix after it
    return {
        "input": [prompt_ids[run["task_col"]]],
        "task": [adapter.answer_token(query, task_word(task))],
        "answer": sorted({adapter.answer_token(query, a) for a in run["answers"]}),
    }


def lens_spec(session: Session, task: str, spec: str, n_runs: int, layer: int) -> dict[str, Any]:
    """Relative and absolute probabilities and vocabulary ranks (layers x 3), top-1 per layer
    and top-5 at `layer` for one spec."""
    adapter = session.adapter
    runs = _runs(session, task, spec, n_runs)
    prompts = [r["prompt"] for r in runs]
    states = engine.capture_task_states(adapter, prompts, session.config.batch_size)  # [R, L, d]
    rel = torch.empty(len(runs), adapter.num_layers, 3)
    absolute = torch.empty(len(runs), adapter.num_layers, 3)
    rank = torch.empty(len(runs), adapter.num_layers, 3)
    top1: list[Counter] = [Counter() for _ in range(adapter.num_layers)]
    used: dict[str, set[int]] = {k: set() for k in LABELS}
    for r, run in enumerate(runs):
        encoded = adapter.encode([run["prompt"]])
        row = encoded.input_ids[0].tolist()
        run["task_col"] = int(encoded.task_index[0])
        ids = _token_ids(session, task, run, row)
        for k in LABELS:
            used[k].update(ids[k])
        probs = read_out(adapter, states[r]).softmax(-1)  # [L, vocab]
        for la in range(adapter.num_layers):
            top1[la][int(probs[la].argmax())] += 1
        three = torch.stack([probs[:, ids[k]].mean(-1) for k in LABELS], dim=-1)  # [L, 3]
        rel[r] = three / three.sum(-1, keepdim=True).clamp_min(1e-30)
        absolute[r] = three
        for k, label in enumerate(LABELS):  # 1 = the top token; a group: its best token
            best = probs[:, ids[label]].max(-1, keepdim=True).values  # [L, 1]
            rank[r, :, k] = (probs > best).sum(-1).float() + 1
    vector_logits = read_out(adapter, states.mean(0)[layer])
    top5 = vector_logits.topk(5).indices.tolist()
    # Whitespace and punctuation often lead at the delimiter; the paper's tables list words.
    ranked = vector_logits.topk(min(500, vector_logits.numel())).indices.tolist()
    words = [t for t in ranked if any(c.isalpha() for c in adapter.decode_token(t))][:5]
    mean = rel.mean(0)
    std = rel.std(0, unbiased=False) if len(runs) > 1 else torch.zeros_like(mean)
    median_rank = rank.median(0).values
    seeds = sorted({run["seed"] for run in runs})
    per_seed = {
        str(seed): phases(
            rel[[i for i, run in enumerate(runs) if run["seed"] == seed]].mean(0).tolist()
        )["share"]
        for seed in seeds
    }
    return {
        "runs": len(runs),
        "seeds": seeds,
        "relative_prob": {"mean": mean.tolist(), "std": std.tolist()},
        "absolute_prob": {
            "mean": absolute.mean(0).tolist(),
            "std": absolute.std(0, unbiased=False).tolist()
            if len(runs) > 1
            else torch.zeros_like(mean).tolist(),
        },
        "rank": {
            "median": median_rank.tolist(),
            "q25": rank.quantile(0.25, dim=0).tolist(),
            "q75": rank.quantile(0.75, dim=0).tolist(),
        },
        "top1": [
            {"token": adapter.decode_token(t), "id": t, "share": c / len(runs)}
            for t, c in (counts.most_common(1)[0] for counts in top1)
        ],
        "top5": [{"token": adapter.decode_token(t), "id": t} for t in top5],
        "top5_words": [{"token": adapter.decode_token(t), "id": t} for t in words],
        "token_ids": {k: sorted(v) for k, v in used.items()},
        "tokens": {k: [adapter.decode_token(t) for t in sorted(v)][:20] for k, v in used.items()},
        "phases": phases(mean.tolist()),
        "phases_ranked": phases(mean.tolist(), median_rank.tolist()),
        "phase_share_per_seed": per_seed,
    }


def phases(rel: list[list[float]], ranks: list[list[float]] | None = None) -> dict[str, Any]:
    """Which of input/task/answer is most probable at each layer, and each one's share of
    depth: the numbers behind the paper's ~50% / 40% / 10%. Given `ranks` (median vocabulary
    rank per layer and token), a layer whose winner ranks below RANK_FLOOR is "none": no
    phase, only the least improbable of three improbable tokens."""
    winners = [LABELS[max(range(3), key=lambda k: row[k])] for row in rel]
    if ranks is not None:
        winners = [
            w if ranks[la][LABELS.index(w)] <= RANK_FLOOR else "none"
            for la, w in enumerate(winners)
        ]
    n = len(winners)
    names = LABELS + (("none",) if ranks is not None else ())
    return {
        "winner": winners,
        "share": {k: winners.count(k) / n for k in names},
        "first_layer": {k: (winners.index(k) if k in winners else None) for k in names},
    }


def run(session: Session) -> tuple[dict[str, Any], Any, str]:
    n_runs = int(session.options.get("runs") or 100)
    layer = session.layer()
    specs = session.specs(["text_examples", "instruction", "image_examples"])
    by_task = {
        task: {spec: lens_spec(session, task, spec, n_runs, layer["layer"]) for spec in specs}
        for task in session.progress("logit lens")
    }
    result = {
        "layer": layer,
        "specs": specs,
        "input_token_rule": "the token at the task position (the delimiter); see the docstring "
        "of harness/analysis/lens.py",
        "task_words": {t: task_word(t) for t in session.tasks},
        "by_task": by_task,
        "phase_share": {
            spec: {
                k: mean_std([by_task[t][spec]["phases"]["share"][k] for t in by_task])[0]
                for k in LABELS
            }
            for spec in specs
        },
        "rank_floor": RANK_FLOOR,
        "phase_share_ranked": {
            spec: {
                k: mean_std([by_task[t][spec]["phases_ranked"]["share"][k] for t in by_task])[0]
                for k in (*LABELS, "none")
            }
            for spec in specs
        },
        "seeds": list(session.config.seeds),
    }
    lines = [f"logit lens at the task token; top-5 of the task vector at layer {layer['layer']}"]
    lines.append(
        f"{'task':18} {'spec':14} {'input':>6} {'task':>6} {'answer':>6} {'none':>6}  top-5"
    )
    for task, per_spec in by_task.items():
        for spec, r in per_spec.items():
            s = r["phases_ranked"]["share"]
            top5 = ", ".join(t["token"].strip() for t in r["top5_words"])
            lines.append(
                f"{task:18} {spec:14} {s['input']:6.2f} {s['task']:6.2f} {s['answer']:6.2f} "
                f"{s['none']:6.2f}  {top5}"
            )
    for spec in specs:
        rel, ranked = result["phase_share"][spec], result["phase_share_ranked"][spec]
        lines.append(
            f"mean {spec}: relative only "
            + " / ".join(f"{k} {rel[k]:.2f}" for k in LABELS)
            + "; with the rank floor "
            + " / ".join(f"{k} {ranked[k]:.2f}" for k in (*LABELS, "none"))
        )
    lines.append(
        "input/task/answer: share of layers where that token is the most probable of three and "
        f"within the top {RANK_FLOOR} of the vocabulary (median over runs); none: its winner is "
        "not;"
    )
    lines.append(
        "top-5: the task vector's top tokens that contain a letter (all five are in the JSON)"
    )
    from .plots import lens_figure

    return result, lambda path: lens_figure(result, path), "\n".join(lines)
