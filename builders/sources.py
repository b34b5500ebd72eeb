"""Reading the VQA builders' inputs: JSON, JSONL or Parquet files, local or on the Hub; COCO.

An input is a local path (globs allowed) or an `hf://datasets/<org>/<name>/<path>` URL, read
through fsspec (huggingface_hub registers `hf://`), so the same code reads a downloaded VQAv2
JSON and the LLaVA-ReCap Parquet shards on the Hub, and from Parquet only the columns needed.

COCO image ids are the last run of digits in an id or file name: `000000391895`,
`COCO_val2014_000000391895.jpg` and `coco/train2017/000000391895.jpg` are all image 391895.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .images import CorruptImageError, open_verified

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_DIGITS = re.compile(r"\d+")


def _files(spec: str) -> list[Any]:
    """fsspec OpenFiles for a path, glob or URL; a clear error when nothing matches."""
    import fsspec

    if "://" not in spec:
        matches = sorted(glob.glob(os.path.expanduser(spec)))
        if not matches:
            raise FileNotFoundError(f"no file matches {spec!r}")
        return [fsspec.open(m, "rb") for m in matches]
    files = fsspec.open_files(spec, "rb")
    if not files:
        raise FileNotFoundError(f"no file matches {spec!r}")
    return list(files)


def read_json(spec: str) -> Any:
    """One JSON document (the first file if `spec` is a glob)."""
    with _files(spec)[0] as f:
        return json.load(f)


def _parquet_records(f: Any, columns: Sequence[str] | None) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(f)
    names = parquet.schema_arrow.names
    wanted = [c for c in columns if c in names] if columns else None
    for batch in parquet.iter_batches(columns=wanted, batch_size=4096):
        yield from batch.to_pylist()


def read_records(spec: str, columns: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """Records from JSON (a list, or a dict holding one list), JSONL or Parquet files.

    `columns` limits what is read from Parquet (LLaVA-ReCap shards also hold the images).
    """
    for opened in _files(spec):
        name = opened.path.lower()
        with opened as f:
            if name.endswith(".parquet"):
                yield from _parquet_records(f, columns)
            elif name.endswith(".jsonl"):
                for line in f:
                    if line.strip():
                        yield json.loads(line)
            else:
                doc = json.load(f)
                if isinstance(doc, dict):
                    lists = [v for v in doc.values() if isinstance(v, list)]
                    if len(lists) != 1:
                        raise ValueError(f"{opened.path}: expected a JSON list of records")
                    doc = lists[0]
                yield from doc


def coco_image_id(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    runs = _DIGITS.findall(Path(value).name) or _DIGITS.findall(value)
    return int(runs[-1]) if runs else None


def caption_of(record: dict[str, Any]) -> str | None:
    """The dense caption of a LLaVA-style record: the first gpt/assistant turn."""
    if isinstance(record.get("caption"), str):
        return record["caption"].strip() or None
    for turn in record.get("conversations") or []:
        if turn.get("from") in ("gpt", "assistant") and isinstance(turn.get("value"), str):
            return turn["value"].strip() or None
    return None


def load_captions(specs: Sequence[str]) -> dict[int, str]:
    """{COCO image id: dense caption} from LLaVA-ReCap files (id / image / conversations)."""
    captions: dict[int, str] = {}
    for spec in specs:
        for record in read_records(spec, columns=("id", "conversations", "caption")):
            image_id = coco_image_id(record.get("id"))
            if image_id is None:
                image_id = coco_image_id(record.get("image"))
            text = caption_of(record)
            if image_id is not None and text:
                captions.setdefault(image_id, text)
    return captions


class CocoImages:
    """COCO images found in local folders (searched recursively), by image id."""

    def __init__(self, folders: Sequence[str | Path]):
        self.folders = [Path(f) for f in folders]
        self._index: dict[int, Path] | None = None

    def _build_index(self) -> dict[int, Path]:
        index: dict[int, Path] = {}
        for folder in self.folders:
            if not folder.is_dir():
                raise FileNotFoundError(f"COCO image folder {folder} does not exist")
            for root, _dirs, files in os.walk(folder):
                for name in sorted(files):
                    if name.lower().endswith(IMAGE_SUFFIXES):
                        image_id = coco_image_id(name)
                        if image_id is not None:
                            index.setdefault(image_id, Path(root) / name)
        return index

    def path(self, image_id: int) -> Path | None:
        if self._index is None:
            self._index = self._build_index()
        return self._index.get(image_id)

    def read(self, image_id: int) -> tuple[bytes, str] | None:
        """(bytes, file name) of a readable image; None if absent; raises if corrupt."""
        path = self.path(image_id)
        if path is None:
            return None
        data = path.read_bytes()
        try:
            open_verified(data)
        except CorruptImageError as exc:
            raise CorruptImageError(f"{path}: {exc}") from exc
        return data, path.name
