"""A hostile user's inputs to `vlm-tv-eval`: deeply nested JSON, paths that are folders, FIFOs
or devices, output folders that cannot be made, a Hub that cannot be reached, Ctrl-C before
the run, two identical runs at once. Each ends in one line naming the problem and the fix (exit
2, no traceback), or, for a damaged file the harness wrote itself, in a warning and the work
done again."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from harness import evaluator
from harness.arguments import parse_run_config
from harness.cli import main
from harness.config import RunConfig
from harness.store import RunStore

DEEP = "[" * 100_000  # past Python's recursion limit: json.loads raises RecursionError
PAIRS = [(f"word{i}", f"answer{i}") for i in range(10)]
RUN = ["--tasks", "country_capital", "--limit", "4", "--seeds", "0", "--n_shot", "2"]


def _task_file(path: Path) -> Path:
    path.write_text("".join(json.dumps({"input": x, "output": y}) + "\n" for x, y in PAIRS))
    return path


@pytest.fixture
def no_model_load(monkeypatch):
    monkeypatch.setattr(evaluator, "load_adapter", lambda *a, **k: pytest.fail("model loaded"))


def _refused(capsys, argv: list[str], *words: str) -> str:
    """Run the CLI; it must exit 2 with an error naming every one of `words`, no traceback."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    for word in words:
        assert word in err, err[-2000:]
    return err


def _store(out: Path) -> RunStore:
    return RunStore(RunConfig(output_path=str(out)), {})


# -- 1. deep nesting: refused or recomputed, never a RecursionError ----------------------------


def test_a_deeply_nested_task_file_line_is_named(tmp_path, capsys, no_model_load):
    task = _task_file(tmp_path / "deep.jsonl")
    task.write_text(task.read_text() + DEEP + "\n")
    _refused(capsys, ["--tasks", str(task)], "deep.jsonl:11:", "nested too deeply")


def test_a_deeply_nested_state_file_is_stale_not_fatal(tmp_path, capsys):
    first = _store(tmp_path)
    first.time("load", 1.5)
    (first.dir / "state.json").write_text(DEEP)
    again = _store(tmp_path)
    assert again.timings == {}
    assert "state.json is damaged" in capsys.readouterr().err


def test_a_deeply_nested_unit_file_is_recomputed(tmp_path, capsys):
    store = _store(tmp_path)
    assert store.unit("task/prompt-s0", lambda: {"acc": 0.5}, ["a", "b"]) == {"acc": 0.5}
    path = store.parts / "task" / "prompt-s0.json"
    path.write_text(DEEP)
    assert store.unit("task/prompt-s0", lambda: {"acc": 0.25}, ["a", "b"]) == {"acc": 0.25}
    assert "unreadable" in capsys.readouterr().err
    assert json.loads(path.read_text())["data"] == {"acc": 0.25}


def test_a_deeply_nested_fingerprint_means_convert_again(tmp_path):
    from harness.adapters.gguf_cache import FINGERPRINT, verify

    (tmp_path / FINGERPRINT).write_text(DEEP)
    assert "no valid fingerprint.json" in verify(tmp_path, "0" * 64)


def _overriding_run(folder: Path) -> Path:
    """A run folder as an override_text run leaves it, before judging."""
    folder.mkdir()
    config = {"tasks": ["override_text"], "methods": ["original"], "spec": "instruction"}
    doc = {"config": {**config, "n_shot": 5}, "seeds": [0]}
    (folder / "pending_results.json").write_text(json.dumps(doc))
    (folder / "generations_override-text.jsonl").write_text("{}\n")
    return folder


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"config": ', ["pending_results.json", "not valid JSON"]),
        (DEEP, ["pending_results.json", "nested too deeply"]),
        ("[1, 2]", ["pending_results.json", "config.tasks"]),
        ('{"config": {"tasks": "override_text"}, "seeds": [0]}', ["config.tasks"]),
    ],
)
def test_judge_names_a_damaged_results_file(tmp_path, capsys, text, words):
    run = _overriding_run(tmp_path / "run")
    (run / "pending_results.json").write_text(text)
    code = main(["judge", str(run), "--judge_base_url", "http://127.0.0.1:9/v1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert all(w in err for w in words), err


def test_judge_names_a_damaged_generations_line(tmp_path, capsys):
    run = _overriding_run(tmp_path / "run")
    (run / "generations_override-text.jsonl").write_text(DEEP + "\n")
    code = main(["judge", str(run), "--judge_base_url", "http://127.0.0.1:9/v1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "generations_override-text.jsonl:1" in err and "nested too deeply" in err


def test_a_deeply_nested_judge_cache_entry_is_ignored(tmp_path, monkeypatch):
    from harness.overriding.judge import Judge

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    judge = Judge("local", "http://127.0.0.1:9/v1", cache_dir=tmp_path)
    judge._cache_path("prompt").write_text(DEEP)
    assert judge._cache_get("prompt") is None


# -- 2. tracebacks -------------------------------------------------------------------------


def test_output_paths_that_cannot_be_made_are_refused(tmp_path, capsys, no_model_load):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    long = tmp_path / ("a" * 300) / "runs"
    _refused(capsys, [*RUN, "--output_path", str(long)], "300 bytes long", "255")
    under_file = a_file / "runs"
    _refused(capsys, [*RUN, "--output_path", str(under_file)], "file.txt is a file, not a folder")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_an_output_path_under_proc_is_one_line(capsys, no_model_load):
    _refused(
        capsys, [*RUN, "--output_path", "/proc/vlm-tv-eval/runs"], "cannot make the run folder"
    )


HUB_DOWN = (
    "We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them "
    "in the cached files.\nCheck your internet connection or see how to run the library in "
    "offline mode at 'https://huggingface.co/docs/transformers/installation#offline-mode'."
)


@pytest.fixture
def hub_down(monkeypatch):
    import transformers

    def unreachable(*args, **kwargs):
        raise OSError(HUB_DOWN)

    for auto in (transformers.AutoConfig, transformers.AutoTokenizer):
        monkeypatch.setattr(auto, "from_pretrained", unreachable)


@pytest.mark.parametrize("layer", [["--layer", "5"], []])
def test_a_hub_model_without_network_is_one_line(tmp_path, capsys, hub_down, layer):
    argv = ["--model", "hf:foo/bar", *layer, *RUN, "--output_path", str(tmp_path)]
    err = _refused(capsys, argv, "cannot reach the Hub for foo/bar", "--model_args pretrained=")
    assert "--model hf:/path/to/folder" in err


def test_ctrl_c_before_the_run_exits_130_in_one_line(monkeypatch, capsys):
    import harness.prepare

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.prepare, "load_run_data", interrupted)
    try:
        code = main(RUN)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main: a traceback for the user")
    assert code == 130
    err = capsys.readouterr().err
    assert err.strip() == "vlm-tv-eval: interrupted"


def test_a_folder_where_a_unit_or_state_file_belongs_is_stale(tmp_path, capsys):
    store = _store(tmp_path)
    (store.parts / "task" / "prompt-s0.json" / "junk").mkdir(parents=True)
    (store.dir / "state.json").mkdir()
    store = _store(tmp_path)
    assert store.unit("task/prompt-s0", lambda: [1, 2], ["a"]) == [1, 2]
    err = capsys.readouterr().err
    assert "prompt-s0.json is not a file" in err and "state.json is not a file" in err
    assert store.unit("task/prompt-s0", lambda: pytest.fail("recomputed"), ["a"]) == [1, 2]
    assert json.loads((store.dir / "state.json").read_text())["timings"]


# -- 3. unclear messages, silent acceptance --------------------------------------------------


@pytest.fixture
def odd_paths(tmp_path):
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jsonl"
    zero.symlink_to("/dev/zero")
    return [
        (folder, "is a folder"),
        (fifo, "is a FIFO, not a regular file"),
        (zero, "is a character device, not a regular file"),
    ]


def test_a_task_file_that_is_no_regular_file_is_named(odd_paths, capsys, no_model_load):
    for path, words in odd_paths:
        _refused(capsys, ["--tasks", str(path)], str(path), words)


def test_validate_names_a_folder_fifo_or_device(odd_paths, capsys):
    for path, words in odd_paths:
        assert main(["validate", str(path)]) == 1
        err = capsys.readouterr().err
        assert f"{path}: $: {words}" in err and "no such file" not in err


def _run_dir(out: Path) -> Path:
    from harness.prepare import load_run_data

    config = parse_run_config([*RUN, "--output_path", str(out)])
    return RunStore(config, load_run_data(config)).dir


def test_a_second_identical_run_stops_while_the_first_holds_the_folder(
    tmp_path, capsys, no_model_load
):
    folder = _run_dir(tmp_path)
    folder.mkdir(parents=True)
    with (folder / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        _refused(
            capsys,
            [*RUN, "--output_path", str(tmp_path)],
            f"another vlm-tv-eval is running in {folder} (pid 4242)",
            "another --output_path",
        )
    assert not (folder / "parts").exists()


def test_a_killed_runs_lock_file_does_not_block_and_the_lock_is_released(
    tiny_llama_path, tmp_path, capsys
):
    argv = ["--model", f"hf:{tiny_llama_path}", *RUN, "--methods", "majority,prompt"]
    argv += ["--output_path", str(tmp_path)]
    assert main(argv) == 0
    (folder,) = tmp_path.glob("*/*")
    lock = folder / ".lock"
    assert lock.read_text().strip() == str(os.getpid())
    lock.write_text("999999\n")  # left by a killed run: the OS released its flock
    assert main(argv) == 0
    with lock.open("a") as handle:  # released when the run ended
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_vlm_checkpoint_folder_without_files_is_one_line(tmp_path, capsys):
    """The VLM adapters load through their own processor path: a folder without the files is
    one line naming the folder, like the text adapter's."""
    from harness.cli import main

    empty = tmp_path / "not-a-checkpoint"
    empty.mkdir()
    code = main(
        [
            "--model",
            "idefics2",
            "--model_args",
            f"pretrained={empty}",
            "--tasks",
            "country_capital",
            "--layer",
            "1",
            "--limit",
            "2",
            "--seeds",
            "0",
            "--output_path",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(empty) in err and "Traceback" not in err


def test_ctrl_c_while_the_cli_module_imports_is_one_line(monkeypatch, capsys):
    """The console script imports harness.cli inside a guard: a KeyboardInterrupt raised by
    that import ends with exit 130 and one line, not a traceback."""
    import builtins
    import sys

    from harness import entry

    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "cli" or name.endswith("harness.cli"):
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "harness.cli", raising=False)
    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert entry.main() == 130
    assert capsys.readouterr().err.strip() == "vlm-tv-eval: interrupted"


def test_a_model_path_with_a_name_too_long_is_one_line(tmp_path, capsys):
    from harness.cli import main

    code = main(
        [
            "--model",
            f"hf:{tmp_path}/{'a' * 300}",
            "--tasks",
            "country_capital",
            "--limit",
            "2",
            "--output_path",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "not a usable path" in err and "Traceback" not in err


def test_judge_waits_for_a_run_still_writing_its_folder(tmp_path, capsys):
    """`judge` takes the run folder's lock: judging while the run still generates would score
    half of its answers."""
    import fcntl

    folder = tmp_path / "run"
    folder.mkdir()
    with (folder / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        assert main(["judge", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "another vlm-tv-eval is running" in err and "4242" in err


# -- 4. a Hub that cannot be reached, files that go while the model loads ---------------------

UNKNOWN = "nobody/no-such-model-xyz"
CLI = "import sys; from harness.entry import main; sys.exit(main())"


def _cli(tmp_path: Path, argv: list[str], **env: str) -> tuple[int, str, float]:
    """The console script in a fresh process (huggingface_hub reads its settings on import),
    with an empty Hugging Face cache and no proxy: exit status, stderr, seconds taken."""
    import subprocess
    import sys
    import time

    clean = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT"):
        clean.pop(name, None)
    clean.update(HF_HUB_CACHE=str(tmp_path / "hub"), NO_PROXY="*", **env)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CLI, *argv], capture_output=True, text=True, env=clean, timeout=60
    )
    return done.returncode, done.stderr, time.perf_counter() - start


# Offline by the environment, or a Hub that refuses connections (as with no network): no
# minute of retries, no run folder, one line naming the id and the way to get it.
OFFLINE = {"HF_HUB_OFFLINE": "1"}
REFUSED = {"HF_ENDPOINT": "http://127.0.0.1:9"}


@pytest.mark.parametrize("scheme", ["hf", "hf-vlm"])
@pytest.mark.parametrize("env", [OFFLINE, REFUSED], ids=["HF_HUB_OFFLINE", "refused"])
def test_an_unknown_hub_id_without_the_hub_fails_fast_in_one_line(tmp_path, env, scheme):
    out = tmp_path / "runs"
    argv = ["--model", f"{scheme}:{UNKNOWN}", *RUN, "--output_path", str(out)]
    code, err, seconds = _cli(tmp_path, argv, **env)
    assert code == 2, err[-2000:]
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err[-2000:]
    assert seconds < 30, f"{seconds:.0f} s: the Hub was retried"
    for words in (
        f"cannot reach the Hub for {UNKNOWN}",
        "neither a folder on disk nor in the local Hugging Face cache",
        f"hf download {UNKNOWN}",
        f"--model {scheme}:/path/to/folder",
        "--model_args pretrained=/path/to/folder",
    ):
        assert words in err, err
    assert not out.exists()  # refused before the run folder is made


def test_a_hub_id_in_the_local_cache_loads_without_the_hub(tmp_path, tiny_llama_path):
    """The other side of failing fast: an id the local cache holds is found there, and loaded
    from it at once (transformers alone would ask the unreachable Hub for each file first)."""
    import shutil

    repo = tmp_path / "hub" / "models--acme--tiny"
    shutil.copytree(tiny_llama_path, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    argv = ["--model", "hf:acme/tiny", *RUN, "--methods", "majority,prompt"]
    code, err, seconds = _cli(tmp_path, [*argv, "--output_path", str(tmp_path / "runs")], **REFUSED)
    assert code == 0, err[-2000:]
    assert seconds < 45, f"{seconds:.0f} s: the Hub was retried"
    assert list((tmp_path / "runs").glob("*/*/results.json"))


def _copy(tiny_llama_path: str, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(tiny_llama_path, tmp_path / "checkpoint"))


def _error_line(err: str) -> str:
    """The run's one error line (the run folder is named on stderr before the load)."""
    assert "Traceback" not in err, err[-2000:]
    lines = [line for line in err.strip().splitlines() if not line.startswith("run folder:")]
    assert len(lines) == 1, err[-2000:]
    return lines[0]


def _truncate_weights(folder: Path) -> None:
    with (folder / "model.safetensors").open("r+b") as f:
        f.truncate(100)


@pytest.mark.parametrize("how", ["folder deleted", "weights rewritten"])
def test_a_checkpoint_folder_changed_while_it_loads_is_one_line(
    tiny_llama_path, tmp_path, capsys, monkeypatch, how
):
    """The folder is there when checked and changes under transformers: removed (an OSError
    about a repo id) or its weights truncated (a SafetensorError, which escaped)."""
    import shutil

    from transformers import AutoModelForCausalLM

    folder = _copy(tiny_llama_path, tmp_path)
    real = AutoModelForCausalLM.from_pretrained.__func__

    def meanwhile(cls, *args, **kwargs):
        shutil.rmtree(folder) if how == "folder deleted" else _truncate_weights(folder)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(meanwhile))
    argv = ["--model", f"hf:{folder}", *RUN, "--output_path", str(tmp_path / "runs")]
    assert main(argv) == 2
    line = _error_line(capsys.readouterr().err)
    assert f"the model files in {folder} changed or disappeared while loading" in line, line
    assert line.endswith(": run again"), line


def test_a_damaged_weights_file_is_one_line(tiny_llama_path, tmp_path, capsys):
    """Truncated before the run (not while it loads): the folder is named as not loadable."""
    folder = _copy(tiny_llama_path, tmp_path)
    _truncate_weights(folder)
    argv = ["--model", f"hf:{folder}", *RUN, "--output_path", str(tmp_path / "runs")]
    assert main(argv) == 2
    line = _error_line(capsys.readouterr().err)
    assert f"cannot load the checkpoint folder {folder}" in line and "changed" not in line


def test_a_converted_gguf_folder_deleted_while_it_loads_is_one_line(
    tiny_llama_path, tmp_path, monkeypatch
):
    """The converted folder under the cache goes between its check and its read: one line,
    and the folder is made again on the next run. The folder is a proven conversion made by
    hand (the tiny Llama, fingerprinted for a stand-in GGUF file), so nothing is converted."""
    import shutil

    from transformers import AutoTokenizer

    from harness.adapters import make_adapter
    from harness.adapters.gguf import GGUFAdapter
    from harness.adapters.gguf_cache import FINGERPRINT, _folder_hashes, file_sha256
    from harness.errors import ModelLoadError

    source = tmp_path / "model.gguf"
    source.write_bytes(b"GGUF" + bytes(60))
    cached = Path(shutil.copytree(tiny_llama_path, tmp_path / "models" / "model-64-0"))
    fingerprint = {"gguf_sha256": file_sha256(source), "files": _folder_hashes(cached)}
    (cached / FINGERPRINT).write_text(json.dumps(fingerprint))
    monkeypatch.setattr(GGUFAdapter, "cached_folder", lambda self, gguf: cached)
    real = AutoTokenizer.from_pretrained.__func__

    def meanwhile(cls, *args, **kwargs):
        tokenizer = real(cls, *args, **kwargs)
        shutil.rmtree(cached)
        return tokenizer

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", classmethod(meanwhile))
    with pytest.raises(ModelLoadError) as raised:
        make_adapter(f"gguf:{source}").load()
    message = str(raised.value)
    assert f"the model files in {cached} changed or disappeared while loading" in message
    assert "the folder is made again on the next run" in message and "\n" not in message
