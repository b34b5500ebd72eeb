"""`leaderboard/index.html`: every ranked row in one sortable, filterable table, in a single
file; the rows that are not ranked (`standing.py`) in a table of their own below it, with the
reasons; the task-overriding study's rows in the same two kinds of table below those. Sorting
the main table keeps each setting's rows together (`data-grouped`), so a sort ranks rows only
against rows of the same setting.

The page works offline from a checkout: CSS and JavaScript are inline, and the only links are
relative ones to the submission files next to it (a judge's own endpoint URL is not shown).
Every value from a submission file is HTML-escaped (`html.escape`, quotes included), and link
targets are %-encoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import quote

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
NOT_RANKED_LEAD = (
    "runs that are not comparable with the rows above (a --limit run, some of the setting's "
    "tasks, other seeds: added with --allow_partial), and reproductions of a row above (added "
    "with --reproduces), which holds the rank. They sort within this table only; Avg is over "
    "each row's own tasks."
)
OVERRIDING_NOT_RANKED = (
    "runs of the study that are not comparable with the rows above (a --limit run, some of "
    "its settings, other seeds), and reproductions of a row above, which holds the rank."
)
COS_TIP = (
    "vectors from another model (--source_model): mean cosine similarity of its vector and the "
    "model's own for the same task / for other tasks"
)


def _num_cell(cell: Cell | None) -> str:
    if cell is None:
        return f'<td data-sort="">{DASH}</td>'
    return f'<td data-sort="{cell.acc:.6f}">{fmt(cell.acc)}<small> ± {fmt(cell.std)}</small></td>'


def _ci_td(row: Row) -> str:
    key = "" if row.avg_ci is None else f"{row.avg_ci[0]:.6f}"
    return f'<td data-sort="{key}">{fmt_interval(row.avg_ci)}</td>'


def _whole_td(row: Row) -> str:
    whole = row.whole
    if whole is None:
        return f'<td data-sort="">{DASH}</td>'
    return f'<td data-sort="{whole.acc:.6f}">{escape(fmt_whole(whole))}</td>'


def _model_td(row: Row | OverrideRow) -> str:
    href = quote(f"submissions/{row.file}", safe="/-._~")
    model = f'<a href="{escape(href)}">{escape(row.name)}</a>'
    if row.reported:
        model += f' <span class="badge" title="{escape(row.source or "")}">reported</span>'
    return (
        f'<td data-sort="{escape(row.name.lower())}" title="model {escape(row.model)}">{model}</td>'
    )


def _size_td(row: Counted) -> str:
    key = f"{row.n[0]}" if row.n else ""
    return f'<td data-sort="{key}">{escape(fmt_size(row))}</td>'


def _setting_td(row: Row, rank: int) -> str:
    """`spec → query`, and the variant: VQA subsets, the source model, the chat template."""
    text = f"{row.spec} → {row.query}"
    extra = ["VQA"] if row.family == VQA else []
    extra += [f"vectors from {row.source_model}"] if row.source_model else []
    extra += ["chat template"] if row.chat else []
    if extra:
        text += f" ({', '.join(extra)})"
    return f'<td data-sort="{rank:03d} {escape(row.setting)}">{escape(text)}</td>'


def _cos_td(row: Row) -> str:
    if row.cosine is None:
        return f'<td data-sort="">{DASH}</td>'
    mismatched = f"<small> / {fmt(row.cosine_mismatched)}</small>" if row.source_model else ""
    return f'<td data-sort="{row.cosine:.6f}">{fmt(row.cosine)}{mismatched}</td>'


def _why_td(row: Row | OverrideRow) -> str:
    text = why_not_ranked(row.standing)
    return f'<td data-sort="{escape(text.lower())}">{escape(text)}</td>'


def _row(row: Row, tasks: list[str], rank: int, cosine: bool) -> str:
    method_rank = labels.method_key(row.method)[0]
    layer = f"{row.layers[0]}" if row.layers else ""
    cells = [
        _setting_td(row, rank),
        _model_td(row),
        f'<td data-sort="{method_rank:03d}">{escape(labels.method_label(row.method))}</td>',
        *(_num_cell(row.cells.get(t)) for t in tasks),
        _num_cell(row.avg),
        _ci_td(row),
        _whole_td(row),
        f'<td data-sort="{layer}">{escape(fmt_layer(row))}</td>',
        *([_cos_td(row)] if cosine else []),
        _size_td(row),
        *([] if row.ranked else [_why_td(row)]),
    ]
    css = ' class="reported"' if row.reported else ""
    return (
        f'<tr{css} data-setting="{escape(row.setting)}" data-method="{escape(row.method)}">'
        + "".join(cells)
        + "</tr>"
    )


def _rate_cell(cell: OverrideCell | None) -> str:
    if cell is None or cell.acc is None:
        return f'<td data-sort="">{DASH}</td>'
    return f'<td data-sort="{cell.acc:.6f}">{fmt(cell.acc)}</td>'


def _override_row(row: OverrideRow, columns: list[str]) -> str:
    method_rank = labels.method_key(row.method)[0]
    method = labels.overriding_method_label(row.method)
    layer = f"{row.layers[0]}" if row.layers else ""
    judge = row_judge_text(row, with_url=False)
    cells = [
        _model_td(row),
        f'<td data-sort="{method_rank:03d}">{escape(method)}</td>',
        *(_rate_cell(row.cells.get(t)) for t in columns),
        f'<td data-sort="{layer}">{escape(fmt_layer(row))}</td>',
        f'<td data-sort="{escape(judge.lower())}">{escape(judge)}</td>',
        _size_td(row),
        *([] if row.ranked else [_why_td(row)]),
    ]
    css = ' class="reported"' if row.reported else ""
    return f'<tr{css} data-method="{escape(row.method)}">' + "".join(cells) + "</tr>"


def _overriding_table(rows: list[OverrideRow], table_id: str) -> str:
    columns = overriding.columns(rows)
    headers = [_header("Model", "text"), _header("Method", "text")]
    headers += [_header(labels.task_label(t), "num", t) for t in columns]
    headers += [_header("Layer", "num"), _header("Judge", "text")]
    headers += [_header(SIZE_TITLE, "num", SIZE_TIP)]
    headers += [] if all(r.ranked for r in rows) else [_header(WHY_TITLE, "text")]
    body = "\n".join(_override_row(row, columns) for row in rows)
    return f"""<table id="{table_id}" class="sortable">
<thead><tr>{"".join(headers)}</tr></thead>
<tbody>
{body}
</tbody>
</table>"""


def _overriding_section(rows: list[OverrideRow]) -> str:
    ranked = [r for r in rows if r.ranked]
    others = [r for r in rows if not r.ranked]
    apart = ""
    if others:
        apart = f"""
<p class="lead"><strong>Not ranked</strong>: {OVERRIDING_NOT_RANKED}</p>
{_overriding_table(others, "overriding-unranked")}"""
    return f"""
<h2>{escape(labels.OVERRIDING_TITLE)}</h2>
<p class="lead">The image and the original question are in the prompt; a conflicting task is left
out (Original task), written into the system prompt, or patched in as an instruction vector.
Each cell is an override rate, mean over seeds: for the image settings the share of judged
answers that the judge sorts as addressing the overriding task or both (choice B or C), judge
failures left out and counted in the Judge column; Text (pools) is the exact-match rate on text
queries from the shipped pools. As data: <a href="{OVERRIDING_CSV}">{OVERRIDING_CSV}</a>.</p>
{_overriding_table(ranked, "overriding")}{apart}"""


def _differences(rows: list[Row]) -> str:
    """The paired differences of the Avg (`table.differences`), one item per submission and
    section; nothing when no row has them."""
    items: dict[tuple[str, str], list[str]] = {}
    heads: dict[tuple[str, str], str] = {}
    for diff in differences(rows):
        key = (diff.file, diff.section.id)
        items.setdefault(key, []).append(escape(fmt_difference(diff)))
        href = escape(quote(f"submissions/{diff.file}", safe="/-._~"))
        heads[key] = f'<a href="{href}">{escape(diff.name)}</a> ({escape(diff.section.label)})'
    if not items:
        return ""
    body = "\n".join(f"<li>{heads[key]}: {'; '.join(parts)}</li>" for key, parts in items.items())
    return f"""
<h2>Paired differences of the Avg</h2>
<p class="lead">The difference of two rows' Avgs (one run, one setting) and its 95% paired
bootstrap interval over test items and seeds, as the run recorded it.</p>
<ul id="differences">
{body}
</ul>"""


def _header(title: str, kind: str, tip: str = "") -> str:
    tip_attr = f' title="{escape(tip)}"' if tip else ""
    return (
        f'<th data-type="{kind}" aria-sort="none"{tip_attr}>'
        f'<button type="button">{escape(title)}</button></th>'
    )


def _options(choices: list[tuple[str, str]], everything: str) -> str:
    options = [f'<option value="">{escape(everything)}</option>']
    options += [f'<option value="{escape(v)}">{escape(text)}</option>' for v, text in choices]
    return "".join(options)


def _accuracy_table(
    rows: list[Row], table_id: str, rank: dict[labels.Section, int], tasks: list[str]
) -> str:
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
    body = "\n".join(_row(row, tasks, rank[row.section], cosine) for row in rows)
    return f"""<table id="{table_id}" class="sortable filtered" data-grouped="true">
<thead><tr>{"".join(headers)}</tr></thead>
<tbody>
{body}
</tbody>
</table>"""


def render_html(rows: list[Row], override_rows: Sequence[OverrideRow] = ()) -> str:
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
    section = ""
    if others:
        section += f"""
<h2>Not ranked</h2>
<p class="lead">{NOT_RANKED_LEAD}</p>
{_accuracy_table(others, "unranked", rank, tasks)}"""
    section += _differences(rows)
    section += _overriding_section(list(override_rows)) if override_rows else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vlm-tv-eval leaderboard: cross-modal task vectors</title>
<style>{CSS}</style>
</head>
<body>
<h1>Cross-modal task vectors: leaderboard</h1>
<p class="lead">Test accuracy by the paper's rule (first generated token, lenient match), so
the figures are comparable with its tables: mean ± std over seeds. Avg is the mean over the
row's tasks, recomputed for every row. Avg 95% CI: the 95% interval of Avg from a paired
bootstrap over test items and seeds (the same draws for every method; see
<code>intervals.rule</code> in the results file), as the run recorded it; — for runs without
one, and for a row whose tasks are not all of the run's tasks. Whole answer, for a run made
with <code>--score whole_answer</code>: a stricter score beside the headline one, the greedy
answer up to its first newline against the whole label, mean over the row's tasks; exactly,
then its 95% interval in brackets (same bootstrap and rule as Avg 95% CI), then in parentheses
once case, spacing, punctuation and grammatical number are set aside; — for runs without whole
answers. Layer is the layer patched, of the model's depth. <em>Reported</em> rows are figures
copied from a paper, not reproduced; they have no std, interval, whole answer or layer (—).
n × seeds: test items scored per task and seed, times seeds;
<em>(limit N)</em> marks a run cut to N items with --limit. Ranked here: rows measured on all of
their setting's tasks, on the full test splits and with the protocol's seeds (the paper's rows
are its full tables); anything else is in <em>Not ranked</em> below. Click a column header to
sort (each setting's rows stay together, so rows are only ranked against their own setting);
click again to reverse.</p>
<div class="filters">
<label>Setting <select id="filter-setting">{_options(settings, "All settings")}</select></label>
<label>Method <select id="filter-method">{_options(method_choices, "All methods")}</select></label>
<span id="shown">{len(ranked)} of {len(ranked)} ranked rows shown</span>
</div>
{_accuracy_table(ranked, "leaderboard", rank, tasks)}{section}
<footer>Reported rows: {escape("; ".join(sources)) or DASH}. Each model links to its submission
file. Generated by <code>vlm-tv-leaderboard build</code> from <code>submissions/</code>; do not
edit by hand.</footer>
<script>{JS}</script>
</body>
</html>
"""
