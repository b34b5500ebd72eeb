"""The `vlm-tv-eval` run: results files, resume, custom tasks, and errors before model load."""

import json

import pytest
from examples import run_results

from benchmark import validate
from harness import evaluator
from harness.cli import main
from harness.store import RunStore


def _args(tiny_llama_path, out, *extra):
    return [
        "--model",
        f"hf:{tiny_llama_path}",
        "--tasks",
        "country_capital,food_color",
        "--limit",
        "6",
        "--seeds",
        "0,1",
        "--n_shot",
        "3",
        "--output_path",
        str(out),
        *extra,
    ]


def _stable(doc):
    """A results file without the parts that differ between two runs of the same config."""
    doc = json.loads(json.dumps(doc))
    for key in ("created", "timings"):
        doc.pop(key, None)
    doc["config"].pop("output_path")
    return doc


_results = run_results


def test_limited_run_writes_valid_results_and_samples(tiny_llama_path, tmp_path, capsys):
    assert main(_args(tiny_llama_path, tmp_path, "--log_samples")) == 0
    doc = _results(tmp_path)
    assert validate(doc, "results") == []
    assert set(doc["results"]) == {"country_capital", "food_color"}
    sel = doc["layer_selection"]
    assert sel["mode"] == "sweep" and len(sel["mean_curve"]) == 4
    assert sel["layer"] == max(range(4), key=lambda i: (sel["mean_curve"][i], -i))
    patch = doc["results"]["country_capital"]["patch"]
    assert patch["layer"] == sel["layer"] and patch["n"] == 6 and len(patch["per_seed"]) == 2
    assert doc["config"]["template"]["example"] == "Q: {x}\nA: {y}"
    (samples,) = tmp_path.glob("*/*/samples_country-capital.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(rows) == (3 * 2 + 1) * 6  # (seeded methods x seeds + no_context once) x items
    assert all(validate(r, "sample") == [] for r in rows)
    # The summary table is printed, with the average's intervals and the paired differences,
    # read from the results' intervals, which come from the samples' own scores.
    out = capsys.readouterr().out
    assert "country_capital" in out and "95% interval" in out and "patch - prompt" in out
    intervals = doc["intervals"]
    assert set(intervals["per_task"]) == {"country_capital", "food_color"}
    for task, by_name in intervals["per_task"].items():
        for method in ("no_context", "majority", "prompt", "patch"):
            low, high = by_name[method]
            hits = [r["lenient"] for r in rows if r["method"] == method] if task == (
                "country_capital") else None  # fmt: skip
            if hits is not None:  # the interval holds the samples' own mean
                assert low - 1e-9 <= sum(hits) / len(hits) <= high + 1e-9
    assert set(intervals["average"]) >= {"patch - prompt", "patch - no_context"}


def test_interrupted_run_resumes_to_the_same_results(
    tiny_llama_path, tmp_path, monkeypatch, capsys
):
    clean = tmp_path / "clean"
    assert main(_args(tiny_llama_path, clean)) == 0

    resumed = tmp_path / "resumed"
    real_unit = RunStore.unit
    computed = []

    def dying_unit(self, name, compute, items):
        def counted():
            computed.append(name)
            if len(computed) == 5:
                raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-run
            return compute()

        return real_unit(self, name, counted, items)

    monkeypatch.setattr(RunStore, "unit", dying_unit)
    assert main(_args(tiny_llama_path, resumed)) == 130
    assert "Run the same command again to resume" in capsys.readouterr().err
    assert not list(resumed.glob("*/*/results.json"))
    done_before = set(computed[:4])

    computed.clear()
    monkeypatch.setattr(
        RunStore,
        "unit",
        lambda self, n, c, items: real_unit(self, n, lambda: (computed.append(n), c())[1], items),
    )
    assert main(_args(tiny_llama_path, resumed)) == 0
    assert not done_before & set(computed), "finished units were computed again"
    assert _stable(_results(resumed)) == _stable(_results(clean))


def test_layer_override_is_recorded(tiny_llama_path, tmp_path):
    assert main(_args(tiny_llama_path, tmp_path, "--layer", "2", "--methods", "patch")) == 0
    doc = _results(tmp_path)
    assert doc["layer_selection"] == {"mode": "override", "layer": 2}
    assert doc["results"]["food_color"]["patch"]["layer"] == 2


def test_instruction_and_ensemble_specs_run(tiny_llama_path, tmp_path):
    for spec in ("instruction", "ensemble"):
        assert main(_args(tiny_llama_path, tmp_path / spec, "--spec", spec)) == 0
        assert validate(_results(tmp_path / spec), "results") == []


def test_custom_task_file_gets_a_recorded_seeded_split(tiny_llama_path, tmp_path):
    task = tmp_path / "opposites.jsonl"
    lines = [{"instruction": "The opposite of the word:"}] + [
        {"input": a, "output": b}
        for a, b in [
            ("hot", "cold"),
            ("up", "down"),
            ("big", "small"),
            ("fast", "slow"),
            ("light", "dark"),
            ("old", "new"),
            ("wet", "dry"),
            ("rich", "poor"),
            ("early", "late"),
            ("happy", "sad"),
        ]
    ]
    task.write_text("\n".join(json.dumps(x) for x in lines))
    args = [
        "--model",
        f"hf:{tiny_llama_path}",
        "--tasks",
        str(task),
        "--seeds",
        "0",
        "--n_shot",
        "2",
        "--output_path",
        str(tmp_path / "out"),
        "--spec",
        "ensemble",
    ]
    assert main(args) == 0
    doc = _results(tmp_path / "out")
    assert validate(doc, "results") == []
    split = doc["splits"]["custom:opposites"]
    assert split["validation"] == 3 and split["test"] == 7
    assert len(split["made"]["validation_ids"]) == 3


def test_malformed_task_file_lines_are_reported_by_number(tmp_path, capsys):
    task = tmp_path / "bad.jsonl"
    task.write_text('{"input": "a", "output": "b"}\n{oops\n{"input": "c"}\n[1]\n')
    assert main(["--tasks", str(task)]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:2: not valid JSON" in err
    assert "bad.jsonl:3: missing or empty output" in err
    assert "bad.jsonl:4: expected a JSON object" in err


@pytest.fixture
def no_model_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(evaluator, "load_adapter", refuse)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--model", "gpt-17"], "unknown model 'gpt-17'"),
        (["--tasks", "country_capitol"], "Known task ids: country_capital"),
        (["--layer", "30"], "--layer 30 out of range: smollm2-135m has layers 0..29"),
        (["--layer", "-1"], "out of range"),
        (["--n_shot", "30"], "at most 29 demos"),
        (["--methods", "patch,vibes"], "unknown method"),
        (["--template", "fancy"], "unknown template 'fancy'"),
        (["--tasks", "vqa_food_class"], "vlm-tv-build vqa"),
        (["--tasks", "override_semantic", "--spec", "text_examples"], "override"),
    ],
)
def test_bad_input_is_a_clear_error_before_any_model_loads(argv, message, no_model_load, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_patch_one_layer_off_is_what_a_run_at_that_layer_gets(tiny_llama_path, tmp_path):
    """Each patch entry carries the test accuracy one layer below and above its layer; a run
    fixed at such a layer scores its patch the same."""
    assert main(_args(tiny_llama_path, tmp_path / "a", "--layer", "2")) == 0
    doc = _results(tmp_path / "a")
    for task, by_method in doc["results"].items():
        assert set(by_method["patch"]["neighbour_layers"]) == {"1", "3"}, task
    for n in (1, 3):
        assert main(_args(tiny_llama_path, tmp_path / str(n), "--layer", str(n))) == 0
        other = _results(tmp_path / str(n))
        for task, by_method in other["results"].items():
            near = doc["results"][task]["patch"]["neighbour_layers"][str(n)]
            assert by_method["patch"]["acc"] == pytest.approx(near), (task, n)
            for seed in (0, 1):  # item by item: the same predictions
                slug = task.replace("_", "-")
                [mine] = (tmp_path / "a").glob(f"*/*/parts/{slug}/patch-s{seed}-L2.json")
                [theirs] = (tmp_path / str(n)).glob(f"*/*/parts/{slug}/patch-s{seed}-L{n}.json")
                mine_near = json.loads(mine.read_text())["data"]["neighbours"][str(n)]
                assert mine_near["preds"] == json.loads(theirs.read_text())["data"]["preds"]
    edge = _results(tmp_path / "3")  # the top layer (of 4) has only one neighbour
    assert set(edge["results"]["food_color"]["patch"]["neighbour_layers"]) == {"2"}
