"""Dataset cards: the YAML the Hub and `load_dataset` read, then provenance, licences, citations.

The metadata is a `huggingface_hub.DatasetCardData` and the card a `huggingface_hub.DatasetCard`
(used locally only: nothing here validates against or uploads to the Hub). The YAML `configs:`
block is what makes `load_dataset(folder_or_repo, "country_capital")` work without a loading
script, so it is generated from the files actually written, never by hand; the first config is
the default one (`configs`). The Markdown body is plain text assembled here: the library's
Jinja template would add the Hub's long template sections, not remove code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from .layout import data_file

PAPER_BIBTEX = """@inproceedings{luo2025vision,
  title     = {Vision-Language Models Create Cross-Modal Task Representations},
  author    = {Luo, Grace and Darrell, Trevor and Bar, Amir},
  booktitle = {International Conference on Machine Learning (ICML)},
  year      = {2025},
  note      = {arXiv:2410.22330}
}"""

VQAV2_BIBTEX = """@inproceedings{goyal2017making,
  title     = {Making the {V} in {VQA} Matter: Elevating the Role of Image Understanding in
               Visual Question Answering},
  author    = {Goyal, Yash and Khot, Tejas and Summers-Stay, Douglas and Batra, Dhruv and
               Parikh, Devi},
  booktitle = {CVPR},
  year      = {2017}
}"""

COCO_BIBTEX = """@inproceedings{lin2014microsoft,
  title     = {Microsoft {COCO}: Common Objects in Context},
  author    = {Lin, Tsung-Yi and Maire, Michael and Belongie, Serge and Hays, James and
               Perona, Pietro and Ramanan, Deva and Doll{\\'a}r, Piotr and Zitnick, C. Lawrence},
  booktitle = {ECCV},
  year      = {2014}
}"""

RECAP_BIBTEX = """@misc{li2024llavanext-ablations,
  title  = {{LLaVA-NeXT}: What Else Influences Visual Instruction Tuning Beyond Data?},
  author = {Li, Bo and Zhang, Hao and Zhang, Kaichen and Guo, Dong and Zhang, Yuanhan and
            Zhang, Renrui and Li, Feng and Liu, Ziwei and Li, Chunyuan},
  url    = {https://llava-vl.github.io/blog/2024-05-25-llava-next-ablations/},
  year   = {2024}
}"""

OKVQA_BIBTEX = """@inproceedings{marino2019okvqa,
  title     = {{OK-VQA}: A Visual Question Answering Benchmark Requiring External Knowledge},
  author    = {Marino, Kenneth and Rastegari, Mohammad and Farhadi, Ali and Mottaghi, Roozbeh},
  booktitle = {CVPR},
  year      = {2019}
}"""

AOKVQA_BIBTEX = """@inproceedings{schwenk2022aokvqa,
  title     = {{A-OKVQA}: A Benchmark for Visual Question Answering using World Knowledge},
  author    = {Schwenk, Dustin and Khandelwal, Apoorv and Clark, Christopher and Marino, Kenneth
               and Mottaghi, Roozbeh},
  booktitle = {ECCV},
  year      = {2022}
}"""


# `license: other` says nothing by itself; the Hub reads these two keys to name and link it.
# Each holds those keywords of `front_matter`.
WIKIMEDIA_LICENCE = {
    "license_name": "wikimedia-per-image-licences",
    "license_link": "https://commons.wikimedia.org/wiki/Commons:Licensing",
}
COCO_VQA_LICENCE = {
    "license_name": "coco-vqa-terms",
    "license_link": "https://cocodataset.org/#termsofuse",
}
# For a caller that names none: the card's Licences section says what applies.
DEFAULT_OTHER_LICENCE_NAME = "see-dataset-card"

# The Hub's task categories: images with a question or instruction about them, or the same
# items as text only (answer a question; generate the output text).
IMAGE_TASK_CATEGORIES = ("visual-question-answering",)
TEXT_TASK_CATEGORIES = ("question-answering", "text-generation")
TAGS = ("task-vectors", "vision-language-models", "in-context-learning")


# The Hub's `size_categories` buckets (`DatasetCardData`'s list), each with the row count it
# stops below; a bucket holds its lower bound (999 rows are `n<1K`, 1000 are `1K<n<10K`).
SIZE_BUCKETS = (
    (10**3, "n<1K"),
    (10**4, "1K<n<10K"),
    (10**5, "10K<n<100K"),
    (10**6, "100K<n<1M"),
    (10**7, "1M<n<10M"),
    (10**8, "10M<n<100M"),
    (10**9, "100M<n<1B"),
    (10**10, "1B<n<10B"),
    (10**11, "10B<n<100B"),
    (10**12, "100B<n<1T"),
)


def size_category(num_rows: int) -> str:
    """The Hub's `size_categories` bucket for a dataset of `num_rows` rows."""
    if num_rows < 0:
        raise ValueError(f"a row count is never negative: {num_rows}")
    return next((label for stop, label in SIZE_BUCKETS if num_rows < stop), "n>1T")


def configs(config_splits: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """The YAML `configs:` list: each config's data files, one per split, as written.

    Rule: the first config, in the order the builder writes them (cross-modal tasks and VQA
    questions as given, overriding settings in their fixed order), is marked `default: true`;
    `load_dataset(repo)` without a config name, and the Hub's viewer, open it.
    """
    out: list[dict[str, Any]] = [
        {
            "config_name": config,
            "data_files": [{"split": s, "path": data_file(config, s)} for s in splits],
        }
        for config, splits in config_splits.items()
    ]
    if out:
        out[0]["default"] = True
    return out


def front_matter(
    config_splits: Mapping[str, Sequence[str]],
    *,
    pretty_name: str,
    counts: Mapping[str, Mapping[str, int]] | None = None,
    license: str = "other",
    license_name: str | None = None,
    license_link: str | None = None,
    task_categories: Sequence[str] = IMAGE_TASK_CATEGORIES,
    tags: Sequence[str] = TAGS,
) -> DatasetCardData:
    """The card's metadata, for `render` to write as the YAML header.

    `counts` ({config: {split: rows}}, as `configs_table` takes) gives `size_categories` from
    the total number of rows; without it the card has none.

    With `license: other` the Hub shows nothing useful unless `license_name` (an id such as
    `coco-vqa-terms`) and, when there is one, `license_link` say which terms apply; so
    `license_name` is always written for `other` (DEFAULT_OTHER_LICENCE_NAME when not given).
    Keys left None are not written.
    """
    other = license == "other"
    total = None if counts is None else sum(n for by in counts.values() for n in by.values())
    return DatasetCardData(
        pretty_name=pretty_name,
        language=["en"],
        license=license,
        license_name=(license_name or DEFAULT_OTHER_LICENCE_NAME) if other else None,
        license_link=license_link if other else None,
        task_categories=list(task_categories),
        size_categories=None if total is None else [size_category(total)],
        tags=list(tags),
        configs=configs(config_splits),
    )


def configs_table(config_splits: Mapping[str, Sequence[str]], counts: Mapping[str, Any]) -> str:
    lines = ["| config | splits (rows) |", "|---|---|"]
    for config, splits in config_splits.items():
        sizes = ", ".join(f"{s} ({counts.get(config, {}).get(s, 0)})" for s in splits)
        lines.append(f"| `{config}` | {sizes} |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.replace("|", "\\|").split())


def attribution_section(items: Iterable[tuple[str, Mapping[str, Any]]]) -> str:
    """Licence counts, then one row per image: id, file page, author, licence."""
    items = list(items)
    counts = Counter(a["license"] for _, a in items)
    lines = ["Licences of the images (count):", ""]
    lines += [f"- {name}: {n}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    lines += [
        "",
        "Every row also carries its image's `attribution` (source URL, file page, author, "
        "licence, licence URL).",
        "",
        "<details><summary>Per-image attribution</summary>",
        "",
        "| item | file page | author | licence |",
        "|---|---|---|---|",
    ]
    for item_id, a in items:
        lic = _cell(a["license"])
        if a.get("license_url"):
            lic = f"[{lic}]({a['license_url']})"
        lines.append(
            f"| `{item_id}` | {_cell(a.get('file_page'))} | {_cell(a.get('author'))} | {lic} |"
        )
    lines += ["", "</details>"]
    return "\n".join(lines)


def missing_section(missing: Mapping[str, str]) -> str:
    if not missing:
        return "Every item of the pools has its image."
    lines = [
        f"{len(missing)} item(s) had no usable image when this dataset was built and are left "
        "out of every config that uses them (built with `--allow-missing`):",
        "",
    ]
    lines += [f"- `{item}`: {reason}" for item, reason in sorted(missing.items())]
    return "\n".join(lines)


def citations(*bibtex: str) -> str:
    return "```bibtex\n" + "\n\n".join(bibtex) + "\n```"


def render(front: DatasetCardData, title: str, sections: Sequence[tuple[str, str]]) -> str:
    """The README.md text: `front` as the YAML header, the title, then each section."""
    body = ["", f"# {title}", ""]
    for heading, text in sections:
        body += [f"## {heading}", "", text.strip(), ""]
    return str(DatasetCard(f"---\n{front.to_yaml()}\n---\n" + "\n".join(body)))
