"""`leaderboard/leaderboard.csv`: the rows as data, one line per (submission, method).

Numbers have four decimals and missing values are empty, so spreadsheets and pandas read it
as is and the bytes only change when a number does.
"""

from __future__ import annotations

import csv
import io

from .table import Row, tasks_of


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def render_csv(rows: list[Row]) -> str:
    tasks = tasks_of(rows)
    head = ["setting", "spec", "query", "name", "model", "method", "reported", "source"]
    head += ["layer", "num_layers"]
    for task in tasks:
        head += [task, f"{task}_std"]
    head += ["avg", "avg_std", "avg_tasks", "file"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(head)
    for row in rows:
        line = [row.setting, row.spec, row.query, row.name, row.model, row.method]
        line += ["true" if row.reported else "false", row.source or ""]
        line += [" ".join(str(x) for x in row.layers), row.num_layers or ""]
        for task in tasks:
            cell = row.cells.get(task)
            line += [_num(cell.acc), _num(cell.std)] if cell else ["", ""]
        line += [_num(row.avg.acc), _num(row.avg.std), len(row.cells), f"submissions/{row.file}"]
        writer.writerow(line)
    return buffer.getvalue()
