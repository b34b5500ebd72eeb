"""`vlm-tv-build import-authors`: the paper authors' files (tiny fixtures in their layout) become
our Hub layout, which the harness's image loader reads item for item; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from benchmark import load_task, validate
from builders import cli
from builders.authors import KIND, item_id
from builders.cross_modal import json_row
from builders.images import fit_width
from builders.output import read_marker
from harness.arguments import parse_run_config
from harness.items import load_task_data
from harness.loaders import from_build
from harness.prepare import load_run_data

# (input, output) per task and split, in the authors' order; France is also in our pool.
ITEMS = {
    "country-capital": {
        "val": [("France", "Paris"), ("Peru", "Lima"), ("Côte d'Ivoire", "Yamoussoukro")],
        "test": [("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Chile", "Santiago"), ("Peru", "x")],
    },
    "food-color": {
        "val": [("Banana", "yellow"), ("Tomato", "red")],
        "test": [("Lime", "green"), ("Grape", "purple"), ("Carrot", "orange")],
    },
}
TASKS = "country_capital,food_color"


def _authors_data(root: Path, wide: bool = True) -> Path:
    """`data/` as download_data.sh leaves it: annotations/<task>_<mode>.json, images/<task>/."""
    data = root / "data"
    (data / "annotations").mkdir(parents=True)
    for task, modes in ITEMS.items():
        folder = data / "images" / task
        folder.mkdir(parents=True)
        for mode, pairs in modes.items():
            items = []
            for i, (text, label) in enumerate(pairs):
                name = f"{mode}_{i}.png"
                Image.new("RGB", (448 if wide else 100, 300), (i * 40, 90, 200)).save(folder / name)
                items.append({"input": text, "output": label, "image": f"images/{task}/{name}"})
            doc = {"data": items} if task == "food-color" else items  # both shapes they read
            (data / "annotations" / f"{task}_{mode}.json").write_text(json.dumps(doc), "utf-8")
    return data


def _import(data: Path, out: Path, images: Path | None = None, tasks: str = TASKS) -> int:
    argv = ["import-authors", "--annotations", str(data / "annotations")]
    argv += ["--images", str(images or data), "--out", str(out), "--tasks", tasks]
    return cli.main(argv)


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def _expected(task: str, mode: str) -> list[tuple[str, str]]:
    ids, out = {}, []
    for m in ("val", "test"):
        for text, label in ITEMS[task][m]:
            base = item_id(text)
            ids[base] = ids.get(base, 0) + 1
            if m == mode:
                out.append((base if ids[base] == 1 else f"{base}_{ids[base]}", label))
    return out


def test_import_keeps_their_items_splits_and_order_and_the_harness_loads_it(
    tmp_path, hf_cache, capsys
):
    data = _authors_data(tmp_path)
    out = tmp_path / "out"
    assert _import(data, out) == 0
    assert "country_capital: validation 3, test 4" in capsys.readouterr().out
    assert read_marker(out)["kind"] == KIND
    assert _expected("country-capital", "val")[0][0] == load_task("country_capital")[0]["id"]
    assert [i for i, _ in _expected("country-capital", "val")] == ["france", "peru", "cote_divoire"]
    assert _expected("country-capital", "test")[-1][0] == "peru_2"  # repeated input, unique id

    for task in ("country_capital", "food_color"):
        theirs = task.replace("_", "-")
        # What `vlm-tv-eval --data OUT` does: the shipped pool's task, its items replaced by
        # the build's (the authors' items differ from our pool: fewer, other answers).
        loaded = from_build(load_task_data(task), str(out))
        assert loaded.extra["items_differing_from_pool"] > 0
        assert loaded.extra["missing_images"] == []
        sizes = {s: len(rows) for s, rows in loaded.splits.items()}
        assert sizes == {
            s: len(ITEMS[theirs][m]) for s, m in (("validation", "val"), ("test", "test"))
        }
        for split, mode in (("validation", "val"), ("test", "test")):
            got = [(r["id"], r["output"]) for r in loaded.splits[split]]
            assert got == _expected(theirs, mode)
            assert all(
                r["image"].width == 224 and r["image"].mode == "RGB" for r in loaded.splits[split]
            )

    # A text-only run given --data uses the build's items too, never silently the pool's.
    argv = ["--tasks", "country_capital", "--n_shot", "2", "--data", str(out)]
    text_run = load_run_data(parse_run_config(argv))
    got = [(r["id"], r["output"]) for r in text_run["country_capital"].splits["test"]]
    assert got == _expected("country-capital", "test")
    assert "image" not in text_run["country_capital"].splits["test"][0]

    import datasets

    rows = list(datasets.load_dataset(str(out), "country_capital")["validation"])
    assert [r["input"] for r in rows] == ["France", "Peru", "Côte d'Ivoire"]
    assert rows[0]["attribution"]["file_page"] == "images/country-capital/val_0.png"
    assert all(validate(json_row(dict(r, image=None)), "row_cross_modal") == [] for r in rows)
    readme = (out / "README.md").read_text("utf-8")
    assert "25c7463ceef1602492ed5be0bf12dcf1b7fd3fb6" in readme and "download_data.sh" in readme
    assert "country-capital_test.json" in readme and "no licence" in readme
    assert "license_name: unstated-by-the-authors" in readme


def test_images_folder_may_be_data_or_data_images_and_images_are_sized_as_ours(tmp_path, hf_cache):
    data = _authors_data(tmp_path, wide=False)
    out = tmp_path / "out"
    assert _import(data, out, images=data / "images") == 0
    import datasets

    row = datasets.load_dataset(str(out), "food_color")["test"][0]
    sized = fit_width(Image.new("RGB", (100, 300))).size  # whatever rule builders.images has
    assert (row["id"], row["output"], row["image"].size) == ("lime", "green", sized)


def _bad_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    """(argv, words the one-line message must hold) for each kind of bad input."""
    data = _authors_data(tmp_path)
    ann = data / "annotations"
    base = ["import-authors", "--images", str(data), "--tasks", TASKS]
    cases = [(["--annotations", str(tmp_path / "nope")], ["nope", "does not exist"])]
    cases.append((["--annotations", str(data)], ["country-capital_val.json", "--annotations"]))
    cases.append(
        (["--annotations", str(ann), "--tasks", "all"], ["country-currency_val.json", "--tasks"])
    )
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ann.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "food-color_val.json").write_text("[{", "utf-8")
    cases.append((["--annotations", str(broken)], ["food-color_val.json", "not valid JSON"]))
    shape = tmp_path / "shape"
    shape.mkdir()
    for f in ann.iterdir():
        (shape / f.name).write_bytes(f.read_bytes())
    (shape / "food-color_test.json").write_text(json.dumps([{"input": "Lime"}]), "utf-8")
    cases.append((["--annotations", str(shape)], ["food-color_test.json[0]", "output, image"]))
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    for f in ann.iterdir():
        (unknown / f.name).write_bytes(f.read_bytes())
    (unknown / "country-capitol_val.json").write_text("[]", "utf-8")
    cases.append((["--annotations", str(unknown)], ["country-capitol_val.json", "move it out"]))
    return [(base + argv, words) for argv, words in cases]


def test_bad_input_is_one_line_naming_the_file_and_the_fix(tmp_path, capsys):
    for argv, words in _bad_cases(tmp_path):
        out = tmp_path / "out"
        assert cli.main([*argv, "--out", str(out)]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith("vlm-tv-build import-authors: "), err
        for word in words:
            assert word in err, (word, err)
        assert not out.exists()


def test_a_missing_or_corrupt_image_is_named_and_nothing_is_written(tmp_path, capsys):
    data = _authors_data(tmp_path)
    (data / "images" / "food-color" / "test_1.png").unlink()
    out = tmp_path / "out"
    assert _import(data, out) == 2
    err = capsys.readouterr().err
    assert "food-color_test.json[1]" in err and "images/food-color/test_1.png" in err
    assert "--images" in err and err.count("\n") == 1
    (data / "images" / "food-color" / "test_1.png").write_bytes(b"not a png")
    assert _import(data, out) == 2
    err = capsys.readouterr().err
    assert "test_1.png" in err and "re-download images.zip" in err and err.count("\n") == 1
    assert not out.exists()
