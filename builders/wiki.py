"""The image of a pool item from English Wikipedia, with what its licence asks us to credit.

For page titles (`Flag of France`, `Wolf`, `Persimmon`) the MediaWiki Action API gives each
page's lead image (`prop=pageimages`, free images only); when it gives none, the first image
of the page's infobox (`action=parse`, read with BeautifulSoup) is used. Then `prop=imageinfo`
on the files gives thumbnail URLs 224 px wide (SVG flags are rendered to PNG by Wikimedia) and
each file's `extmetadata`: author, licence, licence URL. Every request uses `formatversion=2`
and `maxlag=5` (Wikimedia's advice for non-interactive clients).

The two `query` steps ask for up to 50 titles per request, the API's limit for clients without
the `apihighlimits` right: about 20 requests for the six tasks' ~390 pages instead of ~780.
The API answers a batch by page, not by the title asked, so each title is followed through
the response's `normalized` and `redirects` lists to its own page, and `continue` is followed
until the batch is complete. `action=parse` takes one page, so the infobox fall-back stays one
request per page (few pages need it).

A per-item failure becomes an ImageProblem with a reason a person can act on; the build
collects these per item id and reports them together. An API error other than rate limiting
or replication lag (which are retried like a 429) ends the build as an ApiError naming its
code: it means the request itself is wrong, for every item. An answer that is not strict JSON
(`benchmark.strict_json`: a proxy's HTML page, absurd nesting) is a per-item problem too.
Which infobox image, and whether its licence lets us redistribute it: `builders.wiki_files`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from benchmark.strict_json import loads_checked

from .http import FetchError, HttpClient, RetryLater
from .images import TARGET_WIDTH, CorruptImageError, check_image, normalise
from .wiki_files import ImageProblem, attribution_from, infobox_file, is_local_file
from .wiki_files import file_from_src as file_from_src
from .wiki_files import strip_html as strip_html

API_URL = "https://en.wikipedia.org/w/api.php"
EXTMETADATA_FIELDS = (
    "Artist|Credit|LicenseShortName|License|LicenseUrl|UsageTerms|NonFree|Copyrighted"
)
BATCH_SIZE = 50  # titles per query: the limit for clients without apihighlimits
MAX_CONTINUATIONS = 20  # a batch still incomplete after this many follow-ups is a broken API
RETRIED_API_CODES = frozenset({"ratelimited", "maxlag"})
MAXLAG = "5"


class BadApiResponse(ValueError):
    """An API answer that is not strict JSON (HTML from a proxy, a truncated body, absurd
    nesting from a misconfigured --api-url): a per-item problem, never a crash."""


def api_json(data: bytes) -> dict[str, Any]:
    """The API's answer, read with `benchmark.strict_json`; BadApiResponse when unusable."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadApiResponse(f"the API answered with bytes that are not UTF-8 ({exc})") from None
    doc, errors = loads_checked(text)
    if errors:
        raise BadApiResponse(f"the API answered with something that is not JSON: {errors[0]}")
    if not isinstance(doc, dict):
        raise BadApiResponse("the API answered with JSON that is not an object")
    return doc


class ApiError(ValueError):
    """An API error that retrying will not cure; the message names the code."""

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


def _check_api_json(data: bytes) -> None:
    """Validate hook: an API `error` is retried (rate limit, lag) or raised, never cached."""
    doc = api_json(data)
    error = doc.get("error")
    if not error:
        return
    code = str(error.get("code", "unknown")) if isinstance(error, dict) else "unknown"
    info = str(error.get("info", "")) if isinstance(error, dict) else str(error)
    if code in RETRIED_API_CODES:
        lag = error.get("lag")
        wait = float(lag) if isinstance(lag, (int, float)) and not isinstance(lag, bool) else None
        raise RetryLater(f"MediaWiki API error {code}", wait)
    raise ApiError(code, info)


def batches(items: Sequence[str], size: int = BATCH_SIZE) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def resolve(title: str, aliases: Mapping[str, str]) -> str:
    """Follow `normalized` then `redirects` entries from an asked title to its page title."""
    seen = {title}
    while title in aliases:
        title = aliases[title]
        if title in seen:  # a redirect loop: the API reports the page as it stands
            break
        seen.add(title)
    return title


def _merge_page(into: dict[str, Any], page: Mapping[str, Any]) -> None:
    """Add what a continuation says about a page to what earlier responses said."""
    for key, value in page.items():
        if isinstance(value, list) and isinstance(into.get(key), list):
            into[key] = into[key] + [v for v in value if v not in into[key]]
        elif key not in into or into[key] in (None, "", [], {}):
            into[key] = value


def _problem(exc: Exception) -> ImageProblem:
    """The ImageProblem of a failed request, as the build reports it."""
    if isinstance(exc, FetchError):
        return ImageProblem(exc.reason + f" for {exc.url}")
    return ImageProblem(str(exc))


@dataclass
class _Choice:
    """The file chosen for a page: its title, the page's lead thumbnail, how it was found."""

    file_title: str | None
    thumb: str | None
    found_via: str


class WikiImages:
    """Looks up and downloads pool images through one HttpClient (rate limit, cache, retries)."""

    def __init__(self, client: HttpClient, api_url: str = API_URL, width: int = TARGET_WIDTH):
        self.client = client
        self.api_url = api_url
        self.width = width

    def api(self, **params: str) -> dict[str, Any]:
        params = {"format": "json", "formatversion": "2", "maxlag": MAXLAG, **params}
        return api_json(self.client.get(self.api_url, params, validate=_check_api_json))

    def query_pages(self, titles: Sequence[str], **params: str) -> dict[str, dict[str, Any] | None]:
        """{asked title: its page} for one batch of titles (at most BATCH_SIZE).

        Titles are matched to pages through `normalized` (`wolf` -> `Wolf`) and `redirects`
        (`Gray wolf` -> `Wolf`); `continue` is followed until the batch is complete, merging
        what each response adds. A title without a page in the answer maps to None.
        """
        if len(titles) > BATCH_SIZE:
            raise ValueError(f"{len(titles)} titles in one query; the API takes {BATCH_SIZE}")
        pages: dict[str, dict[str, Any]] = {}
        aliases: dict[str, str] = {}
        follow: dict[str, str] = {}
        for _ in range(MAX_CONTINUATIONS):
            doc = self.api(
                action="query", titles="|".join(titles), redirects="1", **params, **follow
            )
            query = doc.get("query") or {}
            for entry in (query.get("normalized") or []) + (query.get("redirects") or []):
                aliases[str(entry["from"])] = str(entry["to"])
            for page in query.get("pages") or []:
                _merge_page(pages.setdefault(str(page.get("title")), {}), page)
            more = doc.get("continue")
            if not more:
                break
            follow = {str(k): str(v) for k, v in more.items()}
        else:
            raise ImageProblem(f"the API still asked to continue after {MAX_CONTINUATIONS} calls")
        return {title: pages.get(resolve(title, aliases)) for title in titles}

    def infobox_image(self, title: str) -> str | None:
        try:
            doc = self.api(action="parse", page=title, prop="text", redirects="1")
        except ApiError as exc:
            if exc.code == "missingtitle":
                raise ImageProblem(f"no English Wikipedia page titled {title!r}") from exc
            raise ImageProblem(str(exc)) from exc
        parsed = doc.get("parse")
        text = parsed.get("text", "") if isinstance(parsed, dict) else ""
        if isinstance(text, dict):  # formatversion=1 shape, in case a mirror ignores fv=2
            text = text.get("*", "")
        return infobox_file(text if isinstance(text, str) else "")

    def _lead_images(
        self, titles: Sequence[str], results: dict[str, WikiImage | ImageProblem]
    ) -> dict[str, _Choice]:
        """Each page's lead image, 50 pages a request; failures go into `results`."""
        chosen: dict[str, _Choice] = {}
        for batch in batches(titles):
            try:
                pages = self.query_pages(
                    batch,
                    prop="pageimages",
                    piprop="thumbnail|name|original",
                    pithumbsize=str(self.width),
                    pilimit=str(BATCH_SIZE),
                )
            except (FetchError, BadApiResponse, ImageProblem) as exc:
                results.update((title, _problem(exc)) for title in batch)
                continue
            for title in batch:
                page = pages[title]
                if not page or page.get("missing") or page.get("invalid"):
                    results[title] = ImageProblem(f"no English Wikipedia page titled {title!r}")
                elif page.get("pageimage"):
                    name = "File:" + str(page["pageimage"]).replace("_", " ")
                    thumb = (page.get("thumbnail") or {}).get("source")
                    chosen[title] = _Choice(name, thumb, "pageimages")
                else:
                    chosen[title] = _Choice(None, None, "infobox")
        return chosen

    def _file_pages(self, files: Sequence[str]) -> dict[str, dict[str, Any] | ImageProblem]:
        """Each file's page with its imageinfo, 50 files a request."""
        out: dict[str, dict[str, Any] | ImageProblem] = {}
        for batch in batches(files):
            try:
                pages = self.query_pages(
                    batch,
                    prop="imageinfo",
                    iiprop="url|mime|size|extmetadata",
                    iiurlwidth=str(self.width),
                    iiextmetadatafilter=EXTMETADATA_FIELDS,
                )
            except (FetchError, BadApiResponse, ImageProblem) as exc:
                out.update((name, _problem(exc)) for name in batch)
                continue
            for name in batch:
                # A Commons file seen from en.wikipedia is "missing" locally but "known".
                page = pages[name]
                if page and page.get("imageinfo"):
                    out[name] = page
                else:
                    out[name] = ImageProblem(f"no file information for {name!r}")
        return out

    def _download(self, title: str, choice: _Choice, page: Mapping[str, Any]) -> WikiImage:
        assert choice.file_title is not None
        info = page["imageinfo"][0]
        url = info.get("thumburl") or choice.thumb or info.get("url")
        if not url:
            raise ImageProblem(f"no image URL for {choice.file_title!r}")
        attribution = attribution_from(info, url, local=is_local_file(page, info))
        try:
            raw = self.client.get(url, validate=check_image)
            data, extension = normalise(raw, self.width)
        except CorruptImageError as exc:
            raise ImageProblem(str(exc)) from exc
        except FetchError as exc:
            raise _problem(exc) from exc
        return WikiImage(title, choice.file_title, data, extension, attribution, choice.found_via)

    def fetch_many(
        self, titles: Sequence[str], desc: str = "images"
    ) -> dict[str, WikiImage | ImageProblem]:
        """Every title's image (resized, checked, attributed) or the ImageProblem it hit.

        Raises ApiError only for an API error that no retry cures (a malformed request).
        """
        titles = list(dict.fromkeys(titles))
        results: dict[str, WikiImage | ImageProblem] = {}
        chosen = self._lead_images(titles, results)
        for title in [t for t, choice in chosen.items() if choice.file_title is None]:
            try:  # one request per page: action=parse takes no batch
                name = self.infobox_image(title)
                if name is None:
                    raise ImageProblem("the page has no lead image and no infobox image")
            except (FetchError, BadApiResponse, ImageProblem) as exc:
                results[title] = _problem(exc)
                del chosen[title]
            else:
                chosen[title].file_title = name
        files = self._file_pages(list(dict.fromkeys(c.file_title or "" for c in chosen.values())))
        for title, choice in tqdm(chosen.items(), desc=desc, unit="image", disable=None):
            page = files[choice.file_title or ""]
            if isinstance(page, ImageProblem):
                results[title] = page
                continue
            try:
                results[title] = self._download(title, choice, page)
            except ImageProblem as exc:
                results[title] = exc
        return {title: results[title] for title in titles}

    def fetch(self, title: str) -> WikiImage:
        """One item's image, resized and checked, with attribution; raises ImageProblem."""
        result = self.fetch_many([title])[title]
        if isinstance(result, ImageProblem):
            raise result
        return result
