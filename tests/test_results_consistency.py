"""What the harness writes passes the checks `validate` and the leaderboard make of a results
file against itself and the rows logged beside it; a tampered row is caught."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import JUDGE_TEST_KEY

from benchmark import validate_file
from harness.cli import main
from leaderboard import ROOT
from leaderboard.cli import main as leaderboard

KEY = JUDGE_TEST_KEY  # the key the judge_server fixture sets


def _run_dir(out: Path) -> Path:
    (results,) = out.glob("*/*/results.json")
    return results.parent


def test_a_run_with_samples_passes_and_a_tampered_sample_is_caught(
    tiny_llama_path, tmp_path, capsys
):
    out = tmp_path / "runs"
    args = ["--model", f"hf:{tiny_llama_path}", "--tasks", "country_capital,food_color"]
    args += ["--limit", "6", "--seeds", "0,1", "--n_shot", "3", "--log_samples"]
    assert main([*args, "--output_path", str(out)]) == 0
    run = _run_dir(out)
    assert validate_file(run / "results.json") == []

    # The leaderboard takes it as it is, and `check` passes.
    root = tmp_path / "leaderboard"
    shutil.copytree(ROOT / "submissions", root / "submissions")
    argv = ["--root", str(root), "add", str(run / "results.json"), "--name", "Tiny"]
    argv += ["--allow_partial"]  # --limit 6, two tasks, two seeds: shown, not ranked
    assert leaderboard([*argv, "--submitted-by", "tester"]) == 0
    assert leaderboard(["--root", str(root), "build"]) == 0
    assert leaderboard(["--root", str(root), "check"]) == 0
    readme = (root / "README.md").read_text()
    assert "| 6 × 2 (limit 6) |" in readme

    samples = run / "samples_country-capital.jsonl"
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    first = next(r for r in rows if r["method"] == "prompt" and r["seed"] == 1)
    first["lenient"] = not first["lenient"]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    errors = [str(e) for e in validate_file(run / "results.json")]
    assert len(errors) == 2, errors
    # The flipped row no longer scores to its flag, and the seed's rate no longer matches.
    assert "results.json: $.results.country_capital.prompt: 1 row(s) of " in errors[0]
    assert "results.json: $.results.country_capital.prompt.per_seed[1]: " in errors[1]
    assert "the 6 rows of samples_country-capital.jsonl score" in errors[1]


def test_a_judged_override_text_run_passes(tiny_llama_path, tmp_path, judge_server):
    out = tmp_path / "runs"
    args = ["--model", f"hf:{tiny_llama_path}", "--tasks", "override_text", "--limit", "6"]
    args += ["--seeds", "0,1", "--n_shot", "2", "--max_new_tokens", "4"]
    args += ["--judge", "local-judge", "--judge_base_url", judge_server.url]
    assert main([*args, "--output_path", str(out)]) == 0
    run = _run_dir(out)
    doc = json.loads((run / "results.json").read_text())
    assert all("judged" in r for r in doc["results"]["override_text"].values())
    assert validate_file(run / "results.json") == []


def test_intervals_are_checked_against_the_results():
    """The committed SmolLM2 run's intervals agree; a reversed one, one of a method the run did
    not hold, and a method's interval outside [0, 1] are each named by path."""
    import copy

    from benchmark.consistency.results import check_results_consistency

    path = ROOT / "submissions" / "smollm2-135m-instruct-cpu_text-examples-to-text.json"
    doc = json.loads(path.read_text())["results"]
    assert check_results_consistency(doc) == []
    bad = copy.deepcopy(doc)
    bad["intervals"]["average"]["patch"] = [0.3, 0.2]
    bad["intervals"]["per_task"]["food_color"]["ensemble"] = [0.1, 0.2]
    bad["intervals"]["whole_answer"]["average"]["prompt"] = [-0.1, 0.2]
    got = {(e.path, e.message) for e in check_results_consistency(bad)}
    assert got == {
        ("$.intervals.average.patch", "low 0.3 is above high 0.2"),
        ("$.intervals.per_task.food_color.ensemble", "names a method the results do not hold"),
        ("$.intervals.whole_answer.average.prompt", "[-0.1, 0.2] is not within [0, 1]"),
    }
