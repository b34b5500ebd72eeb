"""From units to the results file: aggregation over seeds, transfer cosines, the results
document (config, versions, git hash, seeds, layer curve, per-task accuracies), the
per-sample rows and the summary table printed at the end of a run."""

from __future__ import annotations

import math
import platform
import statistics
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from benchmark.scoring import WHOLE_ANSWER_METHODS

from .items import record_digest, sha256
from .presets import PAPER_DIFFERENCES


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def git_hash() -> str | None:
    """The commit of the harness checkout, `-dirty` if it has uncommitted changes; None outside
    a git checkout (an installed wheel)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "") if head else None


def versions() -> dict[str, Any]:
    return {
        "vlm_tv_eval": _version("vlm-tv-eval"),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "accelerate": _version("accelerate"),
        "git_hash": git_hash(),
        "python": platform.python_version(),
    }


def method_summary(
    per_seed: list[float], per_seed_strict: list[float], n: int, **extra: Any
) -> dict[str, Any]:
    """Mean and population std over seeds (ddof=0: the seeds are the whole population run)."""
    return {
        "acc": statistics.fmean(per_seed),
        "acc_std": statistics.pstdev(per_seed),
        "acc_strict": statistics.fmean(per_seed_strict),
        "acc_strict_std": statistics.pstdev(per_seed_strict),
        "n": n,
        "per_seed": per_seed,
        **extra,
    }


def entry_header(method: Any, spec: str, n_shot: int, layer: int | None) -> dict[str, Any]:
    """What a results entry says of how its number was made, whatever the method's kind: the
    split, what the model saw, `seeded: false` when one computation counts for every seed, and
    the layer when the method patches at one (the leaderboard reads the layer from here)."""
    header: dict[str, Any] = {"split": "test", "context": method.context(spec, n_shot)}
    if not method.seeded(spec):
        header["seeded"] = False
    if method.needs_vector:
        header["layer"] = layer
    return header


def aggregate(
    units: Mapping[tuple[str, str, int], Mapping[str, Any]],
    tasks: Sequence[str],
    methods: Sequence[Any],
    seeds: Sequence[int],
    spec: str,
    n_shot: int,
    layer: int | None,
) -> dict[str, Any]:
    """Per task and method: mean and std over seeds, what the model saw, and the layer."""
    results: dict[str, Any] = {}
    for task in tasks:
        results[task] = {}
        for method in methods:
            runs = [units[task, method.name, s] for s in seeds]
            results[task][method.name] = method_summary(
                [statistics.fmean(r["lenient"]) for r in runs],
                [statistics.fmean(r["strict"]) for r in runs],
                len(runs[0]["lenient"]),
                **entry_header(method, spec, n_shot, layer),
                **({"whole_answer": whole_answer_summary(runs)} if "whole" in runs[0] else {}),
                **(
                    {"neighbour_layers": neighbour_summary(runs)}
                    if all("neighbours" in r for r in runs)
                    else {}
                ),
            )
    return results


def neighbour_summary(runs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Test accuracy of the same patch one layer below and above the chosen one, mean over
    seeds, by layer."""
    layers = runs[0]["neighbours"]
    return {
        n: statistics.fmean(statistics.fmean(r["neighbours"][n]["lenient"]) for r in runs)
        for n in layers
    }


def whole_answer_summary(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Whole greedy answers against the whole label (`--score whole_answer`): exactly, and once
    case, spacing, punctuation and grammatical number are set aside; mean and std over seeds."""
    exact = [statistics.fmean(r["whole"]) for r in runs]
    loose = [statistics.fmean(r["whole_normalised"]) for r in runs]
    return {
        "acc": statistics.fmean(exact),
        "acc_std": statistics.pstdev(exact),
        "acc_normalised": statistics.fmean(loose),
        "acc_normalised_std": statistics.pstdev(loose),
        "per_seed": exact,
    }


def transfer_similarity(
    source: Mapping[tuple[str, int], Any],
    own: Mapping[tuple[str, int], Any],
    tasks: Sequence[str],
    seeds: Sequence[int],
    layer: int,
    source_model: str,
) -> dict[str, Any]:
    """Cosine similarity at the patched layer between the source model's vector and the
    model's own vector for the same task (matched) and for the other tasks (mismatched),
    averaged over seeds."""

    def cos(a: Any, b: Any) -> float:
        return float(torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=0))

    matched, mismatched = {}, {}
    for t in tasks:
        matched[t] = statistics.fmean(cos(source[t, s][layer], own[t, s][layer]) for s in seeds)
        others = [u for u in tasks if u != t]
        if others:
            mismatched[t] = statistics.fmean(
                cos(source[t, s][layer], own[u, s][layer]) for u in others for s in seeds
            )
    out: dict[str, Any] = {
        "source_model": source_model,
        "layer": layer,
        "cosine": matched,
        "mean_cosine": statistics.fmean(matched.values()),
    }
    if mismatched:
        out["mismatched_cosine"] = mismatched
        out["mean_mismatched_cosine"] = statistics.fmean(mismatched.values())
    return out


def timings_block(timings: Mapping[str, float]) -> dict[str, float]:
    """The results file's `timings` (`RunStore.report_timings`: seconds, the run's over all its
    calls and `<kind>_this_call` this call's own), to the millisecond: a `total` rounded up and
    every phase down, so the file's `total` >= the sum of its phases holds as measured."""
    scale = 1000

    def ms(kind: str, seconds: float) -> float:
        up = kind in ("total", "total_this_call")
        return (math.ceil if up else math.floor)(round(seconds * scale, 6)) / scale

    return {k: ms(k, v) for k, v in timings.items()}


def results_document(
    *,
    run_id: str,
    config: Any,
    data: Mapping[str, Any],
    items: Callable[[str, str], list],
    model: dict[str, Any],
    prompting: dict[str, Any],
    results: dict[str, Any],
    selection: dict[str, Any] | None,
    timings: Mapping[str, float],
    created: str | None = None,
    metric: str = (
        "first token, greedy; acc = lenient (strip, either a prefix of the "
        "other), acc_strict = exact first token"
    ),
) -> dict[str, Any]:
    """The results file: everything needed to reproduce its numbers."""
    cfg = config.as_dict()
    cfg["tasks"] = list(data)
    cfg["task_sources"] = {t: d.source for t, d in data.items()}
    cfg["template"] = prompting
    cfg["std"] = "population std over seeds (ddof=0)"
    if config.preset == "paper":
        cfg["preset_differences"] = list(PAPER_DIFFERENCES)
    cfg["metric"] = metric
    if getattr(config, "score", "first_token") == "whole_answer":
        cfg["whole_answer_metric"] = (
            "greedy answer up to its first newline (at most 16 tokens; a patch in the prompt's "
            "pass only); acc = the whole label exactly (stripped), acc_normalised = the same "
            "once case, spacing, punctuation and grammatical number are set aside"
        )
    doc: dict[str, Any] = {
        "kind": "results",
        "schema_version": 1,
        "run_id": run_id,
        "created": created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "config": cfg,
        "versions": versions(),
        "seeds": list(config.seeds),
        "results": results,
        "timings": timings_block(timings),
        "splits": {
            t: {
                "source": d.source,
                "validation": len(items(t, "validation")) if "validation" in d.splits else 0,
                "test": len(items(t, "test")),
                "made": d.split_made,
                "missing_images": d.extra.get("missing_images", []),
                "items_differing_from_pool": d.extra.get("items_differing_from_pool", 0),
            }
            for t, d in data.items()
        },
    }
    if selection:
        doc["layer_selection"] = selection
    return doc


# (item record, seed, the unit's prompt hash) -> the prompt text that hashes to it, or None
PromptText = Callable[[Mapping[str, Any], int, str], str | None]


def sample_rows(
    task: str,
    records: Sequence[Mapping[str, Any]],
    units: Mapping[tuple[str, str, int], Mapping[str, Any]],
    methods: Sequence[Any],
    seeds: Sequence[int],
    spec: str,
    layer: int | None,
    prompt_text: PromptText | None = None,
) -> list[dict[str, Any]]:
    """One row per (method, seed, item), schema kind `sample`: what a researcher reads to see
    why an item scored as it did (the prompt as rendered, image placeholders and never pixels;
    the input; the target; the model's raw continuation; the prediction the flags scored) and
    the hashes that prove which prompt and item it was.

    A method whose result does not depend on the seed (`no_context`, or any method under
    `--spec instruction`) was computed once: its rows are written once, under the first seed,
    with `seeded: false` (they stand for every seed), not repeated per seed. The prompt text
    comes from `prompt_text`, which rebuilds it and returns it only when it hashes to the
    unit's `prompt_hash`; a prompt it cannot rebuild (a plug-in method's own) is left out."""
    rows = []
    for method, seed, unit, i, rec in unit_items(task, records, units, methods, seeds, spec):
        digest = unit["prompt_hashes"][i]
        row: dict[str, Any] = {
            "doc_id": rec["id"],
            "task": task,
            "split": "test",
            "method": method.name,
            "spec": spec,
            "seed": seed,
            "layer": layer if method.needs_vector else None,
            "prompt_hash": digest,
            "doc_hash": sha256(record_digest(rec)),
        }
        if not method.seeded(spec):
            row["seeded"] = False
        text = prompt_text(rec, seed, digest) if prompt_text else None
        if text is not None:
            row["prompt"] = text
        row["input"] = rec["input"]
        if rec.get("image_sha256"):
            row["image_sha256"] = rec["image_sha256"]
        row["target"] = rec["output"]
        if method.name not in WHOLE_ANSWER_METHODS:  # a model answered (majority: no model)
            row["continuation"] = unit["answers"][i] if "answers" in unit else unit["preds"][i]
        row.update(prediction=unit["preds"][i], lenient=unit["lenient"][i])
        row["strict"] = unit["strict"][i]
        if "whole" in unit:
            row.update(whole=unit["whole"][i], whole_normalised=unit["whole_normalised"][i])
        rows.append(row)
    return rows


def unit_items(
    task: str,
    records: Sequence[Mapping[str, Any]],
    units: Mapping[tuple[str, str, int], Mapping[str, Any]],
    methods: Sequence[Any],
    seeds: Sequence[int],
    spec: str | None = None,
) -> Iterator[tuple[Any, int, Mapping[str, Any], int, Mapping[str, Any]]]:
    """(method, seed, unit, position in the unit, item record) for every prediction of a task,
    in method, seed, item order: what per-item files are written from. Given `spec`, a method
    that is not seeded under it yields its one unit once, under the first seed."""
    by_id = {r["id"]: r for r in records}
    for method in methods:
        once = spec is not None and not method.seeded(spec)
        for seed in seeds[:1] if once else seeds:
            unit = units[task, method.name, seed]
            for i, doc_id in enumerate(unit["doc_ids"]):
                yield method, seed, unit, i, by_id[doc_id]


def summary_table(doc: dict[str, Any]) -> str:
    """Per task and method the first-token accuracy (mean ± std over seeds, `±n/a` where no
    spread was measured); under it the average's 95% intervals, the whole answers' average, the
    patch one layer off, and the paired differences with their intervals, where the results
    carry them; last, this call's time and the run's."""
    methods = doc["config"]["methods"]
    results = doc["results"]
    head = f"{'task':20}" + "".join(f"{m:>16}" for m in methods)
    lines = [head, "-" * len(head)]
    avg: dict[str, list[float]] = {m: [] for m in methods}
    for task, by_method in results.items():
        cells = []
        for m in methods:
            r = by_method[m]
            avg[m].append(r["acc"])
            cell = f"{r['acc']:.2f}±{_spread(r)}"
            if "layer" in r:
                cell += f" L{r['layer']}"
            cells.append(f"{cell:>16}")
        lines.append(f"{task:20}" + "".join(cells))
    lines.append(f"{'average':20}" + "".join(f"{statistics.fmean(avg[m]):>16.2f}" for m in methods))
    average = doc.get("intervals", {}).get("average", {})
    if average:
        cells = "".join(
            f"{f'[{lo:.2f},{hi:.2f}]':>16}" for lo, hi in (average.get(m, (0, 0)) for m in methods)
        )
        lines.append(f"{'  95% interval':20}" + cells)
    if all("whole_answer" in by_method[m] for by_method in results.values() for m in methods):
        whole = [
            statistics.fmean(b[m]["whole_answer"]["acc"] for b in results.values()) for m in methods
        ]
        lines.append(f"{'  whole answers':20}" + "".join(f"{w:>16.2f}" for w in whole))
    near: dict[str, list[float]] = {}
    for by_method in results.values():
        for n, acc in by_method.get("patch", {}).get("neighbour_layers", {}).items():
            near.setdefault(n, []).append(acc)
    if near and all(len(v) == len(results) for v in near.values()):
        ordered = sorted(near.items(), key=lambda kv: int(kv[0]))
        shown = ", ".join(f"L{n} {statistics.fmean(v):.2f}" for n, v in ordered)
        lines.append(f"{'  patch one layer off':20} {shown}")
    for name, (low, high) in average.items():
        if " - " in name:
            a, b = name.split(" - ")
            diff = statistics.fmean(avg[a]) - statistics.fmean(avg[b])
            lines.append(f"{name:20}{diff:>+16.2f}   95% interval [{low:+.2f}, {high:+.2f}]")
    timing = timing_line(doc.get("timings", {}))
    if timing:
        lines.append(timing)
    return "\n".join(lines)


def _spread(entry: Mapping[str, Any]) -> str:
    """The std over seeds, or `n/a` where there is no spread to measure: one seed, or a method
    computed once for every seed (`seeded: false`), whose 0.00 would read as a measured one."""
    if len(entry.get("per_seed", [])) < 2 or entry.get("seeded") is False:
        return "n/a"
    return f"{entry['acc_std']:.2f}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02d} s"


def timing_line(timings: Mapping[str, float]) -> str:
    """How long this call took and how long the whole run has, over every call (a resumed run
    adds up its calls, interrupted ones included, each with its model load; its units computed
    earlier cost this call nothing)."""
    if "total" not in timings:
        return ""
    run = f"the run {_duration(timings['total'])} over all its calls"
    this = timings.get("total_this_call")
    return f"{'time':20} " + (run if this is None else f"this call {_duration(this)}; {run}")


def overriding_table(doc: dict[str, Any]) -> str:
    """Per task and method: the number, and what judged it (failures shown, never hidden)."""
    lines = [f"{'task':20} {'method':18} {'acc':>6} {'n':>5}  judge"]
    for task, by_method in doc["results"].items():
        for method, r in by_method.items():
            acc = "-" if r.get("acc") is None else f"{r['acc']:.2f}"
            notes = []
            if "exact_original" in r:
                notes.append(f"still original {r['exact_original']:.2f}")
            if "judged" in r:
                judge_acc = r.get("judge_acc", r.get("acc"))
                shown = "-" if judge_acc is None else f"{judge_acc:.2f}"
                notes.append(
                    f"judge {shown} ({r['judged']} judged, {r['judge_failures']} failed"
                    + (
                        f", agrees with exact match {r['judge_agreement']:.2f}"
                        if r.get("judge_agreement") is not None
                        else ""
                    )
                    + ")"
                )
            layer = f" L{r['layer']}" if "layer" in r else ""
            lines.append(f"{task:20} {method + layer:18} {acc:>6} {r['n']:>5}  {'; '.join(notes)}")
    judge = doc.get("judge")
    lines.append(f"judge: {judge['model'] if judge else 'none (not judged yet)'}")
    timing = timing_line(doc.get("timings", {}))
    if timing:
        lines.append(timing)
    return "\n".join(lines)
