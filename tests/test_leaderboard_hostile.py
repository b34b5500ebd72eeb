"""The leaderboard against a hostile or careless user: `reported` never replaces someone's
submission, a mistyped --root is refused, metadata that is blank, dated in the future or holds
invisible characters is refused, unknown keys fail `check`, files that are not plain JSON
(links, FIFOs, devices, huge files) are named and skipped instead of hanging `check`, numbers
that are not numbers (1e999, 4,000 digits) are refused in one line, concurrent `add`s of one
name lose nothing, the hash error gives away no hash, a made-up run id is refused, and markup or
quotes in a submission are only text on the page (its template is autoescaped and refuses a
value it is not given)."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from examples import good, rehash

from benchmark.reading import read_capped
from benchmark.strict_json import canonical_sha256
from leaderboard import ROOT, paper
from leaderboard.cli import main
from leaderboard.guards import MAX_FILE_BYTES, date_problem
from leaderboard.submissions import dumps, submission_filename

SMOLLM2 = ROOT / "submissions" / "smollm2-135m-instruct-cpu_text-examples-to-text.json"
PAPER_ROW = ROOT / "submissions" / "idefics2-paper_text-examples-to-image.json"


def make_root(tmp_path: Path, files: tuple[Path, ...] = ()) -> Path:
    """A throwaway leaderboard holding copies of `files`."""
    root = tmp_path / "leaderboard"
    (root / "submissions").mkdir(parents=True)
    for path in files:
        (root / "submissions" / path.name).write_bytes(path.read_bytes())
    return root


def run(capsys, *argv: str) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out + out.err


def results_file(tmp_path: Path, results: dict, name: str = "results.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(results), "utf-8")
    return path


def add_args(root: Path, path: Path, *extra: str) -> list[str]:
    """`add` of a results file; `good("results")` is one task, so `--allow_partial`."""
    argv = ["--root", str(root), "add", str(path), "--submitted-by", "tester", *extra]
    return [*argv, "--allow_partial"]


def one_line_error(out: str) -> None:
    """The CLI's errors are one line (problem and fix) and never a traceback."""
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1, out


def in_fresh_python(argv: list[str]) -> subprocess.CompletedProcess:
    """`vlm-tv-leaderboard argv` in a child with a time and memory limit, so that a file that
    would make it block or read forever fails the test instead of hanging or exhausting it."""

    def limit_memory() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    code = f"import sys, leaderboard.cli; sys.exit(leaderboard.cli.main({argv!r}))"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_memory,
    )


# --- 1. `reported` replaces paper rows only ------------------------------------------------------


def test_reported_never_replaces_a_submission_that_is_not_a_paper_row(tmp_path, capsys):
    root = make_root(tmp_path)
    taken = root / "submissions" / submission_filename(paper.paper_submissions()[0])
    mine = SMOLLM2.read_bytes()  # someone's own run, under the file name of a paper row
    taken.write_bytes(mine)
    rc, out = run(capsys, "--root", root, "reported")
    assert rc == 1 and f"{taken} is not a paper row" in out and "nothing was written" in out
    one_line_error(out)
    assert taken.read_bytes() == mine
    assert [p.name for p in (root / "submissions").iterdir()] == [taken.name]  # all or none

    taken.write_text(json.dumps({"submission": {"reported": True}}))  # an old paper row
    rc, out = run(capsys, "--root", root, "reported")
    assert rc == 0, out
    assert len(list((root / "submissions").iterdir())) == len(paper.paper_submissions())
    assert json.loads(taken.read_text())["submission"]["reported"] is True


# --- 2. --root must be a leaderboard, unless --init ----------------------------------------------


def test_a_root_that_is_not_a_leaderboard_is_refused_and_left_alone(tmp_path, capsys):
    path = results_file(tmp_path, good("results"))
    typo = tmp_path / "leaderbaord"
    plain = tmp_path / "plain"  # exists, has a README, but no submissions/
    plain.mkdir()
    (plain / "README.md").write_text("# my notes\n")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for root, words in ((typo, "does not exist"), (plain, "not a leaderboard"), (a_file, "not a")):
        for argv in (
            add_args(root, path, "--name", "Tiny"),
            ["--root", root, "reported"],
            ["--root", root, "build"],
            ["--root", root, "check"],
        ):
            rc, out = run(capsys, *argv)
            assert rc == 2 and words in out, (argv, out)
            one_line_error(out)
    assert not typo.exists() and [p.name for p in plain.iterdir()] == ["README.md"]
    assert "`add --init`" in run(capsys, *add_args(typo, path, "--name", "Tiny"))[1]


def test_init_starts_a_new_leaderboard(tmp_path, capsys):
    path = results_file(tmp_path, good("results"))
    root = tmp_path / "new" / "board"
    rc, out = run(capsys, *add_args(root, path, "--name", "Tiny", "--init"))
    assert rc == 0, out
    assert [p.name for p in (root / "submissions").iterdir()] == ["tiny_text-examples-to-text.json"]
    rc, out = run(capsys, "--root", tmp_path / "other", "reported", "--init")
    assert rc == 0, out
    written = list((tmp_path / "other" / "submissions").iterdir())
    assert len(written) == len(paper.paper_submissions())


# --- 3. metadata: blank, future, invisible ------------------------------------------------------


@pytest.mark.parametrize(
    "flag, value, words",
    [
        ("--name", "   ", "--name is empty or only whitespace"),
        ("--name", "\u3000", "--name is empty or only whitespace"),
        ("--name", "Model\u202e)UPG(", "--name holds U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("--name", "Mo\u200bdel", "--name holds U+200B (ZERO WIDTH SPACE)"),
        ("--name", "two\nlines", "--name holds U+000A"),
        ("--name", "\ufeffModel", "--name holds U+FEFF"),
        ("--submitted-by", "me\u2066", "--submitted-by holds U+2066"),
        ("--submitted-by", "\t", "--submitted-by is empty or only whitespace"),
        ("--hardware", "A100\x1b[2J", "--hardware holds U+001B"),
        ("--hardware", "A100\u2028H100", "--hardware holds U+2028"),
        ("--notes", "fine\n\u202eevil", "--notes holds U+202E"),
        ("--notes", "x\ry", "--notes holds U+000D"),
        ("--model-card", "https://hf.co/x\u200d", "--model-card holds U+200D"),
    ],
)
def test_blank_or_invisible_metadata_is_a_usage_error(tmp_path, capsys, flag, value, words):
    root = make_root(tmp_path)
    path = results_file(tmp_path, good("results"))
    argv = add_args(root, path, "--name", "Tiny", flag, value)
    rc, out = run(capsys, *argv)
    assert rc == 2 and words in out, out
    one_line_error(out)
    assert list((root / "submissions").iterdir()) == []


def test_visible_unicode_and_multiline_notes_are_accepted(tmp_path, capsys):
    root = make_root(tmp_path)
    path = results_file(tmp_path, good("results"))
    argv = add_args(root, path, "--name", "Modèle 日本 (GPU)", "--notes", "one\n\ttwo")
    rc, out = run(capsys, *argv)
    assert rc == 0, out


def test_a_date_in_the_future_is_refused_but_tomorrow_is_not(tmp_path, capsys):
    today = datetime.datetime.now(datetime.timezone.utc).date()
    root = make_root(tmp_path)
    path = results_file(tmp_path, good("results"))
    for date, words in (
        ((today + datetime.timedelta(days=2)).isoformat(), "is in the future"),
        ("2999-01-01", "is in the future"),
        ("2026-02-30", "is not a day of the calendar"),
        ("20261122", "is not a date written YYYY-MM-DD"),
        ("2026-11-22T00:00", "is not a date written YYYY-MM-DD"),
    ):
        rc, out = run(capsys, *add_args(root, path, "--name", "Tiny", "--date", date))
        assert rc == 2 and "--date" in out and date in out and words in out, out
        one_line_error(out)
    tomorrow = (today + datetime.timedelta(days=1)).isoformat()
    rc, out = run(capsys, *add_args(root, path, "--name", "Tiny", "--date", tomorrow))
    assert rc == 0, out
    assert date_problem(tomorrow, today) is None


def test_check_refuses_blank_or_invisible_text_in_a_hand_made_file(tmp_path, capsys):
    root = make_root(tmp_path)
    for field, value, words in (
        ("name", "SmolLM2\u202e", "$.submission.name: holds U+202E"),
        ("hardware", "  ", "$.submission.hardware: is empty or only whitespace"),
        ("notes", "a\x00b", "$.submission.notes: holds U+0000"),
        ("name", " ", "$.submission.name: ' ' does not match"),  # the schema's own rule
    ):
        data = json.loads(SMOLLM2.read_text())
        data["submission"][field] = value
        (root / "submissions" / SMOLLM2.name).write_text(dumps(data))
        rc, out = run(capsys, "--root", root, "check")
        assert rc == 1 and f"{SMOLLM2.name}: {words}" in out, out


# --- 4. no unknown keys -------------------------------------------------------------------------


def _extra_top(data: dict) -> str:
    data["verified"] = True
    return "$: Additional properties are not allowed ('verified' was unexpected)"


def _extra_meta(data: dict) -> str:
    data["submission"]["badge"] = "gold"
    return "$.submission: Additional properties are not allowed ('badge' was unexpected)"


def _extra_reported_results(data: dict) -> str:
    data["results"]["n_shot"] = 5
    return "$.results: Additional properties are not allowed ('n_shot' was unexpected)"


def _extra_reported_config(data: dict) -> str:
    data["results"]["config"]["layer"] = 3
    return "$.results.config: Additional properties are not allowed ('layer' was unexpected)"


@pytest.mark.parametrize(
    "file, mutate",
    [
        (SMOLLM2, _extra_top),
        (SMOLLM2, _extra_meta),
        (PAPER_ROW, _extra_top),
        (PAPER_ROW, _extra_reported_results),
        (PAPER_ROW, _extra_reported_config),
    ],
)
def test_an_unknown_key_fails_check(tmp_path, capsys, file, mutate):
    root = make_root(tmp_path)
    data = json.loads(file.read_text())
    message = mutate(data)
    (root / "submissions" / file.name).write_text(dumps(rehash(data)))
    rc, out = run(capsys, "--root", root, "check")
    assert rc == 1 and f"{file.name}: {message}" in out, out


# --- 5. files that must not be read -------------------------------------------------------------


def test_check_names_and_skips_files_that_are_not_plain_json(tmp_path):
    root = make_root(tmp_path, (SMOLLM2,))
    folder = root / "submissions"
    (folder / "zero.json").symlink_to("/dev/zero")
    (folder / "link.json").symlink_to(SMOLLM2)
    os.mkfifo(folder / "fifo.json")
    (folder / "dir.json").mkdir()
    with open(folder / "huge.json", "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    done = in_fresh_python(["--root", str(root), "check"])
    assert done.returncode == 1, done.stderr
    for name, words in (
        ("zero.json", "is a symbolic link, not a file"),
        ("link.json", "is a symbolic link, not a file"),
        ("fifo.json", "is a FIFO, not a regular file"),
        ("dir.json", "is a folder, not a regular file"),
        ("huge.json", f"is larger than {MAX_FILE_BYTES} bytes"),
    ):
        assert f"{name}: $: {words}" in done.stderr, done.stderr
    assert "5 problem(s)" in done.stderr and "Traceback" not in done.stderr


def test_add_refuses_a_results_file_it_must_not_read(tmp_path):
    root = make_root(tmp_path)
    fifo = tmp_path / "results.json"
    os.mkfifo(fifo)
    argv = add_args(root, fifo, "--name", "Tiny")
    done = in_fresh_python(argv)
    assert done.returncode == 2, done.stderr
    assert f"{fifo} is a FIFO, not a regular file" in done.stderr
    one_line_error(done.stdout + done.stderr)
    assert read_capped(Path("/dev/zero"), follow_symlinks=True)[1].startswith("is a character")


def test_the_size_cap_is_exact(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b"x" * 11)
    assert read_capped(path, limit=11) == (b"x" * 11, None)
    data, why = read_capped(path, limit=10)
    assert data is None and why.startswith("is larger than 10 bytes")


# --- the same numbers under another run id ------------------------------------------------------


def test_the_same_numbers_under_another_run_id_and_name_are_refused(tmp_path, capsys):
    root = make_root(tmp_path)
    results = good("results")
    rc, out = run(capsys, *add_args(root, results_file(tmp_path, results), "--name", "First"))
    assert rc == 0, out
    results["run_id"] = "text_examples-ffffffffffff"
    results["created"] = "2026-11-23T00:00:00+00:00"
    again = results_file(tmp_path, results, "again.json")
    rc, out = run(capsys, *add_args(root, again, "--name", "Second"))
    assert rc == 1 and "these results are already submitted as" in out, out
    assert [p.name for p in (root / "submissions").iterdir()] == [
        "first_text-examples-to-text.json"
    ]


# --- 6. numbers that are not numbers, and races ------------------------------------------------

# JSON number literals no vlm-tv-eval file holds: 1e999 reads as infinity in Python, and a
# 4,000-digit integer is under Python's 4,300-digit limit but no float can hold it.
HUGE_INT = "1" + "0" * 3999
NOT_NUMBERS = [("1e999", "infinity"), ("-1e999", "infinity"), (HUGE_INT, "4000 digits")]


def with_number(results: dict, literal: str) -> str:
    """`results` as JSON text with `timings.total` (a field no schema bounds) set to `literal`."""
    results = dict(results, timings={"total": 12345.5})
    return json.dumps(results).replace("12345.5", literal, 1)


def one_line_naming(out: str, file: str, path: str) -> None:
    """No traceback, and the problem on one line that names the file and the JSON path."""
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if path in line]
    assert len(lines) == 1 and file in lines[0], out


@pytest.mark.parametrize(("literal", "words"), NOT_NUMBERS)
def test_validate_refuses_a_number_that_is_not_finite_or_too_long(tmp_path, capsys, literal, words):
    from harness.cli import main as eval_main

    path = tmp_path / "results.json"
    path.write_text(with_number(good("results"), literal), "utf-8")
    rc = eval_main(["validate", str(path)])
    out = capsys.readouterr()
    assert rc == 1, out
    one_line_naming(out.out + out.err, str(path), "$.timings.total")
    assert words in out.err


@pytest.mark.parametrize(("literal", "words"), NOT_NUMBERS)
def test_add_refuses_a_number_that_is_not_finite_or_too_long(tmp_path, literal, words):
    root = make_root(tmp_path)
    path = tmp_path / "results.json"
    path.write_text(with_number(good("results"), literal), "utf-8")
    done = in_fresh_python(add_args(root, path, "--name", "Tiny"))
    assert done.returncode == 1, done.stderr
    one_line_naming(done.stdout + done.stderr, str(path), "$.timings.total")
    assert words in done.stderr
    assert list((root / "submissions").iterdir()) == []


@pytest.mark.parametrize(("literal", "words"), NOT_NUMBERS)
def test_check_refuses_a_number_that_is_not_finite_or_too_long(tmp_path, literal, words):
    root = make_root(tmp_path, (SMOLLM2,))
    path = root / "submissions" / SMOLLM2.name
    text = path.read_text("utf-8")
    assert text.count('"total": ') == 1
    path.write_text(re.sub(r'"total": [0-9.]+', f'"total": {literal}', text), "utf-8")
    for command in ("check", "build"):
        done = in_fresh_python(["--root", str(root), command])
        assert done.returncode == 1, done.stderr
        one_line_naming(done.stderr, SMOLLM2.name, "$.results.timings.total")
        assert words in done.stderr


def test_the_number_bounds_are_exact():
    """The largest finite float and a 30-digit integer are numbers; one step past is not."""
    from benchmark.strict_json import MAX_INT_DIGITS, loads_checked

    for fine in ("1e308", "-1.7976931348623157e308", "1e-999", "9" * MAX_INT_DIGITS):
        assert loads_checked(f"[{fine}]")[1] == [], fine
    assert loads_checked(f"[-{'9' * MAX_INT_DIGITS}]")[1] == []
    for refused, path in (("1e309", "$[0]"), ("1" * (MAX_INT_DIGITS + 1), "$[0]")):
        obj, errors = loads_checked(f"[{refused}]")
        assert obj is None and [e.path for e in errors] == [path], refused
    _, errors = loads_checked('{"a": [1, {"b": -1e999}]}')
    assert [str(e) for e in errors] == [
        "<data>: $.a[1].b: -1e999 is beyond the range of a 64-bit float: it would read as "
        "-infinity (only finite numbers are valid); no vlm-tv-eval file holds such a number"
    ]


def _slow_add(argv: list[str], start: float) -> tuple[int, str]:
    """`add` in a child process (its exit status and output), started at `start`, on a file
    system slow enough that every child has checked for an existing file before any has
    written one: without a lock, each one writes, the last one wins, and two submissions are
    lost while all three say "wrote"."""
    import contextlib
    import io
    import time

    import leaderboard.cli
    import leaderboard.submissions

    slow = leaderboard.submissions.load_submissions

    def load_slowly(*args, **kwargs):
        time.sleep(1.0)
        return slow(*args, **kwargs)

    leaderboard.submissions.load_submissions = load_slowly
    time.sleep(max(0.0, start - time.time()))
    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        rc = leaderboard.cli.main(argv)
    return rc, said.getvalue()


def test_concurrent_adds_of_one_name_write_one_and_refuse_the_others(tmp_path):
    import multiprocessing
    import time

    root = make_root(tmp_path)
    argvs = []
    for i in range(3):  # three different runs (numbers, run ids) under one --name
        results = good("results")
        results["run_id"] = f"text_examples-00000000000{i}"
        for entry in results["results"]["country_capital"].values():
            entry["acc_strict"] = 0.1 * (i + 1)
        path = results_file(tmp_path, results, f"results{i}.json")
        argvs.append(add_args(root, path, "--name", "Same"))
    context = multiprocessing.get_context("spawn")
    start = time.time() + 10  # all three imported and waiting by then
    with context.Pool(3) as pool:
        outcomes = pool.starmap(_slow_add, [(argv, start) for argv in argvs], chunksize=1)
    codes = [rc for rc, _ in outcomes]
    assert sorted(codes) == [0, 1, 1], outcomes
    for rc, said in outcomes:
        words = "wrote " if rc == 0 else "already exists; a submission's name and setting must"
        assert words in said and "Traceback" not in said, said
    files = list((root / "submissions").glob("*.json"))
    assert [p.name for p in files] == ["same_text-examples-to-text.json"]
    written = json.loads(files[0].read_text("utf-8"))["results"]
    winner = codes.index(0)
    assert written["run_id"] == f"text_examples-00000000000{winner}"


# --- 7. the integrity hash and run ids ----------------------------------------------------------


def test_the_hash_error_does_not_print_the_hash_to_paste(tmp_path, capsys):
    """A message holding the expected sha256 is a recipe for silencing the check."""
    root = make_root(tmp_path, (SMOLLM2,))
    path = root / "submissions" / SMOLLM2.name
    data = json.loads(path.read_text("utf-8"))
    data["results"]["results"]["food_color"]["patch"]["acc_strict"] = 0.99
    path.write_text(dumps(data), "utf-8")
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 1 and f"{SMOLLM2.name}: $.submission.results_sha256: " in out, out
    assert canonical_sha256(data["results"]) not in out
    assert not re.search(r"[0-9a-f]{64}", out.replace(data["submission"]["results_sha256"], ""))


@pytest.mark.parametrize(
    "run_id",
    [
        "20261122-120000-abc123",  # not the harness's shape
        "made-up",
        "image_examples-0123456789ab",  # another spec than the run's
        "text_examples-0123456789AB",  # the harness writes lower-case hex
        "text_examples-0123456789abc",  # 13 hex digits
    ],
)
def test_a_made_up_run_id_is_refused_by_add_and_check(tmp_path, capsys, run_id):
    root = make_root(tmp_path)
    results = good("results")
    results["run_id"] = run_id
    rc, out = run(capsys, *add_args(root, results_file(tmp_path, results), "--name", "Made up"))
    assert rc == 1 and "$.run_id" in out and "Traceback" not in out, out
    assert list((root / "submissions").iterdir()) == []
    data = json.loads(SMOLLM2.read_text("utf-8"))
    data["results"]["run_id"] = run_id
    (root / "submissions" / SMOLLM2.name).write_text(dumps(rehash(data)), "utf-8")
    rc, out = run(capsys, "--root", str(root), "check")
    assert rc == 1 and f"{SMOLLM2.name}: $.results.run_id: " in out, out


def test_a_run_id_of_the_harness_shape_is_accepted(tmp_path, capsys):
    root = make_root(tmp_path)
    results = good("results")
    results["run_id"] = "text_examples-0123456789ab"
    rc, out = run(capsys, *add_args(root, results_file(tmp_path, results), "--name", "Fine"))
    assert rc == 0, out


def test_markup_and_quotes_in_a_submission_stay_text_in_the_page(tmp_path, capsys):
    """The page's template is autoescaped: a name or model that would close an attribute or
    open a script is shown as text; with autoescape off this page would run it."""
    root = make_root(tmp_path)
    results = good("results")
    results["model"]["name"] = 'm" onmouseover="alert(2)'
    name = '<script>alert(1)</script>" onmouseover="alert(3)'
    rc, out = run(capsys, *add_args(root, results_file(tmp_path, results), "--name", name))
    assert rc == 0, out
    assert run(capsys, "--root", str(root), "build")[0] == 0
    html = (root / "index.html").read_text("utf-8")
    assert html.count("<script") == 1  # the page's own sorting and filtering
    assert "onmouseover=" not in html.replace("onmouseover=&#34;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34; onmouseover=&#34;alert(3)</a>" in html
    assert 'title="model m&#34; onmouseover=&#34;alert(2)"' in html


def test_the_page_template_is_autoescaped_and_refuses_a_missing_value():
    """Every value is escaped by the template, and a value it is not given is an error, never
    an empty cell."""
    from jinja2 import StrictUndefined, UndefinedError

    from leaderboard import html_page
    from leaderboard.build import load
    from leaderboard.overriding import override_rows
    from leaderboard.table import all_rows

    env = html_page.environment()
    assert env.autoescape is True and env.undefined is StrictUndefined
    submissions, problems = load(ROOT)
    assert not problems
    rows, overriding = all_rows(submissions), override_rows(submissions)
    data = html_page.page_data(rows, overriding)
    assets = {"css": html_page.CSS, "js": html_page.JS}
    assert html_page.template().render(data, **assets) == html_page.render_html(rows, overriding)
    shown = html_page.template().render({**data, "sources": "<b>x</b>"}, **assets)
    assert "Reported rows: &lt;b&gt;x&lt;/b&gt;." in shown
    for missing in ("sources", "overriding", "css"):
        given = {k: v for k, v in {**data, **assets}.items() if k != missing}
        with pytest.raises(UndefinedError):
            html_page.template().render(given)
    first = data["ranked"]["rows"][0]["cells"][-1]
    del first["sort"]
    with pytest.raises(UndefinedError):
        html_page.template().render(data, **assets)
