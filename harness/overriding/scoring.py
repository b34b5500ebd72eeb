"""Scoring an overriding run: generations in, verdicts and numbers out.

A run's answers are written to `generations_<task>.jsonl`; judging reads them back, so it can
happen in the same command (`--judge`) or later and elsewhere (`vlm-tv-eval judge RUN_DIR`).
Per task and method the numbers are:

- image sets: `acc` = the judge's success rate (B or C) over the answers it judged, per seed,
  with `judged`, `judge_failures`, `judge_parse` (how many replies were read as JSON, how many
  by a leading letter) and `acc_failures_as_misses` beside it (null when nothing was judged).
  A failed verdict is counted, never filled in. Until judged there is no number, so the run
  writes `pending_results.json` and no `results.json`.
- override_text: `acc` = how often the answer starts like the overriding label (exact match),
  `exact_original` = how often it still answers the original task; judged, also `judge_acc`
  and `judge_agreement` (how often the judge's success equals the exact match: the benchmark's
  own check of its judge).

A judge that judged none of a run's answers is a failed command (JudgeConfigError, after the
verdicts and the judge-free numbers are written), never a run that reads as scored.

Judging trusts no generations file it is given: the run seals each one as it writes it, and
`vlm-tv-eval judge RUN_DIR` refuses one that is not what its run wrote (`generations`). And
what is scored is recomputed from the answers and labels, never read from a flag:
`exact_override` and `exact_original` as written are not used.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmark import OVERRIDING, get_task, task_family, validate, validate_file
from benchmark.files import atomic_write_text, cache_root, slug, write_json_atomic
from benchmark.scoring import lenient_match
from benchmark.strict_json import read_json

from ..errors import JudgeConfigError, RunFolderError
from ..methods import get_method
from ..results import entry_header, unit_items
from .data import questions
from .generations import checked_generations, generations_path, read_rows, seal_generations
from .judge import DEFAULT_JUDGE, Judge
from .redact import public_url
from .verdicts import JudgeRequest, summarize

UnitKey = tuple[str, str, int]  # task, method, seed


def generation_rows(
    task: str,
    records: Sequence[Mapping[str, Any]],
    units: Mapping[UnitKey, Mapping[str, Any]],
    methods: Sequence[Any],
    seeds: Sequence[int],
    layer: int | None,
) -> list[dict[str, Any]]:
    """One row per (method, seed, item): the answer, both questions and, where known, labels."""
    rows = []
    for method, seed, unit, i, rec in unit_items(task, records, units, methods, seeds):
        question1, question2 = questions(rec)
        row: dict[str, Any] = {
            "doc_id": rec["id"],
            "task": task,
            "method": method.name,
            "seed": seed,
            "layer": layer if method.needs_vector else None,
            "prompt_hash": unit["prompt_hashes"][i],
            "answer": unit["preds"][i],
            "question1": question1,
            "question2": question2,
        }
        if "exact_override" in unit:
            row.update(
                override_label=rec["output"],
                original_label=rec["question_answer"],
                exact_override=unit["exact_override"][i],
                exact_original=unit["exact_original"][i],
            )
        rows.append(row)
    return rows


def write_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def judge_rows(judge: Judge, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    requests = [
        JudgeRequest(
            item_id=r["doc_id"],
            task=r["task"],
            method=r["method"],
            seed=r["seed"],
            answer=r["answer"],
            question1=r["question1"],
            question2=r["question2"],
        )
        for r in rows
    ]
    return judge.judge_all(requests)


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def exact_matches(row: Mapping[str, Any], case_insensitive: bool) -> tuple[bool, bool]:
    """Whether a labelled answer starts like the overriding label and like the original one,
    recomputed from the answer and the labels (the flags a row carries are never read: a row
    says what it was scored, not what it scores)."""
    answer = row["answer"]
    return (
        lenient_match(answer, row["override_label"], case_insensitive),
        lenient_match(answer, row["original_label"], case_insensitive),
    )


def method_result(
    task: str,
    method: str,
    rows: Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    verdicts: Mapping[tuple[str, str, int, str], Mapping[str, Any]] | None,
    header: Mapping[str, Any],
    case_insensitive: bool = False,
) -> dict[str, Any]:
    """One task x method entry of the results file: `header` (`results.entry_header`), then
    the numbers (no `acc` while it needs a judge that has not run). A labelled task's exact
    matches are recomputed from each answer and its labels (`exact_matches`), as the run
    scored them (`case_insensitive` as the run's config says)."""
    by_seed = {s: [r for r in rows if r["seed"] == s] for s in seeds}
    out: dict[str, Any] = {"n": len(by_seed[seeds[0]]), **header}
    labelled = get_task(task).has_labels
    exact = {id(r): exact_matches(r, case_insensitive) for r in rows} if labelled else {}
    if labelled:
        per_seed = [_mean([float(exact[id(r)][0]) for r in by_seed[s]]) for s in seeds]
        original = [_mean([float(exact[id(r)][1]) for r in by_seed[s]]) for s in seeds]
        out.update(
            acc=statistics.fmean(per_seed),
            acc_std=statistics.pstdev(per_seed),
            per_seed=per_seed,
            exact_original=statistics.fmean(original),
        )
    if verdicts is None:
        return out
    seed_verdicts = {s: [verdicts[task, method, s, r["doc_id"]] for r in by_seed[s]] for s in seeds}
    every = [v for s in seeds for v in seed_verdicts[s]]
    total = summarize(every)
    per_seed_judge = [summarize(seed_verdicts[s])["acc"] for s in seeds]
    judged = {
        "judged": total["judged"],
        "judge_failures": total["judge_failures"],
        "judge_parse": total["parsed"],
    }
    if labelled:
        pairs = [
            (v["success"], exact[id(r)][0])
            for s in seeds
            for v, r in zip(seed_verdicts[s], by_seed[s], strict=True)
            if v["success"] is not None
        ]
        out.update(
            judged,
            judge_acc=total["acc"],
            judge_acc_failures_as_misses=total["acc_failures_as_misses"],
            judge_agreement=_mean([float(a == b) for a, b in pairs]) if pairs else None,
        )
    elif None in per_seed_judge:
        # A seed none of whose answers was judged has no number: nothing is filled in, so the
        # run stays pending until it is judged again.
        out.update(judged, acc_failures_as_misses=total["acc_failures_as_misses"])
    else:
        out.update(
            judged,
            acc=total["acc"],  # successes over judged answers, all seeds pooled
            acc_std=statistics.pstdev(per_seed_judge),
            per_seed=per_seed_judge,
            acc_failures_as_misses=total["acc_failures_as_misses"],
        )
    return out


def score_run(
    doc: dict[str, Any],
    rows_by_task: Mapping[str, Sequence[Mapping[str, Any]]],
    methods: Sequence[Any],
    verdicts: Sequence[Mapping[str, Any]] | None,
    judge: Mapping[str, Any] | None,
) -> bool:
    """Fill `doc["results"]` from the generations (and verdicts); True when every number is
    there (an image set needs a judge)."""
    keyed = None
    if verdicts is not None:
        keyed = {(v["task"], v["method"], v["seed"], v["item_id"]): v for v in verdicts}
    seeds = doc["seeds"]
    layer = (doc.get("layer_selection") or {}).get("layer")
    spec, n_shot = doc["config"]["spec"], doc["config"]["n_shot"]
    case_insensitive = doc["config"].get("case_insensitive") is True
    complete = True
    doc["results"] = {}
    for task, rows in rows_by_task.items():
        doc["results"][task] = {}
        for method in methods:
            entry = method_result(
                task,
                method.name,
                [r for r in rows if r["method"] == method.name],
                seeds,
                keyed,
                entry_header(method, spec, n_shot, layer),
                case_insensitive,
            )
            complete = complete and "acc" in entry
            doc["results"][task][method.name] = entry
    doc["judge"] = dict(judge) if judge else None
    if isinstance(doc["config"].get("judge_base_url"), str):  # as given to the run: no secret
        doc["config"]["judge_base_url"] = public_url(doc["config"]["judge_base_url"])
    return complete


def finish(
    run_dir: Path,
    doc: dict[str, Any],
    methods: Sequence[Any],
    judge: Judge | None,
) -> tuple[dict[str, Any], Path]:
    """The run's last step, right after it wrote its generations: seal them
    (`seal_generations`), judge them if a judge is given, score them, and write results.json
    (or pending_results.json while an image set waits for a judge)."""
    rows_by_task = {}
    for task in doc["config"]["tasks"]:
        rows_by_task[task] = read_rows(generations_path(run_dir, task))
        seal_generations(run_dir, task, rows_by_task[task], doc)
    return _judge_and_score(run_dir, doc, methods, judge, rows_by_task)


def _judge_and_score(
    run_dir: Path,
    doc: dict[str, Any],
    methods: Sequence[Any],
    judge: Judge | None,
    rows_by_task: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[dict[str, Any], Path]:
    verdicts = None
    if judge is not None:
        verdicts = []
        for task, rows in rows_by_task.items():
            got = judge_rows(judge, rows)
            write_rows(run_dir / f"verdicts_{slug(task)}.jsonl", got)
            verdicts += got
    complete = score_run(doc, rows_by_task, methods, verdicts, judge.describe() if judge else None)
    pending = run_dir / "pending_results.json"
    if not complete:
        write_json_atomic(pending, doc)
        path = pending
    else:
        errors = validate(doc, "results")
        if errors:  # a bug in the harness, not the user's input
            raise RuntimeError("results do not match the schema: " + "; ".join(map(str, errors)))
        path = run_dir / "results.json"
        write_json_atomic(path, doc)
        pending.unlink(missing_ok=True)
    if verdicts and not any(v["choice"] is not None for v in verdicts):
        raise JudgeConfigError(nothing_judged(verdicts, path))
    return doc, path


def nothing_judged(verdicts: Sequence[Mapping[str, Any]], path: Path) -> str:
    """One line for a run none of whose answers the judge could judge: it is no result, so
    the command fails (the verdicts and the numbers without a judge are written first)."""
    errors = [v["error"] for v in verdicts if v.get("error")]
    asked = [e for e in errors if not e.startswith("not asked:")]
    first = (asked or errors or ["no error recorded"])[0]
    return (
        f"the judge judged none of {len(verdicts)} answers ({len(asked)} asked, all failed; "
        f"first failure: {first}); {path} keeps the run: fix the judge and run `vlm-tv-eval "
        f"judge {path.parent}` again"
    )


def judge_run_dir(
    run_dir: str | Path, model: str | None, base_url: str | None
) -> tuple[dict[str, Any], Path]:
    """`vlm-tv-eval judge RUN_DIR`: judge a run's logged generations and score it."""
    folder = Path(run_dir)
    give = "give the run folder an overriding run printed (runs/<model>/<run-id>)"
    if folder.is_file():
        raise RunFolderError(f"{folder} is a file, not a run folder: {give}, e.g. {folder.parent}")
    if not folder.is_dir():
        raise RunFolderError(f"{folder} does not exist: {give}")
    source = next(
        (p for p in (folder / "results.json", folder / "pending_results.json") if p.is_file()),
        None,
    )
    if source is None:
        raise RunFolderError(f"{folder} holds no results.json or pending_results.json: {give}")
    doc = _run_doc(source)
    tasks = doc["config"]["tasks"]
    if not tasks or any(task_family(t) != OVERRIDING for t in tasks):
        raise RunFolderError(
            f"{source} is not an overriding run (tasks {', '.join(tasks) or 'none'}): only the "
            "overriding tasks' answers are judged; give the folder of a run with --tasks "
            "override_text (or another override_* task)"
        )
    missing = [t for t in tasks if not (folder / f"generations_{slug(t)}.jsonl").is_file()]
    if missing:
        files = ", ".join(f"generations_{slug(t)}.jsonl" for t in missing)
        raise RunFolderError(
            f"{folder} has no logged generations ({files} missing): rerun the run to log them"
        )
    for task in tasks:  # every row as the run writes it, or the file and line that is not
        errors = validate_file(generations_path(folder, task), kind="generation")
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise RunFolderError(f"{errors[0]}{more}; rerun the run to write it again")
    # Then the rows the run wrote, and all of them: nothing edited, added or left out.
    rows_by_task = {task: checked_generations(folder, task, doc) for task in tasks}
    methods = [get_method(m) for m in doc["config"]["methods"]]
    with Judge(model or DEFAULT_JUDGE, base_url, cache_dir=cache_root() / "judge") as judge:
        return _judge_and_score(folder, doc, methods, judge, rows_by_task)


# What judging reads from a run's results file, with the type it must have.
_RUN_KEYS = {"tasks": list, "methods": list, "spec": str, "n_shot": int}


def _run_doc(source: Path) -> dict[str, Any]:
    """The run's results.json or pending_results.json, read strictly and checked for what
    judging uses: a damaged or hand-made file is named, never a traceback."""
    doc, errors = read_json(source)
    if errors:
        raise RunFolderError(
            f"{errors[0]}; is it the file the run wrote? rerun the run to rewrite it"
        )
    config = doc.get("config") if isinstance(doc, dict) else None
    config = config if isinstance(config, dict) else {}
    bad = [f"config.{k}" for k, kind in _RUN_KEYS.items() if not isinstance(config.get(k), kind)]
    seeds = doc.get("seeds") if isinstance(doc, dict) else None
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds)):
        bad.append("seeds")
    if not isinstance(doc, dict) or not isinstance(doc.get("layer_selection") or {}, dict):
        bad.append("layer_selection")
    if bad:
        raise RunFolderError(
            f"{source} is not the results of a vlm-tv-eval run ({', '.join(bad)} missing or "
            "of the wrong kind); give the run folder an overriding run printed"
        )
    return doc
