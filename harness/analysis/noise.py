"""`noise` (the paper's Table 9): how much an instruction vector survives typos.

Each instruction gets s = 0, 1, 2 swaps of adjacent letters in every word of two or more letters
(seeded; a swap never crosses a word boundary and always changes the word when the word allows
it). The instruction vector of the noisy text is patched into the test queries at the session's
layer; accuracy per task is averaged over the seeds (each seed draws its own typos).

The paper says "s swaps of consecutive characters within words" without saying whether s counts
per word or per instruction; per word is the stronger reading and the one used here (recorded as
`rule` in the JSON).
"""

from __future__ import annotations

import random
import re
from typing import Any

from .. import engine
from .common import Session, accuracies, mean_std

RULE = (
    "s swaps of two adjacent, different letters at distinct positions in every word of 2+ "
    "letters; positions drawn with random.Random('noise:<seed>:<task>:<s>')"
)
_WORD = re.compile(r"[^\W\d_]{2,}")  # runs of letters: punctuation and digits stay put


def _swap_in_word(word: str, s: int, rng: random.Random) -> str:
    """Up to s swaps at distinct positions (a second swap of the same pair would undo the
    first), each of two different letters, so every swap shows."""
    chars = list(word)
    pairs = [i for i in range(len(chars) - 1) if chars[i] != chars[i + 1]]
    for i in rng.sample(pairs, min(s, len(pairs))):
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def noisy_instruction(text: str, s: int, seed: int, key: str = "") -> str:
    """`text` with `s` seeded swaps of adjacent letters inside each word (s = 0: unchanged)."""
    if s <= 0:
        return text
    rng = random.Random(f"noise:{seed}:{key}:{s}")
    return _WORD.sub(lambda m: _swap_in_word(m.group(0), s, rng), text)


def run(session: Session) -> tuple[dict[str, Any], Any, str]:
    layer = session.layer()
    swaps: list[int] = session.options.get("swaps") or [0, 1, 2]
    ctx = session.context("instruction")
    adapter = session.adapter
    seeds = list(session.config.seeds)
    acc: dict[str, dict[str, dict[str, Any]]] = {}
    instructions: dict[str, dict[str, list[str]]] = {}
    for task in session.progress("noisy instructions"):
        items = ctx.items(task, "test")
        queries = [ctx.query_prompt(r) for r in items]
        acc[task], instructions[task] = {}, {}
        # Every (s, seed) instruction's vector, then one patched pass over the queries for all.
        draws = [(s, seed) for s in swaps for seed in (seeds if s else seeds[:1])]
        texts = [
            noisy_instruction(session.data[task].instruction, s, seed, task) for s, seed in draws
        ]
        states = engine.capture_task_states(
            adapter, [adapter.instruction_prompt(t) for t in texts], session.config.batch_size
        )[:, layer["layer"]]
        ids = engine.patch_variants(adapter, queries, states, layer["layer"])
        scores = accuracies(ctx, task, items, ids, queries)
        for s in swaps:
            per_seed = [a for (s2, _), a in zip(draws, scores, strict=True) if s2 == s]
            mean, std = mean_std(per_seed)
            acc[task][str(s)] = {"acc": mean, "std": std, "per_seed": per_seed, "n": len(items)}
            instructions[task][str(s)] = [
                t for (s2, _), t in zip(draws, texts, strict=True) if s2 == s
            ]
    average = {str(s): mean_std([acc[t][str(s)]["acc"] for t in acc])[0] for s in swaps}
    result = {
        "layer": layer,
        "swaps": swaps,
        "rule": RULE,
        "acc": acc,
        "average": average,
        "instructions": instructions,
        "paper_idefics2_average": {"0": 0.39, "1": 0.37, "2": 0.35},
    }
    lines = [f"instruction patch at layer {layer['layer']} with s swaps per word (test accuracy)"]
    lines.append(f"{'task':18} " + " ".join(f"{'s=' + str(s):>7}" for s in swaps))
    for task in acc:
        lines.append(f"{task:18} " + " ".join(f"{acc[task][str(s)]['acc']:7.2f}" for s in swaps))
    lines.append(f"{'average':18} " + " ".join(f"{average[str(s)]:7.2f}" for s in swaps))
    lines.append("paper (Idefics2, instruction -> image queries): .39 .37 .35")

    def figure(path: Any) -> None:
        from .plots import bars_figure

        bars_figure(
            [*acc, "average"],
            {f"s={s}": [acc[t][str(s)]["acc"] for t in acc] + [average[str(s)]] for s in swaps},
            path,
            f"{session.config.model}: instruction patch with typos (layer {layer['layer']})",
            "test accuracy",
        )

    return result, figure, "\n".join(lines)
