"""The Wikipedia image builder, offline: HTTP answered at the `requests` layer in the formats
of the MediaWiki Action API (formatversion=2) and upload.wikimedia.org, with images made here.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlparse

import pytest
import requests
from PIL import Image
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from benchmark import load_task, validate
from builders import cli
from builders.cross_modal import build_with_images, json_row
from builders.http import (
    ContactMissingError,
    DiskCache,
    FetchError,
    HttpClient,
    parse_retry_after,
    user_agent,
)
from builders.images import normalise, scaled_size
from builders.wiki import (
    ApiError,
    ImageProblem,
    WikiImages,
    attribution_from,
    file_from_src,
    infobox_file,
    strip_html,
)

API = "https://en.wikipedia.org/w/api.php"
UA = "vlm-tv-eval-tests/1 (tests@example.org)"


def _png(width: int, height: int, seed: str, mode: str = "RGBA") -> bytes:
    colour = tuple(hashlib.sha256(seed.encode()).digest()[:3])
    image = Image.new(mode, (width, height), colour + ((255,) if mode == "RGBA" else ()))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if mode == "RGBA" else "JPEG")
    return buffer.getvalue()


NO_LEAD = ("no_lead", "local_fair_use", "fair_use_name")  # pages with only an infobox image


class FakeWikipedia(BaseAdapter):
    """en.wikipedia.org/w/api.php and upload.wikimedia.org, for any page title.

    Every page has a lead image (flags: an SVG whose thumbnail is a PNG; others: a JPEG),
    served 250 px wide as Wikimedia's standard thumbnail sizes now do. `special` changes a
    title's behaviour: "no_lead" (only an infobox image), "missing" (no such page),
    "non_free", "corrupt" (image bytes are garbage), "http500" (image always 500), "small"
    (a 100 x 61 original, which Wikimedia serves as is: it never scales up), "local_fair_use"
    (only an infobox image, uploaded to en.wikipedia itself under an unflagged fair-use
    licence), "fair_use_name" (only an infobox image, whose licence name says fair use but
    which is not flagged NonFree).

    Queries take up to 50 `titles` joined by "|", as the real API does (more is an error),
    and answer in its shape: titles are normalised (underscores, first letter) and listed in
    `normalized`, `redirects` maps titles to their targets, pages come back in their own
    order, and with `continue_after` set a prop only covers that many pages per response
    and says `continue`.
    `script` queues responses (status, headers[, body]) for a URL before its normal answer.
    `stop_after` raises KeyboardInterrupt on that request, as a user pressing Ctrl-C.
    """

    def __init__(
        self, special=None, script=None, stop_after=None, redirects=None, continue_after=None
    ):
        super().__init__()
        self.special = dict(special or {})
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.stop_after = stop_after
        self.redirects = dict(redirects or {})
        self.continue_after = continue_after
        self.log: list[tuple[str, dict, dict]] = []  # (url without query, params, headers)
        self.answered: list[str] = []  # full URLs answered 200

    # --- naming -------------------------------------------------------------------------
    @staticmethod
    def file_name(title: str) -> str:
        ext = "svg" if title.startswith("Flag of") else "jpg"
        return f"{title.replace(' ', '_')}.{ext}"

    @staticmethod
    def thumb_url(file_name: str, width: int = 250) -> str:
        h = hashlib.md5(file_name.encode()).hexdigest()
        tail = f"{width}px-{file_name}" + (".png" if file_name.endswith(".svg") else "")
        return (
            f"https://upload.wikimedia.org/wikipedia/commons/thumb/{h[0]}/{h[:2]}/"
            f"{quote(file_name)}/{quote(tail)}"
        )

    def title_of_file(self, file_name: str) -> str:
        return file_name.rsplit(".", 1)[0].replace("_", " ")

    # --- API ----------------------------------------------------------------------------
    @staticmethod
    def normalise(title: str) -> str:
        title = title.replace("_", " ").strip()
        return title[:1].upper() + title[1:]

    def query(self, params: dict) -> dict:
        """A batched `action=query`: normalized, redirects, pages, continue."""
        asked = params["titles"].split("|")
        if len(asked) > 50:
            return {
                "error": {
                    "code": "toomanyvalues",
                    "info": 'Too many values supplied for parameter "titles". The limit is 50.',
                }
            }
        normalized, redirects, targets = [], [], []
        for title in asked:
            norm = self.normalise(title)
            if norm != title:
                normalized.append({"fromencoded": False, "from": title, "to": norm})
            if norm in self.redirects and params.get("redirects"):
                redirects.append({"from": norm, "to": self.redirects[norm]})
                norm = self.redirects[norm]
            if norm not in targets:
                targets.append(norm)
        prop = params["prop"]
        prefix = {"pageimages": "pi", "imageinfo": "ii"}[prop]
        start = int(params.get(f"{prefix}continue", 0))
        end = len(targets) if self.continue_after is None else start + self.continue_after
        pages = []
        for i, title in enumerate(targets):
            with_prop = start <= i < end
            if prop == "pageimages":
                pages.append(self.pageimages_page(title, with_prop))
            else:
                pages.append(self.imageinfo_page(title, with_prop))
        pages.reverse()  # the API orders pages its own way, never by the titles asked
        query: dict = {"pages": pages}
        if normalized:
            query["normalized"] = normalized
        if redirects:
            query["redirects"] = redirects
        body: dict = {"query": query}
        if end < len(targets):
            body["continue"] = {f"{prefix}continue": str(end), "continue": "||"}
        else:
            body["batchcomplete"] = True
        return body

    def pageimages_page(self, title: str, with_prop: bool = True) -> dict:
        if self.special.get(title) == "missing":
            return {"ns": 0, "title": title, "missing": True}
        page = {"pageid": 1000 + len(title), "ns": 0, "title": title}
        if with_prop and self.special.get(title) not in NO_LEAD:
            name = self.file_name(title)
            page.update(
                {
                    "thumbnail": {"source": self.thumb_url(name), "width": 250, "height": 150},
                    "original": {
                        "source": f"https://upload.wikimedia.org/wikipedia/commons/a/ab/{name}",
                        "width": 1000,
                        "height": 600,
                    },
                    "pageimage": name,
                }
            )
        return page

    def imageinfo_page(self, file_title: str, with_prop: bool = True) -> dict:
        name = file_title.removeprefix("File:").replace(" ", "_")
        title = self.title_of_file(name).removesuffix(" infobox")
        flag = name.endswith(".svg")
        kind = self.special.get(title)
        meta = {
            "DateTime": {
                "value": "2024-01-01 00:00:00",
                "source": "mediawiki-metadata",
                "hidden": "",
            },
            "Artist": {
                "value": '<a href="//commons.wikimedia.org/wiki/User:Example" title="User:Example">'
                "Example&nbsp;User</a>",
                "source": "commons-desc-page",
            },
            "Credit": {
                "value": '<span class="int-own-work" lang="en">Own work</span>',
                "source": "commons-desc-page",
                "hidden": "",
            },
            "LicenseShortName": {
                "value": "Public domain" if flag else "CC BY-SA 4.0",
                "source": "commons-desc-page",
                "hidden": "",
            },
        }
        if not flag:
            meta["LicenseUrl"] = {
                "value": "https://creativecommons.org/licenses/by-sa/4.0",
                "source": "commons-desc-page",
                "hidden": "",
            }
        if kind == "non_free":
            meta["NonFree"] = {"value": "true", "source": "commons-desc-page", "hidden": ""}
            meta["LicenseShortName"]["value"] = "Fair use"
        if kind == "fair_use_name":
            meta["LicenseShortName"]["value"] = "Fair use of copyrighted material in the context"
        if kind == "local_fair_use":
            meta["LicenseShortName"]["value"] = "Logo"
            meta["Copyrighted"] = {"value": "True", "source": "commons-desc-page"}
            meta.pop("LicenseUrl", None)
        width, height = (100, 61) if kind == "small" else (1000, 600)
        thumb = (width, height) if width < 224 else (250, 150)
        url = f"https://upload.wikimedia.org/wikipedia/commons/a/ab/{quote(name)}"
        info = {
            # Wikimedia never scales up: a small original is its own "thumbnail".
            "thumburl": url if width < 224 else self.thumb_url(name),
            "thumbwidth": thumb[0],
            "thumbheight": thumb[1],
            "url": url,
            "descriptionurl": f"https://commons.wikimedia.org/wiki/File:{quote(name)}",
            "descriptionshorturl": "https://commons.wikimedia.org/w/index.php?curid=1",
            "mime": "image/svg+xml" if flag else "image/jpeg",
            "size": 1234,
            "width": width,
            "height": height,
            "extmetadata": meta,
        }
        page = {
            "ns": 6,
            "title": "File:" + name.replace("_", " "),
            "missing": True,  # a Commons file seen from en.wikipedia: shared, not local
            "known": True,
            "imagerepository": "shared",
        }
        if kind == "local_fair_use":
            info["descriptionurl"] = f"https://en.wikipedia.org/wiki/File:{quote(name)}"
            page = {"pageid": 77, "ns": 6, "title": page["title"], "imagerepository": "local"}
        if with_prop:
            page["imageinfo"] = [info]
        return page

    def parse(self, title: str) -> dict:
        if self.special.get(title) == "missing":
            return {
                "error": {
                    "code": "missingtitle",
                    "info": "The page you specified doesn't exist.",
                    "docref": "See https://en.wikipedia.org/w/api.php for API usage.",
                },
                "servedby": "mw-api-ext.eqiad.main-1",
            }
        name = self.file_name(title).replace(".jpg", "_infobox.jpg")
        src = self.thumb_url(name).removeprefix("https:")
        html = (
            '<div class="mw-content-ltr mw-parser-output" lang="en" dir="ltr">'
            '<table class="infobox biota"><tbody>'
            '<tr><th colspan="2">Status</th></tr><tr><td>'
            '<span typeof="mw:File"><a href="/wiki/File:Status_iucn3.1_LC.svg" '
            'class="mw-file-description"><img src="//upload.wikimedia.org/wikipedia/commons/'
            'thumb/f/f8/Status_iucn3.1_LC.svg/20px-Status_iucn3.1_LC.svg.png" width="20" '
            'height="10" class="mw-file-element"/></a></span></td></tr>'
            '<tr><td colspan="2" class="infobox-image"><span class="mw-default-size" '
            f'typeof="mw:File/Frameless"><a href="/wiki/File:{quote(name)}" '
            f'class="mw-file-description"><img src="{src}" decoding="async" width="250" '
            'height="150" class="mw-file-element"/></a></span></td></tr>'
            "</tbody></table><p>Text.</p></div>"
        )
        return {"parse": {"title": title, "pageid": 42, "text": html}}

    # --- transport ----------------------------------------------------------------------
    def send(self, request, **kwargs):
        parsed = urlparse(request.url)
        base = f"{parsed.scheme}://{parsed.netloc}{parsed.path}"
        params = dict(parse_qsl(parsed.query))
        self.log.append((base, params, dict(request.headers)))
        if self.stop_after is not None and len(self.log) >= self.stop_after:
            raise KeyboardInterrupt
        queued = self.script.get(request.url) or self.script.get(base)
        if queued:
            status, headers, *body = queued.pop(0)
            return self._response(request, status, body[0] if body else b"error", headers)
        if base == API:
            if params.get("action") == "parse":
                body = self.parse(params["page"])
            else:
                body = self.query(params)
            return self._response(request, 200, json.dumps(body).encode(), {})
        thumb = "/thumb/" in parsed.path
        name = unquote(parsed.path.split("/")[-2 if thumb else -1])
        title = self.title_of_file(name).removesuffix("_infobox").removesuffix(" infobox")
        kind = self.special.get(title)
        if kind == "http500":
            return self._response(request, 500, b"Internal Server Error", {})
        if kind == "corrupt":
            return self._response(request, 200, b"\x89PNG\r\n\x1a\nnot really a png", {})
        flag = name.endswith(".svg")
        size = (100, 61) if kind == "small" else (250, 150)
        data = _png(*size, title, "RGBA" if flag else "RGB")
        return self._response(request, 200, data, {})

    def _response(self, request, status, body, headers):
        response = requests.Response()
        response.status_code = status
        response._content = body
        response.headers = CaseInsensitiveDict(headers)
        response.url = request.url
        response.request = request
        response.reason = {200: "OK", 429: "Too Many Requests", 500: "Server Error"}.get(status)
        if status == 200:
            self.answered.append(request.url)
        return response

    def close(self):
        pass


class FakeTime:
    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(fake, cache_dir=None, time=None, **kwargs) -> HttpClient:
    session = requests.Session()
    session.mount("https://", fake)
    time = time or FakeTime()
    kwargs.setdefault("min_interval", 0.0)
    return HttpClient(
        UA,
        cache=DiskCache(cache_dir) if cache_dir else None,
        session=session,
        sleep=time.sleep,
        clock=time.clock,
        **kwargs,
    )


# --- client -------------------------------------------------------------------------------


def test_user_agent_needs_a_contact(monkeypatch):
    monkeypatch.delenv("VLM_TV_BUILD_CONTACT", raising=False)
    with pytest.raises(ContactMissingError, match="--contact"):
        user_agent()
    with pytest.raises(ContactMissingError):
        user_agent(override="my-bot/1.0")
    ua = user_agent("me@example.org")
    assert ua.startswith("vlm-tv-eval-builder/") and "(" in ua and "me@example.org" in ua
    assert "python-requests/" in ua
    monkeypatch.setenv("VLM_TV_BUILD_CONTACT", "https://example.org/me")
    assert "https://example.org/me" in user_agent()


def test_retry_after_seconds_and_http_date():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_rate_limit_spaces_requests():
    fake, time = FakeWikipedia(), FakeTime()
    client = make_client(fake, time=time, min_interval=0.5)
    for title in ("Wolf", "Coyote", "Lion"):
        client.get(API, {"action": "query", "prop": "pageimages", "titles": title})
    assert time.sleeps == [0.5, 0.5]


def test_429_then_success_honours_retry_after():
    fake, time = FakeWikipedia(), FakeTime()
    url = fake.thumb_url(fake.file_name("Flag of France"))
    fake.script[url] = [(429, {"Retry-After": "7"})]
    wiki = WikiImages(make_client(fake, time=time))
    image = wiki.fetch("Flag of France")
    assert time.sleeps == [7.0]  # the server's wait, not the client's own backoff
    assert [b for b, _, _ in fake.log].count(url.split("?")[0]) == 2
    assert Image.open(io.BytesIO(image.data)).width == 224


def test_5xx_retries_back_off_then_give_up():
    fake, time = FakeWikipedia(), FakeTime()
    fake.script[API] = [(503, {})] * 3
    client = make_client(fake, time=time, max_retries=2, backoff=1.5)
    with pytest.raises(FetchError, match="HTTP 503 after 3 attempts"):
        client.get(API, {"action": "query"})
    assert time.sleeps == [1.5, 3.0]


def test_404_is_not_retried():
    fake, time = FakeWikipedia(), FakeTime()
    fake.script[API] = [(404, {})]
    with pytest.raises(FetchError, match="HTTP 404") as info:
        make_client(fake, time=time).get(API, {"action": "query"})
    assert info.value.status == 404 and time.sleeps == [] and len(fake.log) == 1


# --- one image ------------------------------------------------------------------------------


def test_lead_image_success_with_attribution():
    fake = FakeWikipedia()
    image = WikiImages(make_client(fake)).fetch("Flag of France")
    png = Image.open(io.BytesIO(image.data))
    assert (png.format, png.mode, png.size) == ("PNG", "RGB", (224, 134))
    assert image.extension == "png" and image.found_via == "pageimages"
    assert image.file_title == "File:Flag of France.svg"
    assert image.attribution == {
        "source_url": fake.thumb_url("Flag_of_France.svg"),
        "file_page": "https://commons.wikimedia.org/wiki/File:Flag_of_France.svg",
        "author": "Example User",
        "license": "Public domain",
        "license_url": None,
    }
    api_calls = [(p, h) for b, p, h in fake.log if b == API]
    assert len(fake.log) == 3 and len(api_calls) == 2
    for params, headers in api_calls:
        assert params["format"] == "json" and params["formatversion"] == "2"
        assert headers["User-Agent"] == UA
    assert api_calls[0][0]["pithumbsize"] == "224" and api_calls[1][0]["iiurlwidth"] == "224"
    assert "extmetadata" in api_calls[1][0]["iiprop"]


def test_photo_keeps_jpeg_and_licence_url():
    image = WikiImages(make_client(FakeWikipedia())).fetch("Persimmon")
    assert image.extension == "jpg"
    assert Image.open(io.BytesIO(image.data)).format == "JPEG"
    assert image.attribution["license"] == "CC BY-SA 4.0"
    assert image.attribution["license_url"] == "https://creativecommons.org/licenses/by-sa/4.0"


def test_infobox_fallback_when_no_lead_image():
    fake = FakeWikipedia(special={"Okapi": "no_lead"})
    image = WikiImages(make_client(fake)).fetch("Okapi")
    assert image.found_via == "infobox"
    assert image.file_title == "File:Okapi infobox.jpg"  # not the 20 px status icon
    assert [p.get("action") for b, p, _ in fake.log if b == API] == ["query", "parse", "query"]


def test_infobox_parsing_helpers():
    html = (
        '<table class="infobox"><tr><td><img src="//upload.wikimedia.org/wikipedia/commons/'
        'thumb/1/12/Some_Thing.jpg/250px-Some_Thing.jpg" width="250"></td></tr></table>'
    )
    assert infobox_file(html) == "File:Some Thing.jpg"
    assert infobox_file("<p>no infobox</p>") is None
    assert file_from_src("//upload.wikimedia.org/wikipedia/commons/a/ab/X%C3%BF.png") == "Xÿ.png"
    assert strip_html('<a href="x">Jane&nbsp;Doe</a>, <i>CC</i>') == "Jane Doe , CC"
    assert strip_html("") is None


@pytest.mark.parametrize(
    ("special", "message"),
    [
        ("missing", "no English Wikipedia page"),
        ("non_free", "non-free"),
        ("corrupt", "corrupt image bytes"),
        ("http500", "HTTP 500 after"),
    ],
)
def test_problems_raise_image_problem(special, message):
    fake = FakeWikipedia(special={"Okapi": special})
    with pytest.raises(ImageProblem, match=message):
        WikiImages(make_client(fake, max_retries=1)).fetch("Okapi")


# --- sizes as the authors' loader makes them ------------------------------------------------


def _noise(width: int, height: int, fmt: str = "PNG") -> bytes:
    """An image whose every pixel differs, so the resampling filter shows in the result."""
    pixels = bytes(
        (x * 7 + y * 13 + c * 101) % 256
        for y in range(height)
        for x in range(width)
        for c in range(3)
    )
    image = Image.frombytes("RGB", (width, height), pixels)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((100, 61), (224, 136)),  # small: enlarged; 136.64 floored, not rounded to 137
        ((1000, 602), (224, 134)),  # large: shrunk; 134.85 floored, not rounded to 135
        ((224, 150), (224, 150)),  # already 224 wide: unchanged
    ],
)
def test_images_are_sized_as_the_authors_size_them(size, expected):
    data, extension = normalise(_noise(*size))
    out = Image.open(io.BytesIO(data))
    assert extension == "png" and out.size == expected
    # The authors' open_image: convert("RGB"), then resize with PIL's default filter.
    theirs = Image.open(io.BytesIO(_noise(*size))).convert("RGB").resize(expected)
    assert out.tobytes() == theirs.tobytes()
    if size != expected:
        lanczos = Image.open(io.BytesIO(_noise(*size))).resize(expected, Image.Resampling.LANCZOS)
        assert out.tobytes() != lanczos.tobytes()  # the filter matters, and theirs is used


def test_height_uses_the_authors_float_expression():
    # int((224 / 110) * 330) is 671 (the float product is 671.999...); 330 * 224 // 110 is 672.
    assert scaled_size(110, 330) == (224, 671)
    assert scaled_size(5000, 10) == (224, 1)  # never 0 px high


def test_small_wikimedia_original_is_enlarged():
    # Wikimedia serves an original narrower than the asked width as is; we enlarge it.
    image = WikiImages(make_client(FakeWikipedia(special={"Okapi": "small"}))).fetch("Okapi")
    assert Image.open(io.BytesIO(image.data)).size == (224, 136)


# --- batched queries ------------------------------------------------------------------------


def _api_calls(fake: FakeWikipedia) -> list[dict]:
    return [params for base, params, _ in fake.log if base == API]


def test_six_tasks_take_about_twenty_api_requests():
    from benchmark import CROSS_MODAL_TASKS, get_task, load_pool

    pools = dict.fromkeys(get_task(t).source for t in CROSS_MODAL_TASKS)
    titles = [i["wikipedia_title"] for pool in pools for i in load_pool(pool)["items"]]
    assert len(titles) == 390
    fake = FakeWikipedia()
    results = WikiImages(make_client(fake)).fetch_many(titles)
    assert not [t for t, r in results.items() if isinstance(r, ImageProblem)]
    calls = _api_calls(fake)
    assert len(calls) == 16 <= 20  # 8 lead-image and 8 file queries, not 780 one-title ones
    assert max(len(c["titles"].split("|")) for c in calls) == 50
    assert len(fake.log) - len(calls) == 390  # one download per image
    for title in ("Flag of France", "Persimmon"):
        assert results[title].file_title == "File:" + fake.file_name(title).replace("_", " ")


def test_batch_follows_normalized_and_redirects_to_each_titles_page():
    fake = FakeWikipedia(redirects={"Gray wolf": "Wolf"}, special={"Nowhere": "missing"})
    titles = ["gray_wolf", "Wolf", "okapi", "Nowhere", "Persimmon"]
    results = WikiImages(make_client(fake)).fetch_many(titles)
    assert list(results) == titles
    assert results["gray_wolf"].file_title == "File:Wolf.jpg"  # normalised, then redirected
    assert results["Wolf"].file_title == "File:Wolf.jpg"
    assert results["okapi"].file_title == "File:Okapi.jpg"
    assert results["Persimmon"].file_title == "File:Persimmon.jpg"
    assert isinstance(results["Nowhere"], ImageProblem)
    assert "no English Wikipedia page titled 'Nowhere'" in str(results["Nowhere"])
    assert len(_api_calls(fake)) == 2


def test_batch_follows_continue_until_complete():
    fake = FakeWikipedia(continue_after=7)
    titles = [f"Thing {i}" for i in range(20)]
    results = WikiImages(make_client(fake)).fetch_many(titles)
    for title in titles:
        assert results[title].file_title == f"File:{title}.jpg", title
    calls = _api_calls(fake)
    assert [c.get("picontinue") for c in calls if c["prop"] == "pageimages"] == [None, "7", "14"]
    assert [c.get("iicontinue") for c in calls if c["prop"] == "imageinfo"] == [None, "7", "14"]
    assert all(c["continue"] == "||" for c in calls if "picontinue" in c or "iicontinue" in c)


# --- API errors inside a 200 ----------------------------------------------------------------


def _api_error(code: str, **extra) -> bytes:
    return json.dumps({"error": {"code": code, "info": f"{code} info", **extra}}).encode()


@pytest.mark.parametrize(
    ("queued", "sleeps"),
    [
        ((200, {}, _api_error("ratelimited")), [2.0]),  # no hint: the client's backoff
        ((200, {}, _api_error("maxlag", lag=3)), [3.0]),  # the reported lag
        ((200, {"Retry-After": "5"}, _api_error("maxlag", lag=1)), [5.0]),  # the header first
    ],
)
def test_rate_limit_and_lag_errors_in_a_200_are_retried(tmp_path, queued, sleeps):
    fake, time = FakeWikipedia(), FakeTime()
    fake.script[API] = [queued]
    wiki = WikiImages(make_client(fake, cache_dir=tmp_path / "c", time=time))
    assert wiki.fetch("Wolf").file_title == "File:Wolf.jpg"
    assert time.sleeps == sleeps
    assert len(_api_calls(fake)) == 3  # the refused query, asked again, then the file query
    again = FakeWikipedia()
    WikiImages(make_client(again, cache_dir=tmp_path / "c")).fetch("Wolf")
    assert again.log == []  # the error body was never cached; the real answers were


def test_rate_limit_that_never_ends_is_reported_per_item():
    fake, time = FakeWikipedia(), FakeTime()
    fake.script[API] = [(200, {}, _api_error("ratelimited"))] * 3
    results = WikiImages(make_client(fake, time=time, max_retries=2)).fetch_many(["Wolf", "Lion"])
    for problem in results.values():
        assert isinstance(problem, ImageProblem)
        assert "MediaWiki API error ratelimited after 3 attempts" in str(problem)
    assert time.sleeps == [2.0, 4.0]


def test_other_api_errors_stop_with_their_code():
    fake, time = FakeWikipedia(), FakeTime()
    fake.script[API] = [(200, {}, _api_error("badvalue"))]
    with pytest.raises(ApiError, match="MediaWiki API error badvalue: badvalue info") as info:
        WikiImages(make_client(fake, time=time)).fetch_many(["Wolf"])
    assert info.value.code == "badvalue" and time.sleeps == [] and len(fake.log) == 1


# --- licences -------------------------------------------------------------------------------


def _info(local: bool = False, **fields: str) -> dict:
    return {
        "descriptionurl": "https://en.wikipedia.org/wiki/File:X.png",
        "extmetadata": {k: {"value": v, "source": "commons-desc-page"} for k, v in fields.items()},
    }


@pytest.mark.parametrize(
    ("fields", "local", "refused"),
    [
        ({"LicenseShortName": "CC BY-SA 4.0"}, False, None),
        ({"LicenseShortName": "Public domain"}, True, None),
        ({"LicenseShortName": "CC BY 2.0", "License": "cc-by-2.0"}, True, None),
        ({"LicenseShortName": "Fair use"}, False, "fair use"),  # named, not flagged
        ({"LicenseShortName": "Logo", "UsageTerms": "Non-free media"}, False, "non-free"),
        ({"LicenseShortName": "Book cover", "License": "fairuse"}, False, "fair use"),
        ({"LicenseShortName": "Logo", "Copyrighted": "True"}, True, "local to English"),
        ({"LicenseShortName": "CC BY-NC-SA 2.0"}, True, "local to English"),
        ({"UsageTerms": "All rights reserved"}, True, "local to English"),
        ({"LicenseShortName": "PD-textlogo", "NonFree": "true"}, False, "non-free"),
    ],
)
def test_licences_that_do_not_allow_reuse_are_refused(fields, local, refused):
    if refused is None:
        assert attribution_from(_info(**fields), "u", local=local)["license"]
    else:
        with pytest.raises(ImageProblem, match=refused):
            attribution_from(_info(**fields), "u", local=local)


@pytest.mark.parametrize(
    ("special", "message"),
    [("local_fair_use", "local to English Wikipedia"), ("fair_use_name", "fair use")],
)
def test_infobox_fallback_refuses_unflagged_fair_use(special, message):
    fake = FakeWikipedia(special={"Some Company": special})
    with pytest.raises(ImageProblem, match=message):
        WikiImages(make_client(fake)).fetch("Some Company")
    assert not [b for b, _, _ in fake.log if b != API]  # nothing was downloaded


# --- whole builds ---------------------------------------------------------------------------

FOOD_TASKS = ["food_color", "food_flavor"]
# One pool of 130 items: 3 lead-image queries and 3 file queries (50 titles each), 130 images.
FOOD_REQUESTS = 3 + 3 + 130


def _loaded_rows(out: Path, task: str, tmp_path: Path) -> dict:
    import datasets

    ds = datasets.load_dataset(str(out), task, cache_dir=str(tmp_path / "hf-cache"))
    return {s: ds[s] for s in ds}


def test_image_build_loads_and_every_row_validates(tmp_path):
    import datasets

    fake = FakeWikipedia()
    wiki = WikiImages(make_client(fake, cache_dir=tmp_path / "cache"))
    report = build_with_images(tmp_path / "out", FOOD_TASKS, wiki)
    assert report.written and report.missing == {}
    assert report.counts["food_color"] == {"validation": 30, "test": 100}
    assert len(fake.log) == FOOD_REQUESTS  # once per pool item, not per task; API batched
    for task in FOOD_TASKS:
        splits = _loaded_rows(tmp_path / "out", task, tmp_path)
        for split, ds in splits.items():
            assert [r["id"] for r in ds] == [r["id"] for r in load_task(task, split)]
            first = ds[0]
            assert isinstance(first["image"], Image.Image) and first["image"].width == 224
            raw = ds.cast_column("image", datasets.Image(decode=False))
            for row in raw:
                assert row["image"]["bytes"] and row["attribution"]["license"]
                assert validate(json_row(row), "row_cross_modal") == [], row["id"]
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "CC BY-SA 4.0: 130" in readme and "Example User" in readme


def test_failures_are_reported_by_id_and_nothing_written(tmp_path):
    fake = FakeWikipedia(special={"Persimmon": "http500", "Strawberry": "corrupt"})
    time = FakeTime()
    wiki = WikiImages(make_client(fake, cache_dir=tmp_path / "c", time=time, max_retries=2))
    report = build_with_images(tmp_path / "out", FOOD_TASKS, wiki)
    assert not report.written and not (tmp_path / "out").exists()
    assert set(report.missing) == {"persimmon", "strawberry"}
    assert "HTTP 500 after 3 attempts" in report.missing["persimmon"]
    assert "corrupt image bytes" in report.missing["strawberry"]
    assert time.sleeps == [2.0, 4.0]  # exponential backoff without Retry-After

    allowed = build_with_images(tmp_path / "out", FOOD_TASKS, wiki, allow_missing=True)
    assert allowed.written and allowed.counts["food_color"]["test"] == 98
    splits = _loaded_rows(tmp_path / "out", "food_color", tmp_path)
    ids = {r["id"] for ds in splits.values() for r in ds}
    assert "persimmon" not in ids and "strawberry" not in ids and len(ids) == 128
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "`persimmon`" in readme and "--allow-missing" in readme


def test_corrupt_download_is_not_cached(tmp_path):
    fake = FakeWikipedia(special={"Strawberry": "corrupt"})
    wiki = WikiImages(make_client(fake, cache_dir=tmp_path / "c"))
    with pytest.raises(ImageProblem):
        wiki.fetch("Strawberry")
    fixed = FakeWikipedia()
    wiki = WikiImages(make_client(fixed, cache_dir=tmp_path / "c"))
    wiki.fetch("Strawberry")
    assert [b for b, _, _ in fixed.log if b != API] != []  # the image was asked for again
    assert len(fixed.log) == 1  # the API answers came from the cache


def test_interrupted_build_resumes_without_redownloading(tmp_path):
    cache = tmp_path / "cache"
    first = FakeWikipedia(stop_after=60)
    with pytest.raises(KeyboardInterrupt):
        build_with_images(tmp_path / "out", FOOD_TASKS, WikiImages(make_client(first, cache)))
    assert len(first.answered) == 59 and not (tmp_path / "out").exists()
    assert not list(cache.rglob("*.tmp"))  # atomic writes: no half-written cache entries

    second = FakeWikipedia()
    report = build_with_images(tmp_path / "out", FOOD_TASKS, WikiImages(make_client(second, cache)))
    assert report.written
    asked_again = set(first.answered) & set(second.answered)
    assert asked_again == set()
    assert len(second.log) == FOOD_REQUESTS - 59
    assert report.cache_hits == 59

    third = FakeWikipedia()
    build_with_images(tmp_path / "out2", FOOD_TASKS, WikiImages(make_client(third, cache)))
    assert third.log == []  # a re-run downloads nothing twice


# --- CLI ------------------------------------------------------------------------------------


@pytest.fixture
def fake_cli(monkeypatch):
    """vlm-tv-build cross-modal with its HTTP answered by FakeWikipedia, no real sleeping."""
    state = {"fake": FakeWikipedia(), "time": FakeTime()}

    def factory(user_agent, **kwargs):
        session = requests.Session()
        session.mount("https://", state["fake"])
        state["user_agent"] = user_agent
        state["min_interval"] = kwargs["min_interval"]
        return HttpClient(
            user_agent,
            session=session,
            sleep=state["time"].sleep,
            clock=state["time"].clock,
            **kwargs,
        )

    monkeypatch.setattr(cli, "HttpClient", factory)
    monkeypatch.delenv("VLM_TV_BUILD_CONTACT", raising=False)
    return state


def test_cli_cross_modal_builds_and_reports(tmp_path, fake_cli, capsys):
    args = ["cross-modal", "--tasks", "food_color", "--cache-dir", str(tmp_path / "c")]
    assert cli.main([*args, "--out", str(tmp_path / "o")]) == 2
    assert "--contact" in capsys.readouterr().err

    fake_cli["fake"] = FakeWikipedia(special={"Persimmon": "missing"})
    args += ["--contact", "me@example.org", "--rate-limit", "4"]
    assert cli.main([*args, "--out", str(tmp_path / "o")]) == 1
    captured = capsys.readouterr()
    assert "MISSING persimmon: Persimmon: no English Wikipedia page" in captured.err
    assert "--allow-missing" in captured.err and not (tmp_path / "o").exists()
    assert "me@example.org" in fake_cli["user_agent"] and fake_cli["min_interval"] == 0.25

    assert cli.main([*args, "--out", str(tmp_path / "o"), "--allow-missing"]) == 0
    out = capsys.readouterr().out
    assert "food_color: validation" in out and "answered from the cache" in out
    assert (tmp_path / "o" / "food_color" / "test-00000-of-00001.parquet").is_file()


def test_cli_default_cache_dir_follows_vlm_tv_eval_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VLM_TV_EVAL_CACHE", str(tmp_path))
    assert cli.default_cache_dir() == tmp_path / "wikipedia"
    args = cli.build_parser().parse_args(
        ["cross-modal", "--out", str(tmp_path / "o"), "--contact", "x@y.z", "--max-retries", "1"]
    )
    client = cli.make_client(args)
    assert client.cache.root == tmp_path / "wikipedia" and client.max_retries == 1
    assert client.min_interval == 1 / cli.DEFAULT_RATE and client.timeout == (10.0, 60.0)


def test_cli_interrupted_build_says_how_to_resume(tmp_path, fake_cli, capsys):
    fake_cli["fake"] = FakeWikipedia(stop_after=5)
    argv = ["cross-modal", "--tasks", "food_color", "--contact", "me@example.org",
            "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "o")]  # fmt: skip
    assert cli.main(argv) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    fake_cli["fake"] = FakeWikipedia()
    assert cli.main(argv) == 0
    assert len(fake_cli["fake"].log) == FOOD_REQUESTS - 4


def test_connection_errors_are_retried():
    class Flaky(FakeWikipedia):
        def send(self, request, **kwargs):
            if not self.log:
                self.log.append(("down", {}, {}))
                raise requests.ConnectionError("connection reset")
            return super().send(request, **kwargs)

    fake, time = Flaky(), FakeTime()
    body = make_client(fake, time=time).get(API, {"action": "query", "prop": "pageimages",
                                                  "titles": "Wolf"})  # fmt: skip
    assert json.loads(body)["query"]["pages"][0]["pageimage"] == "Wolf.jpg"
    assert time.sleeps == [2.0] and len(fake.log) == 2


def test_cli_stops_on_an_api_error_naming_its_code(tmp_path, fake_cli, capsys):
    fake_cli["fake"].script[API] = [(200, {}, _api_error("badvalue"))]
    argv = ["cross-modal", "--tasks", "food_color", "--contact", "me@example.org",
            "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "o")]  # fmt: skip
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "vlm-tv-build cross-modal: MediaWiki API error badvalue: badvalue info" in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()
