"""The LLM judge of the task-overriding study (Luo et al., appendix A.4, Figure 9), through
the official `openai` client: the OpenAI API (a dated snapshot only, never a floating alias) or
any OpenAI-compatible server given by `base_url` (vLLM, llama.cpp, Ollama, `transformers
serve`, Azure). Temperature 0 and a small `max_tokens`; every verdict records the model, the
base_url, the sha256 of the exact prompt and how the reply was read; a failed judgement is
recorded as failed, never filled in. The key is read only from OPENAI_API_KEY and is written
nowhere: every URL and every text from the server is scrubbed first (`redact`). How requests
and replies are bounded: see `Judge`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import logging
import re
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from benchmark.files import write_json_atomic
from benchmark.reading import read_text

from ..errors import JudgeConfigError
from .redact import env_key, public_url, scrub, scrub_logs, split_url, url_secrets
from .verdicts import (
    SUCCESS_CHOICES,
    JudgeRequest,
    clip,
    judge_prompt,
    parse_reply,
    prompt_hash,
)

log = logging.getLogger(__name__)

DEFAULT_JUDGE = "gpt-4o-2024-08-06"
# Used when no base_url is given, so that an OPENAI_BASE_URL in the environment cannot send the
# requests elsewhere while the verdicts say "the OpenAI API".
OPENAI_API_URL = "https://api.openai.com/v1"


def base_url_problem(url: str) -> str | None:
    """Why `url` cannot be a judge server's API root (no http(s) scheme, no host, a bad port,
    a space), or None. Checked before any client is made, so the HTTP client never raises on
    it."""
    url = url.strip()
    if not re.match(r"(?i)https?://", url):
        scheme = url.split("://", 1)[0] + "://" if "://" in url else ""
        return f"uses {scheme}, not http(s)://" if scheme else "has no http:// or https://"
    if any(c.isspace() for c in url):
        return "holds a space"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError as exc:
        return f"is not a URL ({exc})"
    return None if parts.hostname else "names no host"


# Sent to an OpenAI-compatible server when OPENAI_API_KEY is unset (local servers ignore it).
PLACEHOLDER_KEY = "no-key"
# Enough for the verdict ({"choice": "B"} is about 6 tokens, fenced about 12) and a little
# more; without it a server that ignores `response_format` lets a chatty model run on (a
# `transformers serve` generates up to 1024 tokens), and the requests time out.
MAX_TOKENS = 64

# The most of one HTTP reply the judge reads (after decompression): a verdict is a few hundred
# bytes and a /models list tens of kilobytes, so a larger reply is a broken or hostile server,
# refused before it fills memory (a 30 MB reply, a gzip bomb).
MAX_REPLY_BYTES = 4 << 20
# A cached verdict holds a reply cut to a few thousand characters: a larger file is not ours.
MAX_CACHE_ENTRY_BYTES = 1 << 20
# The most of a reply a verdict or the cache stores; a longer one is cut and marked.
MAX_STORED_REPLY = 2000

_DATED = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_MAX_ERROR_CHARS = 500
# Text from the server is cut to this before it is scrubbed (a scrub is linear in its length),
# and to the limits above after, so a secret cut at the first cut is cut off by the second.
_SCRUB_WINDOW = 20_000
_SHOWN_MODELS = 10
# A model named by a local path: absolute, home-relative, ./ or ../, or a Windows drive.
_LOCAL_PATH = re.compile(r"\A(?:[/~]|\.{1,2}[/\\]|[A-Za-z]:[/\\]|\\\\)")


def public_name(model: str) -> str:
    """The judge's name as results record it: a model served from a local path is named by
    the path's last part, never the path (a home folder says who ran it and where, and means
    nothing on another machine). Hub ids ("org/name") and served ids are kept as they are."""
    local = _LOCAL_PATH.match(model) or (
        re.search(r"[/\\]", model) is not None and Path(model).expanduser().exists()
    )
    if not local:
        return model
    return re.split(r"[/\\]", model.rstrip("/\\"))[-1] or model


def stored_reply(raw: str, secrets: Sequence[str | None] = ()) -> str:
    """A reply as a verdict or the cache stores it: scrubbed of secrets, and at most
    MAX_STORED_REPLY characters, a longer one marked as cut (with its full length)."""
    if len(raw) <= MAX_STORED_REPLY:
        return scrub(raw, secrets)
    kept = scrub(raw[: MAX_STORED_REPLY + 200], secrets)[:MAX_STORED_REPLY]
    return f"{kept}... [truncated: the reply has {len(raw)} characters]"


# -- bounded replies ------------------------------------------------------------------------


class _NotRead(Exception):
    """A reply that is not read (too large, encoded oddly, damaged): why, as recorded."""


def _read_bounded(response: Any, limit: int, deadline: float | None) -> bytes:
    """A streamed response's body, decompressed, refused (`_NotRead`) past `limit` bytes read
    or decoded; a body still coming at `deadline` raises the HTTP library's ReadTimeout (the
    client's timeout bounds each read, not a server that drips bytes). Compressed bodies are
    asked not to come; gzip and deflate are decoded in bounded steps all the same."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        decoder = None
    elif encoding in ("gzip", "x-gzip", "deflate"):
        decoder = zlib.decompressobj(wbits=47)  # gzip or zlib framing, found from the header
    else:
        raise _NotRead(f"the judge server sent its reply as {encoding!r}, which is not decoded")
    body = bytearray()
    read = 0
    for chunk in response.iter_raw():
        read += len(chunk)
        if deadline is not None and time.monotonic() > deadline:
            lib = importlib.import_module(type(response.request).__module__.split(".")[0])
            raise lib.ReadTimeout("the reply did not end in time", request=response.request)
        while chunk and decoder is not None:
            try:
                body += decoder.decompress(chunk, limit + 1 - len(body))
            except zlib.error as err:
                raise _NotRead(f"the judge server's {encoding} reply is damaged ({err})") from None
            chunk = decoder.unconsumed_tail if len(body) <= limit else b""
        if decoder is None:
            body += chunk
        if len(body) > limit or read > limit:
            raise _NotRead(
                f"the judge server's reply is over {limit} bytes and was not read further (a "
                f"verdict is a few hundred bytes)"
            )
    if decoder is not None and not decoder.eof:
        raise _NotRead(f"the judge server's {encoding} reply ends early")
    return bytes(body)


@functools.cache
def _bounded_client_class(base: type) -> type:
    """A subclass of the openai client's HTTP client (`openai.DefaultHttpxClient`: httpx or
    httpx2, whichever that openai version uses, with its proxies and defaults) whose replies
    are read by `_read_bounded`. A reply that is not read becomes a 502 that is not retried,
    its reason the error message, so the verdict records it as failed."""

    class BoundedClient(base):  # type: ignore[misc, valid-type]
        max_reply_bytes = MAX_REPLY_BYTES

        def send(self, request: Any, *, stream: bool = False, **kwargs: Any) -> Any:
            if stream:  # the judge never streams; a caller that does reads as it likes
                return super().send(request, stream=True, **kwargs)
            request.headers["Accept-Encoding"] = "identity"
            timeout = (request.extensions.get("timeout") or {}).get("read")
            deadline = time.monotonic() + timeout if timeout else None
            response = super().send(request, stream=True, **kwargs)
            status, headers = response.status_code, response.headers
            try:
                body = _read_bounded(response, self.max_reply_bytes, deadline)
            except _NotRead as err:
                message = {"error": {"message": str(err), "type": "reply_not_read", "code": None}}
                body = json.dumps(message).encode("utf-8")
                status = status if status >= 400 else 502
                headers = {"content-type": "application/json", "x-should-retry": "false"}
            finally:
                response.close()
            drop = ("content-encoding", "content-length", "transfer-encoding")
            items = headers.multi_items() if hasattr(headers, "multi_items") else headers.items()
            kept = [(k, v) for k, v in items if k.lower() not in drop]
            extensions = {
                k: v
                for k, v in response.extensions.items()
                if k in ("http_version", "reason_phrase")
            }
            out = type(response)(
                status,
                headers=kept,
                content=body,
                request=request,
                extensions=extensions,
                history=response.history,
            )
            out.read()
            out._elapsed = response.elapsed  # as the client sets it on a response it reads
            return out

    return BoundedClient


class Outcome(NamedTuple):
    """One prompt's result: `choice` None means failed, with `error` saying why."""

    choice: str | None
    raw: str | None
    parse: str | None
    error: str | None


class Judge:
    """A judge model behind the `openai` client, asked once per distinct prompt.

    Before the first request that is not answered from the cache, one GET /models checks that
    the server serves the model (an unknown model would fail every prompt alike): if not, a
    JudgeConfigError names the models it serves. A name that matches a served id exactly, as
    `name:latest` (Ollama), or as the last part of a served local path (`transformers serve
    /path/to/model`) is accepted. A server without a usable /models is not checked.

    Each prompt is sent once, at temperature 0 with `max_tokens`; the reply is read by
    `parse_reply` (the JSON asked for, or a leading option letter). A reply that does not parse
    is recorded as failed with the reply in `raw`, not asked again: at temperature 0 a re-ask
    returns the same text.

    What bounds the requests, so that they cannot pile up on a slow or hung server:

    1. Each HTTP request is limited to `timeout` seconds (a reply still coming after it is cut
       off, so a server that drips bytes cannot hold a request), and each reply to
       MAX_REPLY_BYTES read and decoded (a larger one, or a gzip bomb, is recorded as failed,
       not retried). The openai client retries a request
       up to `max_retries` times on connection errors, timeouts, 408, 409, 429 and 5xx,
       waiting what `Retry-After` asks (up to 120 s) or backing off exponentially; then the
       verdict is recorded as failed. So a prompt costs at most 1 + `max_retries` requests.
    2. After `stop_after_failures` prompts in a row failed that way (no reply between), the
       server is taken to be down or hung: the prompts not yet sent are recorded as failed
       ("not asked"), not sent. Requests already in flight (at most `concurrency`) finish.
    3. `budget_s` bounds the whole life of the judge, from its first request: after it, the
       prompts not yet sent are recorded as failed ("not asked"), and no request waits longer
       than the time left (at least 1 s).

    401, 403 and 404 (bad key, no access, unknown model or wrong base_url) would fail every
    request alike, so they stop `judge_all` with JudgeConfigError instead of being recorded per
    answer; verdicts already judged stay in the cache.

    The key comes only from OPENAI_API_KEY. With `base_url` the key (or, when unset, a
    placeholder) is sent to that server, as the openai client does; a query in `base_url`
    (`?api-version=...&api-key=...`) is sent with every request. Without `base_url` the
    requests go to https://api.openai.com/v1 (OPENAI_BASE_URL is not consulted). Nothing the
    judge writes or logs holds a secret: URLs are written as `redact.public_url` shows them
    (no user name, password or query value but api-version) and every text from the server
    is scrubbed (`redact.scrub`: the key, even in part, the URL's secrets, credential-shaped
    text); a stored reply keeps at most MAX_STORED_REPLY characters, marked when cut.

    With `cache_dir`, each successful verdict's choice and reply are stored as JSON keyed by
    sha256 of (model, public base_url, prompt); a cached prompt is not sent again, and failures
    are not cached, so a rerun re-asks only what failed.
    """

    def __init__(
        self,
        model: str = DEFAULT_JUDGE,
        base_url: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 2,
        concurrency: int = 8,
        max_tokens: int = MAX_TOKENS,
        stop_after_failures: int = 3,
        budget_s: float | None = 3600.0,
        cache_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise JudgeConfigError(
                f"the judge model is empty; pass a model name, e.g. --judge {DEFAULT_JUDGE}"
            )
        why = base_url_problem(base_url) if base_url else None
        if why:
            raise JudgeConfigError(
                f"--judge_base_url {public_url(base_url.strip())!r} {why}; pass the server's API "
                "root, e.g. http://127.0.0.1:8000/v1"
            )
        base_url = base_url.strip().rstrip("/") if base_url else None
        if base_url is None and not _DATED.search(model):
            raise JudgeConfigError(
                f"judge model {model!r} is a floating alias; pin a dated snapshot such as "
                f"{DEFAULT_JUDGE} (any name is accepted with a base_url for an "
                "OpenAI-compatible server)"
            )
        for name, value, least in (
            ("max_retries", max_retries, 0),
            ("concurrency", concurrency, 1),
            ("max_tokens", max_tokens, 1),
            ("stop_after_failures", stop_after_failures, 1),
        ):
            if not (isinstance(value, int) and value >= least):
                raise JudgeConfigError(f"{name} must be an integer >= {least}, not {value!r}")
        if not timeout > 0:
            raise JudgeConfigError(f"timeout must be > 0 seconds, not {timeout!r}")
        if budget_s is not None and not budget_s > 0:
            raise JudgeConfigError(f"budget_s must be > 0 seconds or None, not {budget_s!r}")
        key = env_key()
        if key is None and base_url is None:
            raise JudgeConfigError(
                "set OPENAI_API_KEY in the environment to use the OpenAI judge (or pass a "
                "base_url for an OpenAI-compatible server)"
            )
        try:
            import openai
        except ImportError as err:
            raise JudgeConfigError(
                "the judge needs the openai package: pip install 'vlm-tv-eval[judge]'"
            ) from err

        self.model = model
        self.name = public_name(model)
        self.base_url = base_url
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.max_tokens = max_tokens
        self.stop_after_failures = stop_after_failures
        self.budget_s = budget_s
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._secrets = [key, *url_secrets(base_url)]
        scrub_logs(self._secrets)
        self._openai = openai
        # Credentials and query go to the client apart from the URL, so that the URL it logs
        # and puts in errors holds neither; the server gets what the whole URL would send.
        root, credentials, query = split_url(base_url or OPENAI_API_URL)
        http_client = _bounded_client_class(openai.DefaultHttpxClient)
        self._client = openai.OpenAI(
            api_key=key or PLACEHOLDER_KEY,
            base_url=root,
            default_query=dict(query) or None,
            timeout=self.timeout,
            max_retries=max_retries,
            http_client=http_client(timeout=self.timeout, auth=credentials),
        )
        self._served_as: str | None = None  # the id requests use, once checked
        self._deadline: float | None = None
        self._lock = threading.Lock()
        self._failures_in_a_row = 0
        self._last_failure = ""

    def __repr__(self) -> str:  # never the key
        return f"Judge(model={self.name!r}, base_url={public_url(self.base_url)!r})"

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def describe(self) -> dict:
        """What judged, for results files: model, temperature and base_url (never the key, a
        local path or a password in the URL)."""
        return {"model": self.name, "temperature": 0, "base_url": public_url(self.base_url)}

    # -- errors -----------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        """Text from the server without the key (even in part), the URL's secrets or anything
        shaped like a credential."""
        return scrub(text, self._secrets)

    def _error_text(self, err: BaseException) -> str:
        message = " ".join(str(err).split())
        # The openai client quotes only an OpenAI-style {"error": {"message"}}; FastAPI servers
        # (`transformers serve`, vLLM's validation) say why in {"detail": ...}.
        body = getattr(err, "body", None)
        detail = body.get("detail") if isinstance(body, Mapping) else None
        if isinstance(detail, (str, list)) and detail:
            message += f" - {' '.join(str(detail).split())}"
        text = f"{type(err).__name__}: {message}" if message else type(err).__name__
        return clip(self._scrub(text[:_SCRUB_WINDOW]), _MAX_ERROR_CHARS)

    def _refused(self, err: BaseException) -> JudgeConfigError:
        return JudgeConfigError(
            f"the judge server refused the request ({self._error_text(err)}); check "
            "OPENAI_API_KEY, the judge model name and the base_url"
        )

    # -- the model --------------------------------------------------------------------------

    def check_model(self) -> None:
        """Check with one GET /models that the server serves the model; raise
        JudgeConfigError naming the served models if not. Done once per judge."""
        if self._served_as is not None:
            return
        openai = self._openai
        where = public_url(self.base_url or OPENAI_API_URL)
        try:
            page = self._client.with_options(max_retries=0).models.list()
            served = [m.id for m in (page.data or []) if isinstance(getattr(m, "id", None), str)]
            unchecked = "it lists no models"
        except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
            raise self._refused(err) from None
        except openai.APITimeoutError as err:  # slow, perhaps busy: the requests will tell
            served, unchecked = [], self._error_text(err)
        except openai.APIConnectionError as err:
            raise JudgeConfigError(
                f"no judge server answers at {where} ({self._error_text(err)}); start it, or "
                "check --judge_base_url"
            ) from None
        except Exception as err:  # no /models (404, 405, 501) or a list the client cannot read
            served, unchecked = [], f"no usable /models: {self._error_text(err)}"
        if not served:
            log.warning("judge model %r is not checked at %s (%s)", self.name, where, unchecked)
            self._served_as = self.model
            return
        by_path = [s for s in served if s != self.model and public_name(s) == self.model]
        if self.model in served:
            self._served_as = self.model
        elif f"{self.model}:latest" in served:
            self._served_as = f"{self.model}:latest"
        elif len(by_path) == 1:
            self._served_as = by_path[0]
        else:
            shown = ", ".join(repr(s) for s in served[:_SHOWN_MODELS])
            more = f" and {len(served) - _SHOWN_MODELS} more" if len(served) > _SHOWN_MODELS else ""
            raise JudgeConfigError(
                f"judge model {self.name!r} is not served at {where}; it serves "
                f"{shown}{more}: pass one of them with --judge"
            )

    # -- cache ------------------------------------------------------------------------------

    def _cache_path(self, prompt: str) -> Path | None:
        if self.cache_dir is None:
            return None
        ident = json.dumps([self.model, public_url(self.base_url), prompt], ensure_ascii=False)
        return self.cache_dir / f"{hashlib.sha256(ident.encode('utf-8')).hexdigest()}.json"

    def _cache_get(self, prompt: str) -> Outcome | None:
        path = self._cache_path(prompt)
        if path is None or not path.is_file():
            return None
        try:
            entry = json.loads(read_text(path, limit=MAX_CACHE_ENTRY_BYTES))
            choice, raw = entry["choice"], entry["raw"]
            parsed, how = parse_reply(raw)
            if parsed != choice:
                raise ValueError("cached choice does not match its reply")
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as err:  # deep nesting
            log.warning("ignoring unreadable judge cache file %s (%s)", path.name, err)
            return None
        return Outcome(choice, raw, how, None)

    def _cache_put(self, prompt: str, outcome: Outcome) -> None:
        """Store a judged prompt, unless its stored reply (scrubbed, cut) no longer reads as
        its choice: `_cache_get` would refuse it, so it is asked again next time."""
        path = self._cache_path(prompt)
        if path is None:
            return
        try:
            readable = parse_reply(outcome.raw or "")[0] == outcome.choice
        except ValueError:
            readable = False
        if readable:
            write_json_atomic(
                path,
                {
                    "model": self.name,
                    "base_url": public_url(self.base_url),
                    "prompt_hash": prompt_hash(prompt),
                    "choice": outcome.choice,
                    "parse": outcome.parse,
                    "raw": outcome.raw,
                },
            )

    # -- asking -----------------------------------------------------------------------------

    def _stop_reason(self) -> str | None:
        """Why no more requests are sent, or None."""
        with self._lock:
            if self._failures_in_a_row >= self.stop_after_failures:
                return (
                    f"the judge stopped after {self._failures_in_a_row} prompts in a row failed "
                    f"(last: {self._last_failure})"
                )
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return f"the judge's time budget of {self.budget_s:g} s ran out"
        return None

    def _ask(self, prompt: str) -> str | None:
        """One reply's content; the openai client retries transport failures inside."""
        timeout = self.timeout
        if self._deadline is not None:
            timeout = min(timeout, max(self._deadline - time.monotonic(), 1.0))
        response = self._client.chat.completions.create(
            model=self._served_as or self.model,
            messages=[{"role": "user", "content": prompt}],
            temperature=0,
            max_tokens=self.max_tokens,
            response_format={"type": "json_object"},
            timeout=timeout,
        )
        if not response.choices:
            raise ValueError("the judge's reply has no choices")
        return response.choices[0].message.content

    def _judge_one(self, prompt: str) -> Outcome:
        openai = self._openai
        stop = self._stop_reason()
        if stop is not None:
            return Outcome(None, None, None, clip(f"not asked: {stop}", _MAX_ERROR_CHARS))
        try:
            raw = self._ask(prompt)
        except (
            openai.AuthenticationError,
            openai.PermissionDeniedError,
            openai.NotFoundError,
        ) as err:
            raise self._refused(err) from None
        except Exception as err:  # the client already retried what is worth retrying
            error = self._error_text(err)
            with self._lock:
                self._failures_in_a_row += 1
                self._last_failure = error
            return Outcome(None, None, None, error)
        with self._lock:
            self._failures_in_a_row = 0
        try:
            choice, how = parse_reply(raw)
        except ValueError as err:  # not re-asked: at temperature 0 the reply would be the same
            stored = stored_reply(raw, self._secrets) if isinstance(raw, str) else None
            return Outcome(None, stored, None, self._error_text(err))
        # Read whole, stored scrubbed and cut: a server echoing the key must not store it.
        return Outcome(choice, stored_reply(raw, self._secrets), how, None)

    def judge_all(self, requests: Sequence[JudgeRequest], progress: bool = True) -> list[dict]:
        """One verdict per request, in the same order.

        Identical prompts are asked once; cached prompts are not asked at all. Requests run on
        `concurrency` threads.
        """
        from tqdm.auto import tqdm

        prompts = [judge_prompt(r.answer, r.question1, r.question2) for r in requests]
        outcomes: dict[str, Outcome] = {}
        todo: list[str] = []
        for prompt in dict.fromkeys(prompts):
            hit = self._cache_get(prompt)
            if hit is not None:
                outcomes[prompt] = hit
            else:
                todo.append(prompt)
        if todo:
            self.check_model()
            if self._deadline is None and self.budget_s is not None:
                self._deadline = time.monotonic() + self.budget_s
            with (
                tqdm(
                    total=len(todo), desc=f"judge {self.name}", unit="answer", disable=not progress
                ) as bar,
                ThreadPoolExecutor(max_workers=min(self.concurrency, len(todo))) as pool,
            ):
                futures = {pool.submit(self._judge_one, p): p for p in todo}
                failed = 0
                try:
                    for future in as_completed(futures):
                        prompt = futures[future]
                        outcome = outcomes[prompt] = future.result()
                        if outcome.choice is not None:
                            self._cache_put(prompt, outcome)
                        else:
                            failed += 1
                            bar.set_postfix(failed=failed)
                        bar.update(1)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
            self._log_summary([outcomes[p] for p in todo])
        return [self._verdict(r, p, outcomes[p]) for r, p in zip(requests, prompts, strict=True)]

    def _log_summary(self, asked: Sequence[Outcome]) -> None:
        judged = [o for o in asked if o.choice is not None]
        counts = {how: sum(1 for o in judged if o.parse == how) for how in ("json", "letter")}
        failed = [o for o in asked if o.choice is None]
        level = logging.WARNING if failed else logging.INFO
        first = f"; first failure: {failed[0].error}" if failed else ""
        log.log(
            level,
            "judge %s: %d of %d prompts judged (%d as JSON, %d by a leading letter), %d failed "
            "(recorded as failed, not cached)%s",
            self.name,
            len(judged),
            len(asked),
            counts["json"],
            counts["letter"],
            len(failed),
            first,
        )

    def _verdict(self, request: JudgeRequest, prompt: str, outcome: Outcome) -> dict:
        return {
            "item_id": request.item_id,
            "task": request.task,
            "method": request.method,
            "seed": request.seed,
            "judge": {
                "model": self.name,
                "temperature": 0,
                "prompt_hash": prompt_hash(prompt),
                "base_url": public_url(self.base_url),
            },
            "answer": request.answer,
            "choice": outcome.choice,
            "success": None if outcome.choice is None else outcome.choice in SUCCESS_CHOICES,
            "parse": outcome.parse,
            "raw": outcome.raw,
            "error": outcome.error,
        }
