"""`leaderboard/leaderboard.csv`: the rows as data, one line per (submission, method); and
`leaderboard_overriding.csv`: the overriding study's rows, whose columns differ (override rates,
judge counts, the judge itself), so they are a file of their own.

Numbers have four decimals and missing values are empty, so spreadsheets and pandas read it
as is and the bytes only change when a number does. `setting` is the row's section
(`labels.Section.id`); `tasks` (cross_modal or vqa), `source_model` (with the `cosine` columns)
and `chat_template` are the variant of the experiment it names. Each row says how much stands
behind it: `<task>_n` (items scored per seed), `seeds`, and `limit` (--limit, empty for a full
run). `avg_ci_low` and `avg_ci_high` bound the 95% paired bootstrap interval of `avg` over test
items and seeds (`intervals` in the results file), empty where the run recorded none or where the
row's tasks are not all of the run's tasks. `avg` is the paper's first-token score. A run made
with `--score whole_answer` also fills `whole_acc` (the greedy answer up to its first newline
against the whole label, exactly; mean over the row's tasks), `whole_acc_normalised` (the same,
case, spacing, punctuation and grammatical number set aside), and `whole_ci_low` and
`whole_ci_high` (the 95% interval of `whole_acc`, `intervals.whole_answer`, under the rule of
`avg_ci_*`); all four are empty for a run without whole answers. `ranked` says whether the row is
ranked (`standing.py`: the setting's whole task set, full test splits, the protocol's seeds, not
a reproduction), `not_ranked_because` why not, and `reproduces` the submission file of the row a
reproduction reruns; both files have these three columns.
"""

from __future__ import annotations

import csv
import io

from .overriding import TEXT_EXTRAS, OverrideRow, columns
from .standing import Standing, why_not_ranked
from .table import Row, Whole, tasks_of

OVERRIDING_CSV = "leaderboard_overriding.csv"


def _text(value: object) -> str:
    """A text cell that a spreadsheet will not run: a leading `= + - @` (or tab, CR) makes
    Excel, LibreOffice and Sheets read the cell as a formula, so such a value gets a `'`
    in front, as OWASP advises for CSV injection."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


STANDING_HEAD = ["ranked", "not_ranked_because", "reproduces"]


def _standing(standing: Standing) -> list[str]:
    repro = standing.reproduces
    ranked = "true" if standing.ranked else "false"
    return [ranked, _text(why_not_ranked(standing)), f"submissions/{repro.file}" if repro else ""]


def render_csv(rows: list[Row]) -> str:
    tasks = tasks_of(rows)
    head = ["setting", "spec", "query", "tasks", "source_model", "chat_template", "name", "model"]
    head += ["method", "reported", "source", *STANDING_HEAD]
    head += ["layer", "num_layers", "cosine", "cosine_mismatched"]
    for task in tasks:
        head += [task, f"{task}_std", f"{task}_n"]
    head += ["avg", "avg_std", "avg_ci_low", "avg_ci_high"]
    head += ["whole_acc", "whole_acc_normalised", "whole_ci_low", "whole_ci_high"]
    head += ["avg_tasks", "seeds", "limit", "file"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(head)
    for row in rows:
        line = [_text(x) for x in (row.setting, row.spec, row.query, row.family)]
        line += [_text(row.source_model), "true" if row.chat else "false"]
        line += [_text(row.name), _text(row.model)]
        line += [row.method, "true" if row.reported else "false", _text(row.source)]
        line += _standing(row.standing)
        line += [" ".join(str(x) for x in row.layers), row.num_layers or ""]
        line += [_num(row.cosine), _num(row.cosine_mismatched)]
        for task in tasks:
            cell = row.cells.get(task)
            line += [_num(cell.acc), _num(cell.std), _count(cell.n)] if cell else ["", "", ""]
        low, high = row.avg_ci or (None, None)
        line += [_num(row.avg.acc), _num(row.avg.std), _num(low), _num(high)]
        line += _whole(row.whole)
        line.append(len(row.cells))
        line += [_count(row.seeds), _count(row.limit), f"submissions/{row.file}"]
        writer.writerow(line)
    return buffer.getvalue()


def _whole(whole: Whole | None) -> list[str]:
    if whole is None:
        return [""] * 4
    low, high = whole.ci or (None, None)
    return [_num(whole.acc), _num(whole.acc_normalised), _num(low), _num(high)]


def _count(value: object) -> str:
    return "" if value is None else str(value)


def render_overriding_csv(rows: list[OverrideRow]) -> str:
    """One line per (submission, method). Per setting: the rate (`acc`: judged success rate,
    or exact-match rate for override_text), its std, n, answers judged, judge failures, the rate
    with failures counted as misses; for override_text also exact_original and, when judged,
    judge_acc, judge_acc_failures_as_misses and judge_agreement."""
    tasks = columns(rows)
    head = ["name", "model", "query", "method", "reported", "source", *STANDING_HEAD]
    head += ["layer", "num_layers"]
    head += ["judge_model", "judge_temperature", "judge_base_url"]
    for task in tasks:
        head += [task, f"{task}_std", f"{task}_n", f"{task}_judged", f"{task}_judge_failures"]
        head += [f"{task}_acc_failures_as_misses"]
        if task == "override_text":
            head += [f"{task}_{extra}" for extra in TEXT_EXTRAS]
    head += ["seeds", "limit", "file"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(head)
    for row in rows:
        judge = row.judge
        line = [_text(row.name), _text(row.model), row.query, row.method]
        line += ["true" if row.reported else "false", _text(row.source)]
        line += _standing(row.standing)
        line += [" ".join(str(x) for x in row.layers), row.num_layers or ""]
        line += (
            [_text(judge.model), _count(judge.temperature), _text(judge.base_url)]
            if judge
            else [""] * 3
        )
        for task in tasks:
            cell = row.cells.get(task)
            width = 6 + (len(TEXT_EXTRAS) if task == "override_text" else 0)
            if cell is None:
                line += [""] * width
                continue
            line += [_num(cell.acc), _num(cell.std), _count(cell.n), _count(cell.judged)]
            line += [_count(cell.judge_failures), _num(cell.acc_failures_as_misses)]
            if task == "override_text":
                line += [_num(cell.extras.get(extra)) for extra in TEXT_EXTRAS]
        line += [_count(row.seeds), _count(row.limit), f"submissions/{row.file}"]
        writer.writerow(line)
    return buffer.getvalue()
