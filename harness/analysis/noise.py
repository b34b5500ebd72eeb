"""`noise` (the paper's Table 9): how much an instruction vector survives typos.

Each instruction gets s = 0, 1, 2 swaps of two adjacent, different letters inside a word
(seeded; a swap never crosses a word boundary and always shows). The paper takes the typos from
Kumar et al. 2023's `char_swap`, s swaps per instruction, which is the default here
(`--swap_scope instruction`); `--swap_scope word` puts s swaps in every word of two or more
letters, a much stronger noise (s = 1 is 7-10 swaps in these instructions), as this analysis
did before. The instruction vector of the noisy text is patched into the test queries at the
session's layer; accuracy per task is averaged over the seeds (each seed draws its own typos).
The scope and the rule are recorded in the JSON, with paired bootstrap 95% intervals over seeds
and test items for each s and for s against the clean instruction (s = 0), and the per-item 0/1
scores they are drawn from (`item_scores`).
"""

from __future__ import annotations

import random
import re
from typing import Any

import numpy as np

from .. import engine
from ..intervals import analysis_intervals, bracket, estimates, stored_scores
from .common import Session, mean_std

SCOPES = ("instruction", "word")
RULES = {
    "instruction": "s swaps of two adjacent, different letters inside words, at distinct and "
    "non-overlapping positions across the whole instruction (the paper's, after Kumar et al. "
    "2023's char_swap); positions drawn with random.Random('noise:<seed>:<task>:<s>')",
    "word": "s swaps of two adjacent, different letters at distinct positions in every word of "
    "2+ letters; positions drawn with random.Random('noise:<seed>:<task>:<s>')",
}
_WORD = re.compile(r"[^\W\d_]{2,}")  # runs of letters: punctuation and digits stay put


def _swap_in_word(word: str, s: int, rng: random.Random) -> str:
    """Up to s swaps at distinct positions (a second swap of the same pair would undo the
    first), each of two different letters, so every swap shows."""
    chars = list(word)
    pairs = [i for i in range(len(chars) - 1) if chars[i] != chars[i + 1]]
    for i in rng.sample(pairs, min(s, len(pairs))):
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def _swap_in_text(text: str, s: int, rng: random.Random) -> str:
    """s swaps across the whole text, each of two adjacent different letters of one word, no
    two sharing a letter (so each shows as one transposition)."""
    chars = list(text)
    pairs = [
        i
        for m in _WORD.finditer(text)
        for i in range(m.start(), m.end() - 1)
        if chars[i] != chars[i + 1]
    ]
    taken: set[int] = set()
    for i in rng.sample(pairs, len(pairs)):
        if len(taken) == 2 * s:
            break
        if i in taken or i + 1 in taken:
            continue
        taken.update((i, i + 1))
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def noisy_instruction(
    text: str, s: int, seed: int, key: str = "", scope: str = "instruction"
) -> str:
    """`text` with `s` seeded swaps of adjacent letters inside words, across the instruction
    or in each word (`scope`); s = 0: unchanged."""
    if scope not in SCOPES:
        raise ValueError(f"unknown swap scope {scope!r}; use one of {', '.join(SCOPES)}")
    if s <= 0:
        return text
    rng = random.Random(f"noise:{seed}:{key}:{s}")
    if scope == "instruction":
        return _swap_in_text(text, s, rng)
    return _WORD.sub(lambda m: _swap_in_word(m.group(0), s, rng), text)


def differences(swaps: list[int]) -> list[tuple[str, str]]:
    """The claims: how much each amount of typos costs against the clean instruction."""
    return [(f"s={s}", "s=0") for s in swaps if s > 0] if 0 in swaps else []


def run(session: Session) -> tuple[dict[str, Any], Any, str]:
    layer = session.layer()
    swaps: list[int] = session.options.get("swaps") or [0, 1, 2]
    scope: str = session.options.get("swap_scope") or "instruction"
    ctx = session.context("instruction")
    adapter = session.adapter
    seeds = list(session.config.seeds)
    acc: dict[str, dict[str, dict[str, Any]]] = {}
    instructions: dict[str, dict[str, list[str]]] = {}
    scores: dict[str, dict[str, np.ndarray]] = {}  # task -> "s=<s>" -> [seeds, items]
    doc_ids: dict[str, list[str]] = {}
    for task in session.progress("noisy instructions"):
        items = ctx.items(task, "test")
        queries = [ctx.query_prompt(r) for r in items]
        acc[task], instructions[task], scores[task] = {}, {}, {}
        doc_ids[task] = [r["id"] for r in items]
        # Every (s, seed) instruction's vector, then one patched pass over the queries for all.
        # s = 0 is the clean instruction, the same for every seed: it runs once.
        draws = [(s, seed) for s in swaps for seed in (seeds if s else seeds[:1])]
        texts = [
            noisy_instruction(session.data[task].instruction, s, seed, task, scope)
            for s, seed in draws
        ]
        states = engine.capture_task_states(
            adapter, [adapter.instruction_prompt(t) for t in texts], session.config.batch_size
        )[:, layer["layer"]]
        ids = engine.patch_variants(adapter, queries, states, layer["layer"])
        hits = np.array(
            [ctx.score_tokens(task, items, col.tolist(), queries)["lenient"] for col in ids.T],
            dtype=float,
        )  # [draws, items]
        for s in swaps:
            rows = hits[[i for i, (s2, _) in enumerate(draws) if s2 == s]]
            per_seed = [float(row.mean()) for row in rows]
            mean, std = mean_std(per_seed)
            acc[task][str(s)] = {"acc": mean, "std": std, "per_seed": per_seed, "n": len(items)}
            # the clean instruction's one row stands for every seed, so draws pair with s > 0
            scores[task][f"s={s}"] = np.repeat(rows, len(seeds) // len(rows), axis=0)
            instructions[task][str(s)] = [
                t for (s2, _), t in zip(draws, texts, strict=True) if s2 == s
            ]
    average = {str(s): mean_std([acc[t][str(s)]["acc"] for t in acc])[0] for s in swaps}
    pairs = differences(swaps)
    intervals = analysis_intervals(scores, pairs)
    result = {
        "layer": layer,
        "swaps": swaps,
        "scope": scope,
        "rule": RULES[scope],
        "acc": acc,
        "average": average,
        "instructions": instructions,
        "paper_idefics2_average": {"0": 0.39, "1": 0.37, "2": 0.35},
        "seeds": seeds,
        "intervals": intervals,
        "item_scores": {"doc_ids": doc_ids, "by_task": stored_scores(scores)},
    }
    per_task, avg_interval = intervals["per_task"], intervals["average"]
    lines = [f"instruction patch at layer {layer['layer']}, s swaps per {scope} (test accuracy)"]
    lines.append(f"mean over seeds {', '.join(map(str, seeds))} [paired 95% interval]")
    lines.append(f"{'task':18} " + " ".join(f"{'s=' + str(s):>18}" for s in swaps))
    for task in acc:
        lines.append(
            f"{task:18} "
            + " ".join(
                f"{acc[task][str(s)]['acc']:.2f} {bracket(per_task[task][f's={s}'])}" for s in swaps
            )
        )
    lines.append(
        f"{'average':18} "
        + " ".join(f"{average[str(s)]:.2f} {bracket(avg_interval[f's={s}'])}" for s in swaps)
    )
    point = estimates(scores, pairs)["average"]
    for a, b in pairs:
        name = f"{a} - {b}"
        lines.append(f"{name:18} {point[name]:+.2f} {bracket(avg_interval[name], signed=True)}")
    lines.append("paper (Idefics2, instruction -> image queries): .39 .37 .35")

    def figure(path: Any) -> None:
        from .plots import bars_figure

        groups = [*acc, "average"]
        bounds = {
            f"s={s}": [per_task[t][f"s={s}"] for t in acc] + [avg_interval[f"s={s}"]] for s in swaps
        }
        bars_figure(
            groups,
            {f"s={s}": [acc[t][str(s)]["acc"] for t in acc] + [average[str(s)]] for s in swaps},
            path,
            f"{session.config.model}: instruction patch with typos (layer {layer['layer']})",
            "test accuracy (95% interval)",
            errors={name: ([lo for lo, _ in b], [hi for _, hi in b]) for name, b in bounds.items()},
        )

    return result, figure, "\n".join(lines)
