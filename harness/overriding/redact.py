"""What the judge writes must hold no secret: a judge URL may carry a user name and password
(`https://user:pw@host/v1`) or a key in its query (`?api-key=...`), and a server may echo the
key, the Authorization header or the URL into an error or a reply. Every judge URL and every
text from a judge server goes through here before it is written anywhere (verdicts, the
judge cache, results, logs, error messages).

No torch, no openai: the run's config and the leaderboard can use it too.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote

REDACTED = "[REDACTED]"
# Query parameters a judge URL may show: they say which API, never who calls it (Azure's
# api-version). Every other parameter's value is redacted: a query is where keys go.
PUBLIC_QUERY_KEYS = frozenset({"api-version", "api_version"})
# An echoed secret is found by its pieces: any run of this many characters of it.
_PIECE = 8
# A secret shorter than this is replaced only where it appears whole; shorter still, not at all
# (it would redact ordinary words).
_SHORTEST = 4
# A URL's user name and password: scheme:// then userinfo@ (also without a scheme).
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://)?([^\s/?#@'\"<>]+@)(?=[^\s/?#@]+)")
# Secrets by their shape, as servers echo them: the credentials of an Authorization header,
# OpenAI-style keys, and key-like fields or parameters (api-key=..., "api_key": "...",
# access_token=..., password=...). Values stop at quotes, commas and braces, so a JSON reply
# stays JSON.
_SHAPES = (
    re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/\-]+=*"),
    re.compile(r"(?i)\b(basic\s+)(?=\S*[0-9+/=])[A-Za-z0-9+/]{12,}={0,2}"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),
    re.compile(
        r"(?i)(?<![A-Za-z0-9_])((?:x-)?(?:api[-_ ]?key|access[-_]?token|auth[-_]?token|token|"
        r"secret|password|passwd|pwd|authorization)[\"']?\s*[:=]\s*[\"']?)"
        r"([^\s\"'&,;}\[\]]+)"
    ),
)


def env_key() -> str | None:
    """The OpenAI key in the environment, the one secret every judge may send."""
    return os.environ.get("OPENAI_API_KEY") or None


def url_secrets(url: str | None) -> list[str]:
    """The secrets a URL carries: its user name and password (also as the Basic credentials
    an HTTP client makes of them) and every query value but the public ones."""
    if not url:
        return []
    found: list[str] = []
    userinfo = _USERINFO.search(url.split("?", 1)[0])
    if userinfo:
        info = userinfo.group(2)[:-1]
        user, _, password = info.partition(":")
        decoded = f"{unquote(user)}:{unquote(password)}"
        found += [info, unquote(password), decoded]
        found.append(base64.b64encode(decoded.encode("utf-8")).decode("ascii"))
    query = url.split("?", 1)[1].split("#", 1)[0] if "?" in url else ""
    for pair in filter(None, query.split("&")):
        name, _, value = pair.partition("=")
        if unquote(name).lower() not in PUBLIC_QUERY_KEYS:
            found += [value, unquote(value)] if value else [name, unquote(name)]
    return [s for s in found if s]


def split_url(url: str) -> tuple[str, tuple[str, str] | None, list[tuple[str, str]]]:
    """`url` in the three parts an HTTP client takes apart: the URL without user name,
    password, query or fragment; the (user, password) for Basic auth, or None; the query's
    (name, value) pairs. A client given them sends what the whole URL would, and never has the
    credentials in a URL it logs."""
    head, _, query = url.split("#", 1)[0].partition("?")
    credentials = None
    userinfo = _USERINFO.search(head)
    if userinfo:
        user, _, password = userinfo.group(2)[:-1].partition(":")
        credentials = (unquote(user), unquote(password))
        head = head[: userinfo.start(2)] + head[userinfo.end(2) :]
    return head, credentials, parse_qsl(query, keep_blank_values=True)


def public_url(url: str | None) -> str | None:
    """`url` as it may be written: no user name or password, the value of every query parameter
    but api-version redacted, no fragment, and anything else secret-shaped scrubbed (`scrub`)."""
    if url is None:
        return None
    head, _, query = url.partition("?")
    head = head.split("#", 1)[0]
    head = _USERINFO.sub(lambda m: m.group(1) or "", head, count=1)
    pairs = []
    for pair in filter(None, query.split("#", 1)[0].split("&")):
        name, eq, _value = pair.partition("=")
        public = unquote(name).lower() in PUBLIC_QUERY_KEYS
        pairs.append(pair if public else f"{name}={REDACTED}" if eq else REDACTED)
    shown = head + ("?" + "&".join(pairs) if pairs else "")
    return scrub(shown, url_secrets(url))


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` without the secrets given, the environment's OpenAI key, and anything shaped
    like a credential (`_SHAPES`, a URL's user name and password).

    A secret of 8 characters or more is removed wherever any 8 characters of it appear, so an
    echo of most of it ("sk-proj-abc...****") is caught too; a shorter one (4 to 7 characters)
    wherever it appears whole."""
    known = {s for s in (*secrets, env_key()) if s and len(s) >= _SHORTEST}
    text = _redact_pieces(text, [s for s in known if len(s) >= _PIECE])
    for secret in sorted((s for s in known if len(s) < _PIECE), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _USERINFO.sub(lambda m: (m.group(1) or "") + REDACTED + "@", text)
    for shape in _SHAPES:
        text = shape.sub(lambda m: (m.group(1) if m.lastindex else "") + REDACTED, text)
    return text


class ScrubbingFilter(logging.Filter):
    """Scrubs the records of the HTTP libraries' loggers (httpx logs every request's URL at
    INFO, with its query; `OPENAI_LOG=info` prints them) of every secret a judge registered."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: frozenset[str] = frozenset()  # replaced whole, never changed in place

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_LOG_FILTER = ScrubbingFilter()
# The loggers that see request URLs and headers: the HTTP client the openai package uses (httpx,
# or httpx2 in later versions) and openai's own.
HTTP_LOGGERS = ("httpx", "httpx2", "openai", "openai._base_client")


def scrub_logs(secrets: Iterable[str | None]) -> None:
    """Register `secrets` to be scrubbed from what the HTTP loggers log, from now on."""
    _LOG_FILTER.secrets = _LOG_FILTER.secrets | {s for s in secrets if s}
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _LOG_FILTER not in logger.filters:
            logger.addFilter(_LOG_FILTER)


def _redact_pieces(text: str, secrets: list[str]) -> str:
    """Every span of `text` covered by a run of `_PIECE` characters of one of `secrets`."""
    pieces = {s[i : i + _PIECE] for s in secrets for i in range(len(s) - _PIECE + 1)}
    if not pieces:
        return text
    covered = bytearray(len(text))
    for i in range(len(text) - _PIECE + 1):
        if text[i : i + _PIECE] in pieces:
            covered[i : i + _PIECE] = b"\1" * _PIECE
    if not any(covered):
        return text
    out, i = [], 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            out.append(REDACTED)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
