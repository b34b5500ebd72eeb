"""Cross-modal datasets without network: the text-only build of the real pools, datasets written
from rows in memory (the harness's tiny image datasets), the card, and the Hub upload."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from huggingface_hub import DatasetCard
from PIL import Image

from benchmark import CROSS_MODAL_TASKS, load_task, validate
from builders import cli
from builders.card import IMAGE_TASK_CATEGORIES, TEXT_TASK_CATEGORIES, front_matter, size_category
from builders.cross_modal import image_value, json_row, write_dataset
from builders.layout import data_file


def _load(folder: Path, config: str, tmp_path: Path):
    import datasets

    return datasets.load_dataset(str(folder), config, cache_dir=str(tmp_path / "hf-cache"))


def _front_matter(folder: Path) -> dict:
    text = (folder / "README.md").read_text("utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


@pytest.fixture(scope="module")
def text_only(tmp_path_factory):
    out = tmp_path_factory.mktemp("text-only") / "ds"
    assert cli.main(["text-only", "--out", str(out)]) == 0
    return out


def test_text_only_builds_the_six_configs_from_the_pools(text_only, tmp_path):
    for task in CROSS_MODAL_TASKS:
        ds = _load(text_only, task, tmp_path)
        assert {s: ds[s].num_rows for s in ds} == {"validation": 30, "test": 100}
        for split in ("validation", "test"):
            rows = list(ds[split])
            expected = load_task(task, split)
            assert [r["id"] for r in rows] == [r["id"] for r in expected]  # pool order
            for row, record in zip(rows, expected, strict=True):
                assert row == dict(record, image=None, attribution=None)
                assert validate(row, "row_cross_modal") == []


def test_card_yaml_lists_every_config_and_its_files(text_only):
    meta = _front_matter(text_only)
    assert [c["config_name"] for c in meta["configs"]] == list(CROSS_MODAL_TASKS)
    for config in meta["configs"]:
        files = config["data_files"]
        assert [f["split"] for f in files] == ["validation", "test"]
        for f in files:
            assert f["path"] == data_file(config["config_name"], f["split"])
            assert (text_only / f["path"]).is_file()
    assert meta["license"] == "apache-2.0"
    readme = (text_only / "README.md").read_text("utf-8")
    assert "arXiv:2410.22330" in readme and "Text-only build" in readme


def test_text_only_card_is_text_tasks_with_a_default_config_and_its_size(text_only, tmp_path):
    meta = _front_matter(text_only)
    # No image in any row: text question answering / generation, not visual QA.
    assert meta["task_categories"] == list(TEXT_TASK_CATEGORIES)
    assert "visual-question-answering" not in meta["task_categories"]
    assert [c["config_name"] for c in meta["configs"] if c.get("default")] == [CROSS_MODAL_TASKS[0]]
    rows = sum(len(load_task(t, s)) for t in CROSS_MODAL_TASKS for s in ("validation", "test"))
    assert rows == 6 * 130 and meta["size_categories"] == [size_category(rows)] == ["n<1K"]
    # Without a config name, `load_dataset` opens the default one.
    import datasets

    ds = datasets.load_dataset(str(text_only), cache_dir=str(tmp_path / "hf-cache"))
    assert ds["test"][0]["task"] == CROSS_MODAL_TASKS[0]


def test_card_round_trips_through_huggingface_hub(text_only):
    card = DatasetCard.load(text_only / "README.md")
    assert card.data.to_dict() == _front_matter(text_only)
    assert card.data.license == "apache-2.0" and card.data.size_categories == ["n<1K"]
    configs = card.data["configs"]
    assert [c["config_name"] for c in configs] == list(CROSS_MODAL_TASKS)
    assert configs[0]["default"] is True and all("default" not in c for c in configs[1:])
    for config in configs:
        name = config["config_name"]
        assert config["data_files"] == [
            {"split": s, "path": data_file(name, s)} for s in ("validation", "test")
        ]
    assert card.text.startswith("\n# vlm-tv-eval: cross-modal tasks (text only)\n")
    assert str(card) == (text_only / "README.md").read_text("utf-8")


@pytest.mark.parametrize(
    ("rows", "bucket"),
    [
        (0, "n<1K"),
        (999, "n<1K"),
        (1_000, "1K<n<10K"),
        (9_999, "1K<n<10K"),
        (10_000, "10K<n<100K"),
        (99_999, "10K<n<100K"),
        (100_000, "100K<n<1M"),
        (1_000_000, "1M<n<10M"),
        (10**8, "100M<n<1B"),
        (10**12 - 1, "100B<n<1T"),
        (10**12, "n>1T"),
    ],
)
def test_size_category_uses_the_hubs_buckets(rows, bucket):
    assert size_category(rows) == bucket


def test_size_category_refuses_a_negative_count():
    with pytest.raises(ValueError):
        size_category(-1)


def test_front_matter_counts_every_config_and_split_and_marks_the_first_default():
    counts = {"a": {"validation": 400, "test": 500}, "b": {"test": 100}}
    meta = front_matter(
        {"a": ["validation", "test"], "b": ["test"]}, pretty_name="P", counts=counts
    )
    assert meta.size_categories == ["1K<n<10K"]  # 1000 rows in all
    assert [c.get("default", False) for c in meta["configs"]] == [True, False]
    assert "size_categories" not in front_matter({"a": ["test"]}, pretty_name="P").to_dict()


def _pil(colour, size=(40, 30)) -> Image.Image:
    return Image.new("RGB", size, colour)


def test_write_dataset_from_pil_images(tmp_path):
    import datasets

    rows = {
        "country_capital": [
            {
                "id": "france",
                "split": "validation",
                "input": "France",
                "output": "Paris",
                "image": _pil((0, 0, 255)),
            },
            {
                "id": "italy",
                "split": "test",
                "input": "Italy",
                "output": "Rome",
                "image": _pil((0, 255, 0), (20, 10)),
                "attribution": {"source_url": "https://example.org/it.png", "license": "PD"},
            },
            {"id": "japan", "split": "test", "input": "Japan", "output": "Tokyo", "image": None},
        ]
    }
    out = write_dataset(tmp_path / "tiny", rows)
    ds = _load(out, "country_capital", tmp_path)
    assert ds["validation"]["id"] == ["france"] and ds["test"]["id"] == ["italy", "japan"]
    italy = ds["test"][0]
    assert italy["image"].size == (20, 10) and italy["image"].getpixel((0, 0)) == (0, 255, 0)
    assert italy["task"] == "country_capital" and italy["wikipedia_title"] == ""
    assert italy["attribution"] == {
        "source_url": "https://example.org/it.png",
        "file_page": None,
        "author": None,
        "license": "PD",
        "license_url": None,
    }
    assert ds["test"][1]["image"] is None
    raw = ds.cast_column("image", datasets.Image(decode=False))
    assert raw["validation"][0]["image"]["path"] == "france.png"
    meta = _front_matter(out)
    assert meta["configs"][0]["config_name"] == "country_capital"
    assert "Licences of the images" in (out / "README.md").read_text()
    # `license: other` names its terms, as the Hub's card metadata asks.
    assert meta["license"] == "other"
    assert meta["license_name"] == "wikimedia-per-image-licences"
    assert meta["license_link"] == "https://commons.wikimedia.org/wiki/Commons:Licensing"
    # Images: the image categories stay; three rows; the one config is the default.
    assert meta["task_categories"] == list(IMAGE_TASK_CATEGORIES)
    assert meta["size_categories"] == ["n<1K"] and meta["configs"][0]["default"] is True


def test_front_matter_names_other_licences():
    def meta(**kwargs) -> dict:
        return front_matter({"c": ["test"]}, pretty_name="P", **kwargs).to_dict()

    named = meta(license_name="coco-vqa-terms", license_link="https://cocodataset.org/#termsofuse")
    assert (named["license"], named["license_name"]) == ("other", "coco-vqa-terms")
    assert named["license_link"] == "https://cocodataset.org/#termsofuse"
    assert meta()["license_name"] == "see-dataset-card" and "license_link" not in meta()
    free = meta(license="apache-2.0", license_name="ignored")
    assert free["license"] == "apache-2.0" and "license_name" not in free


def test_write_dataset_refuses_bad_rows(tmp_path):
    with pytest.raises(ValueError, match="unknown column"):
        write_dataset(
            tmp_path / "a",
            {
                "food_color": [
                    {"id": "x", "split": "test", "input": "X", "output": "red", "colour": "red"}
                ]
            },
        )
    with pytest.raises(ValueError, match="row_cross_modal"):
        write_dataset(
            tmp_path / "b",
            {"food_color": [{"id": "Not A Slug", "split": "test", "input": "X", "output": "red"}]},
        )
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['split'\]"):
        write_dataset(tmp_path / "c", {"food_color": [{"id": "x", "input": "X", "output": "r"}]})
    assert not any((tmp_path / d).exists() for d in "abc")


def test_image_values_accept_bytes_paths_and_dicts(tmp_path):
    buffer = io.BytesIO()
    _pil((1, 2, 3)).save(buffer, format="PNG")
    data = buffer.getvalue()
    path = tmp_path / "x.png"
    path.write_bytes(data)
    assert image_value(data, "a.png") == {"bytes": data, "path": "a.png"}
    assert image_value(path) == {"bytes": data, "path": "x.png"}
    assert image_value({"path": str(path)}) == {"bytes": data, "path": "x.png"}  # no local dirs
    assert image_value(None) is None
    assert json_row({"image": {"bytes": data, "path": "a.png"}})["image"]["path"] == "a.png"
    with pytest.raises(TypeError):
        image_value(3.5)


class FakeHfApi:
    calls: list = []

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        FakeHfApi.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        FakeHfApi.calls.append(("upload_folder", kwargs["repo_id"], kwargs))

        class Info:
            oid = "0123456789abcdef0123456789abcdef01234567"
            commit_url = "https://huggingface.co/datasets/org/name/commit/0123"

        return Info()


def test_push_to_hub_uploads_the_folder_and_prints_the_revision(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    FakeHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    out = tmp_path / "ds"
    argv = ["text-only", "--out", str(out), "--tasks", "food_color", "--push-to-hub", "org/name"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "revision: 0123456789abcdef0123456789abcdef01234567" in printed
    assert "https://huggingface.co/datasets/org/name" in printed
    (create, repo, create_kwargs), (upload, repo2, upload_kwargs) = FakeHfApi.calls
    assert (create, repo, repo2) == ("create_repo", "org/name", "org/name")
    assert create_kwargs["repo_type"] == "dataset" and create_kwargs["exist_ok"] is True
    assert upload == "upload_folder" and upload_kwargs["repo_type"] == "dataset"
    assert upload_kwargs["folder_path"] == str(out)
    assert [c["config_name"] for c in _front_matter(out)["configs"]] == ["food_color"]


def test_cli_rejects_unknown_tasks(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["text-only", "--out", str(tmp_path), "--tasks", "food_colour"])
    assert info.value.code == 2
    assert "unknown cross-modal task(s) food_colour" in capsys.readouterr().err
