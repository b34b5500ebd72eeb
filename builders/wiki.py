"""The image of a pool item from English Wikipedia, with what its licence asks us to credit.

For a page title (`Flag of France`, `Wolf`, `Persimmon`) the MediaWiki Action API gives the
page's lead image (`prop=pageimages`, free images only); when it gives none, the first image
of the page's infobox (`action=parse`, read with BeautifulSoup) is used. Then `prop=imageinfo`
on the file gives a thumbnail URL 224 px wide (SVG flags are rendered to PNG by Wikimedia) and
the file's `extmetadata`: author, licence, licence URL. Every request uses `formatversion=2`.

Any failure raises ImageProblem with a reason a person can act on; the build collects these
per item id and reports them together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from bs4 import BeautifulSoup

from .http import FetchError, HttpClient
from .images import TARGET_WIDTH, CorruptImageError, check_image, normalise

API_URL = "https://en.wikipedia.org/w/api.php"
ICON_MAX_WIDTH = 60  # infobox images narrower than this are icons (status maps, small flags)
EXTMETADATA_FIELDS = "Artist|Credit|LicenseShortName|LicenseUrl|UsageTerms|NonFree"


class ImageProblem(Exception):
    """Why an item has no usable image (page missing, no image, corrupt bytes, HTTP error)."""


class ApiError(ValueError):
    def __init__(self, code: str, info: str):
        super().__init__(f"MediaWiki API error {code}: {info}")
        self.code = code


@dataclass
class WikiImage:
    """A checked, resized image and its attribution (the keys of common.schema's attribution)."""

    title: str
    file_title: str
    data: bytes
    extension: str
    attribution: dict[str, str | None]
    found_via: str  # "pageimages" or "infobox"
    extra: dict[str, Any] = field(default_factory=dict)


def strip_html(value: str | None) -> str | None:
    """Plain text of an extmetadata value (Artist is often a link to a user page)."""
    if not value:
        return None
    text = value
    if "<" in value or "&" in value:
        text = BeautifulSoup(value, "html.parser").get_text(" ", strip=True)
    text = " ".join(text.split())
    return text or None


def _check_api_json(data: bytes) -> None:
    """Validate hook: a body with an API `error` is raised, so it is never cached."""
    doc = json.loads(data)
    error = doc.get("error") if isinstance(doc, dict) else None
    if error:
        raise ApiError(str(error.get("code", "unknown")), str(error.get("info", "")))


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


def attribution_from(info: dict[str, Any], source_url: str) -> dict[str, str | None]:
    """Author, licence and links from an imageinfo entry; refuses files we may not reuse."""
    meta = info.get("extmetadata") or {}

    def value(name: str) -> str | None:
        entry = meta.get(name)
        return entry.get("value") if isinstance(entry, dict) else None

    if str(value("NonFree") or "").strip().lower() == "true":
        raise ImageProblem("the file is non-free (fair use on Wikipedia only); not redistributable")
    licence = strip_html(value("LicenseShortName")) or strip_html(value("UsageTerms"))
    if not licence:
        raise ImageProblem("the file's metadata names no licence")
    return {
        "source_url": source_url,
        "file_page": info.get("descriptionurl"),
        "author": strip_html(value("Artist")) or strip_html(value("Credit")),
        "license": licence,
        "license_url": strip_html(value("LicenseUrl")),
    }


class WikiImages:
    """Looks up and downloads pool images through one HttpClient (rate limit, cache, retries)."""

    def __init__(self, client: HttpClient, api_url: str = API_URL, width: int = TARGET_WIDTH):
        self.client = client
        self.api_url = api_url
        self.width = width

    def api(self, **params: str) -> dict[str, Any]:
        params = {"format": "json", "formatversion": "2", **params}
        return json.loads(self.client.get(self.api_url, params, validate=_check_api_json))

    def lead_image(self, title: str) -> tuple[str | None, str | None]:
        """(File: title, thumbnail URL) of the page's lead image; (None, None) without one."""
        doc = self.api(
            action="query",
            prop="pageimages",
            piprop="thumbnail|name|original",
            pithumbsize=str(self.width),
            titles=title,
            redirects="1",
        )
        pages = doc.get("query", {}).get("pages", [])
        if not pages or pages[0].get("missing") or pages[0].get("invalid"):
            raise ImageProblem(f"no English Wikipedia page titled {title!r}")
        page = pages[0]
        name = page.get("pageimage")
        if not name:
            return None, None
        thumb = (page.get("thumbnail") or {}).get("source")
        return "File:" + name.replace("_", " "), thumb

    def infobox_image(self, title: str) -> str | None:
        try:
            doc = self.api(action="parse", page=title, prop="text", redirects="1")
        except ApiError as exc:
            if exc.code == "missingtitle":
                raise ImageProblem(f"no English Wikipedia page titled {title!r}") from exc
            raise
        text = doc.get("parse", {}).get("text", "")
        if isinstance(text, dict):  # formatversion=1 shape, in case a mirror ignores fv=2
            text = text.get("*", "")
        return infobox_file(text)

    def file_info(self, file_title: str) -> dict[str, Any]:
        doc = self.api(
            action="query",
            prop="imageinfo",
            iiprop="url|mime|size|extmetadata",
            iiurlwidth=str(self.width),
            iiextmetadatafilter=EXTMETADATA_FIELDS,
            titles=file_title,
        )
        pages = doc.get("query", {}).get("pages", [])
        # A Commons file seen from en.wikipedia is "missing" locally but "known" (shared repo).
        infos = pages[0].get("imageinfo") if pages else None
        if not infos:
            raise ImageProblem(f"no file information for {file_title!r}")
        return infos[0]

    def fetch(self, title: str) -> WikiImage:
        """The item's image, resized and checked, with attribution; raises ImageProblem."""
        try:
            file_title, thumb = self.lead_image(title)
            found_via = "pageimages"
            if file_title is None:
                file_title, found_via = self.infobox_image(title), "infobox"
            if file_title is None:
                raise ImageProblem("the page has no lead image and no infobox image")
            info = self.file_info(file_title)
            url = info.get("thumburl") or thumb or info.get("url")
            if not url:
                raise ImageProblem(f"no image URL for {file_title!r}")
            attribution = attribution_from(info, url)
            raw = self.client.get(url, validate=check_image)
            data, extension = normalise(raw, self.width)
        except CorruptImageError as exc:
            raise ImageProblem(str(exc)) from exc
        except FetchError as exc:
            raise ImageProblem(exc.reason + f" for {exc.url}") from exc
        except ApiError as exc:
            raise ImageProblem(str(exc)) from exc
        except json.JSONDecodeError as exc:
            raise ImageProblem(f"the API answered with something that is not JSON: {exc}") from exc
        return WikiImage(title, file_title, data, extension, attribution, found_via)
