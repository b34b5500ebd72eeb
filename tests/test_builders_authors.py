"""`vlm-tv-build import-authors`: the paper authors' files (tiny fixtures in their layout) become
our Hub layout, which the harness's image loader reads item for item; bad input is one line."""

from __future__ import annotations

import json
import struct
import unicodedata
import zlib
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark import load_task, validate
from builders import cli
from builders.authors import KIND
from builders.authors_items import item_id
from builders.cross_modal import json_row
from builders.images import CorruptImageError, ImageTooLargeError, open_verified
from builders.output import read_marker
from harness.adapters.vlm import resize_to_width
from harness.arguments import parse_run_config
from harness.items import load_task_data
from harness.loaders import from_build
from harness.prepare import load_run_data

# (input, output) per task and split, in the authors' order; France is also in our pool.
ITEMS = {
    "country-capital": {
        "val": [("France", "Paris"), ("Peru", "Lima"), ("Côte d'Ivoire", "Yamoussoukro")],
        "test": [("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Chile", "Santiago"), ("Ghana", "x")],
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
                colour = (i * 40, 90 if mode == "val" else 150, 200)  # no two items alike
                Image.new("RGB", (448 if wide else 100, 300), colour).save(folder / name)
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
            # Stored as the authors' files are (448 px wide); the adapter sizes them at run time.
            assert all(r["image"].size == (448, 300) for r in loaded.splits[split])
            assert all(resize_to_width(r["image"]).width == 224 for r in loaded.splits[split])

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


def test_images_folder_may_be_data_or_data_images_and_images_keep_their_size(tmp_path, hf_cache):
    data = _authors_data(tmp_path, wide=False)
    out = tmp_path / "out"
    assert _import(data, out, images=data / "images") == 0
    import datasets

    row = datasets.load_dataset(str(out), "food_color")["test"][0]
    assert (row["id"], row["output"], row["image"].size) == ("lime", "green", (100, 300))
    readme = (out / "README.md").read_text("utf-8")
    assert "original bytes" in readme and "sized by `builders.images`" not in readme


def _authors_open_image(path: Path) -> Image.Image:
    """The authors' `open_image` (src/xpatch_dataset.py): RGB, then 224 px wide."""
    image = Image.open(path).convert("RGB")
    width, height = image.size
    return image.resize((224, int((224 / width) * height)))


def _photo() -> Image.Image:
    """A noisy gradient: JPEG re-encoding at any quality moves most of its pixels."""
    y, x = np.mgrid[0:200, 0:300]
    pixels = np.stack([x * 255 // 299, y * 255 // 199, (x + y) % 256], -1)
    noise = np.random.default_rng(0).integers(-20, 21, pixels.shape)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))


def _flag() -> Image.Image:
    """An RGBA PNG whose top-left corner is fully transparent black, as rendered flags are."""
    pixels = np.zeros((150, 224, 4), np.uint8)
    pixels[...] = (200, 30, 60, 255)
    pixels[:50, :70] = 0
    return Image.fromarray(pixels, "RGBA")


def _import_one_image(tmp_path: Path, name: str, image: Image.Image) -> tuple[Path, Path]:
    """The authors' data with country-capital's first val item pointing at `name`; imported."""
    data = _authors_data(tmp_path)
    original = data / "images" / "country-capital" / name
    image.save(original, quality=90) if name.endswith(".jpg") else image.save(original)
    ann = data / "annotations" / "country-capital_val.json"
    items = json.loads(ann.read_text("utf-8"))
    items[0]["image"] = f"images/country-capital/{name}"
    ann.write_text(json.dumps(items), "utf-8")
    out = tmp_path / "out"
    assert _import(data, out) == 0
    return original, out


def _stored(out: Path) -> dict:
    """country_capital validation row 0's image as stored: {"bytes", "path"}, undecoded."""
    import datasets

    split = datasets.load_dataset(str(out), "country_capital")["validation"]
    return split.cast_column("image", datasets.Image(decode=False))[0]["image"]


def _harness_image(out: Path) -> Image.Image:
    """The image `vlm-tv-eval --data OUT` decodes for country_capital's `france` row."""
    loaded = from_build(load_task_data("country_capital"), str(out))
    return next(r["image"] for r in loaded.splits["validation"] if r["id"] == "france")


def test_a_jpeg_is_stored_byte_for_byte_and_the_model_sees_the_authors_pixels(tmp_path, hf_cache):
    original, out = _import_one_image(tmp_path, "photo.jpg", _photo())
    decoded = _harness_image(out)
    # What the model is fed (the adapter's resize of the decoded build image) is what the
    # authors' loader makes of their file, pixel for pixel.
    theirs = np.asarray(_authors_open_image(original))
    assert np.array_equal(np.asarray(resize_to_width(decoded)), theirs)
    assert np.array_equal(
        np.asarray(decoded.convert("RGB")), np.asarray(Image.open(original).convert("RGB"))
    )
    stored = _stored(out)
    assert stored["bytes"] == original.read_bytes()  # no re-encoding
    assert stored["path"] == "france.jpg"


def test_a_transparent_png_is_converted_as_the_authors_convert_it_not_put_on_white(
    tmp_path, hf_cache
):
    original, out = _import_one_image(tmp_path, "flag.png", _flag())
    decoded = _harness_image(out)
    ours = np.asarray(resize_to_width(decoded))
    assert tuple(ours[0, 0]) == (0, 0, 0)  # the transparent corner: black for them, not white
    theirs = np.asarray(Image.open(original).convert("RGB"))  # already 224 px wide
    assert np.array_equal(ours, theirs)
    assert np.array_equal(ours, np.asarray(_authors_open_image(original)))
    assert decoded.mode == "RGBA"  # the alpha channel reaches the adapter untouched
    stored = _stored(out)
    assert stored["bytes"] == original.read_bytes()
    assert stored["path"] == "france.png"


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
    return [(base + argv, words) for argv, words in cases + _refused_cases(tmp_path, data)]


def _variant(tmp_path: Path, data: Path, name: str, edit=None, extra=None) -> list[str]:
    """--annotations for a copy of the authors' files: `edit(mode, items)` changes
    country-capital's items; `extra` maps more file names to copies of existing ones."""
    folder = tmp_path / name
    folder.mkdir()
    for f in (data / "annotations").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    for mode in ("val", "test"):
        path = folder / f"country-capital_{mode}.json"
        items = json.loads(path.read_text("utf-8"))
        if edit:
            edit(mode, items)
        path.write_text(json.dumps(items, ensure_ascii=False), "utf-8")
    for new, old in (extra or {}).items():
        (folder / new).write_bytes((folder / old).read_bytes())
    return ["--annotations", str(folder)]


def _new_image(data: Path, name: str, colour: tuple[int, int, int]) -> str:
    Image.new("RGB", (64, 48), colour).save(data / "images" / "country-capital" / name)
    return f"images/country-capital/{name}"


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG of a few bytes whose header declares width x height pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def _refused_cases(tmp_path: Path, data: Path) -> list[tuple[list[str], list[str]]]:
    """Inputs that would silently change the item set: two spellings of one task file, an
    item repeated within a file (Unicode form and case aside), validation left without items
    once test items are taken out, and a decompression bomb."""
    cases = []
    twice = _variant(
        tmp_path, data, "twice", extra={"country_capital_val.json": "country-capital_val.json"}
    )
    words = ["country-capital_val.json and", "country_capital_val.json", "two spellings"]
    cases.append((twice, [*words, "remove one"]))
    upper = _variant(
        tmp_path, data, "upper", extra={"food-color_test.JSON": "food-color_test.json"}
    )
    cases.append((upper, ["food-color_test.JSON and", "food-color_test.json", "remove one"]))

    spare = _new_image(data, "spare.png", (1, 2, 3))

    def nfd_repeat(mode, items):
        if mode == "val":  # "Côte d'Ivoire" again, decomposed (NFD) and upper case
            items.append({"input": _nfd("CÔTE D'IVOIRE "), "output": "x", "image": spare})

    cases.append(
        (
            _variant(tmp_path, data, "nfd", nfd_repeat),
            ["country-capital_val.json[3]", "repeats [2]", "remove one"],
        )
    )

    def same_picture(mode, items):
        if mode == "val":
            items.append({"input": "Spain", "output": "Madrid", "image": items[0]["image"]})

    cases.append(
        (
            _variant(tmp_path, data, "picture", same_picture),
            ["country-capital_val.json[3]", "same picture as [0]", "remove one"],
        )
    )

    extra = [_new_image(data, f"extra{i}.png", (9, 9, i)) for i in range(2)]

    def mostly_test(mode, items):
        if mode == "test":  # two of the three validation items: one left, too few
            items.append({"input": "france", "output": "Paris", "image": extra[0]})
            items.append({"input": _nfd("Côte d'Ivoire"), "output": "Y", "image": extra[1]})

    words = ["country-capital_val.json:", "2 of its 3", "country-capital_test.json", "leaving 1"]
    cases.append((_variant(tmp_path, data, "overlap", mostly_test), words))

    bomb = data / "images" / "country-capital" / "bomb.png"
    bomb.write_bytes(_png_declaring(30000, 30000))

    def bomb_image(mode, items):
        if mode == "test":
            items[1]["image"] = "images/country-capital/bomb.png"

    words = ["bomb.png", "900,000,000 pixels", f"limit of {Image.MAX_IMAGE_PIXELS:,} pixels"]
    cases.append((_variant(tmp_path, data, "bomb", bomb_image), words))
    return cases


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


def test_validation_items_the_test_split_holds_are_dropped_and_said(tmp_path, hf_cache, capsys):
    data = _authors_data(tmp_path)
    lima = _new_image(data, "lima.png", (5, 5, 5))

    def overlap(mode, items):
        if mode == "val":  # its image is test item 0's (Japan's) file content
            items.append({"input": "Spain", "output": "Madrid", "image": "x/test_0.png"})
            (data / "x").mkdir()
            (data / "x" / "test_0.png").write_bytes(
                (data / "images" / "country-capital" / "test_0.png").read_bytes()
            )
        else:  # val's "Peru", in another case and Unicode-equal spacing
            items.append({"input": " PERU", "output": "Lima", "image": lima})

    argv = ["import-authors", *_variant(tmp_path, data, "ann", overlap), "--images", str(data)]
    out = tmp_path / "out"
    assert cli.main([*argv, "--out", str(out), "--tasks", TASKS]) == 0
    captured = capsys.readouterr()
    (warning,) = captured.err.splitlines()
    assert warning.startswith("warning: country_capital: 2 item(s) of ") and "'Peru'" in warning
    assert "country-capital_val.json" in warning and "country-capital_test.json" in warning
    assert "country_capital: validation 2, test 5" in captured.out
    import datasets

    built = datasets.load_dataset(str(out), "country_capital")
    assert [r["id"] for r in built["validation"]] == ["france", "cote_divoire"]
    assert [r["id"] for r in built["test"]][-1] == "peru"  # the test item keeps its pool id
    readme = (out / "README.md").read_text("utf-8")
    assert (
        "Dropped from `validation`" in readme and "`country_capital`: 2 ('Peru', 'Spain')" in readme
    )
    assert "food_color: validation 2, test 3" in captured.out  # untouched


def test_a_decompression_bomb_is_refused_from_its_header_in_one_place(monkeypatch):
    with pytest.raises(ImageTooLargeError, match="900,000,000 pixels declared"):
        open_verified(_png_declaring(30000, 30000))  # over twice the limit: PIL raises
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)
    buffer = BytesIO()
    Image.new("RGB", (100, 80), (1, 2, 3)).save(buffer, format="PNG")
    # 8,000 pixels: over the limit but under twice it, where PIL only warns and decodes
    with pytest.raises(ImageTooLargeError, match="limit of 5,000 pixels"):
        open_verified(buffer.getvalue())
    assert issubclass(ImageTooLargeError, CorruptImageError)  # every caller already refuses it
