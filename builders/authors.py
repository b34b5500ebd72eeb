"""Importing the paper authors' own items and images, so a run can use the paper's item sets.

Our shipped pools are our own items; to compare a run with the paper's Table 2 item for item,
`vlm-tv-build import-authors` turns the authors' published files into our layout (same configs,
columns and splits as `builders.cross_modal`, so `vlm-tv-eval --data OUT` finds it).

The authors' layout (g-luo/task_vectors_are_cross_modal at AUTHORS_COMMIT): `download_data.sh`
unzips `data/annotations.zip` and `data/images.zip` from their Hub dataset into `data/`;
`src/xpatch_evaluate.py` reads `data/annotations/<task>_<mode>.json` (task ids with hyphens,
`country-capital`; mode `val` for feature caching and layer selection, `test` for the reported
numbers; no train file: demos are drawn from the same file, the query left out), and
`src/xpatch_dataset.py` reads a list of {"input", "output", "image"} (or {"data": [...]}), the
image path relative to `data/`. We keep their split (`val` -> validation, `test` -> test) and
their order; ids follow our pools' rule, so an item both sets hold has the same id.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from benchmark import CROSS_MODAL_TASKS, get_task
from benchmark.layout import SPLITS, config_name

from . import card
from .cross_modal import write_dataset
from .images import TARGET_WIDTH, CorruptImageError, open_verified
from .sources import InputError, InputMissingError, check_file, file_problem, json_type, parse_json

KIND = "import-authors"  # the output marker's kind: the command's name, as for every build
AUTHORS_REPO = "https://github.com/g-luo/task_vectors_are_cross_modal"
AUTHORS_COMMIT = "25c7463ceef1602492ed5be0bf12dcf1b7fd3fb6"
DOWNLOAD_SCRIPT = f"{AUTHORS_REPO}/blob/{AUTHORS_COMMIT}/download_data.sh"
AUTHORS_HUB = "https://huggingface.co/datasets/g-luo/task_vectors_are_cross_modal"
IMAGES_ZIP = f"{AUTHORS_HUB}/resolve/main/data/images.zip"
SPLIT_OF_MODE = {"val": "validation", "test": "test"}
UNSTATED = "unstated (no licence in the authors' repo or Hub dataset)"


def authors_task(task: str) -> str:
    """The authors' spelling of our task id: `country_capital` -> `country-capital`."""
    return task.replace("_", "-")


def parse_file_name(name: str) -> tuple[str, str] | None:
    """(our task id, mode) of `<task>_<val|test>.json`, either spelling of the task; else None."""
    match = re.fullmatch(r"(.+)_(val|test)\.json", name)
    if not match:
        return None
    task = match.group(1).replace("-", "_")
    return (task, match.group(2)) if task in CROSS_MODAL_TASKS else None


def item_id(text: str) -> str:
    """Our pools' id rule: ASCII, lowercase, apostrophes dropped, other runs become `_`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = re.sub(r"['\u2019]", "", ascii_text.lower())
    return re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_") or "item"


def _folder(path: Path, option: str) -> Path:
    if not path.exists():
        raise InputMissingError(
            f"{option} {path} does not exist; give the folder download_data.sh made"
        )
    if not path.is_dir():
        what = "a file" if path.is_file() else "not a folder"
        raise InputError(f"{option} {path} is {what}; give the folder that holds it")
    return path


def scan_annotations(folder: Path, tasks: Sequence[str]) -> dict[tuple[str, str], Path]:
    """{(task, split): file} for `tasks`; refuses unknown task files and missing ones.

    An unknown `*_val.json`/`*_test.json` (a misspelt task, another benchmark's file) is
    refused rather than skipped, so no item set is silently left out.
    """
    _folder(folder, "--annotations")
    files: dict[tuple[str, str], Path] = {}
    for path in sorted(folder.glob("*.json")):
        parsed = parse_file_name(path.name)
        if parsed is None:
            known = ", ".join(f"{authors_task(t)}_val.json" for t in CROSS_MODAL_TASKS[:2])
            raise InputError(
                f"{path}: not a task file of the paper (expected <task>_<val|test>.json, e.g. "
                f"{known}, ...); move it out of {folder}"
            )
        task, mode = parsed
        if task in tasks:
            files[(task, SPLIT_OF_MODE[mode])] = path
    for task in tasks:
        for mode, split in SPLIT_OF_MODE.items():
            if (task, split) not in files:
                expected = folder / f"{authors_task(task)}_{mode}.json"
                hint = (
                    f"pass --annotations {folder / 'annotations'}"
                    if (folder / "annotations").is_dir()
                    else "run the authors' download_data.sh, or import fewer tasks with --tasks"
                )
                raise InputMissingError(f"{expected} is missing; {hint}")
    return files


def read_items(path: Path) -> list[dict[str, str]]:
    """The {"input", "output", "image"} items of one annotation file, in file order."""
    check_file(path, "move it out of the annotations folder")
    doc = parse_json(path.read_bytes(), str(path), "; re-download it")
    if isinstance(doc, dict) and "data" in doc:
        doc = doc["data"]
    if not isinstance(doc, list) or not doc:
        raise InputError(
            f'{path}: expected a non-empty list of items (or {{"data": [...]}}), found '
            f"{json_type(doc)}; re-download it"
        )
    items = []
    for i, item in enumerate(doc):
        if not isinstance(item, dict):
            raise InputError(f"{path}[{i}] is {json_type(item)}, expected an object")
        bad = [k for k in ("input", "output", "image") if not _text(item.get(k))]
        if bad:
            raise InputError(
                f"{path}[{i}]: missing or empty {', '.join(bad)} (every item needs input, "
                "output and image); re-download the file"
            )
        items.append({k: item[k].strip() for k in ("input", "output", "image")})
    return items


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def find_image(images: Path, relative: str, where: str) -> Path:
    """The file an item's `image` names, under `images`.

    The authors resolve it against `data/`; `--images` may be that folder or the `images/`
    folder inside it, so leading folders of the path are dropped until a file is found.
    """
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    if not parts or ".." in parts or parts[0] == "/":
        raise InputError(f"{where}: image {relative!r} is not a relative path inside the data")
    problem = None  # the first path that exists but is no file: a folder, a FIFO
    for start in range(len(parts)):
        candidate = images.joinpath(*parts[start:])
        found = file_problem(candidate)
        if found is None:
            return candidate
        if problem is None and found != "does not exist":
            problem = f"{candidate} {found}"
    if problem:
        raise InputError(f"{where}: image {relative!r}: {problem}; it must be the image file")
    raise InputMissingError(
        f"{where}: image {relative!r} not found under {images}; pass the folder images.zip "
        "was unzipped into (download_data.sh: data/) as --images"
    )


def image_value(path: Path, row_id: str) -> dict[str, Any]:
    """The authors' file, byte for byte: decoded once only to refuse a corrupt one.

    Not re-encoded, resized or flattened: their loader does `Image.open(path).convert("RGB")`
    and resizes to 224 px wide, and the harness does exactly that to the stored bytes at run
    time (`harness.adapters.vlm.resize_to_width`), so a model sees their pixels (a transparent
    corner as PIL's convert leaves it, not on white; no JPEG re-encoding loss).
    """
    data = path.read_bytes()
    try:
        image = open_verified(data)
    except CorruptImageError as exc:
        raise InputError(f"{path}: {exc}; re-download images.zip") from None
    extension = path.suffix.lower().lstrip(".") or (image.format or "img").lower()
    image.close()
    return {"bytes": data, "path": f"{row_id}.{extension}"}


def task_rows(
    task: str, files: Mapping[tuple[str, str], Path], images: Path
) -> list[dict[str, Any]]:
    """A task's rows, validation then test, each split in the authors' order.

    A repeated input gets `_2`, `_3`, ... so ids stay unique within the config (the harness
    joins images by id).
    """
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for split in SPLITS:
        path = files[(task, split)]
        for i, item in enumerate(read_items(path)):
            base = item_id(item["input"])
            seen[base] = seen.get(base, 0) + 1
            row_id = base if seen[base] == 1 else f"{base}_{seen[base]}"
            image = find_image(images, item["image"], f"{path}[{i}]")
            rows.append(
                {
                    "id": row_id,
                    "split": split,
                    "input": item["input"],
                    "output": item["output"],
                    "image": image_value(image, row_id),
                    "attribution": {
                        "source_url": f"{IMAGES_ZIP}#{item['image']}",
                        "file_page": item["image"],
                        "author": None,
                        "license": UNSTATED,
                        "license_url": None,
                    },
                }
            )
    return rows


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class ImportReport:
    """What an import wrote: rows per config and split, and each annotation file's SHA-256."""

    out_dir: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


def make_card(counts: Mapping[str, Mapping[str, int]], sources: Mapping[str, str]) -> str:
    """The card: where the items came from, how they were converted, and the licence caveat."""
    splits = {config: [s for s in SPLITS if by.get(s)] for config, by in counts.items()}
    table = card.configs_table(splits, counts)
    tasks = "\n".join(
        f"- `{t}` (theirs: `{authors_task(t)}`): {get_task(t).description}" for t in splits
    )
    files = "\n".join(f"- `{name}`: sha256 `{digest}`" for name, digest in sources.items())
    columns = (
        "As `vlm-tv-build cross-modal` builds: `id` (the input in our pools' id rule, so an "
        "item both sets hold has one id; a repeated input gets `_2`), `task`, `split`, `input`, "
        "`image` (the authors' image file, its original bytes: not re-encoded, resized or "
        f"converted; the harness converts it to RGB and resizes it to {TARGET_WIDTH} px wide as "
        "their loader does), "
        "`output` (the authors' label), "
        "`wikipedia_title` (empty: the authors do not record one), `attribution` (`source_url` "
        "is images.zip with the authors' image path after `#`, `file_page` that path)."
    )
    provenance = (
        f"Items, labels, splits and images from the authors' release: their "
        f"[download_data.sh]({DOWNLOAD_SCRIPT}) (repo {AUTHORS_REPO}, commit "
        f"`{AUTHORS_COMMIT}`) fetches `data/annotations.zip` and `data/images.zip` from "
        f"{AUTHORS_HUB}. Their `<task>_val.json` is our `validation` split (their feature "
        "caching and layer selection), `<task>_test.json` our `test` split (their reported "
        "numbers); there is no train file (demos come from the same split, the query left "
        "out). Rows keep the files' order. Images are the authors' original files, byte for "
        "byte (never re-encoded or flattened onto a background); like the authors' loader, "
        'the harness opens each with `.convert("RGB")` and resizes it to '
        f"{TARGET_WIDTH} px wide, aspect kept, at run time.\n\n"
        "Annotation files imported:\n\n" + files
    )
    licence = (
        "The authors' repo and Hub dataset state no licence, and the images' own rights are not "
        "recorded. This import is for comparing results with the paper; ask the authors before "
        "redistributing it, and push it to the Hub only as a private dataset."
    )
    title = "vlm-tv-eval: the paper authors' cross-modal items (imported)"
    sections = [
        ("Configs", table + "\n\n" + tasks),
        ("Columns", columns),
        ("Provenance", provenance),
        ("Licence", licence),
        ("Citation", card.citations(card.PAPER_BIBTEX)),
    ]
    front = card.front_matter(
        splits,
        pretty_name=title,
        license="other",
        license_name="unstated-by-the-authors",
        license_link=AUTHORS_HUB,
    )
    return card.render(front, title, sections)


def import_authors(
    annotations: str | Path,
    images: str | Path,
    out_dir: str | Path,
    tasks: Sequence[str] = CROSS_MODAL_TASKS,
    *,
    overwrite: bool = False,
) -> ImportReport:
    """Read every file and image first (an `InputError` names the first bad one), then write.

    Nothing is written when any input is bad, so `out_dir` keeps its earlier build.
    """
    annotations, images = Path(annotations), _folder(Path(images), "--images")
    files = scan_annotations(annotations, tasks)
    rows = {task: task_rows(task, files, images) for task in tasks}
    counts = {
        config_name(t): {s: sum(r["split"] == s for r in rs) for s in SPLITS}
        for t, rs in rows.items()
    }
    sources = {
        path.name: sha256_file(path) for _, path in sorted(files.items(), key=lambda kv: kv[1].name)
    }
    text = make_card(counts, sources)
    write_dataset(out_dir, rows, card_text=text, kind=KIND, overwrite=overwrite)
    return ImportReport(Path(out_dir), counts=counts, sources=sources)
