"""Paired bootstrap intervals: constructed cases whose intervals are known."""

from __future__ import annotations

import numpy as np
import pytest

from harness.intervals import (
    LEVEL,
    REPLICATES,
    RULE,
    analysis_intervals,
    bootstrap_intervals,
    estimates,
    interval_block,
    scores_from_file,
    stored_scores,
    unit_scores,
)


def _one_seed(*rows):
    return {
        m: np.array([row], dtype=float) for m, row in zip(("patch", "prompt"), rows, strict=False)
    }


def test_a_certain_score_has_a_point_interval_and_equal_methods_differ_by_zero():
    ones = [1.0] * 50
    got = bootstrap_intervals({"t": _one_seed(ones, ones)})
    assert got["per_task"]["t"] == {
        "patch": [1.0, 1.0],
        "prompt": [1.0, 1.0],
        "patch - prompt": [0, 0],
    }


def test_a_proportion_gets_the_binomial_interval():
    """400 items, 100 right: the normal approximation's 95% interval is .25 +- .042."""
    row = [1.0] * 100 + [0.0] * 300
    low, high = bootstrap_intervals({"t": {"patch": np.array([row])}})["per_task"]["t"]["patch"]
    half = 1.96 * (0.25 * 0.75 / 400) ** 0.5
    assert low == pytest.approx(0.25 - half, abs=0.01) and high == pytest.approx(
        0.25 + half, abs=0.01
    )


def test_a_difference_is_paired_item_by_item():
    """prompt is patch with 10 of its 100 hits taken away: the paired difference is .10 +- .06;
    unpaired (each method drawn on its own items) it would be about .10 +- .14."""
    rng = np.random.default_rng(3)
    patch = (rng.random(100) < 0.5).astype(float)
    prompt = patch.copy()
    prompt[np.flatnonzero(patch)[:10]] = 0
    low, high = bootstrap_intervals({"t": _one_seed(patch, prompt)})["per_task"]["t"][
        "patch - prompt"
    ]
    assert low > 0.0 and high < 0.2 and high - low < 0.16
    assert low < 0.10 < high


def test_seeds_are_drawn_too():
    """Two seeds, one all right and one all wrong: a replicate's mean is 0, .5 or 1, so the
    interval spans [0, 1]."""
    scores = {"patch": np.array([[1.0] * 30, [0.0] * 30])}
    assert bootstrap_intervals({"t": scores})["per_task"]["t"]["patch"] == [0.0, 1.0]


def test_the_average_draws_each_task():
    """Two certain tasks, one always right, one always wrong: the average is exactly .5."""
    got = bootstrap_intervals({"a": {"patch": np.ones((1, 20))}, "b": {"patch": np.zeros((1, 20))}})
    assert got["average"]["patch"] == [0.5, 0.5]


def test_units_are_aligned_by_item_before_pairing():
    """The same scores with one unit's items in another order give the same intervals."""
    ids = [f"q{i}" for i in range(40)]
    hits = [float(i % 3 == 0) for i in range(40)]
    units = {("t", "patch", 0): {"doc_ids": ids, "lenient": hits}}
    units[("t", "prompt", 0)] = {"doc_ids": ids, "lenient": hits}
    shuffled = {("t", "patch", 0): units[("t", "patch", 0)]}
    shuffled[("t", "prompt", 0)] = {"doc_ids": ids[::-1], "lenient": hits[::-1]}
    for u in (units, shuffled):
        block = interval_block(u, ["t"], ["patch", "prompt"], [0])
        assert block["per_task"]["t"]["patch - prompt"] == [0, 0]
    with pytest.raises(ValueError, match="items differ"):
        bad = dict(units)
        bad[("t", "prompt", 0)] = {"doc_ids": ids[1:] + ["x"], "lenient": hits}
        unit_scores(bad, ["t"], ["patch", "prompt"], [0])


def test_methods_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        bootstrap_intervals({"t": {"patch": np.ones((1, 5)), "prompt": np.ones((1, 6))}})


def test_an_analysis_names_its_differences_and_they_pair_like_a_runs():
    """The same scores under other names, with the difference named: the same draws, so the
    same intervals as a run's patch - prompt, per task and on the average."""
    rng = np.random.default_rng(7)
    a, b = (rng.random((2, 3, 40)) < [[[0.6]], [[0.4]]]).astype(float)
    c, d = (rng.random((2, 3, 25)) < 0.5).astype(float)
    run = bootstrap_intervals({"t": {"patch": a, "prompt": b}, "u": {"patch": c, "prompt": d}})
    named = analysis_intervals({"t": {"x": a, "y": b}, "u": {"x": c, "y": d}}, [("x", "y")])
    for task in ("t", "u"):
        assert named["per_task"][task]["x - y"] == run["per_task"][task]["patch - prompt"]
        assert named["per_task"][task]["x"] == run["per_task"][task]["patch"]
    assert named["average"]["x - y"] == run["average"]["patch - prompt"]
    assert (named["rule"], named["level"], named["replicates"]) == (RULE, LEVEL, REPLICATES)
    # no DIFFERENCES of a run's slip into an analysis's: only the pairs it names
    assert set(named["average"]) == {"x", "y", "x - y"}
    with pytest.raises(ValueError, match="x - z"):
        analysis_intervals({"t": {"x": a, "y": b}}, [("x", "z")])


def test_estimates_are_the_means_the_intervals_are_drawn_around():
    a = np.array([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])  # .375
    b = np.zeros((2, 4))
    got = estimates({"t": {"a": a, "b": b}, "u": {"a": np.ones((2, 4)), "b": b}}, [("a", "b")])
    assert got["per_task"]["t"] == {"a": 0.375, "b": 0.0, "a - b": 0.375}
    assert got["average"] == {"a": 0.6875, "b": 0.0, "a - b": 0.6875}


def test_stored_scores_come_back_as_they_went_and_only_0_or_1_is_stored():
    scores = {"t": {"a": np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])}}
    stored = stored_scores(scores)
    assert stored == {"t": {"a": [[1, 0, 1], [0, 0, 1]]}}
    back = scores_from_file(stored)
    assert np.array_equal(back["t"]["a"], scores["t"]["a"])
    with pytest.raises(ValueError, match="0 or 1"):
        stored_scores({"t": {"a": np.array([[0.5, 1.0]])}})
