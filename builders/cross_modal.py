"""The six cross-modal task datasets: pool items as text, and their Wikipedia images.

One config per task (`country_capital` ... `food_flavor`), splits `validation` and `test` as
fixed in the shipped pools, rows in pool order, columns:

    id, task, split, input, image (datasets Image, null in text-only builds), output,
    wikipedia_title, attribution {source_url, file_page, author, license, license_url} (null
    in text-only builds)

`write_dataset` writes that layout (Parquet + card) from rows in memory: the image builds use
it, and so can tests that need a tiny image dataset (PIL images are fine). `build_text_only`
needs no network; `build_with_images` fetches every image through `wiki.WikiImages`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark import CROSS_MODAL, CROSS_MODAL_TASKS, get_task, load_pool, load_task, validate
from benchmark.layout import COLUMNS as FAMILY_COLUMNS
from benchmark.layout import config_name

from . import card
from .layout import config_splits, write_configs
from .wiki import ImageProblem, WikiImage, WikiImages

COLUMNS = FAMILY_COLUMNS[CROSS_MODAL]
ATTRIBUTION_KEYS = ("source_url", "file_page", "author", "license", "license_url")


def features() -> Any:
    """The datasets.Features of every cross-modal config (imported lazily: datasets is slow)."""
    from datasets import Features, Image, Value

    return Features(
        {
            "id": Value("string"),
            "task": Value("string"),
            "split": Value("string"),
            "input": Value("string"),
            "image": Image(),
            "output": Value("string"),
            "wikipedia_title": Value("string"),
            "attribution": {key: Value("string") for key in ATTRIBUTION_KEYS},
        }
    )


def image_value(image: Any, name: str | None = None) -> dict[str, Any] | None:
    """A datasets Image value {"bytes", "path"} from a PIL image, bytes, a file path or a dict.

    Bytes are always embedded, so the Parquet files stand alone once uploaded.
    """
    if image is None:
        return None
    if isinstance(image, dict):
        if image.get("bytes") is None and image.get("path"):
            return image_value(Path(image["path"]), name)
        return {"bytes": image.get("bytes"), "path": image.get("path") or name}
    if isinstance(image, (bytes, bytearray)):
        return {"bytes": bytes(image), "path": name}
    if isinstance(image, (str, Path)):
        path = Path(image)
        return {"bytes": path.read_bytes(), "path": name or path.name}
    if hasattr(image, "save"):  # PIL.Image.Image: keep its format (JPEG stays JPEG)
        buffer = io.BytesIO()
        fmt = image.format or "PNG"
        image.save(buffer, format=fmt)
        if name is not None:
            extension = {"JPEG": "jpg"}.get(fmt, fmt.lower())
            name = f"{Path(name).stem}.{extension}"
        return {"bytes": buffer.getvalue(), "path": name}
    raise TypeError(f"cannot store an image of type {type(image).__name__}")


def json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as JSON for schema validation: image bytes replaced by a placeholder."""
    out = dict(row)
    image = out.get("image")
    if isinstance(image, dict):
        size = len(image["bytes"]) if image.get("bytes") is not None else None
        out["image"] = {"path": image.get("path"), "bytes": f"<{size} bytes>" if size else None}
    return out


def complete_row(task: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the optional columns (task, wikipedia_title, image, attribution); refuse others."""
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown column(s) {sorted(unknown)} in a {task} row; use {COLUMNS}")
    absent = [key for key in ("id", "split", "input", "output") if key not in row]
    if absent:
        raise ValueError(f"a {task} row lacks column(s) {absent}: {dict(row)!r:.200}")
    out = {"task": task, "wikipedia_title": "", "image": None, "attribution": None, **row}
    name = None
    if out["image"] is not None and not isinstance(out["image"], dict):
        name = f"{out.get('id', 'image')}.png"
    out["image"] = image_value(out["image"], name)
    if out["attribution"] is not None:
        out["attribution"] = {key: out["attribution"].get(key) for key in ATTRIBUTION_KEYS}
    return {key: out.get(key) for key in COLUMNS}


def group_by_split(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["split"], []).append(row)
    return out


def check_rows(rows_by_config: Mapping[str, Mapping[str, Sequence[Mapping]]], kind: str) -> None:
    """Every row against the row schema of `kind`; raises ValueError listing the problems."""
    problems = []
    for config, by_split in rows_by_config.items():
        for split, rows in by_split.items():
            for i, row in enumerate(rows):
                for err in validate(json_row(row), kind):
                    problems.append(f"{config}/{split}[{i}] {row.get('id')}: {err}")
    if problems:
        shown = "\n".join(problems[:20])
        raise ValueError(f"{len(problems)} row(s) do not match {kind}:\n{shown}")


def split_counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """{split: rows} in validation, test order."""
    by_split = group_by_split(rows)
    return {s: len(by_split[s]) for s in config_splits({"_": by_split})["_"]}


def row_counts(rows_by_config: Mapping[str, Mapping[str, Sequence]]) -> dict[str, dict]:
    return {c: {s: len(r) for s, r in by.items()} for c, by in rows_by_config.items()}


def make_card(
    rows_by_config: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
    missing: Mapping[str, str] | None = None,
) -> str:
    """The cross-modal dataset card; text-only when no row has an image."""
    splits = config_splits(rows_by_config)
    attributions: dict[str, Mapping[str, Any]] = {}
    for by_split in rows_by_config.values():
        for rows in by_split.values():
            for row in rows:
                if row.get("attribution"):
                    attributions.setdefault(row["id"], row["attribution"])
    with_images = any(
        row.get("image") for by in rows_by_config.values() for rows in by.values() for row in rows
    )
    counts = row_counts(rows_by_config)
    table = card.configs_table(splits, counts)
    tasks = "\n".join(
        f'- `{t}`: {get_task(t).description} Instruction: "{get_task(t).instruction}"'
        for t in splits
        if t in CROSS_MODAL_TASKS
    )
    columns = (
        "`id` (pool item id), `task`, `split`, `input` (the item as text), `image` "
        "(the item's Wikipedia image, 224 px wide; null in text-only builds), `output` "
        "(the label), `wikipedia_title` (the English Wikipedia page the image comes from), "
        "`attribution` (source_url, file_page, author, license, license_url of the image; "
        "null in text-only builds). Rows are in pool order; the split is fixed in the pool "
        "and shared by both tasks of a pool and by the text and image versions."
    )
    if with_images:
        provenance = (
            "Labels, inputs and splits: the shipped pools of vlm-tv-eval "
            "(`benchmark/pools/*.json`, which record the label sources and the items left out as "
            "ambiguous). Images: for each item, the lead image of the English Wikipedia page "
            "named in `wikipedia_title` (MediaWiki Action API `prop=pageimages`, free images "
            "only), or the first infobox image when the page has no lead image; a thumbnail "
            "224 px wide from upload.wikimedia.org (SVG flags are rendered to PNG by Wikimedia), "
            "then sized as the paper's loader sizes images: 224 px wide, height "
            "`int((224 / width) * height)`, bicubic, smaller images enlarged. Author and "
            "licence come from the file's `extmetadata` (`Artist`, `LicenseShortName`, "
            "`LicenseUrl`); non-free files are refused: flagged `NonFree`, a licence naming "
            "fair use or non-free terms, or a file local to English Wikipedia (not on Commons) "
            "without a recognised free licence."
        )
        licence_text = (
            "The images keep their own licences (mostly public domain and Creative Commons, "
            "from Wikimedia Commons); reuse must follow each image's licence and credit its "
            "author as listed below. The text, labels and splits are released with vlm-tv-eval "
            "under Apache-2.0.\n\n" + card.attribution_section(sorted(attributions.items()))
        )
        sections = [
            ("Configs", table + "\n\n" + tasks),
            ("Columns", columns),
            ("Provenance", provenance),
            ("Licences", licence_text),
            ("Items without an image", card.missing_section(missing or {})),
        ]
        title = "vlm-tv-eval: cross-modal tasks (text and Wikipedia images)"
        meta: dict[str, Any] = dict(card.WIKIMEDIA_LICENCE, license="other")
    else:
        provenance = (
            "Text-only build made offline from the shipped pools of vlm-tv-eval "
            "(`benchmark/pools/*.json`, which record the label sources and the items left out as "
            "ambiguous). `image` and `attribution` are null; `vlm-tv-build cross-modal` adds the "
            "Wikipedia images."
        )
        sections = [
            ("Configs", table + "\n\n" + tasks),
            ("Columns", columns),
            ("Provenance", provenance),
            ("Licence", "Released with vlm-tv-eval under Apache-2.0."),
        ]
        title = "vlm-tv-eval: cross-modal tasks (text only)"
        meta = {"license": "apache-2.0", "task_categories": card.TEXT_TASK_CATEGORIES}
    sections.append(("Citation", card.citations(card.PAPER_BIBTEX)))
    front = card.front_matter(splits, pretty_name=title, counts=counts, **meta)
    return card.render(front, title, sections)


def write_dataset(
    out_dir: str | Path,
    rows_by_task: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    missing: Mapping[str, str] | None = None,
    card_text: str | None = None,
    check: bool = True,
    kind: str = "cross-modal",
    overwrite: bool = False,
) -> Path:
    """Write cross-modal configs (Parquet in the Hub layout + README.md card) from rows.

    `rows_by_task` maps a task id to its rows, each a dict with `id`, `split`, `input`,
    `output` and optionally `task`, `wikipedia_title`, `image` (a PIL image, bytes, a file path,
    a {"bytes", "path"} dict, or None) and `attribution` (dict or None). Rows keep their order
    within a split. With `check`, every row must match `row_cross_modal`. Returns the folder;
    `datasets.load_dataset(str(folder), task)` then loads it. `out_dir` must be new, empty or
    an earlier build of the same `kind`, unless `overwrite` (see `builders.output`).
    """
    by_config = {
        config_name(task): group_by_split(complete_row(task, row) for row in rows)
        for task, rows in rows_by_task.items()
    }
    if check:
        check_rows(by_config, "row_cross_modal")
    text = card_text if card_text is not None else make_card(by_config, missing)
    return write_configs(out_dir, by_config, features(), text, kind=kind, overwrite=overwrite)


def text_rows(task: str) -> list[dict[str, Any]]:
    return [dict(r, image=None, attribution=None) for r in load_task(task)]


def check_tasks(tasks: Sequence[str]) -> list[str]:
    unknown = [t for t in tasks if t not in CROSS_MODAL_TASKS]
    if unknown:
        raise ValueError(
            f"not cross-modal task(s): {', '.join(unknown)}; use {', '.join(CROSS_MODAL_TASKS)}"
        )
    return list(dict.fromkeys(tasks))


@dataclass
class BuildReport:
    """What a build did: rows per config and split, items without an image and why."""

    out_dir: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    written: bool = False
    requests_made: int = 0
    cache_hits: int = 0
    notes: list[str] = field(default_factory=list)


def build_text_only(
    out_dir: str | Path, tasks: Sequence[str] = CROSS_MODAL_TASKS, *, overwrite: bool = False
) -> BuildReport:
    """The configs without images, from the shipped pools; no network."""
    rows = {task: text_rows(task) for task in check_tasks(tasks)}
    folder = write_dataset(out_dir, rows, kind="text-only", overwrite=overwrite)
    counts = {task: split_counts(task_rows) for task, task_rows in rows.items()}
    return BuildReport(Path(folder), counts=counts, written=True)


def fetch_pool_images(
    wiki: WikiImages, items: Sequence[Mapping[str, Any]], desc: str = "images"
) -> tuple[dict[str, WikiImage], dict[str, str]]:
    """Every item's image; the failures as {item id: reason}, never dropped silently.

    All titles go to `WikiImages.fetch_many` at once, so the API is asked 50 pages a request.
    """
    results = wiki.fetch_many([item["wikipedia_title"] for item in items], desc=desc)
    images: dict[str, WikiImage] = {}
    missing: dict[str, str] = {}
    for item in items:
        result = results[item["wikipedia_title"]]
        if isinstance(result, ImageProblem):
            missing[item["id"]] = f"{item['wikipedia_title']}: {result}"
        else:
            images[item["id"]] = result
    return images, missing


def image_rows(task: str, images: Mapping[str, WikiImage]) -> list[dict[str, Any]]:
    rows = []
    for record in load_task(task):
        image = images.get(record["id"])
        if image is None:
            continue
        value = {"bytes": image.data, "path": f"{record['id']}.{image.extension}"}
        rows.append(dict(record, image=value, attribution=image.attribution))
    return rows


def build_with_images(
    out_dir: str | Path,
    tasks: Sequence[str],
    wiki: WikiImages,
    *,
    allow_missing: bool = False,
    overwrite: bool = False,
) -> BuildReport:
    """Fetch every pool image (cached, resumable), then write the configs.

    With any item missing and not `allow_missing`, nothing is written: the report lists the
    items, and a re-run fetches only what is still missing (the rest comes from the cache).
    """
    tasks = check_tasks(tasks)
    pools = list(dict.fromkeys(get_task(t).source for t in tasks))
    items = [item for pool in pools for item in load_pool(pool)["items"]]
    images, missing = fetch_pool_images(wiki, items)
    report = BuildReport(
        Path(out_dir),
        missing=missing,
        requests_made=wiki.client.requests_made,
        cache_hits=wiki.client.cache_hits,
    )
    if missing and not allow_missing:
        return report
    rows = {task: image_rows(task, images) for task in tasks}
    write_dataset(out_dir, rows, missing=missing, kind="cross-modal", overwrite=overwrite)
    report.counts = {task: split_counts(task_rows) for task, task_rows in rows.items()}
    report.written = True
    return report
