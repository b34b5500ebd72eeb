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

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark import CROSS_MODAL_TASKS, get_task
from benchmark.layout import SPLITS, config_name

from . import card
from .authors_items import (
    Overlap,
    authors_task,
    drop_overlap,
    image_value,
    input_folder,
    item_id,
    scan_annotations,
    sha256_file,
    split_items,
)
from .cross_modal import write_dataset
from .images import TARGET_WIDTH

KIND = "import-authors"  # the output marker's kind: the command's name, as for every build
AUTHORS_REPO = "https://github.com/g-luo/task_vectors_are_cross_modal"
AUTHORS_COMMIT = "25c7463ceef1602492ed5be0bf12dcf1b7fd3fb6"
DOWNLOAD_SCRIPT = f"{AUTHORS_REPO}/blob/{AUTHORS_COMMIT}/download_data.sh"
AUTHORS_HUB = "https://huggingface.co/datasets/g-luo/task_vectors_are_cross_modal"
IMAGES_ZIP = f"{AUTHORS_HUB}/resolve/main/data/images.zip"
UNSTATED = "unstated (no licence in the authors' repo or Hub dataset)"


def task_rows(
    task: str,
    files: Mapping[tuple[str, str], Path],
    images: Path,
    overlaps: list[Overlap] | None = None,
) -> list[dict[str, Any]]:
    """A task's rows, validation then test, each split in the authors' order.

    Repeated items are refused within a file and dropped from validation across the splits
    (`drop_overlap`, appended to `overlaps`). Two different inputs that our id rule spells
    alike (`Côte d'Ivoire`, `Cote d'Ivoire`) get `_2`, `_3`, ... so ids stay unique within
    the config (the harness joins images by id).
    """
    by_split = {split: split_items(files[(task, split)], images) for split in SPLITS}
    overlap = drop_overlap(task, files, by_split)
    if overlap is not None and overlaps is not None:
        overlaps.append(overlap)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for split in SPLITS:
        for item in by_split[split]:
            base = item_id(item["input"])
            seen[base] = seen.get(base, 0) + 1
            row_id = base if seen[base] == 1 else f"{base}_{seen[base]}"
            rows.append(
                {
                    "id": row_id,
                    "split": split,
                    "input": item["input"],
                    "output": item["output"],
                    "image": image_value(item["file"], row_id, item["data"]),
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


@dataclass
class ImportReport:
    """What an import wrote: rows per config and split, each annotation file's SHA-256, and
    the validation items dropped because the test split holds them."""

    out_dir: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    overlaps: list[Overlap] = field(default_factory=list)


def make_card(
    counts: Mapping[str, Mapping[str, int]],
    sources: Mapping[str, str],
    overlaps: Sequence[Overlap] = (),
) -> str:
    """The card: where the items came from, how they were converted, and the licence caveat."""
    splits = {config: [s for s in SPLITS if by.get(s)] for config, by in counts.items()}
    table = card.configs_table(splits, counts)
    tasks = "\n".join(
        f"- `{t}` (theirs: `{authors_task(t)}`): {get_task(t).description}" for t in splits
    )
    files = "\n".join(f"- `{name}`: sha256 `{digest}`" for name, digest in sources.items())
    columns = (
        "As `vlm-tv-build cross-modal` builds: `id` (the input in our pools' id rule, so an "
        "item both sets hold has one id; two inputs the rule spells alike get `_2`), `task`, "
        "`split`, `input`, "
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
    if overlaps:
        dropped = "\n".join(
            f"- `{o.task}`: {len(o.dropped)} ({', '.join(repr(x) for x in o.dropped[:5])}"
            f"{', ...' if len(o.dropped) > 5 else ''}), {o.kept} left"
            for o in overlaps
        )
        provenance += (
            "\n\nDropped from `validation`: items the authors' test file of the task also "
            "holds (the same input, compared after Unicode NFC, case folding and whitespace, "
            "or the same image file content). Validation items make the task vectors, the "
            "demos and the layer choice, so a test item among them would lift the test score; "
            "`test` is kept whole, as the authors report it.\n\n" + dropped
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
        counts=counts,
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
    annotations, images = Path(annotations), input_folder(Path(images), "--images")
    files = scan_annotations(annotations, tasks)
    overlaps: list[Overlap] = []
    rows = {task: task_rows(task, files, images, overlaps) for task in tasks}
    counts = {
        config_name(t): {s: sum(r["split"] == s for r in rs) for s in SPLITS}
        for t, rs in rows.items()
    }
    sources = {
        path.name: sha256_file(path) for _, path in sorted(files.items(), key=lambda kv: kv[1].name)
    }
    text = make_card(counts, sources, overlaps)
    write_dataset(out_dir, rows, card_text=text, kind=KIND, overwrite=overwrite)
    for overlap in overlaps:  # said once the build is written, so never for a refused one
        print(overlap.warning(), file=sys.stderr)
    return ImportReport(Path(out_dir), counts=counts, sources=sources, overlaps=overlaps)
