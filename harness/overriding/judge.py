"""The LLM judge of the task-overriding study (Luo et al., appendix A.4, Figure 9), through
the official `openai` client: the OpenAI API (a dated snapshot only, never a floating alias) or
any OpenAI-compatible server (vLLM, llama.cpp, Ollama, Azure) given by `base_url`. Temperature 0;
every verdict records the model, the base_url and the sha256 of the exact prompt; a failed
judgement is recorded as failed, never filled in. The key is read only from OPENAI_API_KEY and
is written nowhere (error text is scrubbed). Retries happen in two layers; see `Judge`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from benchmark.files import write_json_atomic

from ..errors import JudgeConfigError
from .verdicts import (
    SUCCESS_CHOICES,
    JudgeRequest,
    clip,
    judge_prompt,
    parse_choice,
    prompt_hash,
)

log = logging.getLogger(__name__)

DEFAULT_JUDGE = "gpt-4o-2024-08-06"
# Used when no base_url is given, so that an OPENAI_BASE_URL in the environment cannot send the
# requests elsewhere while the verdicts say "the OpenAI API".
OPENAI_API_URL = "https://api.openai.com/v1"
# Sent to an OpenAI-compatible server when OPENAI_API_KEY is unset (local servers ignore it).
PLACEHOLDER_KEY = "no-key"

_DATED = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_MAX_ERROR_CHARS = 500
_REDACTED = "[REDACTED]"
# Scrubbed from error text besides the key itself: bearer tokens and OpenAI-style secret keys.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)\S+"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),
)


class Judge:
    """A judge model behind the `openai` client, asked once per distinct prompt.

    Retries happen in two layers (as read in the installed openai 3.54, `_base_client.py`):

    1. The openai client retries each HTTP request up to `max_retries` times on connection
       errors, timeouts (each attempt limited by `timeout` seconds), 408, 409, 429 and every
       5xx (and whenever the server sends `x-should-retry: true`). Before a retry it waits what
       the server asks in `retry-after-ms` or `Retry-After` (seconds or an HTTP date) when that
       is more than 0 and at most 120 s; otherwise (no header, or 0) exponential backoff, 0.5 s
       doubling to at most 8 s, less up to 25% jitter. A Retry-After above 120 s is not
       retried. When the client gives up it raises (APIStatusError, APITimeoutError,
       APIConnectionError) and the verdict is recorded as failed; this layer does not repeat
       what the client already retried.
    2. This class re-asks when a reply arrives but its content does not parse (`parse_choice`
       raises): `max_attempts` replies in total, then the verdict is recorded as failed with the
       last reply in `raw`.

    401, 403 and 404 (bad key, no access, unknown model or wrong base_url) would fail every
    request alike, so they stop `judge_all` with JudgeConfigError instead of being recorded per
    answer; verdicts already judged stay in the cache.

    The key comes only from OPENAI_API_KEY. With `base_url` the key (or, when unset, a
    placeholder) is sent to that server, as the openai client does. Without `base_url` the
    requests go to https://api.openai.com/v1 (OPENAI_BASE_URL is not consulted).

    With `cache_dir`, each successful verdict's choice and reply are stored as JSON keyed by
    sha256 of (model, base_url, prompt); a cached prompt is not sent again, and failures are not
    cached, so a rerun re-asks only what failed.
    """

    def __init__(
        self,
        model: str = DEFAULT_JUDGE,
        base_url: str | None = None,
        *,
        timeout: float = 60.0,
        max_attempts: int = 3,
        concurrency: int = 8,
        cache_dir: str | Path | None = None,
        max_retries: int = 5,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise JudgeConfigError(
                f"the judge model is empty; pass a model name, e.g. --judge {DEFAULT_JUDGE}"
            )
        base_url = base_url.strip().rstrip("/") if base_url else None
        if base_url is not None and not re.match(r"(?i)https?://", base_url):
            raise JudgeConfigError(
                f"judge base_url {base_url!r} is not an http(s) URL; pass the server's API root, "
                "e.g. http://127.0.0.1:8000/v1"
            )
        if base_url is None and not _DATED.search(model):
            raise JudgeConfigError(
                f"judge model {model!r} is a floating alias; pin a dated snapshot such as "
                f"{DEFAULT_JUDGE} (any name is accepted with a base_url for an "
                "OpenAI-compatible server)"
            )
        if not (isinstance(max_attempts, int) and max_attempts >= 1):
            raise JudgeConfigError(f"max_attempts must be an integer >= 1, not {max_attempts!r}")
        if not (isinstance(max_retries, int) and max_retries >= 0):
            raise JudgeConfigError(f"max_retries must be an integer >= 0, not {max_retries!r}")
        if not (isinstance(concurrency, int) and concurrency >= 1):
            raise JudgeConfigError(f"concurrency must be an integer >= 1, not {concurrency!r}")
        if not timeout > 0:
            raise JudgeConfigError(f"timeout must be > 0 seconds, not {timeout!r}")
        key = os.environ.get("OPENAI_API_KEY") or None
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
        self.base_url = base_url
        self.timeout = float(timeout)
        self.max_attempts = max_attempts
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._key = key
        self._openai = openai
        self._client = openai.OpenAI(
            api_key=key or PLACEHOLDER_KEY,
            base_url=base_url or OPENAI_API_URL,
            timeout=self.timeout,
            max_retries=max_retries,
        )

    def __repr__(self) -> str:  # never the key
        return f"Judge(model={self.model!r}, base_url={self.base_url!r})"

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def describe(self) -> dict:
        """What judged, for results files: model, temperature and base_url (never the key)."""
        return {"model": self.model, "temperature": 0, "base_url": self.base_url}

    # -- errors -----------------------------------------------------------------------------

    def _scrub_key(self, text: str) -> str:
        return text.replace(self._key, _REDACTED) if self._key else text

    def _scrub(self, text: str) -> str:
        """Error text without the key, bearer tokens or anything shaped like a secret key."""
        text = self._scrub_key(text)
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + _REDACTED, text)
        return text

    def _error_text(self, err: BaseException, suffix: str = "") -> str:
        message = " ".join(str(err).split())
        text = f"{type(err).__name__}: {message}" if message else type(err).__name__
        return clip(self._scrub(text + suffix), _MAX_ERROR_CHARS)

    # -- cache ------------------------------------------------------------------------------

    def _cache_path(self, prompt: str) -> Path | None:
        if self.cache_dir is None:
            return None
        ident = json.dumps([self.model, self.base_url, prompt], ensure_ascii=False)
        return self.cache_dir / f"{hashlib.sha256(ident.encode('utf-8')).hexdigest()}.json"

    def _cache_get(self, prompt: str) -> tuple[str, str] | None:
        path = self._cache_path(prompt)
        if path is None or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text("utf-8"))
            choice, raw = entry["choice"], entry["raw"]
            if parse_choice(raw) != choice:
                raise ValueError("cached choice does not match its reply")
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as err:  # deep nesting
            log.warning("ignoring unreadable judge cache file %s (%s)", path.name, err)
            return None
        return choice, raw

    def _cache_put(self, prompt: str, choice: str, raw: str) -> None:
        path = self._cache_path(prompt)
        if path is not None:
            write_json_atomic(
                path,
                {
                    "model": self.model,
                    "base_url": self.base_url,
                    "prompt_hash": prompt_hash(prompt),
                    "choice": choice,
                    "raw": raw,
                },
            )

    # -- asking -----------------------------------------------------------------------------

    def _ask(self, prompt: str) -> str | None:
        """One reply's content; the openai client retries transport failures inside."""
        response = self._client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": prompt}],
            temperature=0,
            response_format={"type": "json_object"},
        )
        if not response.choices:
            raise ValueError("the judge's reply has no choices")
        return response.choices[0].message.content

    def _judge_one(self, prompt: str) -> tuple[str | None, str | None, str | None]:
        """(choice, raw, error) for one prompt; choice None means failed."""
        openai = self._openai
        raw: str | None = None
        parse_error: ValueError | None = None
        for _ in range(self.max_attempts):
            try:
                raw = self._ask(prompt)
            except (
                openai.AuthenticationError,
                openai.PermissionDeniedError,
                openai.NotFoundError,
            ) as err:
                raise JudgeConfigError(
                    f"the judge server refused the request ({self._error_text(err)}); check "
                    "OPENAI_API_KEY, the judge model name and the base_url"
                ) from None
            except Exception as err:  # the client already retried what is worth retrying
                return None, None, self._error_text(err)
            if raw is not None:
                raw = self._scrub_key(raw)  # a server echoing the key must not store it
            try:
                return parse_choice(raw), raw, None
            except ValueError as err:
                parse_error = err
        assert parse_error is not None
        return None, raw, self._error_text(parse_error, f" (after {self.max_attempts} attempts)")

    def judge_all(self, requests: Sequence[JudgeRequest], progress: bool = True) -> list[dict]:
        """One verdict per request, in the same order.

        Identical prompts are asked once; cached prompts are not asked at all. Requests run on
        `concurrency` threads.
        """
        from tqdm.auto import tqdm

        prompts = [judge_prompt(r.answer, r.question1, r.question2) for r in requests]
        outcomes: dict[str, tuple[str | None, str | None, str | None]] = {}
        todo: list[str] = []
        for prompt in dict.fromkeys(prompts):
            hit = self._cache_get(prompt)
            if hit is not None:
                outcomes[prompt] = (hit[0], hit[1], None)
            else:
                todo.append(prompt)
        failed = 0
        if todo:
            with (
                tqdm(
                    total=len(todo), desc=f"judge {self.model}", unit="answer", disable=not progress
                ) as bar,
                ThreadPoolExecutor(max_workers=min(self.concurrency, len(todo))) as pool,
            ):
                futures = {pool.submit(self._judge_one, p): p for p in todo}
                try:
                    for future in as_completed(futures):
                        prompt = futures[future]
                        choice, raw, error = outcomes[prompt] = future.result()
                        if choice is not None:
                            self._cache_put(prompt, choice, raw)
                        else:
                            failed += 1
                            bar.set_postfix(failed=failed)
                        bar.update(1)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
        if failed:
            log.warning(
                "%d of %d judge prompts failed (recorded as failed, not cached)",
                failed,
                len(todo),
            )
        return [self._verdict(r, p, *outcomes[p]) for r, p in zip(requests, prompts, strict=True)]

    def _verdict(
        self,
        request: JudgeRequest,
        prompt: str,
        choice: str | None,
        raw: str | None,
        error: str | None,
    ) -> dict:
        return {
            "item_id": request.item_id,
            "task": request.task,
            "method": request.method,
            "seed": request.seed,
            "judge": {
                "model": self.model,
                "temperature": 0,
                "prompt_hash": prompt_hash(prompt),
                "base_url": self.base_url,
            },
            "answer": request.answer,
            "choice": choice,
            "success": None if choice is None else choice in SUCCESS_CHOICES,
            "raw": raw,
            "error": error,
        }
