"""Honest progress and summaries: bars that count items, warnings printed above the bars, the
summary's `n/a` where no spread over seeds was measured, and a resumed run's times split into
this call's and the whole run's."""

from __future__ import annotations

import io
import json
import logging
import re
import warnings

import pytest
from examples import good

from harness import progress
from harness.cli import main
from harness.progress import ItemBar, routed_output
from harness.results import summary_table, timing_line


def _args(tiny_llama_path, out):
    return [
        "--model", f"hf:{tiny_llama_path}", "--tasks", "country_capital", "--limit", "4",
        "--n_shot", "2", "--seeds", "0,1", "--output_path", str(out),
    ]  # fmt: skip


def _cells(table: str, task: str) -> list[str]:
    return next(line for line in table.splitlines() if line.startswith(task)).split()[1:]


def test_one_seed_or_one_computation_shows_na_not_a_zero_spread():
    doc = good("results")
    table = summary_table(doc)
    assert _cells(table, "country_capital")[0] == "0.50±0.08"  # three seeds: a measured spread
    by_method = doc["results"]["country_capital"]
    by_method["no_context"].update(acc_std=0.0, per_seed=[0.5, 0.5, 0.5], seeded=False)
    for name in ("majority", "prompt", "patch"):
        by_method[name].update(acc=0.5, acc_std=0.0, per_seed=[0.5])
    cells = _cells(summary_table(doc), "country_capital")
    assert cells[:3] == ["0.50±n/a"] * 3 and cells[3:] == ["0.50±n/a", "L21"]
    assert "±0.00" not in summary_table(doc)


def test_the_timing_line_shows_this_call_and_the_whole_run():
    assert timing_line({}) == ""
    line = timing_line({"total": 754.2, "total_this_call": 12.4, "load": 3.0})
    assert line.split() == ["time", "this", "call", "12", "s;", "the", "run", "12", "min",
                            "34", "s", "over", "all", "its", "calls"]  # fmt: skip
    assert "this call" not in timing_line({"total": 30.0})  # written before the split
    doc = good("results")
    doc["timings"] = {"total": 7300.0, "total_this_call": 61.0}
    assert (
        summary_table(doc)
        .splitlines()[-1]
        .endswith("this call 1 min 01 s; the run 2 h 01 min over all its calls")
    )


def test_a_resumed_runs_times_add_up_over_its_calls(tiny_llama_path, tmp_path, capsys):
    assert main(_args(tiny_llama_path, tmp_path)) == 0
    (path,) = tmp_path.glob("*/*/results.json")
    first = json.loads(path.read_text())["timings"]
    assert first["total_this_call"] == pytest.approx(first["total"], abs=0.01)
    capsys.readouterr()
    assert main(_args(tiny_llama_path, tmp_path)) == 0  # every unit stored: a quick call
    again = json.loads(path.read_text())["timings"]
    assert again["total"] == pytest.approx(first["total"] + again["total_this_call"], abs=0.01)
    assert again["total_this_call"] < again["total"]
    assert again["prompt"] == first["prompt"]  # units computed once count once
    out = capsys.readouterr().out
    assert re.search(r"^time +this call \d+ s; the run \d+ s over all its calls$", out, re.M)


def test_the_test_bar_counts_items_not_units(tiny_llama_path, tmp_path, capsys):
    assert main(_args(tiny_llama_path, tmp_path)) == 0
    err = capsys.readouterr().err
    # no_context once, majority, prompt and patch per seed: 7 units of 4 items.
    assert re.search(r"test: 100%\|\S*\| 28/28 \[[^]]*item/s\]", err), err[-2000:]
    # The sweep's bar counts the validation items (--limit 4).
    assert re.search(r"validation sweep: 100%\|\S*\| 4/4 \[[^]]*item/s\]", err), err[-2000:]


def test_an_item_bar_ticks_within_a_unit_but_never_past_its_items():
    file = io.StringIO()
    bar = ItemBar([("a",), ("b",)], lambda job: 5, "test", enabled=True)
    bar.bar.fp = file  # not the terminal
    seen = []

    def work():
        progress.advance(3)
        seen.append(bar.bar.n)
        progress.advance(10)  # more than the unit holds: capped
        seen.append(bar.bar.n)

    bar.run(("a",), work, "a")
    bar.run(("b",), lambda: seen.append(bar.bar.n), "b")
    assert seen == [3, 5, 5] and bar.bar.n == 10 == bar.bar.total
    progress.advance(4)  # no bar running: nothing happens
    assert bar.bar.n == 10
    bar.close()


def test_warnings_and_log_lines_go_above_the_bars(monkeypatch):
    written = []
    monkeypatch.setattr(progress.tqdm, "write", lambda s, file=None, **kw: written.append(s))
    with routed_output():
        warnings.warn("a deprecated thing", UserWarning, stacklevel=1)
        logging.getLogger("transformers").warning("a transformers warning")
        progress.say("warning: the harness's own")
    assert any("UserWarning: a deprecated thing" in w for w in written)
    assert any("a transformers warning" in w for w in written)
    assert "warning: the harness's own" in written
    written.clear()
    with warnings.catch_warnings(record=True):  # outside the block: the usual route again
        warnings.simplefilter("always")
        warnings.warn("after", UserWarning, stacklevel=1)
    assert written == []


def test_the_engine_ticks_the_bar_batch_by_batch(tiny_adapter):
    """Inside a unit, each engine batch moves the bar by its items before the unit ends (a
    long unit no longer sits at 0 until it is done); a bar made with ticks=False does not move."""
    from harness import engine
    from harness.templates import Prompt

    prompts = [Prompt(f"Q: item {i}\nA:") for i in range(6)]
    seen = []
    bar = ItemBar(["unit"], lambda _job: 6, "test")
    with bar.unit("unit"):
        engine.first_tokens(tiny_adapter, prompts, batch_size=2, sharing_prefixes=False)
        seen.append(bar.bar.n)
    assert seen == [6] and bar.bar.n == 6
    quiet = ItemBar(["task"], lambda _job: 1, "analysis", ticks=False)
    with quiet.unit("task"):
        engine.first_tokens(tiny_adapter, prompts, batch_size=2, sharing_prefixes=False)
        assert quiet.bar.n == 0
    assert quiet.bar.n == 1
