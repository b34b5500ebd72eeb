"""`--score whole_answer`: the greedy answer up to its first newline against the whole label,
beside the first-token number the paper reports."""

from __future__ import annotations

import json

import pytest

from benchmark import validate
from benchmark.scoring import lenient_match, whole_answer_scores
from harness.cli import main


@pytest.mark.parametrize(
    "answer,target",
    [("P", "Panthera leo"), (" Panther", "Panthera leo"), ("Eu", "Euro")],
)
def test_a_first_token_hit_can_be_a_whole_answer_miss(answer, target):
    """A short first token is a prefix of the label, which the lenient first-token rule counts;
    the whole answer is not the label."""
    assert lenient_match(answer, target)
    assert whole_answer_scores(answer, target) == (False, False)


@pytest.mark.parametrize(
    "answer,target,normalised_only",
    [
        (" Panthera leo", "Panthera leo", False),  # several tokens, right
        ("Buenos Aires", "Buenos Aires", False),
        ("cubs.", "cub", True),  # number, punctuation
        ("Swiss Francs", "Swiss franc", True),  # case, number
    ],
)
def test_a_right_answer_in_several_tokens_is_a_whole_answer_hit(answer, target, normalised_only):
    exact, loose = whole_answer_scores(answer, target)
    assert loose and exact is not normalised_only


def test_a_wrong_answer_is_a_miss_both_ways():
    assert whole_answer_scores("Lyon", "Paris") == (False, False)
    assert whole_answer_scores("", "Paris") == (False, False)


def test_a_run_records_whole_answers_beside_first_tokens(tiny_llama_path, tmp_path, capsys):
    argv = ["--model", f"hf:{tiny_llama_path}", "--tasks", "country_capital", "--limit", "4"]
    argv += ["--seeds", "0,1", "--n_shot", "2", "--layer", "1", "--score", "whole_answer"]
    assert main([*argv, "--output_path", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("*/*/results.json")
    doc = json.loads(path.read_text())
    assert validate(doc, "results") == []
    assert doc["config"]["score"] == "whole_answer" and "whole_answer_metric" in doc["config"]
    # Each method's figure is the mean of its stored units' per-item whole-answer scores.
    parts = path.parent / "parts" / "country-capital"
    for method, entry in doc["results"]["country_capital"].items():
        whole = entry["whole_answer"]
        files = sorted(parts.glob(f"{method}*.json"))
        units = [json.loads(f.read_text())["data"] for f in files]
        assert units and all(len(u["answers"]) == len(u["whole"]) == 4 for u in units)
        if len(units) == 2:  # seeded: one unit per seed
            assert whole["per_seed"] == [sum(u["whole"]) / 4 for u in units]
        assert 0 <= whole["acc"] <= whole["acc_normalised"] <= 1
        if method == "majority":  # its answers are the demos' labels
            assert [u["answers"] for u in units] == [u["preds"] for u in units]
    assert "whole answers" in capsys.readouterr().out
    whole_intervals = doc["intervals"]["whole_answer"]["average"]
    for method, entry in doc["results"]["country_capital"].items():
        low, high = whole_intervals[method]
        assert low - 1e-9 <= entry["whole_answer"]["acc"] <= high + 1e-9
    # A first-token run of the same config is another measurement (another folder), whose
    # results carry no whole answers.
    first = [a if a != "whole_answer" else "first_token" for a in argv]
    assert main([*first, "--output_path", str(tmp_path / "first")]) == 0
    (other,) = (tmp_path / "first").glob("*/*/results.json")
    other_doc = json.loads(other.read_text())
    assert other_doc["run_id"] != doc["run_id"]
    assert "whole_answer" not in other_doc["results"]["country_capital"]["patch"]
    assert "score" not in other_doc["config"] or other_doc["config"]["score"] == "first_token"
