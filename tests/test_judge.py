"""The overriding judge, driven through the real openai client against a local fake server."""

from __future__ import annotations

import hashlib
import json
import logging
import time

import pytest

pytest.importorskip("openai")

from judge_server import FakeOpenAI  # noqa: E402

from benchmark import validate  # noqa: E402
from harness.errors import JudgeConfigError  # noqa: E402
from harness.overriding.judge import DEFAULT_JUDGE, Judge  # noqa: E402
from harness.overriding.verdicts import (  # noqa: E402
    JUDGE_PROMPT,
    JudgeRequest,
    judge_prompt,
    parse_choice,
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
    "content,choice",
    [
        ('{"choice": "A"}', "A"),
        ('  {"choice":"D"}\n', "D"),
        ('```json\n{"choice": "B"}\n```', "B"),
        ('```\n{"choice": "C"}\n```', "C"),
        ('{"choice": "C", "reason": "both"}', "C"),
    ],
)
def test_parse_choice_accepts(content, choice):
    assert parse_choice(content) == choice


@pytest.mark.parametrize(
    "content",
    [
        "B",
        "The answer is B.",
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
def test_parse_choice_refuses(content):
    with pytest.raises(ValueError):
        parse_choice(content)


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
        assert body["response_format"] == {"type": "json_object"}
        assert body["model"] == "local-judge"
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


def test_content_that_does_not_parse_is_retried_then_failed(server):
    verdicts = local_judge(server, max_attempts=3).judge_all(
        [request("not-json"), request("not-json-once")], progress=False
    )
    failed, recovered = verdicts
    assert server.count(prompt_of("not-json")) == 3
    assert failed["choice"] is None and failed["success"] is None
    assert failed["raw"] == "The answer addresses question 2, so B."
    assert failed["error"].startswith("ValueError: the judge's reply is not JSON")
    assert failed["error"].endswith("(after 3 attempts)")
    assert server.count(prompt_of("not-json-once")) == 2
    assert (recovered["choice"], recovered["success"], recovered["error"]) == ("C", True, None)
    assert recovered["raw"] == '{"choice": "C"}'
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
    }
    assert summarize([]) == {
        "n": 0,
        "judged": 0,
        "judge_failures": 0,
        "successes": 0,
        "acc": None,
        "acc_failures_as_misses": None,
    }
    only_failed = summarize([v for v in verdicts if v["choice"] is None])
    assert only_failed["acc"] is None and only_failed["acc_failures_as_misses"] == 0.0


# -- the cache --------------------------------------------------------------------------------


def test_cache_skips_judged_prompts_and_reasks_only_failures(server, tmp_path):
    cache = tmp_path / "judge-cache"
    answers = ["choose:B", "choose:D", "always-500", "not-json"]
    requests = [request(a) for a in answers]
    first = local_judge(server, cache_dir=cache, max_retries=0, max_attempts=2).judge_all(
        requests, progress=False
    )
    counts = {a: server.count(prompt_of(a)) for a in answers}
    assert counts == {"choose:B": 1, "choose:D": 1, "always-500": 1, "not-json": 2}
    assert len(list(cache.glob("*.json"))) == 2  # only the successes

    judge = local_judge(server, cache_dir=cache, max_retries=0, max_attempts=2)
    second = judge.judge_all(requests, progress=False)
    assert {a: server.count(prompt_of(a)) for a in answers} == {
        "choose:B": 1,
        "choose:D": 1,
        "always-500": 2,
        "not-json": 4,
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
    (v,) = local_judge(server).judge_all([request("echo-key-ok")], progress=False)
    assert json.loads(v["raw"])["note"] == "Bearer no-key"


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
        {"max_attempts": 0},
        {"concurrency": 0},
        {"timeout": 0},
        {"max_retries": -1},
    ],
)
def test_bad_settings_are_config_errors(kwargs):
    with pytest.raises(JudgeConfigError):
        Judge(**kwargs)
