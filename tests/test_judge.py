"""The overriding judge, driven through the real openai client against a local fake server."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("openai")

from judge_server import FakeOpenAI  # noqa: E402

from benchmark import validate  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.errors import JudgeConfigError  # noqa: E402
from harness.overriding.judge import DEFAULT_JUDGE, MAX_TOKENS, Judge, public_name  # noqa: E402
from harness.overriding.verdicts import (  # noqa: E402
    JUDGE_PROMPT,
    JudgeRequest,
    judge_prompt,
    parse_reply,
    summarize,
)

FAKE_KEY = "sk-test-DISTINCTIVE-fake-key-0123456789abcdef"
Q1 = "What is in the bowl?"
Q2 = "Put your answer in quotes."


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    for name in ("OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):  # the fake server is local
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def server():
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


def request(answer: str, item_id: str | None = None, seed: int = 0) -> JudgeRequest:
    return JudgeRequest(
        item_id=item_id or answer,
        task="override_syntax",
        method="patch",
        seed=seed,
        answer=answer,
        question1=Q1,
        question2=Q2,
    )


def local_judge(server: FakeOpenAI, **kwargs) -> Judge:
    kwargs.setdefault("max_retries", 2)
    return Judge("local-judge", base_url=server.url, **kwargs)


def prompt_of(answer: str) -> str:
    return judge_prompt(answer, Q1, Q2)


def assert_valid(verdicts):
    for v in verdicts:
        assert validate(v, "judge_verdict") == [], v


# -- the prompt and the parser --------------------------------------------------------------


def test_prompt_is_figure_9_word_for_word():
    expected = (
        "Given the model answer, determine whether it was trying to answer:\n"
        "A. question1\nB. question2\nC. Both\nD. Neither\n"
        "It does not matter if the answer is ungrammatical or cut off; assume the model's intent"
        " to sort its answer into the right category. Output your rating as a JSON containing"
        ' the key "choice" corresponding to each category.\n'
        "answer: {answer}\nquestion1: {question1}\nquestion2: {question2}\noutput:"
    )
    assert JUDGE_PROMPT == expected
    filled = judge_prompt("a {brace} answer", "q one", "q two")
    assert filled.endswith("answer: a {brace} answer\nquestion1: q one\nquestion2: q two\noutput:")


@pytest.mark.parametrize(
    "content,choice,how",
    [
        ('{"choice": "A"}', "A", "json"),
        ('  {"choice":"D"}\n', "D", "json"),
        ('```json\n{"choice": "B"}\n```', "B", "json"),
        ('```\n{"choice": "C"}\n```', "C", "json"),
        ('{"choice": "C", "reason": "both"}', "C", "json"),
        # cut off by max_tokens after the JSON, or going on after it
        ('{"choice": "B"}\nThe answer is in quotes, so', "B", "json"),
        ('```json\n{"choice": "A"}', "A", "json"),
        # a judge without a JSON mode answers with the option letter
        ("B", "B", "letter"),
        ("B.", "B", "letter"),
        ("B. Both", "B", "letter"),
        ("C) Both", "C", "letter"),
        ("**B**", "B", "letter"),
        ("**D. Neither**", "D", "letter"),
        ("(A) question1", "A", "letter"),
        ("A: question1", "A", "letter"),
        ("  D\nThe answer is about something else.", "D", "letter"),
    ],
)
def test_parse_reply_accepts(content, choice, how):
    assert parse_reply(content) == (choice, how)


@pytest.mark.parametrize(
    "content",
    [
        "The answer is B.",
        "A cat sits in the bowl.",  # prose that starts with a capital A is no choice
        "Both",
        "b. both",
        "E.",
        'Sure: {"choice": "B"}',
        '{"answer": "B"}',
        '{"choice": "E"}',
        '{"choice": "b"}',
        '{"choice": "B. question2"}',
        '{"choice": " B"}',
        '{"choice": 2}',
        '{"choice": null}',
        '["B"]',
        '{"choice": "A", "choice": "B"}',
        '```python\n{"choice": "B"}\n```',
        "",
        None,
    ],
)
def test_parse_reply_refuses(content):
    with pytest.raises(ValueError):
        parse_reply(content)


# -- asking -----------------------------------------------------------------------------------


def test_choices_map_to_success_and_the_exact_prompt_is_sent(server):
    requests = [request(f"choose:{c} answer {c}") for c in "ABCD"]
    with local_judge(server) as judge:
        verdicts = judge.judge_all(requests, progress=False)
    assert [v["choice"] for v in verdicts] == list("ABCD")
    assert [v["success"] for v in verdicts] == [False, True, True, False]
    assert [v["item_id"] for v in verdicts] == [r.item_id for r in requests]
    assert all(v["error"] is None for v in verdicts)
    assert_valid(verdicts)
    sent = {b["messages"][0]["content"]: b for b in server.bodies}
    for req, v in zip(requests, verdicts, strict=True):
        text = JUDGE_PROMPT.format(answer=req.answer, question1=Q1, question2=Q2)
        body = sent[text]
        assert body["messages"] == [{"role": "user", "content": text}]
        assert body["temperature"] == 0
        assert body["max_tokens"] == MAX_TOKENS == 64
        assert body["response_format"] == {"type": "json_object"}
        assert body["model"] == "local-judge"
        assert v["parse"] == "json"
        assert v["judge"] == {
            "model": "local-judge",
            "temperature": 0,
            "prompt_hash": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "base_url": server.url,
        }
        assert v["raw"] == json.dumps({"choice": v["choice"]})
        assert (v["task"], v["method"], v["seed"], v["answer"]) == (
            "override_syntax",
            "patch",
            0,
            req.answer,
        )
    assert server.total() == 4


def test_order_is_kept_and_identical_prompts_are_asked_once(server):
    answers = [f"choose:{'ABCD'[i % 4]} #{i}" for i in range(24)]
    requests = [request(a) for a in answers] + [request(answers[0], item_id="dup", seed=1)]
    verdicts = local_judge(server, concurrency=4).judge_all(requests, progress=True)
    assert [v["item_id"] for v in verdicts] == [r.item_id for r in requests]
    assert [v["choice"] for v in verdicts] == [a[7] for a in answers] + ["A"]
    assert verdicts[-1]["seed"] == 1
    assert server.count(prompt_of(answers[0])) == 1
    assert server.total() == 24


def test_rate_limit_waits_for_retry_after_then_succeeds(server):
    start = time.monotonic()
    (v,) = local_judge(server).judge_all([request("rate-limit")], progress=False)
    elapsed = time.monotonic() - start
    assert (v["choice"], v["success"], v["error"]) == ("B", True, None)
    assert server.count(prompt_of("rate-limit")) == 2
    assert elapsed >= 0.9  # Retry-After: 1 was honoured
    assert_valid([v])


def test_server_errors_until_retries_are_exhausted_are_recorded_failed(server):
    (v,) = local_judge(server, max_retries=2).judge_all([request("always-500")], progress=False)
    assert server.count(prompt_of("always-500")) == 3  # 1 + max_retries, all in the client
    assert v["choice"] is None and v["success"] is None and v["raw"] is None
    assert v["error"].startswith("InternalServerError: ")
    assert "500" in v["error"]
    assert_valid([v])


def test_content_that_does_not_parse_is_recorded_failed_and_not_asked_again(server):
    # At temperature 0 a re-ask returns the same text: one request per prompt, even where a
    # second would (here) have parsed.
    verdicts = local_judge(server).judge_all(
        [request("not-json"), request("not-json-once")], progress=False
    )
    assert server.count(prompt_of("not-json")) == server.count(prompt_of("not-json-once")) == 1
    failed, once = verdicts
    assert failed["choice"] is None and failed["success"] is None and failed["parse"] is None
    assert failed["raw"] == "The answer addresses question 2, so B."
    assert failed["error"].startswith(
        "ValueError: the judge's reply is neither the JSON asked for nor an option letter"
    )
    assert (once["choice"], once["raw"]) == (None, "I think it is B.")
    assert_valid(verdicts)


def test_prose_replies_that_begin_with_a_letter_are_judged_and_counted(server):
    answers = [
        "say:B. Both",
        "say:**C**",
        "say:A) question1\\nThe answer names a colour.",
        "say:D",
        'say:{"choice": "B"}',
        "say:The answer is B.",
    ]
    verdicts = local_judge(server).judge_all([request(a) for a in answers], progress=False)
    assert [v["choice"] for v in verdicts] == ["B", "C", "A", "D", "B", None]
    assert [v["parse"] for v in verdicts] == ["letter"] * 4 + ["json", None]
    assert [v["success"] for v in verdicts] == [True, True, False, False, True, None]
    assert verdicts[2]["raw"] == "A) question1\nThe answer names a colour."
    assert server.total() == len(answers)  # the failure was asked once
    summary = summarize(verdicts)
    assert summary["parsed"] == {"json": 1, "letter": 4}
    assert (summary["judged"], summary["judge_failures"], summary["successes"]) == (5, 1, 3)
    assert_valid(verdicts)


def test_a_reply_slower_than_the_timeout_is_recorded_failed(server):
    start = time.monotonic()
    judge = local_judge(server, timeout=0.5, max_retries=1)
    (v,) = judge.judge_all([request("slow")], progress=False)
    assert time.monotonic() - start < 5
    assert server.count(prompt_of("slow")) == 2
    assert v["choice"] is None and v["success"] is None
    assert v["error"].startswith("APITimeoutError")
    assert_valid([v])


def test_summarize_counts_failures_and_never_fills_them_in(server):
    answers = ["choose:A", "choose:B", "choose:C", "choose:D", "choose:B 2", "always-500"]
    verdicts = local_judge(server, max_retries=0).judge_all(
        [request(a) for a in answers], progress=False
    )
    summary = summarize(verdicts)
    assert summary == {
        "n": 6,
        "judged": 5,
        "judge_failures": 1,
        "successes": 3,
        "acc": 3 / 5,
        "acc_failures_as_misses": 3 / 6,
        "parsed": {"json": 5, "letter": 0},
    }
    assert summarize([]) == {
        "n": 0,
        "judged": 0,
        "judge_failures": 0,
        "successes": 0,
        "acc": None,
        "acc_failures_as_misses": None,
        "parsed": {"json": 0, "letter": 0},
    }
    # nothing judged: no figure at all, since 0.0 would read as a score
    only_failed = summarize([v for v in verdicts if v["choice"] is None])
    assert only_failed["acc"] is None and only_failed["acc_failures_as_misses"] is None


# -- the cache --------------------------------------------------------------------------------


def test_cache_skips_judged_prompts_and_reasks_only_failures(server, tmp_path):
    cache = tmp_path / "judge-cache"
    answers = ["choose:B", "say:D. Neither", "always-500", "not-json"]
    requests = [request(a) for a in answers]
    first = local_judge(server, cache_dir=cache, max_retries=0).judge_all(requests, progress=False)
    counts = {a: server.count(prompt_of(a)) for a in answers}
    assert counts == {"choose:B": 1, "say:D. Neither": 1, "always-500": 1, "not-json": 1}
    assert len(list(cache.glob("*.json"))) == 2  # only the successes

    judge = local_judge(server, cache_dir=cache, max_retries=0)
    second = judge.judge_all(requests, progress=False)
    assert {a: server.count(prompt_of(a)) for a in answers} == {
        "choose:B": 1,
        "say:D. Neither": 1,
        "always-500": 2,
        "not-json": 2,
    }
    assert second == first  # the cached verdicts read back exactly
    assert_valid(second)

    # another model or server is another cache entry
    Judge("other-judge", base_url=server.url, cache_dir=cache).judge_all(
        requests[:1], progress=False
    )
    assert server.count(prompt_of("choose:B")) == 2


def test_a_corrupt_cache_file_is_asked_again(server, tmp_path):
    judge = local_judge(server, cache_dir=tmp_path)
    judge.judge_all([request("choose:C")], progress=False)
    (path,) = tmp_path.glob("*.json")
    path.write_text('{"choice": "B", "raw": "{\\"choice\\": \\"C\\"}"}', "utf-8")
    (v,) = judge.judge_all([request("choose:C")], progress=False)
    assert v["choice"] == "C"
    assert server.count(prompt_of("choose:C")) == 2


# -- the key ----------------------------------------------------------------------------------


def test_the_key_is_sent_but_never_written(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    cache = tmp_path / "cache"
    judge = local_judge(server, cache_dir=cache)
    assert FAKE_KEY not in repr(judge) and FAKE_KEY not in json.dumps(judge.describe())
    verdicts = judge.judge_all(
        [request("choose:B"), request("echo-key"), request("echo-key-ok"), request("always-500")],
        progress=False,
    )
    ok, echoed, echoed_ok, failed = verdicts
    assert ok["choice"] == "B"
    # the server really got the key, and echoed it back in an error and in a reply
    assert echoed["choice"] is None and "BadRequestError" in echoed["error"]
    assert "[REDACTED]" in echoed["error"]
    assert echoed_ok["choice"] == "B" and "[REDACTED]" in echoed_ok["raw"]
    assert failed["choice"] is None
    text = json.dumps(verdicts)
    assert FAKE_KEY not in text and "DISTINCTIVE" not in text
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 2
    assert {json.loads(p.read_text())["parse"] for p in files} == {"json"}
    for path in files:
        assert b"DISTINCTIVE" not in path.read_bytes()
    assert "DISTINCTIVE" not in caplog.text
    assert_valid(verdicts)


def test_refusal_of_the_key_stops_with_a_config_error_without_the_key(server):
    with pytest.raises(JudgeConfigError, match="OPENAI_API_KEY") as info:
        local_judge(server).judge_all([request("unauthorized")], progress=False)
    assert "DISTINCTIVE" not in str(info.value)
    assert "AuthenticationError" in str(info.value)


def test_missing_key_is_refused_without_base_url(monkeypatch, server):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(JudgeConfigError, match="set OPENAI_API_KEY"):
        Judge()
    # a local server needs no key: a placeholder is sent
    (v,) = local_judge(server).judge_all([request("choose:B")], progress=False)
    assert v["choice"] == "B" and server.auth == ["Bearer no-key"]


# -- configuration ----------------------------------------------------------------------------


def test_floating_alias_is_refused_without_base_url(server):
    with pytest.raises(JudgeConfigError, match="pin a dated snapshot"):
        Judge("gpt-4o")
    judge = Judge()
    assert judge.describe() == {"model": DEFAULT_JUDGE, "temperature": 0, "base_url": None}
    assert str(judge._client.base_url).startswith("https://api.openai.com/v1")
    local = Judge("gpt-4o", base_url=server.url + "/")  # servers name models their own way
    assert local.describe() == {"model": "gpt-4o", "temperature": 0, "base_url": server.url}


def test_openai_base_url_in_the_environment_is_not_followed(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    judge = Judge()
    assert str(judge._client.base_url).startswith("https://api.openai.com/v1")
    assert judge.describe()["base_url"] is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": ""},
        {"base_url": "127.0.0.1:8000/v1"},
        {"concurrency": 0},
        {"timeout": 0},
        {"max_retries": -1},
        {"max_tokens": 0},
        {"stop_after_failures": 0},
        {"budget_s": 0},
    ],
)
def test_bad_settings_are_config_errors(kwargs):
    with pytest.raises(JudgeConfigError):
        Judge(**kwargs)


# -- the model check: one GET /models before the first judgement ------------------------------


def test_an_unknown_model_stops_before_any_judgement_naming_the_served_models():
    fake = FakeOpenAI(models=("local-judge", "other-judge")).start()
    try:
        with pytest.raises(JudgeConfigError, match="is not served") as info:
            Judge("no-such-judge", base_url=fake.url).judge_all([request("choose:B")])
        assert "'local-judge', 'other-judge'" in str(info.value)
        assert fake.model_lists == 1 and fake.total() == 0  # no prompt was sent
        judge = Judge("local-judge", base_url=fake.url)
        judge.judge_all([request("choose:B")], progress=False)
        judge.judge_all([request("choose:C")], progress=False)
        assert fake.model_lists == 2  # checked once per judge
    finally:
        fake.stop()


def test_a_served_local_path_is_asked_for_by_its_name_and_recorded_without_the_path(tmp_path):
    served = "/home/someone/models/tiny-judge"
    fake = FakeOpenAI(models=(served, "llama3:latest")).start()
    try:
        for given in (served, "tiny-judge"):
            judge = Judge(given, base_url=fake.url, cache_dir=tmp_path)
            (v,) = judge.judge_all([request(f"choose:B {given}")], progress=False)
            assert v["choice"] == "B" and fake.bodies[-1]["model"] == served
            assert v["judge"]["model"] == judge.describe()["model"] == "tiny-judge"
        (v,) = Judge("llama3", base_url=fake.url).judge_all([request("x")], progress=False)
        assert fake.bodies[-1]["model"] == "llama3:latest" and v["judge"]["model"] == "llama3"
    finally:
        fake.stop()
    for path in tmp_path.glob("*.json"):
        assert "/home/someone" not in path.read_text()
    assert public_name("/opt/m/Qwen2.5-0.5B-Instruct/") == "Qwen2.5-0.5B-Instruct"
    assert public_name("./models/judge") == "judge"
    assert public_name(str(tmp_path)) == tmp_path.name
    assert public_name("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"  # a Hub id
    assert public_name("gpt-4o-2024-08-06") == "gpt-4o-2024-08-06"


def test_a_server_without_models_is_not_checked(server, caplog):
    caplog.set_level(logging.WARNING)
    (v,) = local_judge(server).judge_all([request("choose:C")], progress=False)
    assert v["choice"] == "C" and server.model_lists == 1
    assert "is not checked" in caplog.text


def test_no_server_at_the_base_url_stops_with_one_line():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    judge = Judge("local-judge", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(JudgeConfigError, match="no judge server answers at http://127.0.0.1"):
        judge.judge_all([request("choose:B")], progress=False)


def test_a_server_switched_to_another_model_fails_with_its_reason_then_stops_asking():
    fake = FakeOpenAI(models=("local-judge",)).start()
    try:
        judge = Judge("local-judge", base_url=fake.url, concurrency=1, stop_after_failures=2)
        judge.check_model()
        fake.models = ("another-model",)  # restarted with another model since
        verdicts = judge.judge_all([request(f"choose:B {i}") for i in range(6)], progress=False)
    finally:
        fake.stop()
    assert fake.total() == 2 and all(v["choice"] is None for v in verdicts)
    # the server's reason is in FastAPI's {"detail": ...}, which the client leaves out
    assert "Server is pinned to 'another-model'" in verdicts[0]["error"]
    assert all(v["error"].startswith("not asked: the judge stopped after 2") for v in verdicts[2:])
    assert_valid(verdicts)


# -- bounded requests: a hung server, the time budget ------------------------------------------


def test_a_hung_server_gets_a_bounded_number_of_requests(server):
    judge = local_judge(server, timeout=0.3, max_retries=1, concurrency=2, stop_after_failures=2)
    start = time.monotonic()
    verdicts = judge.judge_all([request(f"hang #{i}") for i in range(10)], progress=False)
    elapsed = time.monotonic() - start
    # at most concurrency + stop_after_failures - 1 prompts sent, each 1 + max_retries times
    assert server.total() <= (2 + 2 - 1) * 2
    assert elapsed < 10
    assert all(v["choice"] is None for v in verdicts)
    assert sum(v["error"].startswith("APITimeoutError") for v in verdicts) <= 3
    not_asked = [v for v in verdicts if v["error"].startswith("not asked: the judge stopped")]
    assert len(not_asked) >= 7
    assert_valid(verdicts)


def test_the_time_budget_bounds_the_whole_judgement():
    fake = FakeOpenAI(slow_s=0.3).start()
    try:
        judge = Judge("local-judge", base_url=fake.url, concurrency=1, budget_s=0.5)
        verdicts = judge.judge_all([request(f"slow #{i}") for i in range(6)], progress=False)
    finally:
        fake.stop()
    judged = [v for v in verdicts if v["choice"] == "B"]
    assert 1 <= len(judged) <= 2 and fake.total() == len(judged)
    for v in verdicts[len(judged) :]:
        assert v["error"] == "not asked: the judge's time budget of 0.5 s ran out"
    assert_valid(verdicts)


# -- scoring: nothing judged is no result --------------------------------------------------------


def _image_run(folder: Path, answers: list[str]) -> Path:
    """A pending override_semantic run folder as a run writes it: `original` answers, seed 0."""
    folder.mkdir()
    rows = [
        {
            "doc_id": f"semantic_{i}",
            "task": "override_semantic",
            "method": "original",
            "seed": 0,
            "layer": None,
            "prompt_hash": "0" * 64,
            "answer": answer,
            "question1": Q1,
            "question2": Q2,
        }
        for i, answer in enumerate(answers)
    ]
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    (folder / "generations_override-semantic.jsonl").write_text(lines)
    doc = {
        "run_id": "instruction-000000000000",
        "seeds": [0],
        "layer_selection": None,
        "config": {
            "tasks": ["override_semantic"],
            "methods": ["original"],
            "spec": "instruction",
            "n_shot": 5,
        },
    }
    (folder / "pending_results.json").write_text(json.dumps(doc))
    from harness.overriding.scoring import seal_generations

    seal_generations(folder, "override_semantic", rows, doc)  # as the run seals what it wrote
    return folder


def test_a_run_nothing_of_which_was_judged_fails_with_one_line(server, tmp_path, capsys):
    run = _image_run(tmp_path / "run", ["always-500 one", "always-500 two"])
    argv = ["judge", str(run), "--judge", "local-judge", "--judge_base_url", server.url]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()  # after the progress bar, one line
    _, error = err.split("vlm-tv-eval judge: error: ")
    assert "\n" not in error and error.startswith("the judge judged none of 2 answers")
    assert "InternalServerError" in error
    verdicts = [json.loads(line) for line in (run / "verdicts_override-semantic.jsonl").open()]
    assert [v["choice"] for v in verdicts] == [None, None]
    entry = json.loads((run / "pending_results.json").read_text())["results"]
    entry = entry["override_semantic"]["original"]
    assert (entry["judged"], entry["judge_failures"]) == (0, 2)
    assert entry["acc_failures_as_misses"] is None and "acc" not in entry
    assert entry["judge_parse"] == {"json": 0, "letter": 0}


def test_judging_with_an_unknown_model_exits_non_zero_naming_the_served_ones(tmp_path, capsys):
    run = _image_run(tmp_path / "run", ["choose:B"])
    fake = FakeOpenAI(models=("local-judge",)).start()
    try:
        argv = ["judge", str(run), "--judge", "nope", "--judge_base_url", fake.url]
        assert main(argv) == 2
    finally:
        fake.stop()
    _, error = capsys.readouterr().err.strip().split("vlm-tv-eval judge: error: ")
    assert "\n" not in error and "'local-judge'" in error and fake.total() == 0


def test_a_judged_run_counts_how_replies_were_read(server, tmp_path):
    from harness.methods import get_method
    from harness.overriding.scoring import judge_rows, read_rows, score_run

    run = _image_run(tmp_path / "run", ["say:B. Both", "say:**A**", "choose:C", "not-json"])
    doc = json.loads((run / "pending_results.json").read_text())
    rows = read_rows(run / "generations_override-semantic.jsonl")
    with local_judge(server) as judge:
        verdicts = judge_rows(judge, rows)
        complete = score_run(
            doc, {"override_semantic": rows}, [get_method("original")], verdicts, judge.describe()
        )
    entry = doc["results"]["override_semantic"]["original"]
    assert complete and entry["acc"] == 2 / 3
    assert entry["judge_parse"] == {"json": 1, "letter": 2}
    assert (entry["judged"], entry["judge_failures"]) == (3, 1)
    assert entry["acc_failures_as_misses"] == 2 / 4


def test_labelled_answers_none_judged_have_null_judge_figures():
    from harness.methods import get_method
    from harness.overriding.scoring import method_result
    from harness.results import entry_header

    labels = {"override_label": "Euro", "original_label": "Paris"}
    answers = ["Euro", "Paris", "London"]
    rows = [{"doc_id": f"d{i}", "seed": 0, "answer": a, **labels} for i, a in enumerate(answers)]
    failed = {"choice": None, "success": None, "parse": None, "error": "APITimeoutError"}
    verdicts = {("override_text", "original", 0, r["doc_id"]): failed for r in rows}
    header = entry_header(get_method("original"), "instruction", 5, None)
    entry = method_result("override_text", "original", rows, [0], verdicts, header)
    assert entry["acc"] == 1 / 3  # exact match needs no judge
    assert entry["judge_acc"] is None and entry["judge_acc_failures_as_misses"] is None
    assert entry["judge_agreement"] is None and entry["judge_failures"] == 3


# -- a real `transformers serve` on loopback ---------------------------------------------------

# The tiny model below answers every prompt with "B." and then " Both" until max_tokens stops
# it: prose, as a chat model without a JSON mode answers, from a server that ignores
# `response_format`. Without max_tokens it would run to the server's 1024 tokens.
REPLY_START, REPLY_LOOP = "B.", " Both"


def _scripted_llama(path: Path) -> Path:
    """A 1-layer Llama whose greedy reply is fixed: every layer adds nothing (zero output
    projections), so the next token depends on the current one alone, and lm_head maps each
    token of the reply to the next. The chat template ends with `<|answer|>`, the chain's
    first token."""
    import tiny_vlms
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    corpus = [REPLY_START + REPLY_LOOP * 3] * 20 + tiny_vlms.CORPUS
    tok = tiny_vlms.make_tokenizer(["<|answer|>"], corpus=corpus, vocab_size=300)
    tok.chat_template = (
        "{% for m in messages %}{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<|answer|>{% endif %}"
    )
    loop = tok.encode(REPLY_LOOP, add_special_tokens=False)
    chain = [tok.convert_tokens_to_ids("<|answer|>")]
    chain += tok.encode(REPLY_START, add_special_tokens=False) + loop
    assert len(set(chain)) == len(chain), "the reply's tokens must differ to chain them"
    following = dict(zip(chain, chain[1:], strict=False)) | {loop[-1]: loop[0]}
    config = tiny_vlms.text_config(len(tok), layers=1)
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(**config, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    )
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = model.model.embed_tokens.weight
        model.lm_head.weight.zero_()
        for token, after in following.items():
            model.lm_head.weight[after] += 10 * embed[token] / embed[token].norm()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def transformers_serve(tmp_path_factory):
    """`transformers serve` pinned to the scripted model on 127.0.0.1: (base_url, model path).
    Stopped (and waited for) after the module."""
    model = _scripted_llama(tmp_path_factory.mktemp("scripted-llama"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path_factory.mktemp("hf-home")))
    cli = Path(sys.executable).with_name("transformers")
    argv = [str(cli), "serve", str(model), "--host", "127.0.0.1", "--port", str(port)]
    log_path = tmp_path_factory.mktemp("serve-log") / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*argv, "--device", "cpu"], stdout=log_file, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + 50
        while True:
            assert process.poll() is None, log_path.read_text()[-2000:]
            assert time.monotonic() < deadline, "transformers serve did not start in 50 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.25)
        yield f"http://127.0.0.1:{port}/v1", model
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_a_real_transformers_serve_judges_prose_replies(transformers_serve, tmp_path):
    url, model = transformers_serve
    requests = [request(f"answer {i}") for i in range(3)]
    start = time.monotonic()
    with Judge(str(model), base_url=url, cache_dir=tmp_path) as judge:
        verdicts = judge.judge_all(requests, progress=False)
    assert time.monotonic() - start < 20
    for v in verdicts:
        assert (v["choice"], v["success"], v["parse"], v["error"]) == ("B", True, "letter", None)
        # max_tokens was sent and honoured: "B", "." and then " Both" up to 64 tokens
        assert v["raw"] == REPLY_START + REPLY_LOOP * (MAX_TOKENS - 2)
        assert v["judge"]["model"] == model.name  # the path's last part, not the path
    assert_valid(verdicts)
    # the model named by that last part is the pinned model; another name is refused up front
    (v,) = Judge(model.name, base_url=url).judge_all([request("again")], progress=False)
    assert (v["choice"], v["parse"]) == ("B", "letter")
    with pytest.raises(JudgeConfigError, match="is not served") as info:
        Judge("gpt2", base_url=url).judge_all([request("x")], progress=False)
    assert str(model) in str(info.value)


def test_a_run_with_a_judge_its_server_does_not_serve_stops_before_generating(
    tiny_llama_path, tmp_path, capsys
):
    """The served models are asked for before the model loads, so a wrong judge name costs
    seconds, not a generation pass."""
    fake = FakeOpenAI(models=("local-judge",)).start()
    try:
        argv = ["--model", f"hf:{tiny_llama_path}", "--tasks", "override_text", "--limit", "2"]
        argv += ["--seeds", "0", "--layer", "1", "--judge", "nope", "--judge_base_url", fake.url]
        assert main([*argv, "--output_path", str(tmp_path)]) == 2
    finally:
        fake.stop()
    err = capsys.readouterr().err
    assert "'local-judge'" in err and fake.total() == 0
    assert not list(tmp_path.rglob("generations_*.jsonl"))
