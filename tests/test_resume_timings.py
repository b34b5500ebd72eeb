"""A resumed run's timings say what they mean: the run's `total`, over all its calls, covers
the phases it counts (load, sweep, no_context, ...), an interrupted or killed call's time is
kept, and each `<kind>_this_call` is this call's own."""

from __future__ import annotations

import json
import re
import time

import pytest

from harness.cli import main
from harness.config import RunConfig
from harness.store import RunStore

PAUSE = 0.2  # seconds each computed unit sleeps, so a phase's time is measurable
THIS_CALL = "_this_call"


def _args(tiny_llama_path, out):
    return [
        "--model", f"hf:{tiny_llama_path}", "--tasks", "country_capital", "--limit", "4",
        "--seeds", "0", "--n_shot", "2", "--output_path", str(out),
    ]  # fmt: skip


def _phases(timings: dict) -> dict:
    """The run's kinds other than `total` (no `_this_call`)."""
    return {k: v for k, v in timings.items() if k != "total" and not k.endswith(THIS_CALL)}


def _this_call(timings: dict) -> dict:
    return {k.removesuffix(THIS_CALL): v for k, v in timings.items() if k.endswith(THIS_CALL)}


def _state(out) -> dict:
    (path,) = out.glob("*/*/state.json")
    return json.loads(path.read_text())["timings"]


def _results(out) -> dict:
    (path,) = out.glob("*/*/results.json")
    return json.loads(path.read_text())["timings"]


@pytest.fixture
def slow_units(monkeypatch):
    """Every unit computed sleeps PAUSE first; `hooks[n]` runs inside the n-th (1-based)."""
    hooks: dict[int, object] = {}
    seen: list[str] = []
    real = RunStore.unit

    def unit(self, name, compute, items):
        def slow():
            seen.append(name)
            time.sleep(PAUSE)
            hook = hooks.get(len(seen))
            if hook is not None:
                hook(self)
            return compute()

        return real(self, name, slow, items)

    monkeypatch.setattr(RunStore, "unit", unit)
    return hooks, seen


def _interrupt(store):
    raise KeyboardInterrupt


def test_an_interrupted_calls_time_is_kept_and_covers_its_phases(
    tiny_llama_path, tmp_path, slow_units, capsys
):
    hooks, seen = slow_units
    hooks[4] = _interrupt  # sweep, no_context, majority done; interrupted inside prompt
    start = time.perf_counter()
    assert main(_args(tiny_llama_path, tmp_path)) == 130
    wall = time.perf_counter() - start
    assert seen[3].endswith("prompt-s0")
    before = _state(tmp_path)
    # The interrupted call's time is in state.json: its phases, and more (the unfinished
    # unit's PAUSE is in no phase but was spent).
    assert set(_phases(before)) == {"load", "sweep", "no_context", "majority"}
    assert before["total"] >= sum(_phases(before).values()) + PAUSE
    assert before["total"] <= wall

    hooks.clear()  # the resumed call: units still sleep PAUSE, none interrupts
    capsys.readouterr()
    assert main(_args(tiny_llama_path, tmp_path)) == 0
    got = _results(tmp_path)
    phases, own = _phases(got), _this_call(got)
    # Over the whole run: the total covers every phase of both calls.
    assert got["total"] >= sum(phases.values()) + PAUSE  # the interrupted unit's pause
    assert got["total"] == pytest.approx(before["total"] + own["total"], abs=0.002)
    # This call's own: it loaded the model and computed prompt and patch, nothing else.
    assert set(own) == {"total", "load", "prompt", "patch"}
    assert own["total"] >= sum(v for k, v in own.items() if k != "total")
    assert got["load"] == pytest.approx(before["load"] + own["load"], abs=0.002)
    assert own["prompt"] == got["prompt"] and own["patch"] == got["patch"]
    for kind in ("sweep", "no_context", "majority"):  # reused: this call spent nothing on them
        assert got[kind] == pytest.approx(before[kind], abs=0.001)
    # state.json holds the same run timings as the results file.
    assert _state(tmp_path) == pytest.approx(
        {k: v for k, v in got.items() if THIS_CALL not in k}, abs=0.001
    )
    # The summary's last line says the total is the run's, not this call's.
    out = capsys.readouterr().out
    assert re.search(r"total \d+ s over all the run's calls; results: ", out)
    assert re.search(r"^time +this call \d+ s; the run \d+ s over all its calls$", out, re.M)


def test_a_killed_call_keeps_its_time_up_to_its_last_finished_unit(
    tiny_llama_path, tmp_path, slow_units
):
    """A kill runs no `finally`: what state.json holds when the third unit starts is what a
    SIGKILL there would leave."""
    hooks, _ = slow_units
    seen_state: list[dict] = []
    hooks[3] = lambda store: seen_state.append(_state(tmp_path))
    assert main(_args(tiny_llama_path, tmp_path)) == 0
    (state,) = seen_state
    assert set(_phases(state)) == {"load", "sweep", "no_context"}
    assert state["total"] >= sum(_phases(state).values())
    assert state["total"] >= 2 * PAUSE


def test_a_clean_rerun_counts_its_load_and_total_but_no_reused_unit(tiny_llama_path, tmp_path):
    assert main(_args(tiny_llama_path, tmp_path)) == 0
    first = _results(tmp_path)
    assert first["total"] >= sum(_phases(first).values())
    assert _this_call(first) == pytest.approx(
        {k: v for k, v in first.items() if THIS_CALL not in k}, abs=0.001
    )
    assert main(_args(tiny_llama_path, tmp_path)) == 0
    again = _results(tmp_path)
    own = _this_call(again)
    assert set(own) == {"total", "load"}  # every unit reused
    assert again["total"] == pytest.approx(first["total"] + own["total"], abs=0.002)
    assert again["load"] == pytest.approx(first["load"] + own["load"], abs=0.002)
    assert again["total"] >= sum(_phases(again).values())
    for kind in ("sweep", "no_context", "majority", "prompt", "patch"):
        assert again[kind] == first[kind]


def test_a_state_file_whose_total_is_short_of_its_phases_is_lifted_with_a_warning(tmp_path, capsys):
    """Older code saved an interrupted call's units but not its total."""
    store = RunStore(RunConfig(output_path=str(tmp_path)), {})
    store.dir.mkdir(parents=True)
    (store.dir / "state.json").write_text(
        json.dumps(
            {
                "created": "2025-01-01T00:00:00+00:00",
                "timings": {"load": 2.0, "sweep": 1.5, "total": 0.5},
            }
        )
    )
    again = RunStore(RunConfig(output_path=str(tmp_path)), {})
    assert again.timings["total"] == 3.5
    err = capsys.readouterr().err
    assert "state.json" in err and "less than the time its phases took" in err


def test_a_rank_other_than_the_main_one_never_writes_the_run_state(tmp_path, monkeypatch):
    """The ranks of one launch share the folder: each rank's own view would overwrite the
    main process's timings (the units another rank computed are not in it)."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    store = RunStore(RunConfig(output_path=str(tmp_path)), {})
    store.dir.mkdir(parents=True)
    store.time("sweep", 1.0)
    assert not (store.dir / "state.json").exists()
    monkeypatch.setenv("RANK", "0")
    store.time("sweep", 1.0)
    assert json.loads((store.dir / "state.json").read_text())["timings"]["sweep"] == 2.0


def test_the_results_files_timings_keep_total_at_least_the_sum_of_its_phases():
    """Rounding each value to the millisecond on its own could put the phases above the total."""
    from harness.results import timings_block

    got = timings_block(
        {"load": 0.0006, "sweep": 0.0006, "total": 0.0012, "total_this_call": 0.0012}
    )
    assert got["total"] >= got["load"] + got["sweep"]
    assert got["total_this_call"] >= got["load"] + got["sweep"]
    assert timings_block({"total": 1.0, "load": 0.25}) == {"total": 1.0, "load": 0.25}
