"""Reading the VQA builders' inputs: JSON, JSONL or Parquet files, local or on the Hub; COCO.

An input is a local path (globs allowed) or an `hf://datasets/<org>/<name>/<path>` URL, read
through fsspec (huggingface_hub registers `hf://`), so the same code reads a downloaded VQAv2
JSON and the LLaVA-ReCap Parquet shards on the Hub, and from Parquet only the columns needed.

COCO image ids are the last run of digits in an id or file name: `000000391895`,
`COCO_val2014_000000391895.jpg` and `coco/train2017/000000391895.jpg` are all image 391895.
Caption records are held to the stricter form LLaVA-ReCap-118K uses (the LLaVA convention:
`id` is the COCO file name's 12 zero-padded digits, `000000391895`): an id of another shape
(`GCC_train_000644580` from LLaVA-ReCap-CC3M, say) would otherwise be read as some unrelated
COCO image and put its caption on it.

An input that cannot be used (no such file, a folder or FIFO, not UTF-8, not strict JSON,
not Parquet, records of the wrong shape) raises `InputError`, a one-line message that names
the file and what is wrong. JSON is read with `benchmark.strict_json`, so NaN, a key given
twice or absurd nesting is refused like any other damage instead of crashing or passing. A
remote input that cannot be fetched (no network, unknown host) raises `UnreachableError`.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmark.reading import file_problem, read_bytes
from benchmark.strict_json import loads_checked

from .images import CorruptImageError, open_verified

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_DIGITS = re.compile(r"\d+")
# A COCO file name's stem: 12 digits, alone or after a prefix (`COCO_val2014_`), maybe a suffix.
_COCO_NAME = re.compile(r"(?:.*\D)?(\d{12})(?:\.[A-Za-z]+)?")
# Packages whose errors mean the network failed: huggingface_hub's hf:// filesystem raises
# httpx's (httpx2's in some builds), which, unlike requests', are not OSErrors.
_HTTP_LIBRARIES = frozenset({"httpx", "httpx2", "httpcore", "requests", "urllib3", "aiohttp"})


class InputError(ValueError):
    """A builder input that cannot be used; the message names the file and what is wrong."""


class InputMissingError(InputError, FileNotFoundError):
    """No file matches an input path, glob or URL."""


class UnreachableError(OSError):
    """A remote input that could not be fetched: a network failure, not a bad file (exit 1)."""


def json_type(value: Any) -> str:
    """How a JSON value is named in messages: "an object", "a list", "a string", ..."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null" if value is None else f"a {type(value).__name__}"


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_file(path: str | Path, fix: str) -> Path:
    """`path` if `file_problem` finds nothing, else InputError (InputMissingError if absent)."""
    problem = file_problem(path)
    if problem is None:
        return Path(path)
    error = InputMissingError if problem == "does not exist" else InputError
    raise error(f"{path} {problem}; {fix}")


def is_network_error(exc: BaseException) -> bool:
    """Whether a remote read failed in the network (OSError, or an HTTP library's error)."""
    if isinstance(exc, OSError):
        return True
    return any(cls.__module__.split(".")[0] in _HTTP_LIBRARIES for cls in type(exc).__mro__)


@contextmanager
def reaching(spec: str) -> Iterator[None]:
    """Around a read of `spec`: a URL that cannot be fetched becomes one UnreachableError line.

    Local paths are left alone (their problems are checked by name before reading).
    """
    try:
        yield
    except (InputError, UnreachableError):
        raise
    except Exception as exc:
        if "://" not in spec or not is_network_error(exc):
            raise
        raise UnreachableError(
            f"cannot reach {spec}: {_one_line(exc)}; download the file and pass a local path"
        ) from None


def _files(spec: str) -> list[tuple[str, Any]]:
    """(name, fsspec OpenFile) for a path, glob or URL; a clear error when nothing matches."""
    import fsspec

    if "://" not in spec:
        matches = sorted(glob.glob(os.path.expanduser(spec)))
        if not matches:
            raise InputMissingError(f"no file matches {spec!r}")
        for match in matches:
            check_file(match, "give a file (or a glob of files)")
        return [(m, fsspec.open(m, "rb")) for m in matches]
    files = fsspec.open_files(spec, "rb")
    if not files:
        raise InputMissingError(f"no file matches {spec!r}")
    return [(f.full_name, f) for f in files]


def parse_json(data: bytes | str, name: str, fix: str = "") -> Any:
    """One JSON document read strictly (`benchmark.strict_json.loads_checked`), else an
    InputError line naming `name` (and ending in `fix`, e.g. "; re-download it")."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{name}: not UTF-8 text (byte {exc.start}: {exc.reason}); JSON inputs must "
                f"be UTF-8{fix}"
            ) from None
    doc, errors = loads_checked(data)
    if not errors:
        return doc
    first = errors[0]
    where = "" if first.path == "$" else f"{first.path}: "
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise InputError(f"{name}: {where}{first.message}{more}{fix}")


def read_json(spec: str) -> Any:
    """One JSON document (the first file if `spec` is a glob)."""
    with reaching(spec):
        name, opened = _files(spec)[0]
        with opened as f:
            data = f.read()
    return parse_json(data, name)


def _parquet_records(f: Any, columns: Sequence[str] | None, name: str) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(f)
        names = parquet.schema_arrow.names
        wanted = [c for c in columns if c in names] if columns else None
        for batch in parquet.iter_batches(columns=wanted, batch_size=4096):
            yield from batch.to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{name}: cannot be read as Parquet ({_one_line(exc)})") from exc


def _json_records(f: Any, name: str) -> Iterator[dict[str, Any]]:
    doc = parse_json(f.read(), name)
    if isinstance(doc, dict):
        lists = [k for k, v in doc.items() if isinstance(v, list)]
        if len(lists) != 1:
            found = f"lists under {', '.join(map(repr, lists))}" if lists else "no list"
            raise InputError(
                f"{name}: expected a JSON list of records, or an object holding one list ({found})"
            )
        where, doc = f"{name}: {lists[0]!r}", doc[lists[0]]
    elif isinstance(doc, list):
        where = name
    else:
        raise InputError(f"{name}: expected a JSON list of records, found {json_type(doc)}")
    for i, record in enumerate(doc):
        if not isinstance(record, dict):
            raise InputError(f"{where}[{i}] is {json_type(record)}, expected an object (a record)")
        yield record


def _jsonl_records(f: Any, name: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(f, start=1):
        if not line.strip():
            continue
        record = parse_json(line, f"{name} line {number}")
        if not isinstance(record, dict):
            raise InputError(f"{name} line {number}: {json_type(record)}, expected an object")
        yield record


def read_records(spec: str, columns: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """Records from JSON (a list, or a dict holding one list), JSONL or Parquet files.

    `columns` limits what is read from Parquet (LLaVA-ReCap shards also hold the images).
    """
    with reaching(spec):
        for name, opened in _files(spec):
            suffix = opened.path.lower()
            with opened as f:
                if suffix.endswith(".parquet"):
                    yield from _parquet_records(f, columns, name)
                elif suffix.endswith(".jsonl"):
                    yield from _jsonl_records(f, name)
                else:
                    yield from _json_records(f, name)


def coco_image_id(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    runs = _DIGITS.findall(Path(value).name) or _DIGITS.findall(value)
    return int(runs[-1]) if runs else None


def recap_image_id(value: Any) -> int | None:
    """The COCO image id of a caption record's `id` or `image`, in the form COCO names files.

    An integer is taken as is (a JSON file may hold ids as numbers); a string must end in
    the 12-digit COCO file name (`000000391895`, `COCO_val2014_000000391895.jpg`,
    `coco/train2017/000000391895.jpg`). Anything else is None: not a COCO image.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    match = _COCO_NAME.fullmatch(Path(value.strip()).name)
    return int(match.group(1)) if match else None


def caption_of(record: dict[str, Any]) -> str | None:
    """The dense caption of a LLaVA-style record: the first gpt/assistant turn."""
    if isinstance(record.get("caption"), str):
        return record["caption"].strip() or None
    turns = record.get("conversations")
    for turn in turns if isinstance(turns, list) else []:
        if not isinstance(turn, dict):
            continue
        if turn.get("from") in ("gpt", "assistant") and isinstance(turn.get("value"), str):
            return turn["value"].strip() or None
    return None


def load_captions(specs: Sequence[str]) -> dict[int, str]:
    """{COCO image id: dense caption} from LLaVA-ReCap files (id / image / conversations).

    An input with records but no usable caption at all is refused (`InputError`): it is not a
    caption file (the VQAv2 questions given by mistake, say). So is one whose captioned
    records do not name COCO images by their 12-digit file names (`recap_image_id`): reading
    the digits of another dataset's ids as COCO ids would caption the wrong images.
    """
    captions: dict[int, str] = {}
    with tqdm(desc="captions", unit="record", disable=None) as bar:
        for spec in specs:
            records = found = 0
            for record in read_records(spec, columns=("id", "conversations", "caption")):
                records += 1
                bar.update()
                text = caption_of(record)
                if not text:
                    continue
                image_id = recap_image_id(record.get("id"))
                if image_id is None:
                    image_id = recap_image_id(record.get("image"))
                if image_id is None:
                    named = record.get("id") or record.get("image")
                    raise InputError(
                        f"{spec}: record {records - 1} has id {named!r:.60}, not a COCO image "
                        "(LLaVA-ReCap-118K names each image by its 12-digit COCO file name, "
                        "such as '000000391895'); are these captions of COCO images?"
                    )
                found += 1
                captions.setdefault(image_id, text)
            if records and not found:
                raise InputError(
                    f"{spec}: {records} record(s), none with a dense caption of a COCO image "
                    "(expected LLaVA-ReCap records: an `id` or `image` naming the COCO image "
                    "and `conversations` with a gpt turn, or a `caption` string)"
                )
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
                problem = "is a file" if folder.exists() else "does not exist"
                error = InputError if folder.exists() else InputMissingError
                raise error(f"COCO image folder {folder} {problem}; give a folder of images")
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
        data = read_bytes(check_file(path, "COCO images must be image files"))
        try:
            open_verified(data)
        except CorruptImageError as exc:
            raise CorruptImageError(f"{path}: {exc}") from exc
        return data, path.name
