"""The paper's claims, each with the rule that says whether the CPU models reproduce it.

A claim is data: what the paper says, its number, where our number is read from (the committed
submissions and `docs/<model>/analysis/*.json`), and a verdict rule stated in words beside its
code. Each rule answers "reproduces", "does not reproduce", "inconclusive" (the interval allows
both) or "not testable here" (what it would rest on is near zero, or was not run). The README's
findings table is written from these (`python -m leaderboard.findings`), so a claim cannot read
better than its JSON; a cause is never part of a verdict: the README states causes as
hypotheses unless an experiment here varied them.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import ROOT

DOCS = ROOT.parent / "docs"
OVERRIDE_RUN = "override_text/results.json"  # under docs/<model>/: the committed overriding run
OVERRIDE_ANSWERS = "override_text/generations_override-text.jsonl"  # its answers
YES, NO, UNSURE, UNTESTABLE = (
    "reproduces",
    "does not reproduce",
    "inconclusive",
    "not testable here",
)


@dataclasses.dataclass(frozen=True)
class Model:
    label: str
    docs: str  # folder under docs/
    submission: str  # file under leaderboard/submissions/


MODELS = (
    Model("SmolLM2-135M", "smollm2-135m", "smollm2-135m-instruct-cpu_text-examples-to-text.json"),
    Model("Gemma 3 270M", "gemma3-270m", "gemma-3-270m-cpu_text-examples-to-text.json"),
)


class NotRun(Exception):
    """A file a claim reads was never committed: the claim is not testable here."""


class Evidence:
    """One model's committed JSON, read on demand; a missing file is NotRun, naming it."""

    def __init__(self, model: Model, docs: Path = DOCS, submissions: Path | None = None):
        self.model = model
        self.docs = docs / model.docs
        self.submissions = submissions or ROOT / "submissions"
        self._cache: dict[Path, Any] = {}

    def _load(self, path: Path) -> Any:
        if path not in self._cache:
            if not path.is_file():
                raise NotRun(path.relative_to(path.parents[2]).as_posix())
            self._cache[path] = json.loads(path.read_text("utf-8"))
        return self._cache[path]

    def analysis(self, name: str) -> dict[str, Any]:
        return self._load(self.docs / "analysis" / f"{name}.json")["result"]

    def results(self) -> dict[str, Any]:
        return self._load(self.submissions / self.model.submission)["results"]

    def file(self, relative: str) -> Any:
        return self._load(self.docs / relative)

    def lines(self, relative: str) -> list[Any]:
        """A JSON Lines file's rows."""
        path = self.docs / relative
        if not path.is_file():
            raise NotRun(path.relative_to(path.parents[2]).as_posix())
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def num(x: float) -> str:
    text = f"{abs(x):.2f}".replace("0.", ".", 1)
    return f"-{text}" if x < 0 and text != ".00" else text


def signed(x: float) -> str:
    return ("+" if x >= 0 else "") + num(x)


def interval(pair: list[float]) -> str:
    return f"[{num(pair[0])}, {num(pair[1])}]"


def by_interval(pair: list[float]) -> str:
    """A difference the claim says is positive: its 95% interval above 0 reproduces it, below
    0 contradicts it, across 0 is inconclusive."""
    low, high = pair
    return YES if low > 0 else NO if high < 0 else UNSURE


def task_mean(results: dict[str, Any], method: str, *path: str) -> float:
    """A method's figure at `path` (e.g. "acc", or "whole_answer", "acc"), averaged over the
    tasks of a results file."""
    values = []
    for by_method in results["results"].values():
        value: Any = by_method[method]
        for key in path:
            value = value[key]
        values.append(value)
    return statistics.fmean(values)


# -- the claims, one function each: Evidence -> (our figures, verdict) ---------------------------
def patch_beats_prompt(e: Evidence) -> tuple[str, str]:
    """Rule: the paired interval of patch - prompt (first token, 6 tasks, 3 seeds) above 0."""
    r = e.results()
    pair = r["intervals"]["average"]["patch - prompt"]
    patch, prompt = task_mean(r, "patch", "acc"), task_mean(r, "prompt", "acc")
    text = f"patch {num(patch)}, prompt {num(prompt)}: {signed(patch - prompt)} "
    return text + interval(pair), by_interval(pair)


def three_phases(e: Evidence) -> tuple[str, str]:
    """Rule: over the text-example runs, a task phase covers at least 20% of depth (paper
    ~40%), counting a layer only where its winner is in the vocabulary's top RANK_FLOOR."""
    a = e.analysis("logit-lens")
    share = a["phase_share_ranked"]["text_examples"]
    text = " / ".join(f"{k} {share[k]:.0%}" for k in ("input", "task", "answer", "none"))
    return text, YES if share["task"] >= 0.2 else NO


def cluster_by_task(e: Evidence) -> tuple[str, str]:
    """Rule: task vectors' silhouette by task above by spec, and example vectors nearest their
    own task's instruction vector more often than chance (interval above 1/tasks). Both:
    reproduces; neither: does not; one: inconclusive."""
    a = e.analysis("tsne")
    sil = a["silhouette"]["task_vectors"]
    cross = a["nearest_centroid"]
    pair = cross["pairs"]["text_examples -> instruction"]
    text = (
        f"silhouette by task {num(sil['by_task'])}, by spec {num(sil['by_spec'])}; examples "
        f"nearest own instruction {num(pair['acc'])} {interval(pair['interval'])} "
        f"(chance {num(cross['chance'])})"
    )
    tests = [sil["by_task"] > sil["by_spec"], pair["interval"][0] > cross["chance"]]
    return text, YES if all(tests) else NO if not any(tests) else UNSURE


def context_does_not_cluster(e: Evidence) -> tuple[str, str]:
    """Rule: context embeddings' silhouette by task below .1 (no task clusters) while task
    vectors' is higher."""
    sil = e.analysis("tsne")["silhouette"]
    ctx, vec = sil["context_embeddings"]["by_task"], sil["task_vectors"]["by_task"]
    text = f"context by task {num(ctx)}, task vectors {num(vec)}"
    return text, YES if ctx < 0.1 and vec > ctx else NO


def instruction_near_examples(e: Evidence) -> tuple[str, str]:
    """Rule: the instruction vector reaches at least half of the examples vector's test
    accuracy at the run's layer (the paper: .39 against .51, three quarters)."""
    a = e.analysis("spec-curves")
    avg = a["test_average"]
    inst, ex = avg["instruction"]["session_layer"], avg["text_examples"]["session_layer"]
    pair = a["intervals"]["average"]["instruction - text_examples"]
    text = f"instruction {num(inst)}, examples {num(ex)}: {signed(inst - ex)} {interval(pair)}"
    return text, YES if inst >= 0.5 * ex else NO


def ensemble_beats_examples(e: Evidence) -> tuple[str, str]:
    """Rule: the paired interval of ensemble - examples (one five-shot prompt, r=1) above 0."""
    a = e.analysis("scaling")
    name = "ensemble r=1 - examples r=1"
    pair = a["intervals"]["average"][name]
    ens, ex = a["ensemble"]["mean"][0], a["examples"]["mean"][0]
    return f"ensemble {num(ens)}, examples {num(ex)}: {signed(ens - ex)} {interval(pair)}", (
        by_interval(pair)
    )


def more_examples_help(e: Evidence) -> tuple[str, str]:
    """Rule: the paired interval of examples r=max - r=1 (averaged five-shot prompts) above 0."""
    a = e.analysis("scaling")
    r_max = a["r"][-1]
    pair = a["intervals"]["average"][f"examples r={r_max} - examples r=1"]
    first, last = a["examples"]["mean"][0], a["examples"]["mean"][-1]
    text = f"r=1 {num(first)}, r={r_max} {num(last)}: {signed(last - first)} {interval(pair)}"
    return text, by_interval(pair)


def survives_typos(e: Evidence) -> tuple[str, str]:
    """Rule: with the clean instruction's accuracy below .05 there is nothing to lose (not
    testable); else two swaps keep at least three quarters of it (the paper: .35 of .39)."""
    a = e.analysis("noise")
    avg = a["average"]
    s0, s1, s2 = avg["0"], avg.get("1"), avg.get("2")
    text = " / ".join(
        f"s={s} {num(v)}" for s, v in (("0", s0), ("1", s1), ("2", s2)) if v is not None
    )
    if s0 < 0.05:
        return text, UNTESTABLE
    return text, YES if (s2 if s2 is not None else s1) >= 0.75 * s0 else NO


def patching_is_cheap(e: Evidence) -> tuple[str, str]:
    """Rule: the patched query costs at most 1.2x the query alone, and the N=30 prompt at least
    2x the patched query (the paper: 1.05x and 11x)."""
    a = e.analysis("overhead")
    t = a["time"]
    patch_over_query = t["patch"]["median_s"] / t["query"]["median_s"]
    prompt_over_patch = a["ratio"]["time"]["prompt/patch"]
    text = (
        f"prompt {prompt_over_patch:.1f}x the patched query "
        f"({a['tokens']['prompt']} tokens), patched query {patch_over_query:.2f}x the query"
    )
    return text, YES if patch_over_query <= 1.2 and prompt_over_patch >= 2 else NO


def patch_overrides(e: Evidence) -> tuple[str, str]:
    """Rule: the patched instruction's answers follow the overriding task (exact match of its
    label, `acc`) at least .05 more often than both the prompt alone and the instruction in
    the system turn (the paper: .36-.65 against .06-.49 and .08-.15, judged)."""
    r = e.file(OVERRIDE_RUN)["results"]["override_text"]
    acc = {m: r[m]["acc"] for m in ("original", "system_prompt", "instruction_patch")}
    layer = r["instruction_patch"].get("layer")
    text = (
        f"patch {num(acc['instruction_patch'])} (layer {layer}), system prompt "
        f"{num(acc['system_prompt'])}, original {num(acc['original'])}; "
        f"n = {r['instruction_patch']['n']} x {len(r['instruction_patch']['per_seed'])} seeds"
    )
    rows = e.lines(OVERRIDE_ANSWERS)
    patched = [r for r in rows if r["method"] == "instruction_patch"]
    empty = sum(1 for r in patched if not r["answer"].strip())
    text += f"; {empty} of {len(patched)} patched answers empty"
    best_other = max(acc["system_prompt"], acc["original"])
    return text, YES if acc["instruction_patch"] >= best_other + 0.05 else NO


@dataclasses.dataclass(frozen=True)
class Claim:
    claim: str
    paper: str
    measure: Callable[[Evidence], tuple[str, str]]


CLAIMS = (
    Claim(
        "a patched task vector beats the examples in context",
        "Idefics2 text examples -> image queries: patch .51, prompt .18 (Table 2)",
        patch_beats_prompt,
    ),
    Claim(
        "three phases at the task token: input, task, answer",
        "about 50% / 40% / 10% of depth (Figures 8, 12)",
        three_phases,
    ),
    Claim(
        "task vectors cluster by task, across specifications",
        "by task, not by spec (Figure 2, a picture)",
        cluster_by_task,
    ),
    Claim(
        "context embeddings do not cluster by task",
        "Figure 2",
        context_does_not_cluster,
    ),
    Claim(
        "an instruction's vector works about as well as examples'",
        "instruction .39 (Table 9, s=0), examples .51 (Table 2)",
        instruction_near_examples,
    ),
    Claim(
        "the ensemble of instruction and examples beats examples",
        "Figure 6: higher at small n",
        ensemble_beats_examples,
    ),
    Claim(
        "more example prompts make a better vector",
        "Figure 6: rises with n",
        more_examples_help,
    ),
    Claim(
        "instruction vectors survive typos",
        ".39 / .37 / .35 for s = 0 / 1 / 2 swaps (Table 9)",
        survives_typos,
    ),
    Claim(
        "a patched query costs what the query costs; the prompt much more",
        "prompt 11x the patched query, patched 1.05x the query (Table 7)",
        patching_is_cheap,
    ),
    Claim(
        "a patched instruction overrides the prompt's task; a system prompt much less",
        "patch .36-.65, system prompt .06-.49, original .08-.15 (Table 5, judged)",
        patch_overrides,
    ),
)


def verdicts(docs: Path = DOCS, submissions: Path | None = None) -> list[dict[str, Any]]:
    """Every claim measured on every CPU model: [{claim, paper, by_model: {label: (text,
    verdict)}}]. A missing file shows as "not run" (not testable here); a file without the
    figure a claim reads is stale, and an error that says to regenerate it."""
    rows = []
    for claim in CLAIMS:
        by_model = {}
        for model in MODELS:
            try:
                by_model[model.label] = claim.measure(Evidence(model, docs, submissions))
            except NotRun as missing:
                by_model[model.label] = (f"not run ({missing})", UNTESTABLE)
            except KeyError as key:
                raise ValueError(
                    f"{model.label}: the claim {claim.claim!r} reads {key} from a file that "
                    f"lacks it: regenerate docs/{model.docs}/analysis (make analyses MODEL=...)"
                ) from None
        rows.append({"claim": claim.claim, "paper": claim.paper, "by_model": by_model})
    return rows
