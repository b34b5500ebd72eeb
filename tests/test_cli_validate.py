import json

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
