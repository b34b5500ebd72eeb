"""What a Wikipedia page and file say: which file is the infobox image, and may we reuse it.

`infobox_file` reads the first non-icon infobox image from a page's HTML; `attribution_from`
turns a file's `extmetadata` into the credit a row carries, and refuses files we may not
redistribute: flagged non-free, licensed as fair use, or local to English Wikipedia without a
recognised free licence (fair-use uploads live there, Commons takes only free files).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from bs4 import BeautifulSoup

ICON_MAX_WIDTH = 60  # infobox images narrower than this are icons (status maps, small flags)

# Licence names that forbid redistribution (fair use on Wikipedia is not a licence to reuse).
NON_FREE = re.compile(r"non[-\s]?free|fair[-\s]?use|\bfairuse\b", re.IGNORECASE)
# Non-commercial and no-derivatives terms: not free in Wikimedia's sense, not for a dataset.
RESTRICTED = re.compile(r"\bnc\b|\bnd\b|non[-\s]?commercial|no[-\s]?deriv", re.IGNORECASE)
# Licences that allow redistribution with credit: what a file local to en.wikipedia must show.
FREE = re.compile(
    r"public\s*domain|\bpd\b|\bcc0\b|cc[-\s]?zero|\bcc[-\s]by\b|creative\s+commons\s+attribution"
    r"|\bgfdl\b|gnu\s+free\s+documentation|free\s+art|copyrighted\s+free\s+use"
    r"|open\s+government\s+licen[cs]e|^attribution$",
    re.IGNORECASE,
)


class ImageProblem(Exception):
    """Why an item has no usable image (page missing, no image, corrupt bytes, HTTP error)."""


def strip_html(value: str | None) -> str | None:
    """Plain text of an extmetadata value (Artist is often a link to a user page)."""
    if not value:
        return None
    text = value
    if "<" in value or "&" in value:
        text = BeautifulSoup(value, "html.parser").get_text(" ", strip=True)
    text = " ".join(text.split())
    return text or None


def file_from_src(src: str | None) -> str | None:
    """The file name in an upload.wikimedia.org URL (thumbnail or original)."""
    if not src or "upload.wikimedia.org" not in src:
        return None
    path = src.split("upload.wikimedia.org", 1)[1].split("?", 1)[0]
    parts = [p for p in path.split("/") if p]
    if "thumb" in parts:
        i = parts.index("thumb")
        return unquote(parts[i + 3]) if len(parts) > i + 3 else None
    return unquote(parts[-1]) if parts else None


def infobox_file(html: str) -> str | None:
    """The first non-icon image in the page's infobox, as a `File:` title."""
    soup = BeautifulSoup(html, "html.parser")
    for img in soup.select("table.infobox img"):
        try:
            width = int(img.get("width") or 0)
        except ValueError:
            width = 0
        if 0 < width < ICON_MAX_WIDTH:
            continue
        name = None
        link = img.find_parent("a", href=True)
        if link is not None and "/wiki/File:" in link["href"]:
            name = unquote(link["href"].split("/wiki/File:", 1)[1])
        if name is None:
            name = file_from_src(img.get("src"))
        if name:
            return "File:" + name.replace("_", " ")
    return None


def is_local_file(page: Mapping[str, Any], info: Mapping[str, Any]) -> bool:
    """Whether the file lives on en.wikipedia itself rather than on Wikimedia Commons.

    Commons accepts only free files; a local file may be one uploaded under fair use, so it
    must show a free licence before we redistribute it.
    """
    repository = page.get("imagerepository")
    if repository:
        return repository == "local"
    return "en.wikipedia.org" in str(info.get("descriptionurl") or "")


def attribution_from(
    info: Mapping[str, Any], source_url: str, *, local: bool = False
) -> dict[str, str | None]:
    """Author, licence and links from an imageinfo entry; refuses files we may not reuse.

    Refused: files flagged `NonFree`; files whose licence fields (`LicenseShortName`,
    `License`, `UsageTerms`) name fair use or non-free terms; and files `local` to
    en.wikipedia without a recognised free licence, since fair-use uploads are local and are
    not always flagged.
    """
    meta = info.get("extmetadata") or {}

    def value(name: str) -> str | None:
        entry = meta.get(name)
        return strip_html(entry.get("value")) if isinstance(entry, dict) else None

    if str(value("NonFree") or "").strip().lower() == "true":
        raise ImageProblem("the file is non-free (fair use on Wikipedia only); not redistributable")
    names = [v for v in (value("LicenseShortName"), value("License"), value("UsageTerms")) if v]
    for name in names:
        if NON_FREE.search(name):
            raise ImageProblem(
                f"the file's licence is {name!r} (fair use / non-free); not redistributable"
            )
    licence = value("LicenseShortName") or value("UsageTerms") or value("License")
    if local:
        free = any(FREE.search(n) and not RESTRICTED.search(n) for n in names)
        if not free and str(value("Copyrighted") or "").strip().lower() != "false":
            raise ImageProblem(
                f"the file is local to English Wikipedia (not on Commons) and its licence "
                f"({licence or 'none given'}) is not a recognised free licence; local files "
                "are often fair-use uploads, so it is not redistributed"
            )
    if not licence:
        raise ImageProblem("the file's metadata names no licence")
    return {
        "source_url": source_url,
        "file_page": info.get("descriptionurl"),
        "author": value("Artist") or value("Credit"),
        "license": licence,
        "license_url": value("LicenseUrl"),
    }
