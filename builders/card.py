"""Dataset cards: the YAML the Hub and `load_dataset` read, then provenance, licences, citations.

The YAML `configs:` block is what makes `load_dataset(folder_or_repo, "country_capital")` work
without a loading script, so it is generated from the files actually written, never by hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

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
WIKIMEDIA_LICENCE = (
    "wikimedia-per-image-licences",
    "https://commons.wikimedia.org/wiki/Commons:Licensing",
)
COCO_VQA_LICENCE = ("coco-vqa-terms", "https://cocodataset.org/#termsofuse")
# For a caller that names none: the card's Licences section says what applies.
DEFAULT_OTHER_LICENCE_NAME = "see-dataset-card"


def front_matter(
    config_splits: Mapping[str, Sequence[str]],
    *,
    pretty_name: str,
    license: str = "other",
    license_name: str | None = None,
    license_link: str | None = None,
    task_categories: Sequence[str] = ("visual-question-answering",),
    tags: Sequence[str] = ("task-vectors", "vision-language-models", "in-context-learning"),
) -> str:
    """The card's YAML header.

    With `license: other` the Hub shows nothing useful unless `license_name` (an id such as
    `coco-vqa-terms`) and, when there is one, `license_link` say which terms apply; so
    `license_name` is always written for `other` (DEFAULT_OTHER_LICENCE_NAME when not given).
    """
    meta: dict[str, Any] = {
        "pretty_name": pretty_name,
        "language": ["en"],
        "license": license,
    }
    if license == "other":
        meta["license_name"] = license_name or DEFAULT_OTHER_LICENCE_NAME
        if license_link:
            meta["license_link"] = license_link
    meta |= {
        "task_categories": list(task_categories),
        "tags": list(tags),
        "configs": [
            {
                "config_name": config,
                "data_files": [{"split": s, "path": data_file(config, s)} for s in splits],
            }
            for config, splits in config_splits.items()
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


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


def render(front: str, title: str, sections: Sequence[tuple[str, str]]) -> str:
    body = [front, f"# {title}", ""]
    for heading, text in sections:
        body += [f"## {heading}", "", text.strip(), ""]
    return "\n".join(body)
