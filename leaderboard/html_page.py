"""`leaderboard/index.html`: every ranked row in one sortable, filterable table, in a single
file; the rows that are not ranked (`standing.py`) in a table of their own below it, with the
reasons; the task-overriding study's rows in the same two kinds of table below those. Sorting
the main table keeps each setting's rows together (`data-grouped`), so a sort ranks rows only
against rows of the same setting.

The page works offline from a checkout: CSS and JavaScript are inline, and the only links are
relative ones to the submission files next to it (a judge's own endpoint URL is not shown).

This module decides what is shown: the rows, each cell's text and sort key (the `table`
formatters), the reasons a row is not ranked. It hands them to the Jinja2 template
`templates/index.html.j2` as plain strings and numbers, and the template lays them out. Jinja2,
with autoescaping on, because then every value from a submission file is HTML-escaped (quotes
included) by default, wherever the template puts it, rather than wherever a hand-written
`escape` call was remembered; only the page's own CSS and JavaScript (`page_assets`) are
inserted as markup. `StrictUndefined` makes a value the template asks for and is not given an
error, never an empty cell. Link targets are %-encoded here.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from benchmark import VQA

from . import labels, overriding
from .csv_out import OVERRIDING_CSV
from .overriding import OverrideCell, OverrideRow, row_judge_text
from .page_assets import CSS, JS
from .standing import why_not_ranked
from .table import (
    CI_TITLE,
    DASH,
    SIZE_TITLE,
    WHOLE_TITLE,
    Cell,
    Counted,
    Row,
    differences,
    fmt,
    fmt_difference,
    fmt_interval,
    fmt_layer,
    fmt_size,
    fmt_whole,
    settings_of,
    tasks_of,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "index.html.j2"

SIZE_TIP = "test items scored per task and seed × seeds; (limit N): a run cut short with --limit"
CI_TIP = (
    "95% paired bootstrap interval of Avg over test items and seeds, as the run recorded it; "
    "sorts by its lower end"
)
WHOLE_TIP = (
    "--score whole_answer: the greedy answer up to its first newline against the whole label, "
    "mean over the row's tasks: exactly [its 95% interval] (normalised for case, spacing, "
    "punctuation and grammatical number); sorts by the exact figure"
)
WHY_TITLE = "Not ranked because"
COS_TIP = (
    "vectors from another model (--source_model): mean cosine similarity of its vector and the "
    "model's own for the same task / for other tasks"
)

# What the template is given: plain dicts of strings and numbers (and lists of them).
Data = dict[str, Any]


@cache
def environment() -> Environment:
    """The page's Jinja2 environment: autoescaped, and a missing value is an error."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def template() -> Template:
    return environment().get_template(TEMPLATE)


def _link(file: str) -> str:
    """The relative, %-encoded link to a submission file."""
    return quote(f"submissions/{file}", safe="/-._~")


def _cell(sort: str, text: str, small: str = "") -> Data:
    """A table cell: its sort key (`data-sort`), its text, and a smaller note after the text."""
    return {"kind": "text", "sort": sort, "text": text, "small": small}


def _num_cell(cell: Cell | None) -> Data:
    if cell is None:
        return _cell("", DASH)
    return _cell(f"{cell.acc:.6f}", fmt(cell.acc), f" ± {fmt(cell.std)}")


def _ci_cell(row: Row) -> Data:
    key = "" if row.avg_ci is None else f"{row.avg_ci[0]:.6f}"
    return _cell(key, fmt_interval(row.avg_ci))


def _whole_cell(row: Row) -> Data:
    whole = row.whole
    if whole is None:
        return _cell("", DASH)
    return _cell(f"{whole.acc:.6f}", fmt_whole(whole))


def _model_cell(row: Row | OverrideRow) -> Data:
    """The name, linked to the submission file; the model in the tooltip; a badge, with the
    source as its tooltip, on a reported row."""
    return {
        "kind": "model",
        "sort": row.name.lower(),
        "model": row.model,
        "href": _link(row.file),
        "name": row.name,
        "reported": row.reported,
        "source": row.source or "",
    }


def _size_cell(row: Counted) -> Data:
    key = f"{row.n[0]}" if row.n else ""
    return _cell(key, fmt_size(row))


def _setting_cell(row: Row, rank: int) -> Data:
    """`spec → query`, and the variant: VQA subsets, the source model, the chat template."""
    text = f"{row.spec} → {row.query}"
    extra = ["VQA"] if row.family == VQA else []
    extra += [f"vectors from {row.source_model}"] if row.source_model else []
    extra += ["chat template"] if row.chat else []
    if extra:
        text += f" ({', '.join(extra)})"
    return _cell(f"{rank:03d} {row.setting}", text)


def _cos_cell(row: Row) -> Data:
    if row.cosine is None:
        return _cell("", DASH)
    mismatched = f" / {fmt(row.cosine_mismatched)}" if row.source_model else ""
    return _cell(f"{row.cosine:.6f}", fmt(row.cosine), mismatched)


def _why_cell(row: Row | OverrideRow) -> Data:
    text = why_not_ranked(row.standing)
    return _cell(text.lower(), text)


def _layer_cell(row: Row | OverrideRow) -> Data:
    return _cell(f"{row.layers[0]}" if row.layers else "", fmt_layer(row))


def _method_cell(method: str, text: str) -> Data:
    return _cell(f"{labels.method_key(method)[0]:03d}", text)


def _row(row: Row, tasks: list[str], rank: int, cosine: bool) -> Data:
    cells = [
        _setting_cell(row, rank),
        _model_cell(row),
        _method_cell(row.method, labels.method_label(row.method)),
        *(_num_cell(row.cells.get(t)) for t in tasks),
        _num_cell(row.avg),
        _ci_cell(row),
        _whole_cell(row),
        _layer_cell(row),
        *([_cos_cell(row)] if cosine else []),
        _size_cell(row),
        *([] if row.ranked else [_why_cell(row)]),
    ]
    return {
        "reported": row.reported,
        "setting": row.setting,
        "method": row.method,
        "cells": cells,
    }


def _rate_cell(cell: OverrideCell | None) -> Data:
    if cell is None or cell.acc is None:
        return _cell("", DASH)
    return _cell(f"{cell.acc:.6f}", fmt(cell.acc))


def _override_row(row: OverrideRow, columns: list[str]) -> Data:
    judge = row_judge_text(row, with_url=False)
    cells = [
        _model_cell(row),
        _method_cell(row.method, labels.overriding_method_label(row.method)),
        *(_rate_cell(row.cells.get(t)) for t in columns),
        _layer_cell(row),
        _cell(judge.lower(), judge),
        _size_cell(row),
        *([] if row.ranked else [_why_cell(row)]),
    ]
    # No `data-setting`: the overriding tables are not filtered.
    return {"reported": row.reported, "setting": None, "method": row.method, "cells": cells}


def _header(title: str, kind: str, tip: str = "") -> Data:
    """A sortable column's header: its title, `num` or `text` sorting, a tooltip ("" for none)."""
    return {"title": title, "kind": kind, "tip": tip}


def _table(table_id: str, grouped: bool, headers: list[Data], rows: list[Data]) -> Data:
    """A sortable table; `grouped` ones are also filtered and keep each setting's rows together."""
    return {"id": table_id, "grouped": grouped, "headers": headers, "rows": rows}


def _overriding_table(rows: list[OverrideRow], table_id: str) -> Data:
    columns = overriding.columns(rows)
    headers = [_header("Model", "text"), _header("Method", "text")]
    headers += [_header(labels.task_label(t), "num", t) for t in columns]
    headers += [_header("Layer", "num"), _header("Judge", "text")]
    headers += [_header(SIZE_TITLE, "num", SIZE_TIP)]
    headers += [] if all(r.ranked for r in rows) else [_header(WHY_TITLE, "text")]
    return _table(table_id, False, headers, [_override_row(row, columns) for row in rows])


def _overriding_section(rows: list[OverrideRow]) -> Data | None:
    """The overriding study's tables (ranked, and not ranked or None), or None without rows."""
    if not rows:
        return None
    ranked = [r for r in rows if r.ranked]
    others = [r for r in rows if not r.ranked]
    return {
        "title": labels.OVERRIDING_TITLE,
        "csv": OVERRIDING_CSV,
        "ranked": _overriding_table(ranked, "overriding"),
        "unranked": _overriding_table(others, "overriding-unranked") if others else None,
    }


def _differences(rows: list[Row]) -> list[Data]:
    """The paired differences of the Avg (`table.differences`), one item per submission and
    section; empty when no row has them."""
    items: dict[tuple[str, str], Data] = {}
    for diff in differences(rows):
        key = (diff.file, diff.section.id)
        item = items.setdefault(
            key,
            {
                "href": _link(diff.file),
                "name": diff.name,
                "section": diff.section.label,
                "parts": [],
            },
        )
        item["parts"].append(fmt_difference(diff))
    return list(items.values())


def _options(choices: list[tuple[str, str]], everything: str) -> list[Data]:
    """A filter's options: `everything` (value "") first, then each (value, text)."""
    return [{"value": v, "text": text} for v, text in [("", everything), *choices]]


def _accuracy_table(
    rows: list[Row], table_id: str, rank: dict[labels.Section, int], tasks: list[str]
) -> Data:
    """A sortable table of `rows` with a column per task of `tasks`, each setting's rows kept
    together when sorted; a column of reasons when some row is not ranked."""
    headers = [_header("Setting", "text"), _header("Model", "text"), _header("Method", "text")]
    headers += [_header(labels.task_label(t), "num", t) for t in tasks]
    headers += [_header("Avg", "num", "mean over the row's tasks")]
    headers += [_header(CI_TITLE, "num", CI_TIP), _header(WHOLE_TITLE, "num", WHOLE_TIP)]
    headers += [_header("Layer", "num")]
    cosine = any(r.cosine is not None for r in rows)
    headers += [_header("Cos", "num", COS_TIP)] if cosine else []
    headers += [_header(SIZE_TITLE, "num", SIZE_TIP)]
    headers += [] if all(r.ranked for r in rows) else [_header(WHY_TITLE, "text")]
    body = [_row(row, tasks, rank[row.section], cosine) for row in rows]
    return _table(table_id, True, headers, body)


def page_data(rows: list[Row], override_rows: Sequence[OverrideRow] = ()) -> Data:
    """Everything the template shows, as plain data; `render_html` fills the template with it."""
    ranked = [r for r in rows if r.ranked]
    others = [r for r in rows if not r.ranked]
    tasks = tasks_of(rows)
    sections = settings_of(rows)
    settings = [(section.id, section.label) for section in sections]
    rank = {section: i for i, section in enumerate(sections)}
    methods = sorted({r.method for r in rows}, key=labels.method_key)
    method_choices = [(m, labels.method_label(m)) for m in methods]
    sources = sorted({r.source for r in rows if r.reported and r.source})
    sources += [s for s in overriding.sources(list(override_rows)) if s not in sources]
    return {
        "settings": _options(settings, "All settings"),
        "methods": _options(method_choices, "All methods"),
        "shown": len(ranked),
        "ranked": _accuracy_table(ranked, "leaderboard", rank, tasks),
        "unranked": _accuracy_table(others, "unranked", rank, tasks) if others else None,
        "differences": _differences(rows),
        "overriding": _overriding_section(list(override_rows)),
        "sources": "; ".join(sources) or DASH,
    }


def render_html(rows: list[Row], override_rows: Sequence[OverrideRow] = ()) -> str:
    return template().render(page_data(rows, override_rows), css=CSS, js=JS)
