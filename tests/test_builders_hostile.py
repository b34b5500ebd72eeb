"""What a hostile user found in `vlm-tv-build`, one test per defect; each failed before its fix.

A damaged build marker, absurdly nested JSON, an hf:// input with no network, an --out that
cannot be written, an impossible --min-votes, and folders or FIFOs given as input files each
end in one line naming the problem and its fix (exit 2 for bad input, 1 for the network),
never in a traceback, a hang, or a message naming a hidden temporary folder.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from builders import cli, layout
from builders.cli_args import build_parser
from builders.output import MARKER
from builders.wiki import BadApiResponse, ImageProblem, WikiImages, api_json

FOOD = "What kind of food is this?"
DEEP = "[" * 100_000  # deeper than Python's recursion limit: json.loads raised RecursionError
BUILDERS = Path(__file__).resolve().parents[1] / "builders"


def run(argv: list, capsys) -> tuple[int, str]:
    """cli.main's exit code (argparse's SystemExit included) and its stderr."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    """The one `vlm-tv-build ...` line of stderr, checked to be the only one, no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("vlm-tv-build")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail a test that blocks (reading a FIFO waits forever) instead of hanging the run."""

    def _alarm(signum, frame):
        raise TimeoutError("the build blocked reading its input")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def vqa_inputs(tmp_path) -> dict[str, Path]:
    """Small well-formed VQA inputs: one question with ten agreeing answers, one COCO image."""
    paths = {name: tmp_path / f"{name}.json" for name in ("questions", "annotations", "captions")}
    answers = [{"answer": "pizza", "answer_id": i} for i in range(1, 11)]
    questions = {"questions": [{"question_id": 1000, "image_id": 1, "question": FOOD}]}
    annotations = {"annotations": [{"question_id": 1000, "image_id": 1, "answers": answers}]}
    paths["questions"].write_text(json.dumps(questions))
    paths["annotations"].write_text(json.dumps(annotations))
    caption = [{"from": "gpt", "value": "A pizza on a plate."}]
    paths["captions"].write_text(json.dumps([{"id": "000000000001", "conversations": caption}]))
    paths["coco"] = tmp_path / "coco"
    paths["coco"].mkdir()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(paths["coco"] / "COCO_val2014_000000000001.jpg")
    return paths


def vqa_argv(paths: dict[str, Path], out: Path, *extra: str) -> list:
    return ["vqa", "--out", out, "--questions", paths["questions"],
            "--annotations", paths["annotations"], "--captions", paths["captions"],
            "--coco-dir", paths["coco"], "--n-validation", "1", "--n-test", "1",
            "--question", "vqa_food_class=" + FOOD, *extra]  # fmt: skip


def text_only(out: Path, *extra: str) -> list:
    return ["text-only", "--out", out, "--tasks", "food_color", *extra]


# --- a: a damaged build marker, and deeply nested JSON inputs ------------------------------------


@pytest.mark.parametrize(
    "marker,why",
    [
        (DEEP, "nested too deeply"),
        ('{"kind": "text-only", "files": 5}', "'files' is not a list"),
        ('{"kind": 5, "files": []}', "'kind' is not a build kind"),
        ('{"kind": "text-only", "files": [1]}', "'files' is not a list"),
        ('{"kind": "text-only", "kind": "vqa", "files": []}', "duplicate key 'kind'"),
        ("[]", "not a JSON object"),
        (None, "not a regular file"),  # a folder where the marker belongs
    ],
)
def test_a_damaged_marker_is_refused_with_its_fix(tmp_path, capsys, marker, why):
    out = tmp_path / "built"
    assert run(text_only(out), capsys)[0] == 0
    (out / MARKER).unlink()
    if marker is None:
        (out / MARKER).mkdir()
    else:
        (out / MARKER).write_text(marker)
    before = sorted(p.name for p in out.rglob("*"))
    code, err = run(text_only(out), capsys)
    line = one_line(err)
    assert code == 2 and f"marker {MARKER} in {out} is damaged" in line and why in line
    assert "--overwrite" in line and "delete the folder" in line
    assert sorted(p.name for p in out.rglob("*")) == before  # nothing touched
    assert run(text_only(out, "--overwrite"), capsys)[0] == 0  # the fix it names works


@pytest.mark.parametrize("which", ["questions", "annotations", "captions"])
def test_deeply_nested_vqa_input_is_one_line(vqa_inputs, tmp_path, capsys, which):
    vqa_inputs[which].write_text(DEEP)
    code, err = run(vqa_argv(vqa_inputs, tmp_path / "out"), capsys)
    line = one_line(err)
    assert code == 2 and str(vqa_inputs[which]) in line and "nested too deeply" in line


def test_deeply_nested_jsonl_line_and_duplicate_keys_are_refused(vqa_inputs, tmp_path, capsys):
    jsonl = tmp_path / "captions.jsonl"
    jsonl.write_text('{"id": "000000000001", "caption": "A pizza."}\n' + DEEP + "\n")
    vqa_inputs["captions"] = jsonl
    code, err = run(vqa_argv(vqa_inputs, tmp_path / "out"), capsys)
    assert code == 2 and f"{jsonl} line 2" in one_line(err)
    vqa_inputs["questions"].write_text('{"questions": [], "questions": []}')
    code, err = run(vqa_argv(vqa_inputs, tmp_path / "out"), capsys)
    assert code == 2 and "duplicate key 'questions'" in one_line(err)


def authors_data(root: Path) -> Path:
    """The paper authors' layout for one task: annotations/food-color_{val,test}.json, images/."""
    (root / "annotations").mkdir(parents=True)
    (root / "images").mkdir()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(root / "images" / "lime.png")
    item = [{"input": "Lime", "output": "green", "image": "images/lime.png"}]
    for mode in ("val", "test"):
        (root / "annotations" / f"food-color_{mode}.json").write_text(json.dumps(item))
    return root


def authors_argv(data: Path, out: Path) -> list:
    return ["import-authors", "--annotations", data / "annotations", "--images", data,
            "--out", out, "--tasks", "food_color"]  # fmt: skip


def test_deeply_nested_authors_file_is_one_line(tmp_path, capsys):
    data = authors_data(tmp_path / "data")
    broken = data / "annotations" / "food-color_test.json"
    broken.write_text(DEEP)
    code, err = run(authors_argv(data, tmp_path / "out"), capsys)
    line = one_line(err)
    assert code == 2 and str(broken) in line and "nested too deeply" in line
    assert "re-download it" in line


class DeepApi:
    """A client whose every answer is absurdly nested JSON (a broken --api-url mirror)."""

    requests_made = cache_hits = 0

    def get(self, url, params=None, *, validate=None):
        data = DEEP.encode()
        if validate is not None:
            validate(data)
        return data


def test_a_deeply_nested_api_answer_is_a_per_item_problem():
    with pytest.raises(BadApiResponse, match="not JSON"):
        api_json(DEEP.encode())
    result = WikiImages(DeepApi()).fetch_many(["Wolf", "Lime"])
    assert set(result) == {"Wolf", "Lime"}
    assert all(isinstance(r, ImageProblem) and "nested" in str(r) for r in result.values())


# --- b: an hf:// input without network ---------------------------------------------------------


def test_unreachable_hub_input_is_one_line_naming_the_url(
    vqa_inputs, tmp_path, capsys, monkeypatch
):
    import huggingface_hub.constants
    from huggingface_hub import HfFileSystem

    # Port 9 (discard) on this machine refuses at once: the Hub with no network, offline.
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    HfFileSystem.clear_instance_cache()
    url = "hf://datasets/org/vqa/v2_OpenEnded_mscoco_val2014_questions.json"
    vqa_inputs["questions"] = url
    try:
        code, err = run(vqa_argv(vqa_inputs, tmp_path / "out"), capsys)
    finally:
        HfFileSystem.clear_instance_cache()
    line = one_line(err)
    assert code == 1 and f"cannot reach {url}: " in line
    assert line.endswith("; download the file and pass a local path")
    assert not (tmp_path / "out").exists()


# --- c: an --out that cannot be written ----------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_unwritable_out_names_the_path_given_not_the_hidden_folder(capsys):
    code, err = run(text_only(Path("/proc/vlm-tv-build-test")), capsys)
    line = one_line(err)
    assert code == 2 and "--out /proc/vlm-tv-build-test cannot be written" in line
    assert ".build" not in line and "give a folder you can write to" in line


def test_a_write_error_during_the_build_names_out(tmp_path, capsys, monkeypatch):
    def full_disk(path, rows, features):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(layout, "write_parquet", full_disk)
    out = tmp_path / "ds"
    code, err = run(text_only(out), capsys)
    line = one_line(err)
    assert code == 1 and f"cannot write {out}/food_color/" in line
    assert "No space left on device" in line and ".build" not in line


# --- d: --min-votes beyond the ten VQAv2 answers -------------------------------------------------


@pytest.mark.parametrize("command", ["vqa", "overriding"])
def test_min_votes_is_1_to_10(tmp_path, capsys, command):
    argv = [command, "--out", tmp_path / "o", "--questions", "q", "--annotations", "a"]
    argv += ["--coco-dir", tmp_path] + (["--captions", "c"] if command == "vqa" else [])
    code, err = run([*argv, "--min-votes", "11"], capsys)
    assert code == 2 and "--min-votes: must be from 1 to 10" in err and "Traceback" not in err
    assert build_parser().parse_args([str(a) for a in argv] + ["--min-votes", "10"]).min_votes == 10


# --- e: folders and FIFOs given as input files ---------------------------------------------------


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("which", ["questions", "annotations", "captions"])
def test_a_fifo_input_is_refused_not_read(vqa_inputs, tmp_path, capsys, no_hang, which):
    vqa_inputs[which] = fifo(tmp_path / f"{which}.fifo")
    code, err = run(vqa_argv(vqa_inputs, tmp_path / "out"), capsys)
    line = one_line(err)
    assert code == 2 and f"{vqa_inputs[which]} is a FIFO, not a regular file" in line


def test_a_broken_link_input_says_so(vqa_inputs, tmp_path, capsys):
    link = tmp_path / "questions-link.json"
    link.symlink_to(tmp_path / "gone.json")
    vqa_inputs["questions"] = link
    code, err = run(vqa_argv(vqa_inputs, tmp_path / "out"), capsys)
    assert code == 2 and f"{link} is a link to a file that does not exist" in one_line(err)


def test_a_fifo_coco_image_is_refused_not_read(vqa_inputs, tmp_path, capsys, no_hang):
    for image in vqa_inputs["coco"].iterdir():
        image.unlink()
    fifo(vqa_inputs["coco"] / "COCO_val2014_000000000001.jpg")
    code, err = run(vqa_argv(vqa_inputs, tmp_path / "out"), capsys)
    assert code == 2 and "not a regular file" in one_line(err)


def test_a_fifo_coco_dir_is_not_called_a_file(tmp_path, capsys, vqa_inputs):
    vqa_inputs["coco"] = fifo(tmp_path / "coco.fifo")
    code, err = run(vqa_argv(vqa_inputs, tmp_path / "out"), capsys)
    assert code == 2 and f"{vqa_inputs['coco']} is not a folder" in err and "a file" not in err


def test_authors_folder_and_fifo_are_named_as_such(tmp_path, capsys, no_hang):
    data = authors_data(tmp_path / "data")
    (data / "images" / "lime.png").unlink()
    (data / "images" / "lime.png").mkdir()  # the image path is a folder: not "not found"
    code, err = run(authors_argv(data, tmp_path / "out"), capsys)
    line = one_line(err)
    assert code == 2 and f"{data / 'images' / 'lime.png'} is a folder" in line
    assert "not found" not in line
    annotation = data / "annotations" / "food-color_val.json"
    annotation.unlink()
    fifo(annotation)
    code, err = run(authors_argv(data, tmp_path / "out"), capsys)
    assert code == 2 and f"{annotation} is a FIFO, not a regular file" in one_line(err)


# --- the rule the splits keep: small modules -----------------------------------------------------


def test_no_builder_module_is_over_350_lines():
    long = {
        p.name: n for p in BUILDERS.glob("*.py") if (n := len(p.read_text().splitlines())) > 350
    }
    assert not long, f"split these by job: {long}"
