import json
import statistics

import pytest
from examples import good, sample

from harness.cli import main


def write(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


def test_validate_good_files(tmp_path, capsys):
    res = write(tmp_path / "results.json", good("results"))
    sub = write(tmp_path / "sub.json", good("submission"))
    rows = tmp_path / "samples_country_capital.jsonl"
    rows.write_text("\n".join(json.dumps(sample()) for _ in range(3)) + "\n")
    assert main(["validate", res, sub, str(rows)]) == 0
    assert capsys.readouterr().out.count(": ok") == 3


def test_validate_bad_file_prints_path_and_exits_1(tmp_path, capsys):
    doc = good("results")
    doc["results"]["country_capital"]["patch"]["acc"] = 2
    bad = write(tmp_path / "results.json", doc)
    ok = write(tmp_path / "ok.json", good("results"))
    assert main(["validate", ok, bad]) == 1
    err = capsys.readouterr().err
    assert "$.results.country_capital.patch.acc" in err
    assert "results.json" in err
    assert "1 of 2 file(s) invalid" in err


def test_validate_jsonl_reports_line_numbers(tmp_path, capsys):
    rows = tmp_path / "samples_x.jsonl"
    bad = dict(sample(), seed="zero")
    rows.write_text(json.dumps(sample()) + "\n" + json.dumps(bad) + "\n{not json\n")
    assert main(["validate", str(rows)]) == 1
    err = capsys.readouterr().err
    assert "samples_x.jsonl:2: $.seed" in err
    assert "samples_x.jsonl:3: $: not valid JSON" in err


def test_validate_file_without_kind_asks_for_one(tmp_path, capsys):
    path = write(tmp_path / "thing.json", {"a": 1})
    assert main(["validate", path]) == 1
    assert "--kind" in capsys.readouterr().err
    assert main(["validate", "--kind", "row_vqa", path]) == 1
    assert "'caption' is a required property" in capsys.readouterr().err


def test_validate_missing_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.json")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_validate_shipped_pools(capsys):
    from importlib import resources

    folder = resources.files("benchmark") / "pools"
    files = [str(folder / f"{p}.json") for p in ("countries", "animals", "foods")]
    assert main(["validate", *files]) == 0


def test_ls_tasks(capsys):
    assert main(["ls", "tasks"]) == 0
    out = capsys.readouterr().out
    assert "override_factual" in out and "The color of the food:" in out


# --- strict parsing: what Python's json would read silently ------------------------------------


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_with_their_path(tmp_path, capsys, constant):
    text = json.dumps(good("results")).replace('"acc": 0.5', f'"acc": {constant}', 1)
    path = tmp_path / "results.json"
    path.write_text(text)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"results.json: $.results.country_capital.no_context.acc: {constant} is not" in err
    assert "write a finite number" in err


def test_a_duplicate_key_is_refused_and_named(tmp_path, capsys):
    text = json.dumps(good("results")).replace('"n": 100', '"n": 100, "n": 20', 1)
    path = tmp_path / "results.json"
    path.write_text(text)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "results.json: $.results.country_capital.no_context: duplicate key 'n'" in err


def test_a_bad_created_date_time_fails(tmp_path, capsys):
    doc = good("results")
    doc["created"] = "22/11/2026 noon"
    assert main(["validate", write(tmp_path / "results.json", doc)]) == 1
    err = capsys.readouterr().err
    assert "results.json: $.created: '22/11/2026 noon' is not a 'date-time'" in err


def test_deep_nesting_is_refused_and_the_batch_goes_on(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)  # past Python's recursion limit
    nested = tmp_path / "nested.json"
    inner: object = 1
    for _ in range(40):  # parses, but deeper than any file of this project
        inner = {"a": inner}
    nested.write_text(json.dumps(dict(good("results"), extra=inner)))
    ok = write(tmp_path / "ok.json", good("results"))
    assert main(["validate", str(deep), str(nested), ok]) == 1
    captured = capsys.readouterr()
    assert "deep.json: $: nested too deeply to read" in captured.err
    assert "nested.json: $.extra.a.a" in captured.err and "levels deep" in captured.err
    assert f"{ok}: ok" in captured.out
    assert "2 of 3 file(s) invalid" in captured.err


def test_a_file_that_breaks_a_check_does_not_stop_the_batch(tmp_path, capsys, monkeypatch):
    import benchmark.validation as validation

    def broken(doc, run_dir=None):
        raise KeyError("boom")

    monkeypatch.setattr(validation, "check_results_consistency", broken)
    bad = write(tmp_path / "results.json", good("results"))
    rows = tmp_path / "samples_country_capital.jsonl"
    rows.write_text(json.dumps(sample()) + "\n")
    assert main(["validate", bad, str(rows)]) == 1
    captured = capsys.readouterr()
    assert "results.json: $: could not be checked: KeyError" in captured.err
    assert f"{rows}: ok" in captured.out


# --- a results file checked against itself -------------------------------------------------------


def _acc_not_mean(doc):
    doc["results"]["country_capital"]["patch"]["acc"] = 0.55


def _std_not_std(doc):
    doc["results"]["country_capital"]["prompt"]["acc_std"] = 0.1


def _seed_missing(doc):
    entry = doc["results"]["country_capital"]["majority"]
    entry["per_seed"] = [0.45, 0.55]


def _per_seed_missing(doc):
    del doc["results"]["country_capital"]["no_context"]["per_seed"]


def _task_not_configured(doc):
    doc["config"]["tasks"] = ["country_capital", "food_color"]


def _method_not_configured(doc):
    doc["config"]["methods"] = ["no_context", "majority", "prompt"]


def _n_not_split(doc):
    doc["splits"] = {"country_capital": {"validation": 30, "test": 20}}


def _n_over_limit(doc):
    doc["config"]["limit"] = 20


def _seeds_not_config(doc):
    doc["seeds"] = [0, 1, 3]


INCONSISTENT = [
    ("acc", _acc_not_mean, "$.results.country_capital.patch.acc", "is not the mean of per_seed"),
    ("std", _std_not_std, "$.results.country_capital.prompt.acc_std", "population std"),
    ("seeds", _seed_missing, "$.results.country_capital.majority.per_seed", "2 value(s) for 3"),
    ("no per_seed", _per_seed_missing, "$.results.country_capital.no_context.per_seed", "missing"),
    ("tasks", _task_not_configured, "$.results", "no results for task food_color"),
    ("methods", _method_not_configured, "$.results.country_capital", "method patch, which"),
    ("n", _n_not_split, "$.results.country_capital.patch.n", "the recorded test split has 20"),
    ("limit", _n_over_limit, "$.results.country_capital.patch.n", "more than config.limit (20)"),
    ("seed list", _seeds_not_config, "$.seeds", "differs from config.seeds"),
]


@pytest.mark.parametrize(
    ("case", "mutate", "path", "message"), INCONSISTENT, ids=[c[0] for c in INCONSISTENT]
)
def test_an_inconsistent_results_file_fails_with_its_path(
    tmp_path, capsys, case, mutate, path, message
):
    doc = good("results")
    mutate(doc)
    assert main(["validate", write(tmp_path / "results.json", doc)]) == 1
    err = capsys.readouterr().err
    line = next((x for x in err.splitlines() if f"results.json: {path}: " in x), "")
    assert message in line, err


def test_samples_beside_the_results_must_agree_with_them(tmp_path, capsys):
    doc = good("results")
    path = write(tmp_path / "results.json", doc)
    rows = []
    for method in doc["config"]["methods"]:
        entry = doc["results"]["country_capital"][method]
        strict_hits = round(entry["acc_strict"] * 100)  # the same in every seed
        for seed, acc in zip(doc["seeds"], entry["per_seed"], strict=True):
            hits = round(acc * 100)
            for i in range(100):
                # a strict hit, a lenient-only hit (a prefix of the label), or a miss
                prediction = "Paris" if i < strict_hits else "Par" if i < hits else "Rome"
                row = dict(sample(), doc_id=f"d{i}", method=method, seed=seed)
                row.update(prediction=prediction, lenient=i < hits, strict=i < strict_hits)
                rows.append(row)
    samples = tmp_path / "samples_country-capital.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["validate", path, str(samples)]) == 0

    rows[0]["lenient"] = False  # no_context, seed 0: one hit fewer than recorded
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows[:-1]))  # and a row short
    assert main(["validate", path]) == 1
    err = capsys.readouterr().err
    assert (
        "results.json: $.results.country_capital.no_context.per_seed[0]: 0.4 for seed 0, but "
        "the 100 rows of samples_country-capital.jsonl score 0.39"
    ) in err
    assert (
        "results.json: $.results.country_capital.patch.n: 100 items per seed, but "
        "samples_country-capital.jsonl holds 99 row(s) for seed 2"
    ) in err


def _judged(doc, failures):
    """An image overriding set as the harness writes it once judged: acc pools the judged
    answers of all seeds."""
    doc["config"].update(tasks=["override_semantic"], methods=["original"], spec="instruction")
    per_seed = [0.2, 0.3, 0.4]  # 1 of 5, 3 of 10 and 4 of 10 judged: 8 of 25
    del doc["layer_selection"]  # `original` patches nothing
    doc["results"] = {
        "override_semantic": {
            "original": {
                "acc": 0.32,
                "acc_std": statistics.pstdev(per_seed),
                "per_seed": per_seed,
                "n": 10,
                "judged": 30 - failures,
                "judge_failures": failures,
                "acc_failures_as_misses": 8 / 30,
            }
        }
    }
    return doc


def test_judged_overriding_results_are_accepted_and_checked(tmp_path, capsys):
    doc = _judged(good("results"), failures=5)
    assert main(["validate", write(tmp_path / "results.json", doc)]) == 0
    doc["results"]["override_semantic"]["original"]["acc"] = 0.45  # outside its seeds' rates
    doc["results"]["override_semantic"]["original"]["judged"] = 20
    assert main(["validate", write(tmp_path / "results.json", doc)]) == 1
    err = capsys.readouterr().err
    assert "original.acc: 0.45 lies outside its per-seed rates [0.2, 0.4]" in err
    assert "original.judged: judged (20) + judge_failures (5) is not n x seeds" in err
    # Without judge failures every seed weighs the same: acc must be their mean.
    doc = _judged(good("results"), failures=0)
    assert main(["validate", write(tmp_path / "results.json", doc)]) == 1
    assert "original.acc: 0.32 is not the mean of per_seed" in capsys.readouterr().err
