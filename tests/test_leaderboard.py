"""The leaderboard: submissions are validated, duplicates refused, builds are deterministic,
`check` notices stale files, and the committed leaderboard is current."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from examples import good, reported_submission

from benchmark import EXECUTION_KEYS, METHODS, QUERIES, SPECS
from leaderboard import ROOT, build, labels, paper
from leaderboard.cli import main
from leaderboard.submissions import content_key, dumps, load_submissions, submission_filename
from leaderboard.table import Cell, _average, all_rows

SMOLLM2 = ROOT / "submissions" / "smollm2-135m-instruct-cpu_text-examples-to-text.json"


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
    put(root, data)
    loaded, problems = load_submissions(root / "submissions")
    assert len(loaded) == 1
    assert len(problems) == 1 and "duplicate of" in problems[0]


def test_different_results_are_not_duplicates(tmp_path):
    root = make_root(tmp_path, [SMOLLM2])
    data = json.loads(SMOLLM2.read_text())
    data["submission"]["name"] = "Rerun"
    data["results"]["results"]["food_color"]["patch"]["acc"] = 0.3
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


def test_add_turns_a_results_file_into_a_valid_submission(tmp_path, capsys):
    root = make_root(tmp_path, [])
    results = good("results")
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


def test_add_rejects_a_task_the_leaderboard_does_not_know(tmp_path, capsys):
    """A researcher's own task (`custom:...`) is a valid results file but not a submission."""
    root = make_root(tmp_path, [])
    results = good("results")
    results["results"]["custom:mine"] = results["results"].pop("country_capital")
    path = _results_file(tmp_path, results)
    rc, out = run(
        capsys, "--root", str(root), "add", str(path), "--name", "x", "--submitted-by", "y"
    )
    assert rc == 1 and "$.results.results: 'custom:mine' is not one of" in out


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
    put(root, data)
    loaded, _ = load_submissions(root / "submissions")
    assert {row.setting for row in all_rows(loaded)} == {"text_examples→text"}


def test_readme_shows_the_smollm2_patch_row_and_marks_reported_rows():
    readme = (ROOT / "README.md").read_text()
    assert (
        "| Patch | 0.20 ± 0.04 | 0.15 ± 0.02 | 0.28 ± 0.00 | 0.20 ± 0.02 | 0.26 ± 0.00 "
        "| 0.46 ± 0.01 | 0.26 ± 0.00 | 22 / 30 |"
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
    assert len(subs) == 7
    for data in subs:
        assert data["submission"]["reported"] is True
        assert data["submission"]["source"] == "Luo et al. 2025 (ICML), Table 2"
        assert data["results"]["config"]["query"] == "image"


# --- regeneration -------------------------------------------------------------------------------


def test_build_is_deterministic(tmp_path, capsys):
    first, second = make_root(tmp_path / "a"), make_root(tmp_path / "b")
    assert run(capsys, "--root", str(first), "build")[0] == 0
    assert run(capsys, "--root", str(second), "build")[0] == 0
    produced = files_of(first)
    assert produced == files_of(second)
    assert {"README.md", "leaderboard.csv", "index.html"} <= set(produced)
    assert sum(name.endswith(".layers.png") for name in produced) == 1
    assert sum(name.endswith(".tasks.png") for name in produced) == 8
    rc, out = run(capsys, "--root", str(first), "build")
    assert rc == 0 and "no file(s) changed" in out


def test_check_fails_when_a_generated_file_is_stale(tmp_path, capsys):
    root = make_root(tmp_path)
    assert run(capsys, "--root", str(root), "build")[0] == 0
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 0 and "ok: 8 submissions" in out

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
