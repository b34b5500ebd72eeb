"""The authors' annotation files and images, read and checked before anything is written.

`import-authors` (`builders.authors`) reads `data/annotations/<task>_<mode>.json` and the
images they name. Here: which file is which task and split (two spellings of one are refused),
each file's items (strictly parsed), the images (found inside the images folder, opened through
`builders.images.open_verified`), and the overlap between the two splits (an item in both is
dropped from validation, so no test item is a demo or a task-vector item).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from benchmark import CROSS_MODAL_TASKS
from benchmark.reading import file_problem, read_bytes
from benchmark.validation import input_key, repeated_inputs

from .images import CorruptImageError, open_verified
from .sources import InputError, InputMissingError, check_file, json_type, parse_json

SPLIT_OF_MODE = {"val": "validation", "test": "test"}


def _read(path: Path) -> bytes:
    """A file of the authors' download, bounded (`benchmark.reading`): a FIFO, device or a file
    of gigabytes in their place is one line naming it."""
    try:
        return read_bytes(path)
    except OSError as exc:
        raise InputError(f"{exc}; re-download the authors' data") from None


def authors_task(task: str) -> str:
    """The authors' spelling of our task id: `country_capital` -> `country-capital`."""
    return task.replace("_", "-")


def parse_file_name(name: str) -> tuple[str, str] | None:
    """(our task id, mode) of `<task>_<val|test>.json`, either spelling of the task, in any
    case (`Country_Capital_VAL.JSON`); else None. Two files of one (task, mode) are refused
    (`scan_annotations`), never one of them picked."""
    match = re.fullmatch(r"(.+)_(val|test)\.json", name.lower())
    if not match:
        return None
    task = match.group(1).replace("-", "_")
    return (task, match.group(2)) if task in CROSS_MODAL_TASKS else None


def item_id(text: str) -> str:
    """Our pools' id rule: ASCII, lowercase, apostrophes dropped, other runs become `_`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = re.sub(r"['\u2019]", "", ascii_text.lower())
    return re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_") or "item"


def input_folder(path: Path, option: str) -> Path:
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
    refused rather than skipped, so no item set is silently left out; so are two files that
    spell one task file two ways (`country-capital_val.json` and `country_capital_val.json`,
    or `.json` and `.JSON`): which one holds the authors' items is not ours to guess.
    """
    input_folder(folder, "--annotations")
    found: dict[tuple[str, str], Path] = {}
    names = sorted(p for p in folder.iterdir() if p.name.lower().endswith(".json"))
    for path in names:
        parsed = parse_file_name(path.name)
        if parsed is None:
            known = ", ".join(f"{authors_task(t)}_val.json" for t in CROSS_MODAL_TASKS[:2])
            raise InputError(
                f"{path}: not a task file of the paper (expected <task>_<val|test>.json, e.g. "
                f"{known}, ...); move it out of {folder}"
            )
        task, mode = parsed
        other = found.setdefault((task, SPLIT_OF_MODE[mode]), path)
        if other != path:
            raise InputError(
                f"{other} and {path} are two spellings of one task file "
                f"({authors_task(task)}_{mode}.json); remove one of them"
            )
    files = {key: path for key, path in found.items() if key[0] in tasks}
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
    doc = parse_json(_read(path), str(path), "; re-download it")
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
    repeats = repeated_inputs(item["input"] for item in items)
    if repeats:
        first, repeat = repeats[0]
        raise InputError(
            f"{path}[{repeat}]: input {items[repeat]['input']!r} repeats [{first}] "
            f"({items[first]['input']!r}): an item would be its own demo or be counted twice; "
            "remove one of them from the file"
        )
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


def image_value(path: Path, row_id: str, data: bytes | None = None) -> dict[str, Any]:
    """The authors' file, byte for byte: decoded once only to refuse a corrupt one.

    Not re-encoded, resized or flattened: their loader does `Image.open(path).convert("RGB")`
    and resizes to 224 px wide, and the harness does exactly that to the stored bytes at run
    time (`harness.adapters.vlm.resize_to_width`), so a model sees their pixels (a transparent
    corner as PIL's convert leaves it, not on white; no JPEG re-encoding loss).
    """
    data = _read(path) if data is None else data
    try:
        image = open_verified(data)
    except CorruptImageError as exc:
        raise InputError(f"{path}: {exc}; re-download images.zip") from None
    extension = path.suffix.lower().lstrip(".") or (image.format or "img").lower()
    image.close()
    return {"bytes": data, "path": f"{row_id}.{extension}"}


@dataclass
class Overlap:
    """Validation items of a task that its test split also holds, dropped from validation."""

    task: str
    validation_file: Path
    test_file: Path
    dropped: list[str]  # the dropped validation items' inputs, in file order
    kept: int  # validation items left

    def warning(self) -> str:
        example = self.dropped[0]
        return (
            f"warning: {self.task}: {len(self.dropped)} item(s) of {self.validation_file} are "
            f"also in {self.test_file.name} (e.g. {example!r}): dropped from validation, "
            f"{self.kept} left, so no test item is a demo or a task-vector item"
        )


def split_items(path: Path, images: Path) -> list[dict[str, Any]]:
    """One file's items with their image file, its bytes and their SHA-256.

    An item's identity is its input (`benchmark.validation.input_key`) and its image's content:
    two items of one split that share either are refused (an image query would be its own demo).
    """
    items = read_items(path)
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        file = find_image(images, item["image"], f"{path}[{i}]")
        item.update(file=file, data=_read(file))
        item["sha256"] = hashlib.sha256(item["data"]).hexdigest()
        first = seen.setdefault(item["sha256"], i)
        if first != i:
            raise InputError(
                f"{path}[{i}]: image {item['image']!r} is the same picture as [{first}]'s "
                f"({items[first]['image']!r}): an image query would be its own demo or be "
                "counted twice; remove one of them from the file"
            )
    return items


def drop_overlap(
    task: str, files: Mapping[tuple[str, str], Path], by_split: dict[str, list[dict[str, Any]]]
) -> Overlap | None:
    """Drops from validation every item the test split also holds (same input by
    `input_key`, or the same image content), keeping test as the authors' (their reported
    numbers are on it, item for item). Validation feeds the task vectors, the demos and the
    layer choice, so a test item left there would lift the test score; dropping is said (a
    warning, the card). Refused when fewer than 2 validation items would be left."""
    test = by_split["test"]
    inputs = {input_key(item["input"]) for item in test}
    pictures = {item["sha256"] for item in test}
    val = by_split["validation"]
    shared = [input_key(x["input"]) in inputs or x["sha256"] in pictures for x in val]
    if not any(shared):
        return None
    kept = [x for x, out in zip(val, shared, strict=True) if not out]
    dropped = [x["input"] for x, out in zip(val, shared, strict=True) if out]
    val_file, test_file = files[(task, "validation")], files[(task, "test")]
    if len(kept) < 2:
        raise InputError(
            f"{val_file}: {len(dropped)} of its {len(val)} items are also in {test_file.name} "
            f"(e.g. {dropped[0]!r}), leaving {len(kept)} for validation (needs at least 2); "
            "these are not the authors' two splits: re-download annotations.zip"
        )
    by_split["validation"] = kept
    return Overlap(task, val_file, test_file, dropped, len(kept))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(_read(path)).hexdigest()
