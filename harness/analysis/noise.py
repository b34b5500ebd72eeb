"""`noise` (the paper's Table 9): how much an instruction vector survives typos.

Each instruction gets s = 0, 1, 2 swaps of two adjacent, different letters inside a word
(seeded; a swap never crosses a word boundary and always shows). The paper takes the typos from
Kumar et al. 2023's `char_swap`, s swaps per instruction, which is the default here
(`--swap_scope instruction`); `--swap_scope word` puts s swaps in every word of two or more
letters, a much stronger noise (s = 1 is 7-10 swaps in these instructions), as this analysis
did before. The instruction vector of the noisy text is patched into the test queries at the
session's layer; accuracy per task is averaged over the seeds (each seed draws its own typos).
The scope and the rule are recorded in the JSON.
"""

from __future__ import annotations

import random
import re
from typing import Any

from .. import engine
from .common import Session, accuracies, mean_std

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


def run(session: Session) -> tuple[dict[str, Any], Any, str]:
    layer = session.layer()
    swaps: list[int] = session.options.get("swaps") or [0, 1, 2]
    scope: str = session.options.get("swap_scope") or "instruction"
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
            noisy_instruction(session.data[task].instruction, s, seed, task, scope)
            for s, seed in draws
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
        "scope": scope,
        "rule": RULES[scope],
        "acc": acc,
        "average": average,
        "instructions": instructions,
        "paper_idefics2_average": {"0": 0.39, "1": 0.37, "2": 0.35},
    }
    lines = [f"instruction patch at layer {layer['layer']}, s swaps per {scope} (test accuracy)"]
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
