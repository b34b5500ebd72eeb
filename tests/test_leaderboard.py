"""The leaderboard: submissions are validated, duplicates refused, builds are deterministic,
`check` notices stale files, and the committed leaderboard is current."""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import re
import shutil
import statistics
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from examples import good, rehash, reported_submission, sweep

from benchmark import CROSS_MODAL_TASKS, EXECUTION_KEYS, METHODS, QUERIES, SPECS, TASKS
from benchmark.protocol import OVERRIDING_METHODS
from benchmark.strict_json import canonical_sha256
from leaderboard import ROOT, build, labels, paper
from leaderboard.cli import main
from leaderboard.csv_out import OVERRIDING_CSV
from leaderboard.escape import md_url
from leaderboard.reproductions import mismatch
from leaderboard.standing import PROTOCOL_SEEDS, full_task_set
from leaderboard.submissions import (
    content_key,
    dumps,
    load_submissions,
    make_submission,
    submission_filename,
)
from leaderboard.table import (
    DASH,
    Cell,
    _average,
    all_rows,
    average_intervals,
    fmt_layer,
    settings_of,
    whole_intervals,
)

SMOLLM2 = ROOT / "submissions" / "smollm2-135m-instruct-cpu_text-examples-to-text.json"
TABLE_5 = ROOT / "submissions" / "idefics2-paper_overriding-image.json"


def make_root(tmp_path: Path, files: list[Path] | None = None) -> Path:
    """A throwaway leaderboard folder holding copies of `files` (default: all committed)."""
    root = tmp_path / "leaderboard"
    (root / "submissions").mkdir(parents=True)
    for path in sorted((ROOT / "submissions").glob("*.json")) if files is None else files:
        shutil.copy(path, root / "submissions" / path.name)
    return root


def put(root: Path, data: dict, name: str | None = None) -> Path:
    path = root / "submissions" / (name or submission_filename(data))
    path.write_text(dumps(data), "utf-8")
    return path


def run(capsys, *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out + out.err


def files_of(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "submissions" not in p.parts
    }


# --- invalid submissions are rejected, with the JSON path of the problem ----------------------


def _drop_submitted_by(d):
    del d["submission"]["submitted_by"]


def _date_as_number(d):
    d["submission"]["date"] = 20261122


def _accuracy_above_one(d):
    d["results"]["results"]["country_capital"]["patch"]["acc"] = 1.5


def _unknown_task(d):
    results = d["results"]["results"]
    results["country_capitol"] = results["country_capital"]


INVALID = [
    ("missing field", _drop_submitted_by, "$.submission", "'submitted_by' is a required"),
    ("wrong type", _date_as_number, "$.submission.date", "is not of type 'string'"),
    (
        "accuracy > 1",
        _accuracy_above_one,
        "$.results.results.country_capital.patch.acc",
        "greater than the maximum of 1",
    ),
    ("unknown task", _unknown_task, "$.results.results", "'country_capitol' is not one of"),
]


@pytest.mark.parametrize("example", [good("submission"), reported_submission()], ids=["run", "rep"])
@pytest.mark.parametrize(
    ("case", "mutate", "path", "message"), INVALID, ids=[c[0] for c in INVALID]
)
def test_invalid_submission_is_rejected_with_its_json_path(
    tmp_path, capsys, example, case, mutate, path, message
):
    root = make_root(tmp_path, [])
    put(root, example, "good.json")
    assert run(capsys, "--root", str(root), "build")[0] == 0  # the valid example passes ...
    assert run(capsys, "--root", str(root), "check")[0] == 0
    data = copy.deepcopy(example)
    mutate(data)
    put(root, data, "good.json")  # ... and is then broken in one place
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 1
    assert f"good.json: {path}: " in out and message in out
    readme = (root / "README.md").read_bytes()
    rc, out = run(capsys, "--root", str(root), "build")  # build refuses to run
    assert rc == 1 and f"good.json: {path}: " in out and "nothing was written" in out
    assert (root / "README.md").read_bytes() == readme


def test_reported_submission_needs_a_source(tmp_path, capsys):
    root = make_root(tmp_path, [])
    data = reported_submission()
    del data["submission"]["source"]
    put(root, data, "no-source.json")
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 1 and "no-source.json: $.submission: 'source' is a required property" in out


def test_file_that_is_not_json_is_rejected(tmp_path, capsys):
    root = make_root(tmp_path, [])
    (root / "submissions" / "broken.json").write_text("{", "utf-8")
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 1 and "broken.json: $: not valid JSON" in out


# --- duplicates ---------------------------------------------------------------------------------


def test_same_file_twice_is_a_duplicate(tmp_path, capsys):
    root = make_root(tmp_path, [SMOLLM2])
    shutil.copy(SMOLLM2, root / "submissions" / "copy.json")
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 1
    assert f"{SMOLLM2.name}: duplicate of copy.json" in out


def test_same_results_under_another_name_and_run_path_is_a_duplicate(tmp_path):
    root = make_root(tmp_path, [SMOLLM2])
    data = json.loads(SMOLLM2.read_text())
    data["submission"].update(name="Someone else's copy", notes="resubmitted")
    data["results"]["config"]["output_path"] = "/elsewhere"
    put(root, rehash(data))
    loaded, problems = load_submissions(root / "submissions")
    assert len(loaded) == 1
    assert len(problems) == 1 and "duplicate of" in problems[0]


def spec_run_id(results: dict) -> dict:
    """`results` with its run id on its config's spec, as the harness names it
    (`<spec>-<12 hex>`), after a fixture changed the spec."""
    results["run_id"] = f"{results['config']['spec']}-{results['run_id'][-12:]}"
    return results


def another_run_id(run_id: str) -> str:
    """A run id of the same shape (`<spec>-<12 hex>`) and setting, but another run's."""
    return run_id[:-4] + ("beef" if not run_id.endswith("beef") else "cafe")


def rerun(data: dict, task: str = "food_color", method: str = "patch") -> dict:
    """`data` as another run would submit it: another run_id, one per-seed accuracy changed
    (acc and std recomputed), the results' sha256 recorded anew."""
    data = copy.deepcopy(data)
    data["results"]["run_id"] = another_run_id(data["results"]["run_id"])
    entry = data["results"]["results"][task][method]
    entry["per_seed"][0] = round(entry["per_seed"][0] + 0.01, 2)
    entry["acc"] = statistics.fmean(entry["per_seed"])
    entry["acc_std"] = statistics.pstdev(entry["per_seed"])
    return rehash(data)


def test_different_results_are_not_duplicates(tmp_path):
    root = make_root(tmp_path, [SMOLLM2])
    data = rerun(json.loads(SMOLLM2.read_text()))
    data["submission"]["name"] = "Rerun"
    put(root, data)
    loaded, problems = load_submissions(root / "submissions")
    assert (len(loaded), problems) == (2, [])


@pytest.mark.parametrize("key", EXECUTION_KEYS)
def test_execution_keys_do_not_make_a_new_measurement(key):
    data = json.loads(SMOLLM2.read_text())
    other = copy.deepcopy(data)
    other["results"]["config"][key] = "somewhere else"
    assert content_key(other) == content_key(data)
    other["results"]["config"]["n_shot"] = 3  # a field that changes the numbers
    assert content_key(other) != content_key(data)


def test_every_committed_file_name_is_what_add_would_write():
    for path in sorted((ROOT / "submissions").glob("*.json")):
        assert submission_filename(json.loads(path.read_text("utf-8"))) == path.name


# --- add ----------------------------------------------------------------------------------------


def _results_file(tmp_path: Path, results: dict) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results), "utf-8")
    return path


def full_results() -> dict:
    """`good("results")` run on every cross-modal task: a run the leaderboard ranks."""
    results = good("results")
    entries = results["results"]["country_capital"]
    results["config"]["tasks"] = list(CROSS_MODAL_TASKS)
    results["results"] = {task: copy.deepcopy(entries) for task in CROSS_MODAL_TASKS}
    return results


def test_add_turns_a_results_file_into_a_valid_submission(tmp_path, capsys):
    root = make_root(tmp_path, [])
    results = full_results()
    args = ["--root", str(root), "add", str(_results_file(tmp_path, results))]
    args += ["--name", "Tiny (CPU)", "--submitted-by", "tester", "--date", "2026-11-23"]
    args += ["--hardware", "laptop"]
    rc, out = run(capsys, *args)
    assert rc == 0, out
    written = root / "submissions" / "tiny-cpu_text-examples-to-text.json"
    data = json.loads(written.read_text())
    assert data["results"] == results
    assert data["submission"] == {
        "name": "Tiny (CPU)",
        "submitted_by": "tester",
        "date": "2026-11-23",
        "hardware": "laptop",
        "reported": False,
        "results_sha256": canonical_sha256(results),
    }
    assert load_submissions(root / "submissions")[1] == []

    # The same results again, under another name: refused as a duplicate; same name: refused.
    rc, out = run(capsys, *[a if a != "Tiny (CPU)" else "Tiny again" for a in args])
    assert rc == 1 and "already submitted as" in out
    rc, out = run(capsys, *args)
    assert rc == 1 and "already exists" in out and "--name" in out


def test_add_rejects_an_invalid_results_file(tmp_path, capsys):
    root = make_root(tmp_path, [])
    results = good("results")
    results["results"]["country_capital"]["prompt"]["acc"] = 1.5
    path = _results_file(tmp_path, results)
    rc, out = run(
        capsys, "--root", str(root), "add", str(path), "--name", "x", "--submitted-by", "y"
    )
    assert rc == 1
    assert "$.results.country_capital.prompt.acc: 1.5 is greater than the maximum of 1" in out
    assert list((root / "submissions").iterdir()) == []


@pytest.mark.parametrize("partial", [False, True])
def test_add_rejects_a_task_the_leaderboard_does_not_know(tmp_path, capsys, partial):
    """A researcher's own task (`custom:...`) is a valid results file but not a submission,
    even with --allow_partial: one line naming the task and why."""
    root = make_root(tmp_path, [])
    results = full_results()
    results["results"]["custom:mine"] = results["results"].pop("country_capital")
    results["config"]["tasks"] = ["custom:mine", *CROSS_MODAL_TASKS[1:]]
    path = _results_file(tmp_path, results)
    argv = ["--root", str(root), "add", str(path), "--name", "x", "--submitted-by", "y"]
    rc, out = run(capsys, *argv, *(["--allow_partial"] if partial else []))
    assert rc == 1 and len(out.strip().splitlines()) == 1, out
    assert f"{path} holds tasks that are not in the benchmark registry (custom:mine)" in out
    assert "the leaderboard compares the registry's tasks only" in out
    assert list((root / "submissions").iterdir()) == []


# --- the overriding study -----------------------------------------------------------------------

JUDGE = {"model": "gpt-4o-2024-08-06", "temperature": 0, "base_url": None}
# Rates per method over (semantic, syntax, creative, factual).
RATES = {
    "original": (0.12, 0.2, 0.05, 0.1),
    "system_prompt": (0.11, 0.47, 0.07, 0.16),
    "instruction_patch": (0.41, 0.63, 0.7, 0.39),
}


def overriding_results(*, failures: int = 3) -> dict:
    """A results file as the harness writes it for the overriding study (four image settings).

    `failures` judge failures on Semantic under the instruction patch; none elsewhere."""
    results = good("results")
    tasks = list(labels.OVERRIDING_SETTINGS)
    results["config"].update(
        tasks=tasks, methods=list(OVERRIDING_METHODS), spec="instruction", query="image", n_shot=0
    )
    results["config"]["layer"] = 21  # the image sets have no labels to sweep on
    results["layer_selection"] = {"mode": "override", "layer": 21}
    spec_run_id(results)
    results["judge"] = dict(JUDGE)
    results["results"] = {}
    for i, task in enumerate(tasks):
        results["results"][task] = {}
        for method, rates in RATES.items():
            n, seeds = 100, len(results["seeds"])
            fails = failures if (task, method) == ("override_semantic", "instruction_patch") else 0
            per_seed = [rates[i] - 0.02, rates[i], rates[i] + 0.02]
            judged = n * seeds - fails
            successes = round(rates[i] * judged)
            result = {
                "acc": successes / judged,  # judged answers pooled over seeds: between seeds
                "acc_std": statistics.pstdev(per_seed),
                "n": n,
                "per_seed": per_seed,
                "split": "test",
                "context": f"{method} context",
                "judged": judged,
                "judge_failures": fails,
                "acc_failures_as_misses": successes / (n * seeds),
            }
            if method == "instruction_patch":
                result["layer"] = 21
            results["results"][task][method] = result
    return results


def text_results() -> dict:
    """override_text on text queries, scored by exact match only (no judge)."""
    results = good("results")
    results["config"].update(
        tasks=["override_text"], methods=list(OVERRIDING_METHODS), spec="instruction", n_shot=0
    )
    results["config"]["layer"] = 21
    results["layer_selection"] = {"mode": "override", "layer": 21}
    results["judge"] = None
    spec_run_id(results)
    results["results"] = {
        "override_text": {
            method: dict(
                {"acc": acc, "acc_std": 0.0, "n": 300, "exact_original": 1 - acc - 0.1},
                **({"layer": 21} if method == "instruction_patch" else {}),
                per_seed=[acc] * 3,
                split="test",
            )
            for method, acc in zip(OVERRIDING_METHODS, (0.0, 0.03, 0.57), strict=True)
        }
    }
    return results


def _add(
    capsys, root: Path, tmp_path: Path, results: dict, name: str, *, partial: bool = False
) -> None:
    """`add` the `results`; `partial`: a run that would not be ranked (`--allow_partial`)."""
    path = tmp_path / f"{len(list(tmp_path.iterdir()))}-results.json"
    path.write_text(json.dumps(results), "utf-8")
    argv = ["--root", str(root), "add", str(path), "--name", name, "--submitted-by", "tester"]
    argv += ["--allow_partial"] if partial else []
    rc, out = run(capsys, *argv, "--date", "2026-11-24")
    assert rc == 0, out


def _overriding_section(readme: str) -> str:
    return readme.split("## Task overriding (Table 5)", 1)[1].split("## Submissions", 1)[0]


def test_an_added_overriding_run_gets_its_own_section_everywhere(tmp_path, capsys):
    root = make_root(tmp_path, [SMOLLM2, TABLE_5])
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    _add(capsys, root, inputs, overriding_results(), "Tiny VLM (GPU)")
    assert (root / "submissions" / "tiny-vlm-gpu_overriding-image.json").is_file()
    assert run(capsys, "--root", str(root), "build")[0] == 0
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 0, out

    readme = (root / "README.md").read_text()
    section = _overriding_section(readme)
    link = "[Tiny VLM (GPU)](submissions/tiny-vlm-gpu_overriding-image.json)"
    judge = "gpt-4o-2024-08-06 (temperature 0)"
    lines = [line for line in section.splitlines() if line.startswith(f"| {link} ")]
    assert lines == [
        f"| {link} | Original task | 0.12 | 0.20 | 0.05 | 0.10 | — | {judge} | 100 × 3 |",
        f"| {link} | + System prompt | 0.11 | 0.47 | 0.07 | 0.16 | — | {judge} | 100 × 3 |",
        f"| {link} | + Instruction patch | 0.41 | 0.63 | 0.70 | 0.39 | 21 / 30 "
        f"| {judge}; judge failures: Semantic 3 | 100 × 3 |",
    ]
    # The reproduced run comes before the paper's reported rows, which keep their judge.
    assert section.index(link) < section.index("Idefics2 (paper)")
    assert "gpt-4o (paper; snapshot not stated)" in section
    # Not in the accuracy tables, and listed (and plotted) as an overriding submission.
    accuracy = readme.split("## Task overriding", 1)[0]
    assert "Tiny VLM" not in accuracy
    assert "model `smollm2-135m`; task overriding, `instruction→image`" in readme
    assert "### Tiny VLM (GPU): Task overriding, image queries" in readme
    assert (root / "plots" / "tiny-vlm-gpu_overriding-image.tasks.png").is_file()

    main_csv = (root / "leaderboard.csv").read_text()
    assert "Tiny VLM" not in main_csv and "override" not in main_csv
    with (root / OVERRIDING_CSV).open(newline="") as handle:
        table = list(csv.DictReader(handle))
    mine = [r for r in table if r["name"] == "Tiny VLM (GPU)"]
    assert [r["method"] for r in mine] == list(OVERRIDING_METHODS)
    patch = mine[2]
    assert patch["override_semantic"] == "0.4108" and patch["override_factual"] == "0.3900"
    assert patch["override_semantic_judged"] == "297"
    assert patch["override_semantic_judge_failures"] == "3"
    assert patch["override_semantic_acc_failures_as_misses"] == "0.4067"
    assert patch["override_syntax_judge_failures"] == "0"
    assert patch["layer"] == "21" and patch["num_layers"] == "30"
    assert (patch["judge_model"], patch["judge_temperature"]) == ("gpt-4o-2024-08-06", "0")
    assert patch["reported"] == "false"
    paper_row = next(r for r in table if r["name"] == "Idefics2 (paper)")
    assert paper_row["reported"] == "true" and paper_row["judge_model"].startswith("gpt-4o (")
    assert "override_text" not in table[0]

    html = (root / "index.html").read_text()
    page = html.split('<table id="overriding" class="sortable">', 1)[1].split("</table>", 1)[0]
    ours = [tr for tr in page.split("<tr") if "tiny-vlm-gpu_overriding-image.json" in tr]
    assert len(ours) == 3
    assert '<td data-sort="0.410774">0.41</td>' in ours[2]
    assert f"{judge}; judge failures: Semantic 3" in ours[2]
    assert "+ Instruction patch" in ours[2] and "21 / 30" in ours[2]
    main_table = html.split('<table id="leaderboard"', 1)[1].split("</table>", 1)[0]
    assert "Tiny VLM" not in main_table and "override" not in main_table


def test_text_pools_column_appears_only_with_an_override_text_run(tmp_path, capsys):
    root = make_root(tmp_path, [TABLE_5])
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    _add(capsys, root, inputs, text_results(), "Tiny LM")
    assert (root / "submissions" / "tiny-lm_overriding-text.json").is_file()
    assert run(capsys, "--root", str(root), "build")[0] == 0
    assert run(capsys, "--root", str(root), "check")[0] == 0
    section = _overriding_section((root / "README.md").read_text())
    head = (
        "| Model | Method | Semantic | Syntax | Creative | Factual | Text (pools) | Layer | Judge |"
    )
    assert head in section
    link = "[Tiny LM](submissions/tiny-lm_overriding-text.json)"
    assert f"| {link} | + Instruction patch | — | — | — | — | 0.57 | 21 / 30 " in section
    assert "| not judged (exact match) |" in section
    paper_line = next(line for line in section.splitlines() if "+ Instruction patch" in line
                      and "Idefics2" in line)  # fmt: skip
    assert "| 0.36 | 0.59 | 0.65 | 0.42 | — | — |" in paper_line  # no Text (pools) in Table 5
    with (root / OVERRIDING_CSV).open(newline="") as handle:
        table = list(csv.DictReader(handle))
    text = next(r for r in table if r["name"] == "Tiny LM" and r["method"] == "instruction_patch")
    assert text["override_text"] == "0.5700" and text["override_text_exact_original"] == "0.3300"
    assert text["judge_model"] == "" and text["query"] == "text"
    assert (
        '<th data-type="num" aria-sort="none" title="override_text">'
        in (root / "index.html").read_text()
    )


def test_overriding_csv_without_an_overriding_submission_is_stale(tmp_path, capsys):
    root = make_root(tmp_path, [SMOLLM2, TABLE_5])
    assert run(capsys, "--root", str(root), "build")[0] == 0
    assert (root / OVERRIDING_CSV).is_file()
    (root / "submissions" / TABLE_5.name).unlink()
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 1 and f"{OVERRIDING_CSV}: made by no submission" in out
    assert run(capsys, "--root", str(root), "build")[0] == 0
    assert not (root / OVERRIDING_CSV).exists()
    assert "Task overriding" not in (root / "README.md").read_text()
    assert 'id="overriding"' not in (root / "index.html").read_text()
    assert run(capsys, "--root", str(root), "check")[0] == 0


# --- rows and numbers ---------------------------------------------------------------------------


def test_average_and_its_std_over_seeds():
    results = [
        {"acc": 0.2, "per_seed": [0.1, 0.3]},
        {"acc": 0.4, "per_seed": [0.3, 0.5]},
    ]
    cell = _average(results)
    assert cell.acc == pytest.approx(0.3)
    assert cell.std == pytest.approx(0.1)  # per-seed averages 0.2 and 0.4, population std
    assert _average([{"acc": 0.61}, {"acc": 0.4}]) == Cell(pytest.approx(0.505), None)


def test_missing_query_means_text(tmp_path):
    root = make_root(tmp_path, [])
    data = good("submission")
    del data["results"]["config"]["query"]
    put(root, rehash(data))
    loaded, _ = load_submissions(root / "submissions")
    assert {row.setting for row in all_rows(loaded)} == {"text_examples→text"}


def test_a_plugin_method_that_records_a_layer_shows_it(tmp_path, capsys):
    """Whether a row shows a layer comes from its results entries, not from a list of method
    ids: a plug-in method whose entries record `layer` patched there, one whose entries do not
    patched nothing, even in a run that chose a layer."""
    root = make_root(tmp_path, [])
    data = good("submission")
    results = data["results"]
    results["config"]["methods"] += ["toy_patch", "toy_prompt"]
    capital = results["results"]["country_capital"]
    capital["toy_patch"] = dict(capital["patch"])  # layer 21, the run's chosen layer
    capital["toy_prompt"] = dict(capital["prompt"])  # no layer
    assert "toy_patch" not in METHODS and results["layer_selection"]["layer"] == 21
    put(root, rehash(data))
    loaded, _ = load_submissions(root / "submissions")
    rows = {row.method: row for row in all_rows(loaded)}
    assert rows["toy_patch"].layers == (21,) and fmt_layer(rows["toy_patch"]) == "21 / 30"
    assert rows["patch"].layers == (21,)
    for method in ("toy_prompt", "prompt", "no_context", "majority"):
        assert rows[method].layers == () and fmt_layer(rows[method]) == DASH

    assert run(capsys, "--root", str(root), "build")[0] == 0
    readme = (root / "README.md").read_text()
    [toy] = [line for line in readme.splitlines() if "| toy\\_patch |" in line]
    assert "| 21 / 30 |" in toy
    [other] = [line for line in readme.splitlines() if "| toy\\_prompt |" in line]
    assert "| — |" in other and "21 / 30" not in other
    with (root / "leaderboard.csv").open(newline="") as handle:
        table = {r["method"]: r for r in csv.DictReader(handle) if r["reported"] == "false"}
    assert table["toy_patch"]["layer"] == "21" and table["toy_prompt"]["layer"] == ""


def test_readme_shows_the_smollm2_patch_row_and_marks_reported_rows():
    readme = (ROOT / "README.md").read_text()
    assert (
        "| Patch | 0.20 ± 0.04 | 0.15 ± 0.02 | 0.28 ± 0.00 | 0.20 ± 0.02 | 0.26 ± 0.00 "
        "| 0.46 ± 0.01 | 0.26 ± 0.00 | [0.22, 0.29] | 0.17 [0.14, 0.20] (0.17) | 22 / 30 |"
    ) in readme
    assert (
        "| *[Idefics2 (paper)](submissions/idefics2-paper_text-examples-to-image.json)* (reported) "
        "| Patch | 0.61 ± — | 0.40 ± — | 0.48 ± — | 0.62 ± — | 0.53 ± — | 0.39 ± — | 0.51 ± — "
        "| — |"
    ) in readme
    assert readme.index("## Text examples → image queries") < readme.index(
        "## Text examples → text queries"
    )


def test_page_is_self_contained():
    html = (ROOT / "index.html").read_text()
    assert "http://" not in html and "https://" not in html
    assert "<script src" not in html and "<link" not in html
    assert 'href="submissions/smollm2-135m-instruct-cpu_text-examples-to-text.json"' in html


def test_labels_and_orders_cover_the_protocol():
    assert sorted(labels.SETTING_ORDER) == sorted((s, q) for s in SPECS for q in QUERIES)
    assert len(set(labels.SETTING_ORDER)) == len(labels.SETTING_ORDER)
    assert labels.SETTING_ORDER[0] == ("text_examples", "image")  # the paper's headline
    assert [q for _, q in labels.SETTING_ORDER] == ["image"] * 4 + ["text"] * 4
    assert set(labels.SPEC_LABELS) == set(SPECS)
    assert tuple(labels.METHOD_LABELS) == METHODS
    assert labels.method_key("toy_method") > labels.method_key("instruction_patch")
    assert tuple(labels.OVERRIDING_METHOD_LABELS) == OVERRIDING_METHODS
    overriding = tuple(t for t, task in TASKS.items() if task.family == "overriding")
    assert labels.OVERRIDING_TASKS == overriding
    assert set(labels.OVERRIDING_SETTINGS) < set(overriding) and "override_text" in overriding


# --- the paper's rows ---------------------------------------------------------------------------


def test_committed_paper_rows_are_what_paper_py_makes():
    made = {submission_filename(d): dumps(d) for d in paper.paper_submissions()}
    committed = {
        p.name: p.read_text()
        for p in (ROOT / "submissions").glob("*.json")
        if json.loads(p.read_text())["submission"]["reported"]
    }
    assert committed == made


def test_paper_rows_agree_with_the_papers_own_averages():
    """A transcription check: each row's mean is within rounding of the paper's Avg column."""
    rows = paper.table_rows()
    assert len(rows) == 14
    for model, method, per_task, avg in rows:
        mean = sum(per_task.values()) / len(per_task)
        assert abs(mean - avg) <= 0.0051, (model, method, mean, avg)
    assert rows[-1] == (
        "Idefics2",
        "Text Examples Patch",
        dict(zip(paper.TASKS, [0.61, 0.40, 0.48, 0.62, 0.53, 0.39], strict=True)),
        0.51,
    )


def test_paper_submissions_are_reported_with_their_source():
    subs = paper.paper_submissions()
    assert len(subs) == 19
    for data in subs:
        assert data["submission"]["reported"] is True
    sources = [d["submission"]["source"].removeprefix("Luo et al. 2025 (ICML), ") for d in subs]
    assert sources == ["Table 2"] * 7 + ["Tables 3 and 11"] * 2 + ["Table 4"] * 2 + [
        "Table 10"
    ] * 2 + ["Table 12"] * 5 + ["Table 5"]
    queries = [d["results"]["config"]["query"] for d in subs]
    assert queries == ["image"] * 13 + ["text"] * 5 + ["image"]


def test_table_5_is_a_reported_overriding_submission():
    data = paper.table_5_submission()
    assert submission_filename(data) == TABLE_5.name
    assert data["submission"]["reported"] is True
    assert data["submission"]["source"] == "Luo et al. 2025 (ICML), Table 5"
    results = data["results"]
    assert results["model"] == {"name": "idefics2"}
    assert results["config"] == {"spec": "instruction", "query": "image"}
    # GPT-4o, but the paper names no snapshot or temperature: said so, not guessed.
    assert results["judge"] == {
        "model": "gpt-4o (paper; snapshot not stated)",
        "temperature": None,
        "base_url": None,
    }
    rates = {
        method: [results["results"][t][method]["acc"] for t in paper.TABLE_5_TASKS]
        for method in OVERRIDING_METHODS
    }
    assert rates == {
        "original": [0.10, 0.15, 0.08, 0.15],
        "system_prompt": [0.09, 0.49, 0.06, 0.15],
        "instruction_patch": [0.36, 0.59, 0.65, 0.42],
    }
    assert "not confirmed" in data["submission"]["notes"]


def test_readme_shows_table_5_as_reported_in_its_own_section():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Task overriding (Table 5)", 1)[1].split("## Submissions", 1)[0]
    link = f"*[Idefics2 (paper)](submissions/{TABLE_5.name})* (reported)"
    judge = "gpt-4o (paper; snapshot not stated)"
    assert "| Model | Method | Semantic | Syntax | Creative | Factual | Layer | Judge |" in section
    for method, values in [
        ("Original task", "0.10 | 0.15 | 0.08 | 0.15"),
        ("+ System prompt", "0.09 | 0.49 | 0.06 | 0.15"),
        ("+ Instruction patch", "0.36 | 0.59 | 0.65 | 0.42"),
    ]:
        assert f"| {link} | {method} | {values} | — | {judge} |" in section
    assert "Reported rows: Luo et al. 2025 (ICML), Table 5." in section
    # Kept out of the accuracy tables and their CSV.
    assert readme.count(TABLE_5.name) == 4  # three rows and the submissions list
    assert "override" not in (ROOT / "leaderboard.csv").read_text()
    csv_rows = (ROOT / OVERRIDING_CSV).read_text().splitlines()
    assert len(csv_rows) == 4 and all("Table 5" in line for line in csv_rows[1:])


# --- the paper's other tables: LLM → VLM (3, 11), VQA (4), chat template (10), spec → query (12)


def _committed_rows() -> list:
    submissions, problems = build.load(ROOT)
    assert problems == []
    return all_rows(submissions)


def _section(readme: str, title: str) -> str:
    """The text of the README section headed `## title`, up to the next heading."""
    (section,) = [s for s in readme.split("\n## ") if s.startswith(title + "\n")]
    return section


# Hand-typed from DESIGN.md §3, not from paper.py: (model, section, method) -> (some of the
# row's figures, the paper's Avg for it).
DESIGN_FIGURES = [
    # Tables 3 and 11: vectors from the base LLM (Vicuna, Mistral) patched into the VLM.
    (
        ("llava-1.5", "text_examples→image+source_model", "patch"),
        {"country_capital": 0.33, "animal_young": 0.33, "food_flavor": 0.45},
        0.37,
    ),
    (
        ("idefics2", "text_examples→image+source_model", "patch"),
        {"country_capital": 0.57, "country_currency": 0.58, "food_flavor": 0.39},
        0.52,
    ),
    # Table 4: VQA subsets on Idefics2 (Food-Class, Shirt-Color, Man-Holding).
    (
        ("idefics2", "image_examples→image+vqa", "prompt"),
        {"vqa_food_class": 0.70, "vqa_shirt_color": 0.41, "vqa_man_holding": 0.46},
        0.52,
    ),
    (
        ("idefics2", "image_examples→image+vqa", "patch"),
        {"vqa_food_class": 0.49, "vqa_shirt_color": 0.19, "vqa_man_holding": 0.39},
        0.36,
    ),
    (("idefics2", "text_examples→image+vqa", "prompt"), {"vqa_food_class": 0.85}, 0.63),
    (
        ("idefics2", "text_examples→image+vqa", "patch"),
        {"vqa_food_class": 0.93, "vqa_shirt_color": 0.56, "vqa_man_holding": 0.59},
        0.69,
    ),
    # Table 10: Idefics2 in its chat template.
    (("idefics2", "text_examples→image+chat", "no_context"), {"animal_latin": 0.07}, 0.01),
    (("idefics2", "image_examples→image+chat", "no_context"), {"animal_latin": 0.07}, 0.01),
    (("idefics2", "image_examples→image+chat", "prompt"), {"country_capital": 0.74}, 0.44),
    (
        ("idefics2", "image_examples→image+chat", "patch"),
        {"country_capital": 0.78, "country_currency": 0.09, "food_flavor": 0.01},
        0.22,
    ),
    (("idefics2", "text_examples→image+chat", "prompt"), {"animal_young": 0.16}, 0.15),
    (("idefics2", "text_examples→image+chat", "patch"), {"animal_young": 0.64}, 0.54),
    # Table 12: patched onto text queries; the paper's text→text and image→text averages.
    (("llava-1.5", "text_examples→text", "patch"), {"country_capital": 0.97}, 0.59),
    (("mantis-fuyu", "text_examples→text", "patch"), {"food_color": 0.28}, 0.34),
    (("idefics2", "text_examples→text", "patch"), {"country_currency": 0.61}, 0.65),
    (("mantis-fuyu", "image_examples→text", "patch"), {"country_currency": 0.01}, 0.25),
    (("idefics2", "image_examples→text", "patch"), {"animal_young": 0.04}, 0.42),
]


def test_the_papers_other_tables_agree_with_design_md():
    rows = _committed_rows()
    found = {(r.model, r.setting, r.method): r for r in rows if r.reported}
    for key, cells, avg in DESIGN_FIGURES:
        row = found[key]
        for task, value in cells.items():
            assert row.cells[task].acc == pytest.approx(value, abs=1e-9), (key, task)
        assert len(row.cells) == (3 if "+vqa" in key[1] else 6), key
        assert abs(row.avg.acc - avg) <= 0.01, (key, row.avg.acc, avg)
    # Every reported row in these sections is one of the figures above: nothing else was added.
    new = {k for k, r in found.items() if "+" in k[1] or k[1].endswith("→text")}
    assert new == {key for key, _, _ in DESIGN_FIGURES}


def test_llm_to_vlm_rows_carry_table_3s_cosines():
    rows = [r for r in _committed_rows() if r.setting == "text_examples→image+source_model"]
    by_model = {r.model: r for r in rows}
    assert {m: (r.source_model, r.cosine) for m, r in by_model.items()} == {
        "llava-1.5": ("vicuna-7b", 0.95),
        "idefics2": ("mistral-7b", 0.89),
    }
    # The mismatched-task figure is one number for no stated model: in the notes, not a cell.
    assert all(r.cosine_mismatched is None for r in rows)
    for data in paper.paper_submissions():
        if data["results"]["config"].get("source_model"):
            assert "0.58" in data["submission"]["notes"]
            assert data["results"]["model"]["source_model"] == {
                "name": data["results"]["config"]["source_model"]
            }
    section = _section(
        (ROOT / "README.md").read_text(),
        labels.Section("text_examples", "image", from_source=True).label,
    )
    assert "| Vectors from | Cos | Cos (mismatched) |" in section
    assert "| — | `vicuna-7b` | 0.95 | — | — |" in section
    assert "Reported rows: Luo et al. 2025 (ICML), Tables 3 and 11." in section


def test_figures_already_entered_are_not_entered_again():
    """Table 11's VLM-VLM rows and Table 12's I→I and T→I rows are Table 2's patch rows: the
    typed figures agree, and only Table 2 enters them. "–" (not run) makes no row."""
    table_2 = {(line.model, line.label): line.values for line in paper.table_rows()}
    repeats = 0
    for name in ("Table 11", "Table 12"):
        table = paper.TABLES[name]
        for line in table.lines():
            same_as = table.rows[line.label]
            if isinstance(same_as, str) and line.values is not None:
                assert line.values == table_2[line.model, same_as], (name, line)
                repeats += 1
    assert repeats == 2 + 5  # VLM-VLM of LLaVA, Idefics2; T→I of all three; I→I of two
    not_run = [(m, label) for m, label, v, _ in paper.TABLES["Table 12"].lines() if v is None]
    assert not_run == [("LLaVA-1.5", "I→I"), ("LLaVA-1.5", "I→T")]
    rows = [r for r in _committed_rows() if r.reported]
    assert not [r for r in rows if r.model == "llava-1.5" and r.spec == "image_examples"]
    # No model's prompt or patch figures appear in two rows.
    figures = [
        (r.model, r.method, tuple(sorted((t, c.acc) for t, c in r.cells.items())))
        for r in rows
        if r.method in ("prompt", "patch")
    ]
    assert len(figures) == len(set(figures))


def test_readme_shows_each_table_in_its_own_section_marked_reported():
    readme = (ROOT / "README.md").read_text()
    expected = [
        ("Text examples → text queries", "Table 12", 3),
        ("Image examples → text queries", "Table 12", 2),
        (
            "Text examples → image queries: task vectors from another model (LLM → VLM)",
            "Tables 3 and 11",
            2,
        ),
        ("Text examples → image queries: VQA subsets", "Table 4", 2),
        ("Image examples → image queries: VQA subsets", "Table 4", 2),
        ("Text examples → image queries: the model's chat template", "Table 10", 3),
        ("Image examples → image queries: the model's chat template", "Table 10", 3),
    ]
    positions = []
    for title, table, reported in expected:
        section = _section(readme, title)
        assert f"Reported rows: Luo et al. 2025 (ICML), {table}." in section, title
        assert section.count("(reported) |") == reported, title
        positions.append(readme.index(f"\n## {title}\n"))
    assert positions == sorted(positions)  # plain settings, LLM → VLM, VQA, chat template
    assert readme.index("## Text examples → image queries\n") < positions[0]
    vqa = _section(readme, "Text examples → image queries: VQA subsets")
    assert "| Model | Method | Food-Class | Shirt-Color | Man-Holding | Avg |" in vqa
    assert "--template model" in _section(readme, expected[-1][0])
    # The plain Table 2 section keeps only Table 2's rows.
    plain = _section(readme, "Text examples → image queries")
    assert plain.count("(reported) |") == 10 and "Table 4" not in plain


def _reproduction(**changes) -> dict:
    """A results file shaped as the harness writes it for `changes` (RunConfig fields), with
    the config read from the harness's own RunConfig."""
    from harness.config import RunConfig
    from harness.templates import TEMPLATES

    chat = changes.pop("chat", False)
    config = RunConfig(**changes)
    results = good("results")
    results["model"] = {"name": config.model, "revision": None, "num_layers": 32}
    results["layer_selection"] = sweep(num_layers=32)
    cfg = config.as_dict()
    cfg["template"] = TEMPLATES["paper"].record()  # as adapter.prompting() records it
    if chat:
        cfg["template"]["chat"] = {"before": "User: ", "after": "<end_of_utterance>\nAssistant:"}
    cfg["tasks"], cfg["seeds"], cfg["methods"] = list(config.tasks), [0, 1, 2], cfg["methods"]
    results["config"] = cfg
    spec_run_id(results)
    entry = results["results"]["country_capital"]
    results["results"] = {task: copy.deepcopy(entry) for task in config.tasks}
    if config.source_model:
        results["model"]["source_model"] = {"name": config.source_model}
        results["transfer"] = {
            "source_model": config.source_model,
            "layer": 21,
            "cosine": {t: 0.9 for t in config.tasks},
            "mean_cosine": 0.9,
            "mismatched_cosine": {t: 0.5 for t in config.tasks},
            "mean_mismatched_cosine": 0.5,
        }
    return results


REPRODUCTIONS = {
    "llm-to-vlm": (
        dict(model="llava-1.5", spec="text_examples", query="image", source_model="vicuna-7b"),
        "text_examples→image+source_model",
        "llava-1-5-paper_text-examples-to-image_from-vicuna-7b.json",
        "_from-vicuna-7b",
    ),
    "vqa": (
        dict(model="idefics2", spec="text_examples", query="image", tasks=paper.VQA_TASKS),
        "text_examples→image+vqa",
        "idefics2-paper_text-examples-to-image_vqa.json",
        "_vqa",
    ),
    "chat": (
        dict(model="idefics2", spec="image_examples", query="image", template="model", chat=True),
        "image_examples→image+chat",
        "idefics2-paper_image-examples-to-image_chat.json",
        "_chat",
    ),
    "image-to-text": (
        dict(model="idefics2", spec="image_examples", query="text"),
        "image_examples→text",
        "idefics2-paper_image-examples-to-text.json",
        "",
    ),
}


@pytest.mark.parametrize("case", list(REPRODUCTIONS))
def test_a_reproduction_lands_next_to_the_papers_row(case, tmp_path, capsys):
    changes, setting, paper_file, suffix = REPRODUCTIONS[case]
    plain = "idefics2-paper_text-examples-to-image.json"  # Table 2: a section of its own
    root = make_root(tmp_path, [ROOT / "submissions" / f for f in (paper_file, plain)])
    results = _reproduction(**changes)
    _add(capsys, root, tmp_path, results, "Repro")
    assert (
        root / "submissions" / f"repro_{changes['spec'].replace('_', '-')}-to-"
        f"{changes['query']}{suffix}.json"
    ).is_file()
    assert run(capsys, "--root", str(root), "build")[0] == 0
    with (root / "leaderboard.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert {r["setting"] for r in table if r["name"] == "Repro"} == {setting}
    paper_rows = [r for r in table if r["file"] == f"submissions/{paper_file}"]
    assert paper_rows and {r["setting"] for r in paper_rows} == {setting}
    section = next(s for s in settings_of(all_rows(build.load(root)[0])) if s.id == setting)
    text = _section((root / "README.md").read_text(), section.label)
    assert "[Repro](submissions/repro_" in text and f"(submissions/{paper_file})*" in text
    if case == "llm-to-vlm":
        assert "| `vicuna-7b` | 0.90 | 0.50 | 100 × 3 |" in text
        assert {r["cosine"] for r in table if r["name"] == "Repro"} == {"0.9000"}


def test_reported_rows_record_the_template_as_the_harness_does():
    from harness.templates import TEMPLATES

    assert paper.PAPER_TEMPLATE == TEMPLATES["paper"].record()
    for data in paper.paper_submissions()[:-1]:  # every accuracy table; Table 5 is left as is
        config = data["results"]["config"]
        assert config["tasks"] == list(data["results"]["results"])
        chat = data["submission"]["source"].endswith("Table 10")
        assert labels.uses_chat(data["results"]) is chat
        assert config["template"] == (paper.CHAT_TEMPLATE if chat else paper.PAPER_TEMPLATE)


def _committed(name: str) -> dict:
    return json.loads((ROOT / "submissions" / name).read_text())


def test_a_reported_row_is_checked_against_its_own_table(tmp_path, capsys):
    root = make_root(tmp_path, [])
    # Table 10's chat figures recorded without the chat template are not Table 2's.
    chat = _committed("idefics2-paper_image-examples-to-image_chat.json")
    chat["results"]["config"]["template"] = dict(paper.PAPER_TEMPLATE)
    put(root, rehash(chat), "a.json")
    # Table 3's cosine edited.
    llm = _committed("llava-1-5-paper_text-examples-to-image_from-vicuna-7b.json")
    llm["results"]["transfer"]["mean_cosine"] = 0.99
    put(root, rehash(llm), "b.json")
    # Table 4's figures as a cross-modal task: Table 2's row has other figures.
    vqa = _committed("idefics2-paper_text-examples-to-image_vqa.json")
    vqa["results"]["results"]["country_capital"] = vqa["results"]["results"].pop("vqa_food_class")
    put(root, rehash(vqa), "c.json")
    # Table 12's text → text row as if its vectors came from the base LLM: no such row.
    text = _committed("llava-1-5-paper_text-examples-to-text.json")
    text["results"]["config"]["source_model"] = "vicuna-7b"
    put(root, rehash(text), "d.json")
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 1
    assert "a.json: $.results.results.country_capital.patch: {'acc': 0.78} differs" in out
    assert "b.json: $.results.transfer: " in out and "0.95" in out
    assert "c.json: $.results.results.country_capital.patch: {'acc': 0.93} differs" in out
    assert (
        "d.json: $.results.results: reported figures for model 'llava-1.5', text_examples→text "
        "with vectors from 'vicuna-7b', method 'patch', which no row of the paper's tables"
    ) in out


# --- regeneration -------------------------------------------------------------------------------


def test_build_is_deterministic(tmp_path, capsys):
    first, second = make_root(tmp_path / "a"), make_root(tmp_path / "b")
    assert run(capsys, "--root", str(first), "build")[0] == 0
    assert run(capsys, "--root", str(second), "build")[0] == 0
    produced = files_of(first)
    assert produced == files_of(second)
    assert {"README.md", "leaderboard.csv", "index.html"} <= set(produced)
    shipped = [json.loads(f.read_text()) for f in (ROOT / "submissions").glob("*.json")]
    measured = sum(not doc["submission"]["reported"] for doc in shipped)  # SmolLM2, Gemma 3
    assert measured == 2
    assert sum(name.endswith(".layers.png") for name in produced) == measured
    assert sum(name.endswith(".tasks.png") for name in produced) == len(shipped)
    assert OVERRIDING_CSV in produced
    rc, out = run(capsys, "--root", str(first), "build")
    assert rc == 0 and "no file(s) changed" in out


def test_check_fails_when_a_generated_file_is_stale(tmp_path, capsys):
    root = make_root(tmp_path)
    assert run(capsys, "--root", str(root), "build")[0] == 0
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 0 and f"ok: {len(list((ROOT / 'submissions').glob('*.json')))} submissions" in out

    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("0.26 ± 0.00", "0.99 ± 0.00"))
    plot = next((root / "plots").glob("*.layers.png"))
    plot.unlink()
    (root / "plots" / "old.png").write_bytes(b"\x89PNG")
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 1
    assert "README.md: out of date" in out
    assert f"plots/{plot.name}: missing" in out
    assert "plots/old.png: made by no submission" in out
    assert "run `vlm-tv-leaderboard build`" in out

    assert run(capsys, "--root", str(root), "build")[0] == 0
    assert not (root / "plots" / "old.png").exists()
    assert run(capsys, "--root", str(root), "check")[0] == 0


def test_check_fails_when_a_submission_is_added_without_a_build(tmp_path, capsys):
    root = make_root(tmp_path, [SMOLLM2])
    assert run(capsys, "--root", str(root), "build")[0] == 0
    put(root, good("submission"))
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 1 and "README.md: out of date" in out and ".tasks.png: missing" in out


def test_the_committed_leaderboard_is_up_to_date(capsys):
    """What CI runs: `vlm-tv-leaderboard check` on the repository's own leaderboard/."""
    rc, out = run(capsys, "check")
    assert rc == 0, out


def test_rendering_matches_the_committed_files():
    submissions, problems = build.load(ROOT)
    assert problems == []
    assert build.stale(ROOT, build.render(submissions)) == []


def test_build_never_imports_torch_or_the_harness(tmp_path):
    """The leaderboard runs where no model can be loaded: a build in a fresh interpreter
    must leave torch and every harness module unimported, and give the same bytes."""
    root = make_root(tmp_path)
    code = (
        "import sys, leaderboard.cli\n"
        f"assert leaderboard.cli.main(['--root', {str(root)!r}, 'build']) == 0\n"
        f"assert leaderboard.cli.main(['--root', {str(root)!r}, 'check']) == 0\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', "
        "'harness')))\n"
        "assert 'torch' not in sys.modules and not any(m.startswith('harness') for m in "
        "sys.modules), bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    in_process = build.render(build.load(root)[0])
    assert build.stale(root, in_process) == []


# --- verified, not just parsed -----------------------------------------------------------------


def _check(capsys, root: Path) -> tuple[int, str]:
    return run(capsys, "--root", str(root), "check")


def test_nan_in_a_submission_fails_check(tmp_path, capsys):
    root = make_root(tmp_path, [SMOLLM2])
    path = root / "submissions" / SMOLLM2.name
    path.write_text(path.read_text().replace('"acc": 0.02,', '"acc": NaN,', 1))
    rc, out = _check(capsys, root)
    assert rc == 1
    assert f"{SMOLLM2.name}: $.results.results.country_capital.no_context.acc: NaN is not" in out


def test_a_duplicate_key_in_a_submission_fails_check(tmp_path, capsys):
    root = make_root(tmp_path, [SMOLLM2])
    path = root / "submissions" / SMOLLM2.name
    text = path.read_text().replace('"reported": false,', '"reported": false, "reported": true,')
    path.write_text(text)
    rc, out = _check(capsys, root)
    assert rc == 1 and f"{SMOLLM2.name}: $.submission: duplicate key 'reported'" in out


def test_add_refuses_nan_in_a_results_file(tmp_path, capsys):
    root = make_root(tmp_path, [])
    path = _results_file(tmp_path, good("results"))
    path.write_text(
        path.read_text().replace('"acc_strict_std": 0.1,', '"acc_strict_std": Infinity,', 1)
    )
    rc, out = run(
        capsys, "--root", str(root), "add", str(path), "--name", "x", "--submitted-by", "y"
    )
    assert rc == 1 and f"{path} is not a valid results file" in out and "Infinity is not" in out
    assert list((root / "submissions").iterdir()) == []


def test_a_bad_created_fails_check_and_add(tmp_path, capsys):
    root = make_root(tmp_path, [])
    data = good("submission")
    data["results"]["created"] = "yesterday"
    put(root, rehash(data), "late.json")
    rc, out = _check(capsys, root)
    assert rc == 1 and "late.json: $.results.created: 'yesterday' is not a 'date-time'" in out
    path = _results_file(tmp_path, data["results"])
    rc, out = run(
        capsys, "--root", str(root), "add", str(path), "--name", "x", "--submitted-by", "y"
    )
    assert rc == 1 and "$.created: 'yesterday' is not a 'date-time'" in out


def test_a_hand_edited_submission_fails_check(tmp_path, capsys):
    """Numbers changed consistently (acc and std follow per_seed), but not by `add`."""
    root = make_root(tmp_path, [SMOLLM2])
    data = rerun(json.loads(SMOLLM2.read_text()))
    data["results"]["run_id"] = json.loads(SMOLLM2.read_text())["results"]["run_id"]
    data["submission"]["results_sha256"] = json.loads(SMOLLM2.read_text())["submission"][
        "results_sha256"
    ]
    put(root, data, SMOLLM2.name)
    rc, out = _check(capsys, root)
    assert rc == 1
    assert f"{SMOLLM2.name}: $.submission.results_sha256: " in out
    assert "changed after `vlm-tv-leaderboard add`" in out


def test_the_results_hash_is_sha256_of_canonical_json():
    data = json.loads(SMOLLM2.read_text())
    text = json.dumps(data["results"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert data["submission"]["results_sha256"] == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("acc", 0.25, "food_color.patch.acc: 0.25 is not the mean of per_seed"),
        ("acc_std", 0.5, "food_color.patch.acc_std: 0.5 is not the population std"),
        ("per_seed", [0.26, 0.26], "food_color.patch.per_seed: 2 value(s) for 3 seed(s)"),
        ("n", 20, "food_color.patch.n: 20 items scored per seed, but the recorded test split"),
    ],
)
def test_an_inconsistent_submission_fails_check(tmp_path, capsys, field, value, message):
    root = make_root(tmp_path, [SMOLLM2])
    data = json.loads(SMOLLM2.read_text())
    data["results"]["results"]["food_color"]["patch"][field] = value
    put(root, rehash(data), SMOLLM2.name)  # the hash matches: only the numbers disagree
    rc, out = _check(capsys, root)
    assert rc == 1 and f"{SMOLLM2.name}: $.results.results.{message}" in out


def test_the_same_run_id_is_a_near_duplicate(tmp_path, capsys):
    root = make_root(tmp_path, [SMOLLM2])
    data = rerun(json.loads(SMOLLM2.read_text()))
    data["results"]["run_id"] = json.loads(SMOLLM2.read_text())["results"]["run_id"]
    data["submission"]["name"] = "Again (GPU)"
    put(root, rehash(data))
    rc, out = _check(capsys, root)
    assert rc == 1
    run_id = json.loads(SMOLLM2.read_text())["results"]["run_id"]
    assert (
        f"{SMOLLM2.name}: near-duplicate of again-gpu_text-examples-to-text.json: the same run_id "
        f"'{run_id}'"
    ) in out

    (root / "submissions" / submission_filename(data)).unlink()
    path = _results_file(tmp_path, data["results"])
    argv = ["--root", str(root), "add", str(path), "--name", "Again", "--submitted-by", "me"]
    rc, out = run(capsys, *argv)
    assert rc == 1 and f"near-duplicate of {root / 'submissions' / SMOLLM2.name}" in out
    assert "nothing was written" in out
    assert sorted(p.name for p in (root / "submissions").iterdir()) == [SMOLLM2.name]


def test_identical_per_seed_numbers_are_a_near_duplicate(tmp_path, capsys):
    """Another run id and config (n_shot), but every per-seed number the same."""
    root = make_root(tmp_path, [SMOLLM2])
    data = json.loads(SMOLLM2.read_text())
    data["results"]["run_id"] = "text_examples-000000000000"
    data["results"]["config"]["n_shot"] = 4
    data["submission"]["name"] = "Copy"
    put(root, rehash(data))
    rc, out = _check(capsys, root)
    assert rc == 1
    assert (
        f"{SMOLLM2.name}: near-duplicate of copy_text-examples-to-text.json: the same per-seed "
        "accuracies for every task and method, same model and setting"
    ) in out


def test_a_reported_row_must_be_the_papers(tmp_path, capsys):
    paper_file = ROOT / "submissions" / "idefics2-paper_text-examples-to-image.json"
    root = make_root(tmp_path, [paper_file])
    data = json.loads(paper_file.read_text())
    data["results"]["results"]["country_capital"]["patch"]["acc"] = 0.71
    put(root, rehash(data), paper_file.name)  # the hash matches: only the paper check sees it
    rc, out = _check(capsys, root)
    assert rc == 1
    assert (
        f"{paper_file.name}: $.results.results.country_capital.patch: {{'acc': 0.71}} differs "
        "from the paper's {'acc': 0.61} (leaderboard/paper.py)"
    ) in out

    data = json.loads(paper_file.read_text())
    data["results"]["model"]["name"] = "gpt-5"
    put(root, rehash(data), paper_file.name)
    rc, out = _check(capsys, root)
    assert rc == 1 and "model 'gpt-5'" in out and "which no row of the paper's tables" in out


def test_a_deeply_nested_submission_is_refused(tmp_path, capsys):
    root = make_root(tmp_path, [SMOLLM2])
    (root / "submissions" / "deep.json").write_text("{" + '"a":{' * 50_000 + "}" * 50_001)
    rc, out = _check(capsys, root)
    assert rc == 1 and "deep.json: $: nested too deeply to read" in out


def test_a_limited_run_shows_its_size_everywhere(tmp_path, capsys):
    root = make_root(tmp_path, [SMOLLM2])
    results = good("results")
    results["config"]["limit"] = 20
    results["splits"] = {"country_capital": {"validation": 20, "test": 20}}
    for entry in results["results"]["country_capital"].values():
        entry["n"] = 20
    _add(capsys, root, tmp_path, results, "Quick", partial=True)
    assert run(capsys, "--root", str(root), "build")[0] == 0
    readme = (root / "README.md").read_text()
    quick = [line for line in readme.splitlines() if line.startswith("| [Quick]")]
    assert len(quick) == 4 and all(line.endswith(" | 20 × 3 (limit 20) |") for line in quick)
    full = [line for line in readme.splitlines() if line.startswith("| [SmolLM2")]
    assert full and all(line.endswith(" | 100 × 3 |") for line in full)
    assert "| Avg | Avg 95% CI | Whole answer | Layer | n × seeds |" in readme
    with (root / "leaderboard.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["name"] == "Quick"]
    assert {(r["country_capital_n"], r["seeds"], r["limit"]) for r in rows} == {("20", "3", "20")}
    html = (root / "index.html").read_text()
    assert '<td data-sort="20">20 × 3 (limit 20)</td>' in html
    assert '<td data-sort="100">100 × 3</td>' in html


# --- 95% intervals of the Avg and the paired differences ----------------------------------------

# A run's per-seed accuracies (task -> method -> seeds): Avgs No context .10, Random .10,
# Prompt .55, Patch .45, so Patch − Prompt is −.10 and Patch − No context +.35.
SURE = {
    "country_capital": {
        "no_context": [0.0, 0.1, 0.2],
        "majority": [0.1, 0.1, 0.1],
        "prompt": [0.4, 0.5, 0.6],
        "patch": [0.3, 0.4, 0.5],
    },
    "country_currency": {
        "no_context": [0.1, 0.1, 0.1],
        "majority": [0.1, 0.1, 0.1],
        "prompt": [0.5, 0.6, 0.7],
        "patch": [0.5, 0.5, 0.5],
    },
}
AVERAGE_CI = {
    "no_context": [0.06, 0.14],
    "majority": [0.08, 0.12],
    "prompt": [0.51, 0.59],
    "patch": [0.41, 0.49],
    "patch - prompt": [-0.13, -0.07],
    "patch - no_context": [0.3, 0.4],
}
SURE_DIFFERENCES = "Patch − Prompt: −0.10 [−0.13, −0.07]; Patch − No context: +0.35 [+0.30, +0.40]"


def _intervals(tasks) -> dict:
    """An `intervals` block as the harness writes it, its average taken over `tasks`."""
    return {
        "rule": "percentile bootstrap, 2000 replicates (paired)",
        "level": 0.95,
        "replicates": 2000,
        "score": "lenient",
        "per_task": {task: copy.deepcopy(AVERAGE_CI) for task in tasks},
        "average": copy.deepcopy(AVERAGE_CI),
    }


def _with_intervals(results: dict, accuracies: dict = SURE) -> dict:
    """`results` holding `accuracies` (task -> method -> per-seed) and their intervals."""
    entries = next(iter(results["results"].values()))
    results["config"]["tasks"] = list(accuracies)
    results["results"] = {
        task: {
            method: dict(
                entries[method],
                acc=statistics.fmean(per_seed),
                acc_std=statistics.pstdev(per_seed),
                acc_strict=statistics.fmean(per_seed),
                acc_strict_std=statistics.pstdev(per_seed),
                per_seed=list(per_seed),
            )
            for method, per_seed in methods.items()
        }
        for task, methods in accuracies.items()
    }
    results["intervals"] = _intervals(accuracies)
    return results


def _md_column(readme: str, prefix: str, header: str) -> dict[str, str]:
    """Method label -> the `header` cell of the README rows starting with `prefix`."""
    out = {}
    for table in readme.split("\n\n"):
        lines = table.strip().splitlines()
        if not lines or not lines[0].startswith("| Model |"):
            continue
        index = [c.strip() for c in lines[0].strip("|").split("|")].index(header)
        for line in lines[2:]:
            if line.startswith(prefix):
                cells = [c.strip() for c in line.strip("|").split("|")]
                out[cells[1]] = cells[index]
    return out


def _html_table(html: str, table_id: str) -> str:
    """The HTML of the page's table `table_id` (empty when the page has none)."""
    parts = html.split(f'<table id="{table_id}"', 1)
    return parts[1].split("</table>", 1)[0] if len(parts) == 2 else ""


def _html_column(
    html: str, name: str, header: str, tables: tuple[str, ...] = ("leaderboard", "unranked")
) -> dict[str, str]:
    """data-method -> the `header` cell (as HTML) of the rows of submission `name` in `tables`
    (default: the ranked table and the not-ranked one)."""
    out = {}
    for table in (_html_table(html, table_id) for table_id in tables):
        heads = re.findall(r'<button type="button">(.*?)</button>', table)
        for line in table.splitlines():
            if line.startswith("<tr") and f">{name}</a>" in line:
                method = re.search(r'data-method="([^"]*)"', line).group(1)
                out[method] = re.findall(r"<td[^>]*>.*?</td>", line)[heads.index(header)]
    return out


def _without_new_fields(root: Path) -> Path:
    """`root` with its SmolLM2 submission as a run made before intervals, whole answers and
    neighbour layers were recorded (the committed one has them)."""
    path = root / "submissions" / SMOLLM2.name
    data = json.loads(path.read_text())
    data["results"].pop("intervals", None)
    data["results"]["config"].pop("whole_answer_metric", None)
    for by_method in data["results"]["results"].values():
        for entry in by_method.values():
            entry.pop("whole_answer", None)
            entry.pop("neighbour_layers", None)
    path.write_text(dumps(rehash(data)), "utf-8")
    return root


def test_a_run_with_intervals_shows_its_avg_interval_everywhere(tmp_path, capsys):
    root = _without_new_fields(make_root(tmp_path, [SMOLLM2]))
    _add(capsys, root, tmp_path, _with_intervals(good("results")), "Sure", partial=True)
    assert run(capsys, "--root", str(root), "build")[0] == 0
    readme = (root / "README.md").read_text()
    intro = readme.split("\n## ", 1)[0]
    assert "**Avg 95% CI** is a 95% interval for the Avg: a paired bootstrap over test" in intro
    sure = _md_column(readme, "| [Sure](", "Avg 95% CI")
    assert sure == {
        "No context": "[0.06, 0.14]",
        "Random (majority)": "[0.08, 0.12]",
        "Prompt": "[0.51, 0.59]",
        "Patch": "[0.41, 0.49]",
    }
    # Avg over the run's two tasks (of the table's six: †), the interval's average too.
    assert _md_column(readme, "| [Sure](", "Avg")["Patch"] == "0.45 ± 0.04 †"
    # A run made before intervals existed: a dash, in every row.
    smollm2 = _md_column(readme, "| [SmolLM2", "Avg 95% CI")
    assert len(smollm2) == 4 and set(smollm2.values()) == {DASH}
    assert "| Avg | Avg 95% CI | Whole answer | Layer | n × seeds |" in readme

    with (root / "leaderboard.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    ci = {(r["name"], r["method"]): (r["avg_ci_low"], r["avg_ci_high"]) for r in table}
    assert ci["Sure", "patch"] == ("0.4100", "0.4900")
    assert ci["Sure", "no_context"] == ("0.0600", "0.1400")
    assert {v for (name, _), v in ci.items() if name != "Sure"} == {("", "")}

    html = (root / "index.html").read_text()
    cells = _html_column(html, "Sure", "Avg 95% CI")
    assert cells["patch"] == '<td data-sort="0.410000">[0.41, 0.49]</td>'
    assert cells["prompt"] == '<td data-sort="0.510000">[0.51, 0.59]</td>'
    old = _html_column(html, "SmolLM2-135M-Instruct (CPU)", "Avg 95% CI")
    assert len(old) == 4 and set(old.values()) == {f'<td data-sort="">{DASH}</td>'}


def test_the_paired_differences_show_under_the_table(tmp_path, capsys):
    root = _without_new_fields(make_root(tmp_path, [SMOLLM2]))
    _add(capsys, root, tmp_path, _with_intervals(good("results")), "Sure", partial=True)
    assert run(capsys, "--root", str(root), "build")[0] == 0
    readme = (root / "README.md").read_text()
    section = _section(readme, "Text examples → text queries")
    line = f"- [Sure](submissions/sure_text-examples-to-text.json): {SURE_DIFFERENCES}"
    assert "Paired differences of the Avg, with their 95% interval:\n\n" + line in section
    assert section.count("Patch − Prompt") == 1  # none for the run without intervals
    html = (root / "index.html").read_text()
    assert f"Text examples → text queries): {SURE_DIFFERENCES}</li>" in html
    assert html.count("<li>") == 1
    # Without intervals, no difference is shown.
    root = _without_new_fields(make_root(tmp_path / "plain", [SMOLLM2]))
    assert run(capsys, "--root", str(root), "build")[0] == 0
    assert "Paired differences" not in (root / "README.md").read_text()
    assert "Paired differences" not in (root / "index.html").read_text()


def test_a_row_of_some_of_the_runs_tasks_shows_no_interval(tmp_path, capsys):
    """A run of a cross-modal and a VQA task gives a row in each section; each row's Avg is over
    one task, the interval's over both: no interval and no difference is shown for either."""
    root = make_root(tmp_path, [])
    accuracies = {
        "country_capital": SURE["country_capital"],
        "vqa_food_class": SURE["country_currency"],
    }
    results = _reproduction(model="idefics2", spec="text_examples", query="image")
    _add(capsys, root, tmp_path, _with_intervals(results, accuracies), "Mixed", partial=True)
    assert run(capsys, "--root", str(root), "build")[0] == 0
    readme = (root / "README.md").read_text()
    for title in ("Text examples → image queries", "Text examples → image queries: VQA subsets"):
        ci = _md_column(_section(readme, title), "| [Mixed](", "Avg 95% CI")
        assert len(ci) == 4 and set(ci.values()) == {DASH}, title
    assert "Paired differences" not in readme
    with (root / "leaderboard.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 8 and {(r["avg_ci_low"], r["avg_ci_high"]) for r in table} == {("", "")}
    html = (root / "index.html").read_text()
    cells = _html_column(html, "Mixed", "Avg 95% CI")
    assert set(cells.values()) == {f'<td data-sort="">{DASH}</td>'}
    assert "Paired differences" not in html


@pytest.mark.parametrize(
    ("change", "shown"),
    [
        ({}, True),
        ({"level": 0.9}, False),  # the column says 95%
        ({"score": "strict"}, False),  # not the lenient accuracy the tables show
        ({"per_task": {"country_capital": {}}}, False),  # an average over other tasks
    ],
)
def test_only_a_95_percent_interval_of_the_rows_own_average_is_shown(change, shown):
    results = _with_intervals(good("results"))
    results["intervals"].update(change)
    intervals = average_intervals(results, list(SURE))
    assert intervals == ({k: tuple(v) for k, v in AVERAGE_CI.items()} if shown else {})


# --- whole answers (--score whole_answer) -------------------------------------------------------

# Per task and method: the exact and the normalised whole-answer accuracy (the same every seed).
# Means over the two tasks: No context 0.00 (0.01), Random 0.03 (0.05), Prompt 0.28 (0.35), Patch
# 0.18 (0.21).
WHOLE = {
    "country_capital": {
        "no_context": (0.0, 0.02),
        "majority": (0.04, 0.06),
        "prompt": (0.3, 0.4),
        "patch": (0.2, 0.24),
    },
    "country_currency": {
        "no_context": (0.0, 0.0),
        "majority": (0.02, 0.04),
        "prompt": (0.26, 0.3),
        "patch": (0.16, 0.18),
    },
}
WHOLE_CI = {
    "no_context": [0.0, 0.02],
    "majority": [0.01, 0.05],
    "prompt": [0.22, 0.34],
    "patch": [0.12, 0.24],
    "patch - prompt": [-0.15, -0.05],
    "patch - no_context": [0.12, 0.24],
}
WHOLE_SHOWN = {
    "No context": "0.00 [0.00, 0.02] (0.01)",
    "Random (majority)": "0.03 [0.01, 0.05] (0.05)",
    "Prompt": "0.28 [0.22, 0.34] (0.35)",
    "Patch": "0.18 [0.12, 0.24] (0.21)",
}
TEXT_PAPER = ROOT / "submissions" / "idefics2-paper_text-examples-to-text.json"


def _with_whole(results: dict, whole: dict = WHOLE, interval: bool = True) -> dict:
    """`results` (made by `_with_intervals`) as a `--score whole_answer` run writes it: each
    entry of a task in `whole` with its whole answers, and (`interval`) their intervals."""
    results["config"]["score"] = "whole_answer"
    results["config"]["whole_answer_metric"] = "greedy answer up to its first newline"
    for task, methods in whole.items():
        for method, (exact, normalised) in methods.items():
            results["results"][task][method]["whole_answer"] = {
                "acc": exact,
                "acc_std": 0.0,
                "acc_normalised": normalised,
                "acc_normalised_std": 0.0,
                "per_seed": [exact] * 3,
            }
    if interval:
        results["intervals"]["whole_answer"] = {
            "per_task": {task: copy.deepcopy(WHOLE_CI) for task in results["results"]},
            "average": copy.deepcopy(WHOLE_CI),
        }
    return results


def _csv_rows(root: Path) -> list[dict[str, str]]:
    with (root / "leaderboard.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


WHOLE_CSV = ("whole_acc", "whole_acc_normalised", "whole_ci_low", "whole_ci_high")


def test_a_run_with_whole_answers_shows_them_everywhere(tmp_path, capsys):
    root = _without_new_fields(make_root(tmp_path, [SMOLLM2, TEXT_PAPER]))
    _add(
        capsys, root, tmp_path, _with_whole(_with_intervals(good("results"))), "Whole", partial=True
    )
    assert run(capsys, "--root", str(root), "build")[0] == 0
    readme = (root / "README.md").read_text()
    intro = " ".join(readme.split("\n## ", 1)[0].split())
    assert "Test accuracy by the paper's rule (first generated token" in intro
    assert "so the figures are comparable with its tables" in intro
    assert "**Whole answer**, for a run made with `--score whole_answer`, is a stricter" in intro
    assert "| Avg | Avg 95% CI | Whole answer | Layer | n × seeds |" in readme
    assert _md_column(readme, "| [Whole](", "Whole answer") == WHOLE_SHOWN
    # The headline Avg stays the first-token one.
    assert _md_column(readme, "| [Whole](", "Avg")["Patch"] == "0.45 ± 0.04 †"
    # A run made without --score whole_answer, and the paper's reported rows: a dash.
    smollm2 = _md_column(readme, "| [SmolLM2", "Whole answer")
    assert len(smollm2) == 4 and set(smollm2.values()) == {DASH}
    paper_rows = _md_column(readme, "| *[", "Whole answer")
    assert paper_rows == {"Patch": DASH}

    table = _csv_rows(root)
    whole = {(r["name"], r["method"]): tuple(r[k] for k in WHOLE_CSV) for r in table}
    assert whole["Whole", "patch"] == ("0.1800", "0.2100", "0.1200", "0.2400")
    assert whole["Whole", "prompt"] == ("0.2800", "0.3500", "0.2200", "0.3400")
    assert whole["Whole", "no_context"] == ("0.0000", "0.0100", "0.0000", "0.0200")
    others = {v for (name, _), v in whole.items() if name != "Whole"}
    assert others == {("", "", "", "")}
    head = next(iter(table)).keys()
    assert list(head)[list(head).index("avg_ci_high") + 1 :][:4] == list(WHOLE_CSV)

    html = (root / "index.html").read_text()
    assert "Whole answer, for a run made\nwith <code>--score whole_answer</code>" in html
    assert "by the paper's rule (first generated token, lenient match)" in html
    cells = _html_column(html, "Whole", "Whole answer")
    assert cells["patch"] == '<td data-sort="0.180000">0.18 [0.12, 0.24] (0.21)</td>'
    assert cells["prompt"] == '<td data-sort="0.280000">0.28 [0.22, 0.34] (0.35)</td>'
    old = _html_column(html, "SmolLM2-135M-Instruct (CPU)", "Whole answer")
    assert len(old) == 4 and set(old.values()) == {f'<td data-sort="">{DASH}</td>'}
    # The column sits after Avg 95% CI.
    heads = re.findall(r'<button type="button">(.*?)</button>', html)
    assert heads[heads.index("Avg 95% CI") + 1] == "Whole answer"


def test_whole_answers_without_an_interval_show_the_two_means(tmp_path, capsys):
    """No `intervals.whole_answer` (or one over other tasks): the exact and normalised means,
    no interval; the Avg's own interval is unaffected."""
    root = make_root(tmp_path, [])
    results = _with_whole(_with_intervals(good("results")), interval=False)
    _add(capsys, root, tmp_path, results, "Bare", partial=True)
    assert run(capsys, "--root", str(root), "build")[0] == 0
    readme = (root / "README.md").read_text()
    assert _md_column(readme, "| [Bare](", "Whole answer") == {
        "No context": "0.00 (0.01)",
        "Random (majority)": "0.03 (0.05)",
        "Prompt": "0.28 (0.35)",
        "Patch": "0.18 (0.21)",
    }
    assert _md_column(readme, "| [Bare](", "Avg 95% CI")["Patch"] == "[0.41, 0.49]"
    row = {r["method"]: r for r in _csv_rows(root)}["patch"]
    assert tuple(row[k] for k in WHOLE_CSV) == ("0.1800", "0.2100", "", "")
    cells = _html_column((root / "index.html").read_text(), "Bare", "Whole answer")
    assert cells["patch"] == '<td data-sort="0.180000">0.18 (0.21)</td>'


def test_a_row_of_some_of_the_runs_tasks_shows_its_whole_answers_without_interval(tmp_path, capsys):
    """A run of a cross-modal and a VQA task: each row's whole-answer means are over its own
    task, and the interval (over both tasks) is not shown."""
    root = make_root(tmp_path, [])
    accuracies = {
        "country_capital": SURE["country_capital"],
        "vqa_food_class": SURE["country_currency"],
    }
    results = _with_intervals(
        _reproduction(model="idefics2", spec="text_examples", query="image"), accuracies
    )
    whole = {
        "country_capital": WHOLE["country_capital"],
        "vqa_food_class": WHOLE["country_currency"],
    }
    results = _with_whole(results, whole)
    results["config"]["tasks"] = list(accuracies)
    _add(capsys, root, tmp_path, results, "Mixed", partial=True)
    assert run(capsys, "--root", str(root), "build")[0] == 0
    readme = (root / "README.md").read_text()
    cross = _md_column(
        _section(readme, "Text examples → image queries"), "| [Mixed](", "Whole answer"
    )
    assert cross["Patch"] == "0.20 (0.24)"
    vqa_title = "Text examples → image queries: VQA subsets"
    vqa = _md_column(_section(readme, vqa_title), "| [Mixed](", "Whole answer")
    assert vqa["Patch"] == "0.16 (0.18)"
    table = _csv_rows(root)
    assert {(r["whole_ci_low"], r["whole_ci_high"]) for r in table} == {("", "")}


def test_whole_answers_missing_for_some_of_a_rows_tasks_show_a_dash(tmp_path, capsys):
    root = make_root(tmp_path, [])
    whole = {"country_capital": WHOLE["country_capital"]}
    results = _with_whole(_with_intervals(good("results")), whole, interval=False)
    _add(capsys, root, tmp_path, results, "Half", partial=True)
    assert run(capsys, "--root", str(root), "build")[0] == 0
    column = _md_column((root / "README.md").read_text(), "| [Half](", "Whole answer")
    assert len(column) == 4 and set(column.values()) == {DASH}
    assert {tuple(r[k] for k in WHOLE_CSV) for r in _csv_rows(root)} == {("", "", "", "")}


@pytest.mark.parametrize(
    ("change", "shown"),
    [
        ({}, True),
        ({"level": 0.9}, False),  # the column says 95%
        ({"whole_answer": {"per_task": {"country_capital": {}}, "average": WHOLE_CI}}, False),
        ({"whole_answer": None}, False),
    ],
)
def test_only_a_95_percent_whole_answer_interval_of_the_rows_own_tasks_is_shown(change, shown):
    results = _with_whole(_with_intervals(good("results")))
    results["intervals"].update(change)
    intervals = whole_intervals(results, list(SURE))
    assert intervals == ({k: tuple(v) for k, v in WHOLE_CI.items()} if shown else {})


# --- no markup injection -----------------------------------------------------------------------

EVIL = "x](javascript:alert(1)) | <img src=x onerror=alert(1)> **b**"


class _Page(HTMLParser):
    """Tags, attributes, table rows (cell counts) and text of rendered HTML."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.rows: list[int] = []
        self.text: list[str] = []
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append(0)
        if tag in ("td", "th") and self.rows:
            self.rows[-1] += 1
        if tag == "a":
            self._href, self._link = dict(attrs).get("href"), ""

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._href, self._link))
            self._href = None

    def handle_data(self, data):
        self.text.append(data)
        if self._href is not None:
            self._link += data


def _injection_root(tmp_path: Path, capsys) -> Path:
    root = make_root(tmp_path, [SMOLLM2, TABLE_5])
    results = full_results()
    results["model"]["name"] = "m`x|<img src=x onerror=alert(5)>"
    results["versions"]["vlm_tv_eval"] = "<img src=x onerror=alert(7)>"
    path = _results_file(tmp_path, results)
    argv = ["--root", str(root), "add", str(path), "--name", EVIL, "--date", "2026-11-24"]
    argv += ["--submitted-by", "[me](http://evil.example) <i>me</i>"]
    argv += ["--model-card", "javascript:alert(4)", "--hardware", "<b>GPU</b> | *x* _y_ ~~z~~"]
    argv += ["--notes", "one\n| a | b |\n<script>alert(2)</script> [c](javascript:alert(3)) `c`"]
    rc, out = run(capsys, *argv)
    assert rc == 0, out
    assert run(capsys, "--root", str(root), "build")[0] == 0
    return root


def _no_active_markup(page: _Page, scripts: int = 0) -> None:
    """No script (but the page's own `scripts`), no event handler, no foreign image, no link
    other than http(s) and relative ones."""
    assert [t for t, _ in page.tags].count("script") == scripts
    for tag, attrs in page.tags:
        assert tag not in ("iframe", "object", "embed"), (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "img":
            assert attrs["src"].startswith("plots/"), attrs
        if tag == "a":
            href = attrs.get("href", "")
            assert not href.lower().lstrip().startswith(("javascript:", "data:", "vbscript:"))


def test_markup_in_submission_values_is_shown_as_text_in_the_readme(tmp_path, capsys):
    from markdown_it import MarkdownIt

    root = _injection_root(tmp_path, capsys)
    readme = (root / "README.md").read_text()
    # Rendered as GitHub would, raw HTML allowed (the worst case for an injected value).
    html = (
        MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(readme)
    )
    page = _Page(html)
    _no_active_markup(page)
    assert not [t for t, _ in page.tags if t in ("b", "i", "del", "s")]
    text = "".join(page.text)
    assert f"{EVIL}: Text examples → text queries" in text  # the plot heading, verbatim
    assert "submitted by [me](http://evil.example) <i>me</i> on 2026-11-24" in text
    assert "hardware: <b>GPU</b> | *x* _y_ ~~z~~" in text
    assert "model card: javascript:alert(4)" in text
    assert "Notes: one | a | b | <script>alert(2)</script> [c](javascript:alert(3)) `c`" in text
    assert "model m`x|<img src=x onerror=alert(5)>" in text
    # (a run id is only ever `<spec>-<12 hex>`: add refuses any other, markup included)
    run_id = full_results()["run_id"]
    assert f"run {run_id}, vlm-tv-eval <img src=x onerror=alert(7)>" in text
    mine = [(href, label) for href, label in page.links if label == EVIL]
    assert len(mine) == 4 + 1  # four table rows and the submissions list
    assert {href for href, _ in mine} == {
        "submissions/x-javascript-alert-1-img-src-x-onerror-alert-1-b_text-examples-to-text.json"
    }
    # Every row of every table keeps its column count: no value split a cell.
    tables = html.split("<table>")[1:]
    for table in tables:
        counts = _Page(table).rows
        assert len(set(counts)) == 1, counts


def test_only_http_links_are_made():
    assert md_url("https://huggingface.co/x_(y)") == (
        "[https://huggingface.co/x\\_(y)](https://huggingface.co/x_%28y%29)"
    )
    for value in ("javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,x", "/rel", "x y"):
        assert "](" not in md_url(value)


def test_markup_in_submission_values_is_escaped_in_the_page(tmp_path, capsys):
    root = _injection_root(tmp_path, capsys)
    html = (root / "index.html").read_text()
    page = _Page(html)
    _no_active_markup(page, scripts=1)  # the page's own sorting and filtering
    assert not [t for t, _ in page.tags if t == "img"]
    assert (
        "x](javascript:alert(1)) | &lt;img src=x onerror=alert(1)&gt; **b**" in html
    )  # escaped as text
    assert [label for _, label in page.links].count(EVIL) == 4
    assert 'title="model m`x|&lt;img src=x onerror=alert(5)&gt;"' in html


def _add_args(root: Path, path: Path, *extra: str) -> list[str]:
    return ["--root", str(root), "add", str(path), "--submitted-by", "tester", *extra]


def test_a_name_too_long_for_a_file_name_is_a_usage_error(tmp_path, capsys):
    root = make_root(tmp_path, [])
    path = _results_file(tmp_path, full_results())
    rc, out = run(capsys, *_add_args(root, path, "--name", "x" * 300))
    assert rc == 2 and "--name is 300 characters long; the limit is 80" in out
    assert "Traceback" not in out and list((root / "submissions").iterdir()) == []
    rc, out = run(capsys, *_add_args(root, path, "--name", "x" * 80))
    assert rc == 0, out


def test_a_submissions_path_that_is_not_a_writable_folder_is_a_clear_error(
    tmp_path, capsys, monkeypatch
):
    root = tmp_path / "leaderboard"
    root.mkdir()
    (root / "submissions").write_text("not a folder")
    path = _results_file(tmp_path, full_results())
    rc, out = run(capsys, *_add_args(root, path, "--name", "x"))
    assert rc == 1 and "submissions is a file, not a folder" in out

    # Read-only: root ignores chmod, so the refusal the OS would give is injected.
    (root / "submissions").unlink()
    (root / "submissions").mkdir()

    def refuse(target, text):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr("leaderboard.submissions.atomic_create_text", refuse)  # a new file
    rc, out = run(capsys, *_add_args(root, path, "--name", "x"))
    assert rc == 1 and "cannot write" in out and "Permission denied" in out
    assert "Traceback" not in out


def test_csv_cells_never_start_a_spreadsheet_formula(tmp_path, capsys):
    root = make_root(tmp_path, [])
    path = _results_file(tmp_path, full_results())
    rc, out = run(capsys, *_add_args(root, path, "--name", '=HYPERLINK("http://x")'))
    assert rc == 0, out
    assert run(capsys, "--root", str(root), "build")[0] == 0
    with open(root / "leaderboard.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(row["name"] == '\'=HYPERLINK("http://x")' for row in rows)
    for row in rows:
        assert not any(str(v)[:1] in "=+@" for k, v in row.items() if v and k != "avg"), row


# --- the ranking rule: like with like ------------------------------------------------------------

GEMMA = ROOT / "submissions" / "gemma-3-270m-cpu_text-examples-to-text.json"


def _perfect(results: dict) -> dict:
    """`results` with every accuracy 1.0: a row that would top any ranking by Avg."""
    for methods in results["results"].values():
        for entry in methods.values():
            entry.update(acc=1.0, acc_std=0.0, acc_strict=1.0, acc_strict_std=0.0)
            entry["per_seed"] = [1.0] * len(entry["per_seed"])
    return results


def _md_tables(section: str) -> list[str]:
    """The Markdown tables of a README section, in order."""
    return [t for t in section.split("\n\n") if t.startswith("| Model |")]


def test_a_limit_run_is_never_ranked_above_full_runs(tmp_path, capsys):
    """A `--limit 10` run of one task scoring 1.0 everywhere: shown apart from the full runs and
    the paper's rows of its setting, never in the table the page sorts to rank them."""
    root = make_root(tmp_path, [SMOLLM2, TEXT_PAPER])
    results = _perfect(good("results"))
    results["config"]["limit"] = 10
    for entry in results["results"]["country_capital"].values():
        entry["n"] = 10
    _add(capsys, root, tmp_path, results, "Quick", partial=True)
    assert run(capsys, "--root", str(root), "build")[0] == 0
    assert run(capsys, "--root", str(root), "check")[0] == 0

    section = _section((root / "README.md").read_text(), "Text examples → text queries")
    ranked, apart = _md_tables(section)
    assert "[Quick]" not in ranked and "[SmolLM2" in ranked and "(reported)" in ranked
    assert "[Quick]" not in section.split("**Not ranked**", 1)[0]
    assert apart.count("| [Quick](") == 4 and "[SmolLM2" not in apart
    assert (
        "- [Quick](submissions/quick_text-examples-to-text.json): 1 of the 6 tasks, without "
        "Currency, Latin, Young, Color, Flavor; --limit 10, test splits cut to 10 items"
    ) in section
    assert "1.00 ± 0.00 †" in apart  # its Avg is over its own task only

    html = (root / "index.html").read_text()
    assert "Quick" not in _html_table(html, "leaderboard")
    assert _html_table(html, "leaderboard").count("<tr ") == 5  # SmolLM2's 4, the paper's 1
    why = _html_column(html, "Quick", "Not ranked because")
    assert len(why) == 4 and all(
        "--limit 10, test splits cut to 10 items" in c for c in why.values()
    )
    assert '<span id="shown">5 of 5 ranked rows shown</span>' in html

    table = _csv_rows(root)
    assert {(r["name"], r["ranked"]) for r in table} == {
        ("Quick", "false"),
        ("SmolLM2-135M-Instruct (CPU)", "true"),
        ("Idefics2 (paper)", "true"),
    }
    best = max((r for r in table if r["ranked"] == "true"), key=lambda r: float(r["avg"]))
    assert best["name"] == "Idefics2 (paper)"
    quick = [r for r in table if r["name"] == "Quick"]
    assert all(r["not_ranked_because"].startswith("1 of the 6 tasks") for r in quick)


def _limited(results: dict) -> dict:
    results["config"]["limit"] = 10
    for methods in results["results"].values():
        for entry in methods.values():
            entry["n"] = 10
    return results


def _two_seeds(results: dict) -> dict:
    results["seeds"] = results["config"]["seeds"] = [0, 1]
    for methods in results["results"].values():
        for entry in methods.values():
            entry["per_seed"] = entry["per_seed"][:2]
            entry["acc"] = statistics.fmean(entry["per_seed"])
            entry["acc_std"] = statistics.pstdev(entry["per_seed"])
    return results


def _one_vqa_subset(results: dict) -> dict:
    results["results"]["vqa_food_class"] = copy.deepcopy(results["results"]["country_capital"])
    results["config"]["tasks"].append("vqa_food_class")
    results["config"]["query"] = "image"
    return results


PARTIAL = {
    "one task": (good, "1 of the 6 tasks, without Currency, Latin, Young, Color, Flavor"),
    "--limit": (lambda _: _limited(full_results()), "--limit 10, test splits cut to 10 items"),
    "seeds": (lambda _: _two_seeds(full_results()), "seeds 0, 1 where the protocol has 0, 1, 2"),
    "vqa": (lambda _: _one_vqa_subset(full_results()), "1 of the 3 tasks, without Shirt-Color"),
}


@pytest.mark.parametrize("case", list(PARTIAL))
def test_a_partial_run_is_refused_by_default_with_the_fix(case, tmp_path, capsys):
    make, reason = PARTIAL[case]
    root = make_root(tmp_path, [])
    results = make("results")
    path = _results_file(tmp_path, results)
    argv = ["--root", str(root), "add", str(path), "--name", "Part", "--submitted-by", "me"]
    rc, out = run(capsys, *argv)
    assert rc == 1 and len(out.strip().splitlines()) == 1, out
    assert out.startswith(f"vlm-tv-leaderboard add: {path} would not be ranked (")
    assert reason in out and "pass --allow_partial to add it anyway" in out
    assert list((root / "submissions").iterdir()) == []
    rc, out = run(capsys, *argv, "--allow_partial")
    assert rc == 0, out
    assert run(capsys, "--root", str(root), "build")[0] == 0
    assert {r["ranked"] for r in _csv_rows(root) if r["name"] == "Part"} >= {"false"}


def test_a_full_run_is_added_and_ranked(tmp_path, capsys):
    root = make_root(tmp_path, [SMOLLM2])
    _add(capsys, root, tmp_path, full_results(), "Full")
    assert run(capsys, "--root", str(root), "build")[0] == 0
    assert {r["ranked"] for r in _csv_rows(root)} == {"true"}
    readme = (root / "README.md").read_text()
    assert "**Not ranked**" not in readme and readme.count("| [Full](") == 4
    assert 'id="unranked"' not in (root / "index.html").read_text()


def _rerun(source: Path, **config) -> dict:
    """The results of `source` as a rerun of its config writes them: another creation time,
    the same run_id and, on a deterministic backend, the same numbers."""
    results = json.loads(source.read_text())["results"]
    results["created"] = "2026-12-02T05:00:00+00:00"
    results["config"].update(config)
    return results


def _add_rerun(capsys, root: Path, tmp_path: Path, results: dict, *extra: str) -> tuple[int, str]:
    path = tmp_path / "rerun.json"
    path.write_text(json.dumps(results), "utf-8")
    argv = ["--root", str(root), "add", str(path), "--name", "Gemma 3 270M (CPU)"]
    return run(capsys, *argv, "--submitted-by", "me", "--date", "2026-12-02", *extra)


def test_a_rerun_of_a_row_is_recorded_as_its_reproduction(tmp_path, capsys):
    root = make_root(tmp_path, [GEMMA, SMOLLM2, TEXT_PAPER])
    rerun = _rerun(GEMMA)
    # Without --reproduces: refused (a duplicate of the row), with the flag that records it.
    rc, out = _add_rerun(capsys, root, tmp_path, rerun)
    assert rc == 1 and "already exists" in out
    path = tmp_path / "rerun.json"
    rc, out = run(
        capsys, "--root", str(root), "add", str(path), "--name", "Gemma again",
        "--submitted-by", "me",
    )  # fmt: skip
    assert rc == 1 and f"added with --reproduces {GEMMA.name}" in out, out

    rc, out = _add_rerun(capsys, root, tmp_path, rerun, "--reproduces", "Gemma 3 270M (CPU)")
    assert rc == 0, out
    (written,) = (root / "submissions").glob("*_repro-*.json")
    data = json.loads(written.read_text())
    assert data["submission"]["reproduces"] == GEMMA.name
    assert written.name == submission_filename(data)
    assert written.name.startswith("gemma-3-270m-cpu_text-examples-to-text_repro-")
    assert run(capsys, "--root", str(root), "build")[0] == 0
    assert run(capsys, "--root", str(root), "check")[0] == 0

    section = _section((root / "README.md").read_text(), "Text examples → text queries")
    ranked, apart = _md_tables(section)
    assert ranked.count(f"(submissions/{GEMMA.name})") == 4 and "_repro-" not in ranked
    assert apart.count(f"(submissions/{written.name})") == 4
    assert (
        f"- [Gemma 3 270M (CPU)](submissions/{written.name}): reproduces [Gemma 3 270M (CPU)]"
        f"(submissions/{GEMMA.name}), which holds the rank (the same accuracies)"
    ) in section
    table = _csv_rows(root)
    repro = [r for r in table if r["file"] == f"submissions/{written.name}"]
    assert len(repro) == 4 and {r["reproduces"] for r in repro} == {f"submissions/{GEMMA.name}"}
    assert {r["ranked"] for r in repro} == {"false"}
    assert {r["ranked"] for r in table if r["file"] == f"submissions/{GEMMA.name}"} == {"true"}
    html = (root / "index.html").read_text()
    why = _html_column(html, "Gemma 3 270M (CPU)", "Not ranked because", ("unranked",))
    assert set(why.values()) == {
        f'<td data-sort="reproduces gemma 3 270m (cpu) ({GEMMA.name}): the same accuracies">'
        f"reproduces Gemma 3 270M (CPU) ({GEMMA.name}): the same accuracies</td>"
    }


@pytest.mark.parametrize(
    ("target", "change", "words"),
    [
        ("Idefics2 (paper)", {}, "names paper rows (reported), which have no config to rerun"),
        (SMOLLM2.name, {}, "the model name is 'gemma3-270m', not 'smollm2-135m'"),
        ("Gemma 3 270M (CPU)", {"n_shot": 3}, f"the config differs from {GEMMA.name} in n_shot"),
        ("nobody", {}, "--reproduces 'nobody' names no submission"),
    ],
)
def test_a_reproduction_must_rerun_the_row_it_names(tmp_path, capsys, target, change, words):
    root = make_root(tmp_path, [GEMMA, SMOLLM2, TEXT_PAPER])
    rc, out = _add_rerun(capsys, root, tmp_path, _rerun(GEMMA, **change), "--reproduces", target)
    assert rc == 1 and words in out and len(out.strip().splitlines()) == 1, out
    assert len(list((root / "submissions").iterdir())) == 3


def test_check_refuses_a_reproduction_of_a_missing_or_other_row(tmp_path, capsys):
    root = make_root(tmp_path, [GEMMA])
    rc, out = _add_rerun(capsys, root, tmp_path, _rerun(GEMMA), "--reproduces", GEMMA.name)
    assert rc == 0, out
    (written,) = (root / "submissions").glob("*_repro-*.json")
    data = json.loads(written.read_text())
    (root / "submissions" / GEMMA.name).unlink()
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 1 and f"{written.name}: $.submission.reproduces: {GEMMA.name} is not" in out
    # The row back, but the reproduction's config edited (and rehashed): another measurement.
    shutil.copy(GEMMA, root / "submissions" / GEMMA.name)
    data["results"]["config"]["n_shot"] = 3
    written.write_text(dumps(rehash(data)), "utf-8")
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 1 and "$.submission.reproduces: the config differs" in out and "n_shot" in out


def test_a_limited_overriding_run_is_shown_apart(tmp_path, capsys):
    root = make_root(tmp_path, [TABLE_5])
    results = overriding_results()
    results["config"]["limit"] = 100  # as many as were scored: still a cut, not a full run
    _add(capsys, root, tmp_path, results, "Quick VLM", partial=True)
    assert run(capsys, "--root", str(root), "build")[0] == 0
    section = _overriding_section((root / "README.md").read_text())
    ranked, apart = _md_tables(section)
    assert "Quick VLM" not in ranked and "Idefics2 (paper)" in ranked
    assert apart.count("| [Quick VLM](") == 3
    assert "- [Quick VLM](submissions/quick-vlm_overriding-image.json): --limit 100" in section
    html = (root / "index.html").read_text()
    assert "Quick VLM" not in _html_table(html, "overriding")
    assert _html_table(html, "overriding-unranked").count("Quick VLM</a>") == 3
    with (root / OVERRIDING_CSV).open(newline="") as handle:
        ranked_by_name = {(r["name"], r["ranked"]) for r in csv.DictReader(handle)}
    assert ranked_by_name == {("Quick VLM", "false"), ("Idefics2 (paper)", "true")}


@pytest.mark.parametrize("command", ["build", "check"])
def test_root_is_accepted_after_the_command(tmp_path, capsys, command):
    root = make_root(tmp_path, [SMOLLM2])
    assert run(capsys, "build", "--root", str(root))[0] == 0  # not the committed leaderboard
    assert (root / "README.md").is_file()
    rc, out = run(capsys, command, "--root", str(root))
    assert rc == 0 and "1 submissions" in out, out
    # After the command it wins over one before it.
    rc, out = run(capsys, "--root", str(tmp_path / "nowhere"), command, "--root", str(root))
    assert rc == 0 and "1 submissions" in out, out


def test_root_after_add_and_reported(tmp_path, capsys):
    path = _results_file(tmp_path, full_results())
    root = tmp_path / "board"
    argv = ["add", str(path), "--name", "Tiny", "--submitted-by", "me", "--root", str(root)]
    rc, out = run(capsys, *argv, "--init")
    assert rc == 0, out
    assert [p.name for p in (root / "submissions").iterdir()] == ["tiny_text-examples-to-text.json"]
    rc, out = run(capsys, "reported", "--root", str(tmp_path / "other"), "--init")
    assert rc == 0 and len(list((tmp_path / "other" / "submissions").iterdir())) == len(
        paper.paper_submissions()
    )


def test_a_config_field_only_one_run_records_needs_the_same_run_id():
    """A field the harness added since the row was run is let pass only with an equal run id
    (the harness leaves such a field at its old default out of the id)."""
    target = json.loads(GEMMA.read_text())
    rerun = make_submission(_rerun(GEMMA), name="x", submitted_by="y", date="2026-12-02")
    del rerun["results"]["config"]["score"]
    assert mismatch(rehash(rerun), target, GEMMA.name) is None
    rerun["results"]["run_id"] += "0"
    why = mismatch(rehash(rerun), target, GEMMA.name)
    assert why and "records score in only one of it and" in why and "run ids differ" in why


def test_the_ranking_rule_is_the_harness_default_run():
    """A run made with the harness's defaults (the main job) is what the leaderboard ranks."""
    from harness.config import RunConfig

    default = RunConfig()
    assert default.seeds == PROTOCOL_SEEDS and default.limit is None
    assert default.tasks == full_task_set("cross_modal", "text")
    assert full_task_set("vqa", "image") == tuple(paper.VQA_TASKS)
    assert full_task_set("overriding", "image") == labels.OVERRIDING_SETTINGS
    assert full_task_set("overriding", "text") == ("override_text",)
