"""A polite HTTP client for Wikimedia: identified, rate-limited, retrying, cached on disk.

Wikimedia asks every client for a descriptive User-Agent with contact details, serial requests,
and backing off when told to: 429 / 5xx with Retry-After, or an API error such as `ratelimited`
or `maxlag` inside a 200, which a `validate` hook turns into `RetryLater`. The builders make
~400 requests for the three pools (the API is asked 50 titles at a time; each image is one
download), so the client also keeps every good response on disk: a re-run, or a run resumed
after an interruption, asks the network only for what it does not have yet.

Sleeping and the clock are injected so tests can check the waits without waiting.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from benchmark.files import atomic_write_bytes

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CONTACT_ENV = "VLM_TV_BUILD_CONTACT"


class FetchError(RuntimeError):
    """A request that failed for good: a non-retryable status, or retries exhausted."""

    def __init__(self, url: str, reason: str, status: int | None = None):
        super().__init__(f"{reason} ({url})")
        self.url = url
        self.reason = reason
        self.status = status


class ContactMissingError(ValueError):
    pass


class RetryLater(Exception):
    """Raised by a `validate` hook for a 200 response that is really "slow down".

    MediaWiki answers rate limiting and replication lag with HTTP 200 and a JSON error
    (`ratelimited`, `maxlag`); the client must back off and ask again exactly as for a 429.
    `wait` is the server's own hint in seconds (the lag), used when no Retry-After header
    came with the response.
    """

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("vlm-tv-eval")
    except Exception:  # not installed (running from a checkout)
        return "0"


def user_agent(contact: str | None = None, override: str | None = None) -> str:
    """The User-Agent Wikimedia's policy asks for: tool/version (contact) library/version.

    `override` is a complete User-Agent of the user's own; it must still carry a contact (an
    e-mail address or a URL), because requests without one may be blocked.
    """
    contact = contact or os.environ.get(CONTACT_ENV)
    if override:
        if "@" not in override and "http" not in override:
            raise ContactMissingError(
                "--user-agent must include contact information (an e-mail address or a URL), "
                "as Wikimedia's User-Agent policy asks"
            )
        return override
    if not contact or not contact.strip():
        raise ContactMissingError(
            "network builds need contact information for the User-Agent that Wikimedia's "
            "policy asks for (https://meta.wikimedia.org/wiki/User-Agent_policy): pass "
            f"--contact you@example.org (or a URL), or set {CONTACT_ENV}"
        )
    return (
        f"vlm-tv-eval-builder/{_version()} ({contact.strip()}; builds the vlm-tv-eval "
        f"benchmark datasets) python-requests/{requests.__version__}"
    )


def cache_key(url: str, params: Mapping[str, Any] | None = None) -> str:
    query = urlencode(sorted((params or {}).items()))
    return hashlib.sha256(f"{url}?{query}".encode()).hexdigest()


class DiskCache:
    """Response bodies on disk, keyed by the hash of URL + sorted query parameters."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / "http" / key[:2] / key

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self._path(key), data)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


class HttpClient:
    """GET with a User-Agent, a minimum interval between requests, retries and a disk cache.

    `validate` (for `get`) checks a body before it is cached, so a corrupt download is never
    kept and a re-run fetches it again.
    """

    def __init__(
        self,
        user_agent: str,
        *,
        cache: DiskCache | None = None,
        min_interval: float = 0.5,
        max_retries: int = 4,
        backoff: float = 2.0,
        max_wait: float = 300.0,
        timeout: float | tuple[float, float] = (10.0, 60.0),
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.user_agent = user_agent
        self.cache = cache
        self.min_interval = min_interval
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.timeout = timeout
        self.session = session or requests.Session()
        self.sleep = sleep
        self.clock = clock
        self.requests_made = 0
        self.cache_hits = 0
        self._next_allowed = 0.0

    def _wait_turn(self) -> None:
        wait = self._next_allowed - self.clock()
        if wait > 0:
            self.sleep(wait)
        self._next_allowed = self.clock() + self.min_interval

    def _fetch(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        validate: Callable[[bytes], Any] | None = None,
    ) -> bytes:
        """The body of a 200 that `validate` accepts, retrying what is worth retrying."""
        last = "no attempt"
        status = None
        for attempt in range(self.max_retries + 1):
            self._wait_turn()
            self.requests_made += 1
            wait = min(self.backoff * 2**attempt, self.max_wait)
            try:
                response = self.session.get(
                    url,
                    params=dict(params) if params else None,
                    headers={"User-Agent": self.user_agent},
                    timeout=self.timeout,
                )
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                last, status = f"{type(exc).__name__}: {exc}", None
            else:
                status = response.status_code
                hint = None
                if status == 200:
                    try:
                        if validate is not None:
                            validate(response.content)
                        return response.content
                    except RetryLater as exc:
                        last, hint = exc.reason, exc.wait
                else:
                    last = f"HTTP {status}"
                    if status not in RETRY_STATUSES:
                        raise FetchError(url, last, status)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is None:
                    retry_after = hint
                if retry_after is not None:
                    wait = min(retry_after, self.max_wait)
            if attempt < self.max_retries:
                self.sleep(wait)
        raise FetchError(url, f"{last} after {self.max_retries + 1} attempts", status)

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        validate: Callable[[bytes], Any] | None = None,
    ) -> bytes:
        """The body of a GET, from the cache when there; else fetched, validated, cached.

        `validate` raising `RetryLater` makes the response count as a retryable failure;
        raising anything else ends the request with that error (and nothing is cached).
        """
        key = cache_key(url, params)
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                self.cache_hits += 1
                return cached
        data = self._fetch(url, params, validate)
        if self.cache is not None:
            self.cache.put(key, data)
        return data
