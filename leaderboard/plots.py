"""PNG plots: per-task accuracy bars per method, and validation accuracy per layer; for the
task-overriding study, override-rate bars per setting and method.

The PNG bytes must not change between builds of the same submissions (`check` compares them):
matplotlib's defaults are reset for every figure (a user's matplotlibrc is ignored), the Agg
renderer draws, and the PNG gets no Software/date metadata. The same matplotlib version gives
the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from . import labels
from .overriding import OverrideRow, is_overriding
from .submissions import Submission
from .table import Row

# Fixed colours per method (matplotlib's tab10 values), so a method looks the same everywhere.
METHOD_COLORS = {
    "no_context": "#7f7f7f",
    "majority": "#bcbd22",
    "prompt": "#1f77b4",
    "patch": "#d62728",
    "original": "#8c564b",
    "system_prompt": "#9467bd",
    "instruction_patch": "#ff7f0e",
}
# DejaVu Sans ships inside matplotlib, and matplotlib prefers its own copy over a system one.
_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def has_layer_curve(sub: Submission) -> bool:
    selection = sub.results.get("layer_selection") or {}
    return bool(selection.get("mean_curve") or selection.get("validation_curve"))


def plot_files(sub: Submission) -> list[tuple[str, str]]:
    """(path relative to the leaderboard folder, alt text) of the plots made for `sub`."""
    what = "override rate per setting and method" if is_overriding(sub) else None
    what = what or "accuracy per task and method"
    files = [(f"plots/{sub.stem}.tasks.png", f"{sub.name}: {what}")]
    if has_layer_curve(sub):
        files.append((f"plots/{sub.stem}.layers.png", f"{sub.name}: validation accuracy per layer"))
    return files


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _title(sub: Submission) -> str:
    suffix = " (reported, not reproduced)" if sub.reported else ""
    if is_overriding(sub):
        return f"{sub.name}: {labels.overriding_label(sub.query)}{suffix}"
    return f"{sub.name}: {sub.section.short_label}{suffix}"


def tasks_plot(sub: Submission, rows: list[Row]) -> bytes:
    """Grouped bars: one group per task (and the average), one bar per method."""
    tasks = sorted({t for row in rows for t in row.cells}, key=labels.task_key)
    groups = [labels.task_label(t) for t in tasks] + ["Avg"]
    fig = _figure(8, 3.6)
    ax = fig.add_subplot()
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        cells = [row.cells.get(t) for t in tasks] + [row.avg]
        xs = [g - 0.4 + width * (i + 0.5) for g in range(len(groups))]
        heights = [c.acc if c else 0.0 for c in cells]
        errors = [c.std if c and c.std is not None else 0.0 for c in cells]
        has_std = any(c and c.std is not None for c in cells)
        ax.bar(
            xs,
            heights,
            width,
            yerr=errors if has_std else None,
            capsize=2,
            label=labels.method_label(row.method),
            color=METHOD_COLORS.get(row.method, "#17becf"),
        )
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy")
    ax.set_title(_title(sub), fontsize=10, parse_math=False)
    ax.legend(loc="upper left", ncols=min(len(rows), 4), frameon=False)
    fig.tight_layout()
    return _png(fig)


def overriding_plot(sub: Submission, rows: list[OverrideRow]) -> bytes:
    """Grouped bars: one group per overriding setting, one bar per method (no average: the
    settings measure different things, and the paper's Table 5 has none)."""
    tasks = sorted({t for row in rows for t in row.cells}, key=labels.task_key)
    fig = _figure(8, 3.6)
    ax = fig.add_subplot()
    width = 0.8 / max(len(rows), 1)
    for i, row in enumerate(rows):
        cells = [row.cells.get(t) for t in tasks]
        xs = [g - 0.4 + width * (i + 0.5) for g in range(len(tasks))]
        heights = [c.acc if c and c.acc is not None else 0.0 for c in cells]
        errors = [c.std if c and c.std is not None else 0.0 for c in cells]
        has_std = any(c and c.std is not None for c in cells)
        ax.bar(
            xs,
            heights,
            width,
            yerr=errors if has_std else None,
            capsize=2,
            label=labels.overriding_method_label(row.method),
            color=METHOD_COLORS.get(row.method, "#17becf"),
        )
    ax.set_xticks(range(len(tasks)), [labels.task_label(t) for t in tasks])
    ax.set_ylim(0, 1)
    ax.set_ylabel("override rate")
    ax.set_title(_title(sub), fontsize=10, parse_math=False)
    ax.legend(loc="upper left", ncols=min(len(rows), 4), frameon=False)
    fig.tight_layout()
    return _png(fig)


def layers_plot(sub: Submission) -> bytes:
    """Validation accuracy of `patch` at each layer: thin per task, thick mean, chosen layer."""
    selection = sub.results["layer_selection"]
    fig = _figure(8, 3.6)
    ax = fig.add_subplot()
    curves = selection.get("validation_curve") or {}
    for task in sorted(curves, key=labels.task_key):
        ax.plot(curves[task], linewidth=1, alpha=0.6, label=labels.task_label(task))
    if selection.get("mean_curve"):
        ax.plot(selection["mean_curve"], color="black", linewidth=2.5, label="mean")
    layer = selection.get("layer")
    if layer is not None:
        ax.axvline(layer, color="#d62728", linestyle="--", linewidth=1, label=f"chosen: {layer}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("layer")
    ax.set_ylabel(f"{selection.get('split', 'validation')} accuracy of patch")
    ax.set_title(_title(sub), fontsize=10, parse_math=False)
    ax.legend(loc="upper left", ncols=4, frameon=False, fontsize=8)
    fig.tight_layout()
    return _png(fig)


def render_plots(
    submissions: list[Submission], rows: list[Row], override_rows: Sequence[OverrideRow] = ()
) -> dict[str, bytes]:
    """Every plot, keyed by its path relative to the leaderboard folder."""
    try:
        import matplotlib
    except ImportError as exc:
        raise RuntimeError(
            "the leaderboard's plots need matplotlib: pip install 'vlm-tv-eval[plots]'"
        ) from exc
    out = {}
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_STYLE)
        for sub in submissions:
            paths = [path for path, _ in plot_files(sub)]
            if is_overriding(sub):
                mine = [r for r in override_rows if r.file == sub.file]
                out[paths[0]] = overriding_plot(sub, mine)
            else:
                out[paths[0]] = tasks_plot(sub, [r for r in rows if r.file == sub.file])
            if len(paths) > 1:
                out[paths[1]] = layers_plot(sub)
    return out
