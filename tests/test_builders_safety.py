"""Builds never destroy, and bad builder inputs end in one clear line (exit 2), never a traceback.

One test per rule: --out a foreign non-empty folder or a file is refused; --overwrite replaces
the folder cleanly and a same-kind rebuild leaves no stale config; an interrupted build leaves
the old folder as it was; counts are checked by argparse; malformed inputs name the file and
what is wrong; the write shows progress. Then a catalogue of bad invocations, each exit 2.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from builders import cli, layout
from builders.output import MARKER, OutputFolderError, check_out_dir, read_marker

ROOT = Path(__file__).resolve().parents[1]
FOOD = "What kind of food is this?"


def run(argv: list[str], capsys) -> tuple[int, str]:
    """cli.main's exit code (argparse's SystemExit included) and its stderr."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def hidden_siblings(folder: Path) -> list[str]:
    return [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]


def text_only(out: Path, *tasks: str, extra: tuple[str, ...] = ()) -> list[str]:
    return ["text-only", "--out", str(out), "--tasks", ",".join(tasks or ("food_color",)), *extra]


def foreign_folder(root: Path) -> Path:
    folder = root / "mine"
    (folder / "country_capital").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "country_capital" / "test-00000-of-00001.parquet").write_bytes(b"stale")
    return folder


# --- rule 1: a non-empty folder that is not an earlier build of the same kind is refused ------


def test_foreign_folder_is_refused_and_left_untouched(tmp_path, capsys):
    folder = foreign_folder(tmp_path)
    before = snapshot(folder)
    code, err = run(text_only(folder), capsys)
    assert code == 2
    assert str(folder) in err and "is not empty" in err and "--overwrite" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert snapshot(folder) == before and hidden_siblings(folder) == []


def test_build_of_another_kind_or_with_extra_files_is_refused(tmp_path, capsys):
    out = tmp_path / "ds"
    assert run(text_only(out), capsys)[0] == 0
    marker = read_marker(out)
    assert marker and marker["kind"] == "text-only" and "README.md" in marker["files"]
    assert (out / MARKER).is_file()
    # A build of another kind: the marker says so.
    with pytest.raises(OutputFolderError, match="holds a vlm-tv-build text-only build"):
        check_out_dir(out, "vqa")
    # The same kind, plus a file the build did not write: a rebuild would delete it.
    (out / "my-analysis.ipynb").write_text("{}")
    before = snapshot(out)
    code, err = run(text_only(out), capsys)
    assert code == 2 and "my-analysis.ipynb" in err and "--overwrite" in err
    assert "Traceback" not in err and snapshot(out) == before


# --- rule 2: --overwrite replaces the folder whole; a rebuild leaves no stale config ----------


class FakeHfApi:
    uploaded: list[str] = []

    def __init__(self, token=None):
        pass

    def create_repo(self, repo_id, **kwargs):
        pass

    def upload_folder(self, folder_path, ignore_patterns, **kwargs):
        import fnmatch

        names = [p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*")]
        FakeHfApi.uploaded = sorted(
            n
            for n in names
            if (Path(folder_path) / n).is_file()
            and not any(fnmatch.fnmatch(n, pat) for pat in ignore_patterns)
        )
        return type("Info", (), {"oid": "0" * 40})()


def test_overwrite_replaces_the_folder_and_pushes_no_stale_file(tmp_path, capsys, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    folder = foreign_folder(tmp_path)
    argv = text_only(folder, extra=("--overwrite", "--push-to-hub", "org/name"))
    code, err = run(argv, capsys)
    assert code == 0, err
    files = sorted(snapshot(folder))
    assert files == [MARKER, "README.md", "food_color/test-00000-of-00001.parquet",
                     "food_color/validation-00000-of-00001.parquet"]  # fmt: skip
    assert FakeHfApi.uploaded == [f for f in files if f != MARKER]  # no stale country_capital
    assert hidden_siblings(folder) == []


class RemoteRepo:
    """A Hub dataset repo held in memory, behind huggingface_hub's own deletion logic.

    `upload_folder` lists what to delete with the real `HfApi._prepare_folder_deletions`
    (its pattern matching, its `.gitattributes` rule) over `files`, and skips deleting what
    the upload replaces, as the real method does; then it "commits".
    """

    files: set[str] = set()
    delete_patterns: object = None

    def __init__(self, token=None):
        pass

    def create_repo(self, repo_id, **kwargs):
        pass

    def list_repo_files(self, repo_id, **kwargs):
        return sorted(RemoteRepo.files)

    def upload_folder(self, *, repo_id, folder_path, repo_type, ignore_patterns, **kwargs):
        from huggingface_hub.hf_api import HfApi  # the real one: the tests patch the alias
        from huggingface_hub.utils import filter_repo_objects

        RemoteRepo.delete_patterns = kwargs.get("delete_patterns")
        local = [p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*")]
        added = set(
            filter_repo_objects(
                [n for n in local if (Path(folder_path) / n).is_file()],
                ignore_patterns=ignore_patterns,
            )
        )
        deletions = HfApi._prepare_folder_deletions(
            self,
            repo_id=repo_id,
            repo_type=repo_type,
            revision=None,
            path_in_repo="",
            delete_patterns=kwargs.get("delete_patterns"),
        )
        deleted = {op.path_in_repo for op in deletions} - added
        RemoteRepo.files = (RemoteRepo.files - deleted) | added
        return type("Info", (), {"oid": "1" * 40})()


def test_repush_deletes_hub_files_the_rebuild_dropped(tmp_path, capsys, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", RemoteRepo)
    earlier = {
        f"{config}/{split}-00000-of-00001.parquet"
        for config in ("food_color", "food_flavor")
        for split in ("validation", "test")
    }
    RemoteRepo.files = {".gitattributes", "README.md", "figure.png", *earlier}
    argv = text_only(tmp_path / "ds", "food_color", extra=("--push-to-hub", "org/name"))
    code, err = run(argv, capsys)
    assert code == 0, err
    assert RemoteRepo.files == {
        ".gitattributes",  # never deleted
        "figure.png",  # not a file builds write: someone put it there
        "README.md",
        "food_color/test-00000-of-00001.parquet",
        "food_color/validation-00000-of-00001.parquet",
    }  # food_flavor, which the rebuild no longer makes, is gone from the Hub too
    assert RemoteRepo.delete_patterns == ["*.parquet"]


def test_rebuild_of_the_same_kind_leaves_no_stale_config(tmp_path, capsys):
    out = tmp_path / "ds"
    assert run(text_only(out, "food_color", "food_flavor"), capsys)[0] == 0
    assert (out / "food_flavor").is_dir()
    assert run(text_only(out, "food_color"), capsys)[0] == 0  # no --overwrite needed
    assert not (out / "food_flavor").exists()
    assert "food_flavor" not in (out / "README.md").read_text()
    assert read_marker(out)["files"] == sorted(n for n in snapshot(out) if n != MARKER)


@pytest.mark.parametrize(
    "fault,code", [(KeyboardInterrupt, 130), (OSError(28, "No space left on device"), 1)]
)
def test_interrupted_or_failed_build_leaves_the_old_folder(
    tmp_path, capsys, monkeypatch, fault, code
):
    out = tmp_path / "ds"
    assert run(text_only(out, "food_color", "food_flavor"), capsys)[0] == 0
    before = snapshot(out)
    real_write = layout.write_parquet
    calls = []

    def failing(path, rows, features):
        calls.append(path)
        if len(calls) == 2:
            raise fault
        real_write(path, rows, features)

    monkeypatch.setattr(layout, "write_parquet", failing)
    got, err = run(text_only(out, "country_capital", extra=("--overwrite",)), capsys)
    assert got == code and "Traceback" not in err
    assert snapshot(out) == before and hidden_siblings(out) == []


KILLED_BUILD = """
import os, signal, sys
from builders.output import build_folder
with build_folder(sys.argv[1], "text-only") as tmp:
    (tmp / "half.parquet").write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_build_leaves_nothing_the_next_build_keeps(tmp_path, capsys):
    """SIGKILL runs no cleanup: the next build into the same --out removes the dead build's
    hidden folder, and an old build moved aside but never replaced comes back."""
    out = tmp_path / "ds"
    assert run(text_only(out, "food_color"), capsys)[0] == 0
    before = snapshot(out)
    killed = subprocess.run([sys.executable, "-c", KILLED_BUILD, str(out)], cwd=ROOT)
    assert killed.returncode == -signal.SIGKILL
    assert len(hidden_siblings(out)) == 1 and snapshot(out) == before

    # Killed between moving the old build aside and renaming the new one in.
    out.rename(out.with_name(f".{out.name}.0123456789abcdef.old"))
    assert run(text_only(out, "food_color"), capsys)[0] == 0
    assert hidden_siblings(out) == [] and snapshot(out).keys() == before.keys()


# --- rule 3: --out naming a file ---------------------------------------------------------------


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    path = tmp_path / "dataset.parquet"
    path.write_bytes(b"keep me")
    for argv in (text_only(path), text_only(path, extra=("--overwrite",))):
        code, err = run(argv, capsys)
        assert code == 2 and f"--out {path} is a file" in err and "Traceback" not in err
    code, err = run(text_only(path / "sub"), capsys)
    assert code == 2 and f"{path} is a file" in err
    assert path.read_bytes() == b"keep me"


# --- rule 4: counts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command,flag,value,message",
    [
        ("vqa", "--n-validation", "0", "must be a whole number greater than 0, not 0"),
        ("vqa", "--n-test", "-3", "must be a whole number greater than 0, not -3"),
        ("vqa", "--n-test", "ten", "'ten' is not a whole number"),
        ("vqa", "--min-votes", "0", "must be from 1 to 10"),
        ("overriding", "--n-semantic", "0", "greater than 0"),
        ("overriding", "--n-factual", "-1", "greater than 0"),
        ("overriding", "--min-votes", "-2", "must be from 1 to 10"),
        ("cross-modal", "--max-retries", "-1", "must be 0 or more, not -1"),
        ("cross-modal", "--rate-limit", "0", "greater than 0"),
        ("cross-modal", "--rate-limit", "nan", "greater than 0"),
        ("cross-modal", "--timeout", "-5", "greater than 0"),
    ],
)
def test_counts_must_be_valid(tmp_path, capsys, command, flag, value, message):
    argv = [command, "--out", tmp_path / "o", flag, value]
    if command in ("vqa", "overriding"):
        argv += ["--questions", "q.json", "--annotations", "a.json", "--coco-dir", tmp_path]
    if command == "vqa":
        argv += ["--captions", "c.json"]
    code, err = run(argv, capsys)
    assert code == 2 and f"argument {flag}: " in err and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


# --- rule 5: malformed inputs --------------------------------------------------------------------


@pytest.fixture
def vqa_inputs(tmp_path) -> dict[str, Path]:
    """Small well-formed VQA inputs; each test breaks one of them."""
    paths = {name: tmp_path / f"{name}.json" for name in ("questions", "annotations", "captions")}
    questions = [{"question_id": 1000, "image_id": 1, "question": FOOD}]
    answers = [{"answer": "pizza", "answer_id": i} for i in range(1, 11)]
    annotations = [{"question_id": 1000, "image_id": 1, "answer_type": "other", "answers": answers}]
    paths["questions"].write_text(json.dumps({"questions": questions}))
    paths["annotations"].write_text(json.dumps({"annotations": annotations}))
    caption = [{"from": "gpt", "value": "A pizza on a plate."}]
    paths["captions"].write_text(json.dumps([{"id": "000000000001", "conversations": caption}]))
    paths["aokvqa"] = tmp_path / "aokvqa.json"
    paths["aokvqa"].write_text(
        json.dumps([{"image_id": 1, "question_id": "a1", "question": "What era?"}])
    )
    paths["coco"] = tmp_path / "coco"
    paths["coco"].mkdir()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(paths["coco"] / "COCO_val2014_000000000001.jpg")
    return paths


def vqa_argv(paths: dict[str, Path], out: Path) -> list:
    return ["vqa", "--out", out, "--questions", paths["questions"],
            "--annotations", paths["annotations"], "--captions", paths["captions"],
            "--coco-dir", paths["coco"], "--n-validation", "1", "--n-test", "1"]  # fmt: skip


def overriding_argv(paths: dict[str, Path], out: Path) -> list:
    return ["overriding", "--out", out, "--questions", paths["questions"],
            "--annotations", paths["annotations"], "--coco-dir", paths["coco"],
            "--okvqa-questions", paths["questions"], "--aokvqa", paths["aokvqa"],
            "--settings", "factual"]  # fmt: skip


MALFORMED = [
    # (input broken, its bytes, what the message says)
    ("annotations", b"[]", "object holding the 'annotations' list, found a list"),
    ("annotations", b'{"info": {}}', "no 'annotations' key"),
    ("annotations", b'{"annotations": {}}', "'annotations' is an object, expected a list"),
    ("annotations", b'{"annotations": [{"question_id": 1}]}', "annotations[0] has no 'answers'"),
    ("annotations", b'{"annotations": [{"question_id": 1, "answers": [3]}]}',
     "answers[0] is a number, expected an object"),
    ("questions", b'{"questions": [{"image_id": 1, "question": "Q?"}]}',
     "questions[0] has no 'question_id'"),
    ("questions", b'{"questions": [{"question_id": "x", "image_id": 1, "question": "Q?"}]}',
     "'question_id' is a string 'x', expected an integer"),
    ("questions", b'{"questions": [{"question_id": 1, "image_id": 1, "question": 5}]}',
     "'question' is a number, expected a string"),
    ("questions", b'{"questions": ["What?"]}', "questions[0] is a string, expected an object"),
    ("questions", b'{"questions": [}', "not valid JSON: Expecting value: line 1 column 16"),
    ("questions", '{"questions": "caf\u00e9"}'.encode("latin-1"), "not UTF-8 text"),
    ("questions", b"", "not valid JSON"),
    ("captions", b'{"a": [], "b": []}', "expected a JSON list of records"),
    ("captions", b"[1, 2]", "[0] is a number, expected an object (a record)"),
    ("captions", b'[{"id": 1, "conversations": "no"}]', "none with a dense caption"),
]  # fmt: skip


@pytest.mark.parametrize(
    "which,data,message", MALFORMED, ids=[f"{w}-{i}" for i, (w, _, _) in enumerate(MALFORMED)]
)
def test_malformed_vqa_input_is_one_clear_line(vqa_inputs, tmp_path, capsys, which, data, message):
    vqa_inputs[which].write_bytes(data)
    code, err = run(vqa_argv(vqa_inputs, tmp_path / "out"), capsys)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith(f"vlm-tv-build vqa: {vqa_inputs[which]}")  # names the file
    assert message in err
    assert not (tmp_path / "out").exists() and hidden_siblings(tmp_path / "out") == []


@pytest.mark.parametrize(
    "data,message",
    [
        (b'[{"question_id": "a", "question": "Q?"}]', "record 0 has no 'image_id'"),
        (b'[{"image_id": 1, "question": "Q?"}]', "record 0 has no 'question_id'"),
        (b'[{"image_id": 1, "question_id": "a", "question": "Q?", "choices": "abc"}]',
         "'choices' is not a list of strings"),
        (b'{"image_id": 1}', "expected a JSON list of records, or an object holding one list"),
    ],
)  # fmt: skip
def test_malformed_aokvqa_is_one_clear_line(vqa_inputs, tmp_path, capsys, data, message):
    vqa_inputs["aokvqa"].write_bytes(data)
    code, err = run(overriding_argv(vqa_inputs, tmp_path / "out"), capsys)
    assert code == 2 and message in err and str(vqa_inputs["aokvqa"]) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_corrupt_parquet_and_jsonl_captions_name_the_file(vqa_inputs, tmp_path, capsys):
    parquet = tmp_path / "recap-00000-of-00001.parquet"
    parquet.write_bytes(b"PAR1 but not really")
    jsonl = tmp_path / "recap.jsonl"
    jsonl.write_text('{"id": 1}\n\nnot json\n')
    for path, message in ((parquet, "cannot be read as Parquet"), (jsonl, "line 3: not valid")):
        vqa_inputs["captions"] = path
        code, err = run(vqa_argv(vqa_inputs, tmp_path / "out"), capsys)
        assert code == 2 and f"{path}" in err and message in err and "Traceback" not in err


# --- rule 6: progress ---------------------------------------------------------------------------


def test_text_only_build_shows_progress(tmp_path, capsys, monkeypatch):
    from tqdm import tqdm

    # tqdm hides itself when stderr is not a terminal (disable=None); force it on here.
    monkeypatch.setattr(layout, "tqdm", lambda *a, **k: tqdm(*a, **{**k, "disable": False}))
    code, err = run(text_only(tmp_path / "ds", "food_color", "food_flavor"), capsys)
    assert code == 0 and "writing: 100%" in err and "2/2" in err


# --- the catalogue: every bad invocation exits 2, in one line, without a traceback ------------


def test_catalogue_of_bad_invocations_exits_2(vqa_inputs, tmp_path, capsys):
    foreign = foreign_folder(tmp_path)
    built = tmp_path / "built"
    assert run(text_only(built), capsys)[0] == 0
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    vqa = vqa_argv(vqa_inputs, tmp_path / "v")
    missing = dict(vqa_inputs, questions=tmp_path / "absent.json")
    folder_input = dict(vqa_inputs, annotations=vqa_inputs["coco"])
    cases = {
        "out a foreign folder": text_only(foreign),
        "out a file": text_only(a_file),
        "out inside a file": text_only(a_file / "ds"),
        "out a build of another kind": [*vqa[:2], built, *vqa[3:]],
        "cross-modal into a foreign folder": [
            "cross-modal",
            "--out",
            foreign,
            "--contact",
            "a@b.c",
        ],
        "no task": ["text-only", "--out", tmp_path / "t", "--tasks", ","],
        "unknown task": ["text-only", "--out", tmp_path / "t", "--tasks", "food_colour"],
        "zero count": [*vqa, "--n-test", "0"],
        "negative retries": ["cross-modal", "--out", tmp_path / "c", "--max-retries", "-1"],
        "unknown setting": [*overriding_argv(vqa_inputs, tmp_path / "o")[:-1], "semantc"],
        "coco dir missing": [*vqa, "--coco-dir", tmp_path / "no-coco"],
        "question without text": [*vqa, "--question", "vqa_x="],
        "input file missing": vqa_argv(missing, tmp_path / "v"),
        "input is a folder": vqa_argv(folder_input, tmp_path / "v"),
        "factual without its inputs": overriding_argv(vqa_inputs, tmp_path / "o")[:9],
    }
    before = snapshot(foreign), snapshot(built), a_file.read_text()
    for name, argv in cases.items():
        code, err = run(argv, capsys)
        assert code == 2, f"{name}: exit {code}\n{err}"
        assert "Traceback" not in err, name
        assert len([line for line in err.splitlines() if line.startswith("vlm-tv-build")]) == 1
    for name, data, _ in MALFORMED:
        good = vqa_inputs[name].read_bytes()
        vqa_inputs[name].write_bytes(data)
        code, err = run(vqa, capsys)
        assert code == 2 and "Traceback" not in err, f"{name} {data!r}: {err}"
        vqa_inputs[name].write_bytes(good)
    assert (snapshot(foreign), snapshot(built), a_file.read_text()) == before
