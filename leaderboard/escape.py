"""Values from submission files, made safe to write into the generated Markdown (README.md).

Every name, note, hardware line, model card, model id, run id, version, source and judge text
comes from a file anyone can open a pull request with. In the README it is shown as the text it
is, never as markup: Markdown's inline punctuation is backslash-escaped, `&`, `<` and `>` become
HTML entities (so no raw HTML survives, in any renderer), and line breaks become spaces (a value
cannot start a new block or table row). Links are made only for absolute http(s) URLs; anything
else (`javascript:`, `data:`, a relative path) is shown as plain escaped text.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, urlsplit

# Inline Markdown: code spans, emphasis, links and images, table cells, strikethrough, math.
_BACKSLASHED = frozenset("\\`*_[]|~$")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# A value shown in a code span as is: no backtick (ends the span), no pipe (ends a table cell),
# no HTML-significant character, no line break, no surrounding space.
_CODE_SAFE = re.compile(r"[^`|<>&\\\s]+(?: [^`|<>&\\\s]+)*")


def _one_line(text: str) -> str:
    """Line breaks and other control characters (Unicode's line and paragraph separators too)
    as spaces."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in str(text))


def md_text(value: object) -> str:
    """`value` as literal inline text in Markdown and HTML."""
    out = []
    for char in _one_line(str(value)):
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char in _BACKSLASHED:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def md_code(value: object) -> str:
    """`value` in a code span when it can be one as is (ids, versions, hashes); otherwise as
    escaped text."""
    text = str(value)
    return f"`{text}`" if _CODE_SAFE.fullmatch(text) else md_text(text)


def http_url(value: object) -> str | None:
    """`value` when it is an absolute http(s) URL with a host and no whitespace or control
    characters; otherwise None."""
    text = str(value)
    if text != _one_line(text) or any(c.isspace() for c in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return text


def md_url(value: object) -> str:
    """A Markdown link to `value` when it is an http(s) URL, shown as its escaped text; any
    other value as escaped text, no link."""
    url = http_url(value)
    if url is None:
        return md_text(value)
    # Percent-encode what could end the link destination or read as markup in it; keep the
    # URL's own reserved characters and existing %-escapes.
    target = quote(url, safe=":/?#@!$&'*+,;=%-._~")
    return f"[{md_text(url)}]({target})"


def md_path(relative: str) -> str:
    """A relative link target (a file next to the README): every character that is not plain
    in a path is %-encoded, so a file name cannot end the link or add markup."""
    return quote(relative, safe="/-._~")
