"""A hostile user's results files: numbers no run can produce are refused by `validate` (and so
by `vlm-tv-leaderboard add`), each with the field at fault; real runs still pass.

The pristine files are real: SmolLM2's reproduced submission (a full 30-layer sweep, no rows)
and a tiny Llama run with `--log_samples`. Each attack edits one the way an attacker would,
keeping everything else consistent, so only the check under test can catch it.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
from pathlib import Path

import pytest

from benchmark import validate_file
from benchmark.consistency.results import check_results_consistency
from harness.cli import main
from harness.errors import ConfigError
from harness.layer_choice import layer_from_results
from leaderboard import ROOT

SMOLLM2 = ROOT / "submissions" / "smollm2-135m-instruct-cpu_text-examples-to-text.json"


def smollm2() -> dict:
    """The results of a real run: 6 tasks x 100 items x 3 seeds, layer 22 chosen by a sweep."""
    return json.loads(SMOLLM2.read_text("utf-8"))["results"]


def errors(doc: dict, run_dir: Path | None = None) -> list[str]:
    return [f"{e.path}: {e.message}" for e in check_results_consistency(doc, run_dir)]


def assert_caught(doc: dict, path: str, words: str, run_dir: Path | None = None) -> None:
    found = errors(doc, run_dir)
    assert any(e.startswith(f"{path}: ") and words in e for e in found), found


def set_per_seed(entry: dict, per_seed: list[float]) -> None:
    """What an attacker keeps consistent: acc and acc_std follow the edited per_seed."""
    entry.update(
        per_seed=per_seed, acc=statistics.fmean(per_seed), acc_std=statistics.pstdev(per_seed)
    )


def test_a_real_runs_results_pass():
    assert errors(smollm2()) == []


# -- 1. a rate is a whole number of hits out of what it counts ----------------------------------


def test_a_rate_that_is_no_count_of_hits_is_refused():
    doc = smollm2()
    entry = doc["results"]["country_capital"]["patch"]
    set_per_seed(entry, [0.145, 0.23, 0.23])  # 14.5 of 100 items
    assert_caught(doc, "$.results.country_capital.patch.per_seed[0]", "out of 100 (n = 100)")
    assert_caught(doc, "$.results.country_capital.patch.acc", "out of 300 (n x seeds = 100 x 3)")


def test_acc_of_0_6_with_n_4_is_refused():
    doc = smollm2()
    doc["splits"]["country_capital"]["test"] = 4
    for entry in doc["results"]["country_capital"].values():
        entry["n"] = 4
        set_per_seed(entry, [0.5, 0.75, 0.5])
        entry["acc_strict"] = 0.5
    assert errors(doc) == []  # 6, 9 and 6 hits out of 4 x 3: possible
    entry = doc["results"]["country_capital"]["prompt"]
    set_per_seed(entry, [0.6, 0.6, 0.6])
    assert_caught(doc, "$.results.country_capital.prompt.acc", "out of 12")
    entry["acc_strict"] = 0.55
    assert_caught(doc, "$.results.country_capital.prompt.acc_strict", "whole number of hits")


def test_a_judged_rate_counts_the_judged_answers():
    doc = smollm2()
    del doc["layer_selection"], doc["intervals"]  # an overriding run records neither
    doc["config"].update(tasks=["override_semantic"], methods=["original"], spec="instruction")
    doc["splits"] = {}
    per_seed = [0.2, 0.3, 0.4]  # 20 of 100, 30 of 100 and 36 of 90 judged: 86 of 290
    entry = {"acc": 86 / 290, "acc_std": statistics.pstdev(per_seed), "per_seed": per_seed}
    entry.update(n=100, judged=290, judge_failures=10, acc_failures_as_misses=86 / 300)
    doc["results"] = {"override_semantic": {"original": entry}}
    assert errors(doc) == []
    entry["acc"] = 0.31  # between the seeds' rates, but 89.9 of 290
    assert_caught(doc, "$.results.override_semantic.original.acc", "out of 290 (judged = 290)")


# -- 2. strict never beats lenient --------------------------------------------------------------


def test_acc_strict_above_acc_is_refused_without_rows():
    doc = smollm2()
    doc["results"]["food_color"]["prompt"]["acc_strict"] = 0.29  # acc 0.28; 87 of 300
    assert_caught(doc, "$.results.food_color.prompt.acc_strict", "is above acc (0.28)")


# -- 3-5. the layer: the sweep's argmax, the mean of the task curves, the model's depth -------


def move_layer(doc: dict, layer: int) -> None:
    doc["layer_selection"]["layer"] = layer
    for by_method in doc["results"].values():
        by_method["patch"]["layer"] = layer


def test_a_layer_that_is_not_the_sweeps_best_is_refused():
    doc = smollm2()
    move_layer(doc, 21)
    assert_caught(doc, "$.layer_selection.layer", "21, but the sweep's best layer is 22")


def test_ties_go_to_the_lowest_layer():
    doc = smollm2()
    selection = doc["layer_selection"]
    for curve in selection["validation_curve"].values():
        curve[25] = curve[22]
    tasks = selection["validation_curve"].values()
    selection["mean_curve"] = [statistics.fmean(c[i] for c in tasks) for i in range(30)]
    assert errors(doc) == []  # layers 22 and 25 tie: 22 is the harness's choice
    move_layer(doc, 25)
    assert_caught(doc, "$.layer_selection.layer", "the first maximum of mean_curve")


def test_a_method_patched_elsewhere_or_a_mode_the_config_contradicts_is_refused():
    doc = smollm2()
    doc["results"]["animal_young"]["patch"]["layer"] = 21
    doc["transfer"] = {"source_model": "smollm2-135m", "layer": 20}
    assert_caught(doc, "$.results.animal_young.patch.layer", "differs from layer_selection.layer")
    assert_caught(doc, "$.transfer.layer", "20 differs from layer_selection.layer (22)")
    doc = smollm2()
    doc["config"]["layer"] = 22  # --layer 22 was given: nothing was swept
    assert_caught(doc, "$.layer_selection.mode", "config.layer is 22: it is 'override'")
    del doc["layer_selection"]
    assert_caught(doc, "$.results.animal_young.patch.layer", "no layer_selection")


def test_a_sweep_without_its_curve_is_refused():
    doc = smollm2()
    del doc["layer_selection"]["validation_curve"]
    assert_caught(doc, "$.layer_selection.validation_curve", "missing")


def test_a_mean_curve_that_is_not_the_mean_of_the_task_curves_is_refused():
    doc = smollm2()
    doc["layer_selection"]["mean_curve"][22] = 0.1
    assert_caught(doc, "$.layer_selection.mean_curve[22]", "not the mean of the task curves")
    doc["layer_selection"]["validation_curve"]["food_color"][3] = 0.123  # of 30 items x 3 seeds
    path = "$.layer_selection.validation_curve.food_color[3]"
    assert_caught(doc, path, "not a whole number of hits out of 90")


def test_a_depth_the_curve_or_layer_does_not_fit_is_refused():
    doc = smollm2()
    doc["model"]["num_layers"] = 3
    assert_caught(doc, "$.layer_selection.mean_curve", "30 point(s), but model.num_layers is 3")
    assert_caught(doc, "$.layer_selection.layer", "layer 22 does not exist")
    assert_caught(doc, "$.results.food_flavor.patch.layer", "layer 22 does not exist")
    doc["layer_selection"]["validation_curve"]["food_flavor"].pop()
    path = "$.layer_selection.validation_curve.food_flavor"
    assert_caught(doc, path, "29 point(s), but mean_curve has 30")


# -- 6. logged rows are re-scored -----------------------------------------------------------------


@pytest.fixture(scope="module")
def logged_run(tiny_llama_path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hostile-runs")
    args = ["--model", f"hf:{tiny_llama_path}", "--tasks", "country_capital,food_color"]
    args += ["--limit", "6", "--seeds", "0,1", "--n_shot", "3", "--log_samples"]
    assert main([*args, "--output_path", str(out)]) == 0
    (results,) = out.glob("*/*/results.json")
    return results.parent


@pytest.fixture
def run(logged_run, tmp_path) -> Path:
    """A fresh copy of the logged run to tamper with."""
    return Path(shutil.copytree(logged_run, tmp_path / "run"))


def read(run: Path) -> tuple[dict, list[dict]]:
    doc = json.loads((run / "results.json").read_text())
    rows = [json.loads(x) for x in (run / "samples_country-capital.jsonl").read_text().splitlines()]
    return doc, rows


def write(run: Path, doc: dict, rows: list[dict]) -> None:
    (run / "results.json").write_text(json.dumps(doc))
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (run / "samples_country-capital.jsonl").write_text(text)


def test_rows_flipped_to_hits_with_acc_to_match_are_refused(run):
    assert validate_file(run / "results.json") == []
    doc, rows = read(run)
    for row in rows:
        row["lenient"] = True
    for entry in doc["results"]["country_capital"].values():
        set_per_seed(entry, [1.0, 1.0])
    write(run, doc, rows)
    assert not [e for e in errors(doc, run) if "per_seed" in e]  # the rows agree with per_seed
    assert_caught(doc, "$.results.country_capital.prompt", "row(s) of samples_", run)
    found = [str(e) for e in validate_file(run / "results.json")]
    assert any("lenient true, but the rule gives false" in e for e in found), found


def test_a_strict_flag_its_text_cannot_give_is_refused(run):
    doc, rows = read(run)
    miss = next(
        r for r in rows if r["method"] == "prompt" and not r["lenient"] and r["prediction"].strip()
    )
    miss["strict"] = True  # a strict hit that is not even a lenient one, with visible text
    write(run, doc, rows)
    assert_caught(doc, "$.results.country_capital.prompt", "strict true, but a strict hit", run)
    assert_caught(doc, "$.results.country_capital.prompt.acc_strict", "but the rows of", run)


def test_a_majority_rows_strict_flag_is_the_whole_label(run):
    doc, rows = read(run)
    row = next(r for r in rows if r["method"] == "majority")
    row.update(prediction=row["target"], lenient=True, strict=False)
    write(run, doc, rows)
    assert_caught(doc, "$.results.country_capital.majority", "strict false, but the rule", run)


def test_an_id_only_strict_hit_may_beat_lenient_when_the_rows_show_it(run):
    """A whitespace token matched by id is strict and not lenient: a real run can have more
    strict hits than lenient ones, and its rows say why."""
    doc, rows = read(run)
    entry = doc["results"]["country_capital"]["no_context"]
    for row in rows:
        if row["method"] == "no_context":
            row.update(prediction=" ", lenient=False, strict=True)
    set_per_seed(entry, [0.0, 0.0])
    entry.update(acc_strict=1.0, acc_strict_std=0.0)
    write(run, doc, rows)
    assert errors(doc, run) == []
    assert_caught(doc, "$.results.country_capital.no_context.acc_strict", "is above acc")


# -- 7. --layer_from reads a results file that validates ----------------------------------------


def source(tmp_path: Path, doc: dict | str) -> str:
    path = tmp_path / "results.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def test_layer_from_takes_the_layer_of_a_valid_run(tmp_path):
    chosen = layer_from_results(source(tmp_path, smollm2()), "smollm2-135m", 30)
    assert chosen["mode"] == "from_results" and chosen["layer"] == 22


@pytest.mark.parametrize("layer", [True, 21.9, "7", 22.0], ids=repr)
def test_layer_from_refuses_a_layer_that_is_not_an_integer(tmp_path, layer):
    doc = smollm2()
    doc["layer_selection"]["layer"] = layer
    path = source(tmp_path, doc)
    words = ".*layer_selection.layer is .* not a layer number"
    with pytest.raises(ConfigError, match=f"--layer_from {re.escape(path)}: {words}"):
        layer_from_results(path, "smollm2-135m", 30)


def test_layer_from_refuses_deep_nesting_nan_and_a_tampered_run(tmp_path):
    for text, words in (
        ('{"a": ' * 100_000 + "1" + "}" * 100_000, "nested"),
        (SMOLLM2.read_text().replace('"acc_std": 0.0', '"acc_std": NaN', 1), "NaN"),
    ):
        path = source(tmp_path, text)
        with pytest.raises(ConfigError, match=f"--layer_from {re.escape(path)}: .*{words}"):
            layer_from_results(path, "smollm2-135m", 30)
    doc = smollm2()
    move_layer(doc, 21)  # every patch row says 21, but the sweep's best is 22
    path = source(tmp_path, doc)
    with pytest.raises(ConfigError, match="validate` refuses it: .*best layer is 22"):
        layer_from_results(path, "smollm2-135m", 30)
