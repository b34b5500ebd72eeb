"""The judge stage trusts nothing it is given (issue 27): a generations file must be the one
its run wrote, a judge URL's credentials and a key echoed by the server are written nowhere,
and a reply, however large or compressed, is read only so far."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import time
import tracemalloc
from pathlib import Path

import pytest

pytest.importorskip("openai")

from judge_server import FakeOpenAI  # noqa: E402

from benchmark import validate  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.overriding.judge import MAX_STORED_REPLY, Judge  # noqa: E402
from harness.overriding.redact import public_url, scrub  # noqa: E402
from harness.overriding.verdicts import JudgeRequest  # noqa: E402

KEY = "sk-test-HOSTILE-key-0123456789abcdefXYZ"
USER, PASSWORD = "judgeuser", "S3cret-PASSWORD-xyz"
QUERY_KEY = "QueryKey-SECRET-98765"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
# What must appear in no file: each secret, the Basic credentials made of the password, and
# the key without its last characters (a server that echoes "most of the key").
SECRETS = (KEY, KEY[:-4], KEY[4:20], PASSWORD, QUERY_KEY, BASIC, BASIC[:24], "HOSTILE", "SECRET")


@pytest.fixture(scope="module")
def env():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_API_KEY", KEY)
        for name in ("OPENAI_BASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            patch.delenv(name, raising=False)
            patch.delenv(name.lower(), raising=False)
        yield


@pytest.fixture(scope="module")
def server(env):
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


def secret_urls(server: FakeOpenAI) -> list[str]:
    """The fake server's URL with a password in it, and with a key in its query."""
    host = server.url.removeprefix("http://")
    return [
        f"http://{USER}:{PASSWORD}@{host}",
        f"{server.url}?api-version=2024-06-01&api-key={QUERY_KEY}",
    ]


def leaks(*roots: Path, texts: tuple[str, ...] = ()) -> list[str]:
    """Where any of SECRETS appears: files under `roots`, and `texts` (output, logs)."""
    found = []
    for root in roots:
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.is_file():
                data = path.read_text("utf-8", errors="replace")
                found += [f"{path}: {s!r}" for s in SECRETS if s in data]
    for i, text in enumerate(texts):
        found += [f"text {i}: {s!r}" for s in SECRETS if s in text]
    return found


def request(answer: str) -> JudgeRequest:
    return JudgeRequest(answer, "override_syntax", "original", 0, answer, "Q one?", "Q two.")


# -- a real run, judged in the same command through a URL with a password ---------------------


@pytest.fixture(scope="module")
def run(tiny_llama_path, server, tmp_path_factory) -> Path:
    """An override_text run of the tiny Llama (2 items, seeds 0 and 1, `original`), judged in
    the run through the URL with a password: a run folder as the harness writes it."""
    out = tmp_path_factory.mktemp("runs")
    args = [
        "--model", f"hf:{tiny_llama_path}", "--tasks", "override_text", "--limit", "2",
        "--seeds", "0,1", "--n_shot", "1", "--max_new_tokens", "3", "--methods", "original",
        "--output_path", str(out), "--judge", "local-judge",
        "--judge_base_url", secret_urls(server)[0],
    ]  # fmt: skip
    assert main(args) == 0
    (config,) = out.glob("*/*/config.json")
    return config.parent


@pytest.fixture
def copy(run, tmp_path) -> Path:
    """A copy of the run folder to tamper with (its config.json too: it records the judge URL
    without credentials, so any secret found is one the judge step wrote)."""
    ignore = shutil.ignore_patterns(".lock*")
    return Path(shutil.copytree(run, tmp_path / "run", ignore=ignore))


def judge_cmd(folder: Path, server: FakeOpenAI, url: str | None = None) -> list[str]:
    return ["judge", str(folder), "--judge", "local-judge", "--judge_base_url", url or server.url]


def rows_of(folder: Path) -> list[dict]:
    path = folder / "generations_override-text.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_rows(folder: Path, rows: list[dict]) -> None:
    path = folder / "generations_override-text.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_run_judged_through_a_url_with_a_password_writes_it_nowhere(run, server):
    from benchmark.files import cache_root

    config = run / "config.json"  # the run's own config: see the test below
    files = [p for p in run.rglob("*") if p.is_file() and p != config]
    assert {p.name for p in files} >= {"results.json", "verdicts_override-text.jsonl"}
    assert leaks(*files, cache_root() / "judge") == []
    doc = json.loads((run / "results.json").read_text())
    assert doc["judge"]["base_url"] == server.url
    assert doc["config"]["judge_base_url"] == server.url


def test_the_run_config_records_the_judge_url_without_its_password(run):
    assert leaks(run / "config.json") == []


@pytest.mark.parametrize("which", [0, 1], ids=["password", "query-key"])
def test_judging_through_a_secret_url_writes_no_secret(copy, server, which, capsys, caplog):
    """`judge RUN_DIR` through a URL with a password or a query key, against a server that
    echoes the Authorization header, the request's URL and most of the key into errors."""
    from benchmark.files import cache_root

    caplog.set_level(logging.DEBUG)
    rows = rows_of(copy)
    answers = ["echo-key", "echo-key-most", "echo-url", "echo-key-ok"]
    for row, answer in zip(rows, answers, strict=True):
        row["answer"] = answer
    write_rows(copy, rows)
    _reseal(copy, rows)
    url = secret_urls(server)[which]
    assert main(judge_cmd(copy, server, url)) == 0
    if which == 1:  # the query reaches the server: the URL works as given
        assert server.queries[-1] == f"api-version=2024-06-01&api-key={QUERY_KEY}"
    verdicts = [json.loads(v) for v in (copy / "verdicts_override-text.jsonl").open()]
    assert [v["choice"] for v in verdicts] == [None, None, None, "B"]
    assert all("[REDACTED]" in v["error"] for v in verdicts[:3])
    assert all(validate(v, "judge_verdict") == [] for v in verdicts)
    out = capsys.readouterr()
    assert leaks(copy, cache_root() / "judge", texts=(out.out, out.err, caplog.text)) == []
    assert json.loads((copy / "results.json").read_text())["judge"]["base_url"] == public_url(url)


def test_public_url_and_scrub_leave_no_credential():
    url = f"https://{USER}:{PASSWORD}@judge.example:8443/v1?api-key={QUERY_KEY}&api-version=1#x"
    assert public_url(url) == "https://judge.example:8443/v1?api-key=[REDACTED]&api-version=1"
    echoes = [
        f"Incorrect API key provided: {KEY[:-4]}****",
        f"you sent Authorization: Basic {BASIC}",
        f"no route /v1/chat/completions?api-key={QUERY_KEY}",
        f'{{"api_key": "{QUERY_KEY}", "password": "{PASSWORD}"}}',
        f"GET {url}",
    ]
    for text in echoes:
        assert leaks(texts=(scrub(text, [PASSWORD, QUERY_KEY]),)) == [], text
    # An ordinary reply is left as it is.
    assert scrub('{"choice": "B"} uses max_tokens=64 and a basic token limit') == (
        '{"choice": "B"} uses max_tokens=64 and a basic token limit'
    )


# -- replies of any size are read only so far --------------------------------------------------


def _judged_bounded(server, answer, tmp_path) -> tuple[dict, int]:
    """Judge one answer with a cache, measuring the peak Python memory of the judging."""
    judge = Judge("local-judge", server.url, max_retries=0, cache_dir=tmp_path / "cache")
    tracemalloc.start()
    try:
        (verdict,) = judge.judge_all([request(answer)], progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        judge.close()
    return verdict, peak


@pytest.mark.parametrize("answer", ["huge:30000000", "gzip-bomb:67108864"], ids=["30MB", "gzip"])
def test_a_huge_or_compressed_reply_is_refused_within_bounded_memory(server, answer, tmp_path):
    from harness.overriding.scoring import write_rows as write

    verdict, peak = _judged_bounded(server, answer, tmp_path)
    assert verdict["choice"] is None and "was not read further" in verdict["error"]
    assert peak < 24 << 20, f"peak {peak / 2**20:.0f} MiB"
    write(tmp_path / "verdicts.jsonl", [verdict])
    assert (tmp_path / "verdicts.jsonl").stat().st_size < 4000
    assert not (tmp_path / "cache").exists()  # failures are not cached


def test_a_long_reply_is_stored_cut_and_marked(server, tmp_path):
    verdict, _ = _judged_bounded(server, "huge:100000", tmp_path)
    assert verdict["choice"] == "B"
    assert len(verdict["raw"]) < MAX_STORED_REPLY + 100
    assert verdict["raw"].endswith("[truncated: the reply has 100026 characters]")
    assert validate(verdict, "judge_verdict") == []


def test_a_compressed_reply_is_still_read(server, tmp_path):
    verdict, _ = _judged_bounded(server, "gzip-ok", tmp_path)
    assert verdict["choice"] == "C"


def test_a_reply_nested_too_deeply_is_a_failed_verdict_not_a_crash(server, tmp_path):
    verdict, _ = _judged_bounded(server, "deep", tmp_path)
    assert verdict["choice"] is None and "nested too deeply" in verdict["error"]
    assert len(verdict["raw"]) < MAX_STORED_REPLY + 100


def test_a_server_that_drips_its_reply_is_cut_off_at_the_timeout(server):
    judge = Judge("local-judge", server.url, max_retries=0, timeout=1.0)
    start = time.monotonic()
    (verdict,) = judge.judge_all([request("drip")], progress=False)
    assert verdict["choice"] is None and "Timeout" in verdict["error"]
    assert time.monotonic() - start < 6


# -- generations must be the ones the run wrote ------------------------------------------------


def _reseal(folder: Path, rows: list[dict]) -> None:
    """Seal edited rows as the run would: what an editor who recomputes the checksum does."""
    from harness.overriding.scoring import seal_generations

    doc = json.loads((folder / "results.json").read_text())
    seal_generations(folder, "override_text", rows, doc)


def _flip(rows):
    for r in rows:
        r["exact_override"] = not r["exact_override"]
    return rows


def _other_seed(rows):
    return [dict(r, seed=7) if r["seed"] == 1 else r for r in rows]


def _duplicated(rows):
    return rows + rows[:1]


def _dropped(rows):
    return rows[:-1]


def _edited_answer(rows):
    rows[0]["answer"] = rows[0]["override_label"]
    return rows


TAMPERING = {
    "flipped-flags": (_flip, "its rows are not the rows written"),
    "edited-answer": (_edited_answer, "its rows are not the rows written"),
    "duplicated-row": (_duplicated, "repeats item"),
    "dropped-row": (_dropped, "original, seed 1 has 1 rows, original, seed 0 has 2"),
    "other-seed": (_other_seed, "is of seed 7, but the run used seeds 0, 1"),
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_edited_generations_are_refused_naming_the_file(copy, server, how, capsys):
    tamper, why = TAMPERING[how]
    write_rows(copy, tamper(rows_of(copy)))
    asked = server.total()
    assert main(judge_cmd(copy, server)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "generations_override-text.jsonl" in err and why in err
    assert "rerun the generation" in err
    assert server.total() == asked  # nothing was sent to the judge


def test_generations_of_another_run_are_refused(copy, server, capsys):
    proof = copy / "generations_override-text.proof.json"
    doc = json.loads(proof.read_text())
    proof.write_text(json.dumps(dict(doc, run_id="text_examples-0123456789ab")))
    assert main(judge_cmd(copy, server)) == 2
    err = capsys.readouterr().err
    assert "written by run 'text_examples-0123456789ab'" in err and "rerun the generation" in err


def test_generations_without_their_proof_are_refused(copy, server, capsys):
    (copy / "generations_override-text.proof.json").unlink()
    assert main(judge_cmd(copy, server)) == 2
    assert "has no proof beside it" in capsys.readouterr().err


def test_the_generations_the_run_wrote_are_judged(copy, server):
    before = json.loads((copy / "results.json").read_text())
    assert main(judge_cmd(copy, server)) == 0
    after = json.loads((copy / "results.json").read_text())
    assert validate(after, "results") == []
    old, new = before["results"]["override_text"], after["results"]["override_text"]
    assert new["original"]["acc"] == old["original"]["acc"]


def test_flipped_exact_flags_do_not_change_acc(copy, server):
    """Flags flipped and the file sealed again (as someone who knows the checksum would): the
    exact matches are recomputed from the answers and labels, so acc stays."""
    before = json.loads((copy / "results.json").read_text())["results"]["override_text"]
    rows = _flip(rows_of(copy))
    write_rows(copy, rows)
    _reseal(copy, rows)
    assert main(judge_cmd(copy, server)) == 0
    after = json.loads((copy / "results.json").read_text())["results"]["override_text"]
    for field in ("acc", "per_seed", "exact_original", "judge_agreement"):
        assert after["original"][field] == before["original"][field], field


# -- a judge named where nothing is judged ------------------------------------------------------


def test_a_floating_judge_alias_is_refused_on_a_first_token_run(env, tmp_path, capsys):
    args = ["--tasks", "country_capital", "--judge", "gpt-4o", "--model", "hf:/nonexistent"]
    assert main([*args, "--output_path", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "gpt-4o" in err and ("snapshot" in err or "--judge" in err)
