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
from builders.wiki import ImageProblem, WikiImages, file_from_src, infobox_file, strip_html

API = "https://en.wikipedia.org/w/api.php"
UA = "vlm-tv-eval-tests/1 (tests@example.org)"


def _png(width: int, height: int, seed: str, mode: str = "RGBA") -> bytes:
    colour = tuple(hashlib.sha256(seed.encode()).digest()[:3])
    image = Image.new(mode, (width, height), colour + ((255,) if mode == "RGBA" else ()))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if mode == "RGBA" else "JPEG")
    return buffer.getvalue()


class FakeWikipedia(BaseAdapter):
    """en.wikipedia.org/w/api.php and upload.wikimedia.org, for any page title.

    Every page has a lead image (flags: an SVG whose thumbnail is a PNG; others: a JPEG),
    served 250 px wide as Wikimedia's standard thumbnail sizes now do. `special` changes a
    title's behaviour: "no_lead" (only an infobox image), "missing" (no such page),
    "non_free", "corrupt" (image bytes are garbage), "http500" (image always 500).
    `script` queues responses (status, headers) for a URL before its normal answer.
    `stop_after` raises KeyboardInterrupt on that request, as a user pressing Ctrl-C.
    """

    def __init__(self, special=None, script=None, stop_after=None):
        super().__init__()
        self.special = dict(special or {})
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.stop_after = stop_after
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
    def query_pageimages(self, title: str) -> dict:
        if self.special.get(title) == "missing":
            return {
                "batchcomplete": True,
                "query": {"pages": [{"ns": 0, "title": title, "missing": True}]},
            }
        page = {"pageid": 1000 + len(title), "ns": 0, "title": title}
        if self.special.get(title) != "no_lead":
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
        return {"batchcomplete": True, "query": {"pages": [page]}}

    def query_imageinfo(self, file_title: str) -> dict:
        name = file_title.removeprefix("File:").replace(" ", "_")
        title = self.title_of_file(name)
        flag = name.endswith(".svg")
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
        if self.special.get(title) == "non_free":
            meta["NonFree"] = {"value": "true", "source": "commons-desc-page", "hidden": ""}
            meta["LicenseShortName"]["value"] = "Fair use"
        info = {
            "thumburl": self.thumb_url(name),
            "thumbwidth": 250,
            "thumbheight": 150,
            "url": f"https://upload.wikimedia.org/wikipedia/commons/a/ab/{quote(name)}",
            "descriptionurl": f"https://commons.wikimedia.org/wiki/File:{quote(name)}",
            "descriptionshorturl": "https://commons.wikimedia.org/w/index.php?curid=1",
            "mime": "image/svg+xml" if flag else "image/jpeg",
            "size": 1234,
            "width": 1000,
            "height": 600,
            "extmetadata": meta,
        }
        page = {
            "ns": 6,
            "title": "File:" + name.replace("_", " "),
            "missing": True,  # a Commons file seen from en.wikipedia: shared, not local
            "known": True,
            "imagerepository": "shared",
            "imageinfo": [info],
        }
        return {"batchcomplete": True, "query": {"pages": [page]}}

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
            status, headers = queued.pop(0)
            return self._response(request, status, b"error", headers)
        if base == API:
            if params.get("action") == "parse":
                body = self.parse(params["page"])
            elif params.get("prop") == "pageimages":
                body = self.query_pageimages(params["titles"])
            else:
                body = self.query_imageinfo(params["titles"])
            return self._response(request, 200, json.dumps(body).encode(), {})
        name = unquote(parsed.path.split("/")[-2])
        title = self.title_of_file(name).removesuffix("_infobox").removesuffix(" infobox")
        kind = self.special.get(title)
        if kind == "http500":
            return self._response(request, 500, b"Internal Server Error", {})
        if kind == "corrupt":
            return self._response(request, 200, b"\x89PNG\r\n\x1a\nnot really a png", {})
        flag = name.endswith(".svg")
        data = _png(250, 150, title, "RGBA" if flag else "RGB")
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


# --- whole builds ---------------------------------------------------------------------------

FOOD_TASKS = ["food_color", "food_flavor"]


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
    assert len(fake.log) == 130 * 3  # images are fetched once per pool item, not per task
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
    first = FakeWikipedia(stop_after=200)
    with pytest.raises(KeyboardInterrupt):
        build_with_images(tmp_path / "out", FOOD_TASKS, WikiImages(make_client(first, cache)))
    assert len(first.answered) == 199 and not (tmp_path / "out").exists()
    assert not list(cache.rglob("*.tmp"))  # atomic writes: no half-written cache entries

    second = FakeWikipedia()
    report = build_with_images(tmp_path / "out", FOOD_TASKS, WikiImages(make_client(second, cache)))
    assert report.written
    asked_again = set(first.answered) & set(second.answered)
    assert asked_again == set()
    assert len(second.log) == 130 * 3 - 199
    assert report.cache_hits == 199

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
    assert len(fake_cli["fake"].log) == 130 * 3 - 4


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
