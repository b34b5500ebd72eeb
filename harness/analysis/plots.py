"""The PNG of each analysis, drawn from its result alone (so a JSON can be re-plotted).

matplotlib's object API with the Agg canvas: no pyplot state, no display needed, and a user's
matplotlibrc cannot change a figure (rc values are set per figure).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
COLORS = {
    "input": "#7f7f7f",
    "task": "#1f77b4",
    "answer": "#d62728",
    "text_examples": "#1f77b4",
    "instruction": "#ff7f0e",
    "image_examples": "#2ca02c",
    "ensemble": "#9467bd",
    "examples": "#1f77b4",
    "instruction_marker": "#8c564b",
}


def _figure(width: float, height: float) -> Any:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(width, height), dpi=100)
        FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path, bottom: float = 0.0) -> None:
    """Laid out with `bottom` (a fraction of the height) kept free for a figure legend."""
    import matplotlib

    with matplotlib.rc_context(_STYLE):
        fig.tight_layout(rect=(0, bottom, 1, 1))
        fig.savefig(path, format="png", dpi=100, metadata={"Software": None})


def _grid(n: int, cols: int = 3) -> tuple[int, int]:
    cols = min(cols, n)
    return math.ceil(n / cols), cols


def lens_figure(result: dict[str, Any], path: Path) -> None:
    """Two rows per task: the three relative probabilities over depth with a band of one std
    over runs, and the absolute probability of each (log scale), so a "winner" among three
    tiny numbers shows as one. Solid: first spec, dashed: the next; the chosen layer marked."""
    tasks = list(result["by_task"])
    cols = min(3, len(tasks))
    blocks = math.ceil(len(tasks) / cols)
    fig = _figure(3.4 * cols, 4.4 * blocks)
    styles = ["-", "--", ":"]
    for i, task in enumerate(tasks):
        block, col = divmod(i, cols)
        top = fig.add_subplot(2 * blocks, cols, 2 * block * cols + col + 1)
        bottom = fig.add_subplot(2 * blocks, cols, (2 * block + 1) * cols + col + 1)
        n = 1
        for j, (spec, r) in enumerate(result["by_task"][task].items()):
            mean, std = r["relative_prob"]["mean"], r["relative_prob"]["std"]
            absolute = r.get("absolute_prob", {}).get("mean")
            n = len(mean)
            xs = [la / max(1, n - 1) for la in range(n)]
            for k, label in enumerate(("input", "task", "answer")):
                m = [row[k] for row in mean]
                sd = [row[k] for row in std]
                top.plot(
                    xs,
                    m,
                    styles[j % 3],
                    color=COLORS[label],
                    label=f"{label} ({spec})" if i == 0 else None,
                )
                top.fill_between(
                    xs,
                    [max(0.0, a - b) for a, b in zip(m, sd, strict=True)],
                    [min(1.0, a + b) for a, b in zip(m, sd, strict=True)],
                    color=COLORS[label],
                    alpha=0.12,
                    linewidth=0,
                )
                if absolute is not None:
                    bottom.plot(
                        xs,
                        [max(row[k], 1e-12) for row in absolute],
                        styles[j % 3],
                        color=COLORS[label],
                    )
        layer = result["layer"]["layer"]
        for ax in (top, bottom):
            ax.axvline(layer / max(1, n - 1), color="black", lw=0.6, alpha=0.4)
        top.set_title(task)
        top.set_ylim(0, 1)
        top.set_ylabel("relative probability")
        bottom.set_yscale("log")
        bottom.set_ylim(1e-8, 1)
        bottom.set_xlabel("relative depth")
        bottom.set_ylabel("absolute probability")
    fig.legend(loc="lower center", ncol=3, fontsize=7, frameon=False)
    _save(fig, path, bottom=0.08 if blocks > 1 else 0.14)


def scatter_figure(result: dict[str, Any], path: Path) -> None:
    """t-SNE maps side by side: context embeddings, task vectors; colour = task, marker = spec."""
    markers = ["o", "^", "s", "D"]
    sets = list(result["points"])
    fig = _figure(4.2 * len(sets), 4.0)
    tasks = sorted({p["task"] for s in sets for p in result["points"][s]})
    specs = sorted({p["spec"] for s in sets for p in result["points"][s]})
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    for i, name in enumerate(sets):
        ax = fig.add_subplot(1, len(sets), i + 1)
        for p in result["points"][name]:
            ax.scatter(
                p["x"],
                p["y"],
                s=10,
                color=cmap(tasks.index(p["task"]) % 10),
                marker=markers[specs.index(p["spec"]) % 4],
                alpha=0.8,
            )
        sil = result["silhouette"][name]
        ax.set_title(
            f"{name}\nsilhouette by task {sil['by_task']:.2f}, by spec {sil['by_spec']:.2f}"
        )
        ax.set_xticks([])
        ax.set_yticks([])
    for t in tasks:
        fig.axes[0].scatter([], [], color=cmap(tasks.index(t) % 10), label=t, s=10)
    for s in specs:
        fig.axes[0].scatter(
            [], [], color="black", marker=markers[specs.index(s) % 4], label=s, s=10
        )
    fig.legend(loc="lower center", ncol=5, fontsize=7, frameon=False)
    _save(fig, path, bottom=0.18)


def lines_figure(
    series: dict[str, tuple[list[float], list[float]]],
    path: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    mark: float | None = None,
    bands: dict[str, tuple[list[float], list[float]]] | None = None,
) -> None:
    """Lines: name -> (xs, values); `bands` (name -> (lows, highs)) shade each line's interval."""
    fig = _figure(5.5, 3.4)
    ax = fig.add_subplot()
    _lines(ax, series, bands or {})
    if mark is not None:
        ax.axvline(mark, color="black", lw=0.6, alpha=0.4)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, frameon=False)
    _save(fig, path)


def _lines(
    ax: Any,
    series: dict[str, tuple[list[float], list[float]]],
    bands: dict[str, tuple[list[float], list[float]]],
) -> None:
    for name, (xs, values) in series.items():
        color = COLORS.get(name)
        ax.plot(xs, values, marker="o", ms=3, label=name, color=color)
        if name in bands:
            lows, highs = bands[name]
            ax.fill_between(xs, lows, highs, alpha=0.2, color=color)


def bars_figure(
    groups: list[str],
    bars: dict[str, list[float]],
    path: Path,
    title: str,
    ylabel: str,
    errors: dict[str, tuple[list[float], list[float]]] | None = None,
) -> None:
    """Grouped bars: one group per entry of `groups`, one bar per key of `bars`; `errors`
    (bar name -> (lows, highs) per group) draws each bar's interval as a whisker."""
    fig = _figure(max(5.0, 0.9 * len(groups) + 2), 3.4)
    ax = fig.add_subplot()
    _bars(ax, groups, bars, errors or {})
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, frameon=False)
    _save(fig, path)


def _bars(
    ax: Any,
    groups: list[str],
    bars: dict[str, list[float]],
    errors: dict[str, tuple[list[float], list[float]]],
) -> None:
    width = 0.8 / max(1, len(bars))
    for i, (name, values) in enumerate(bars.items()):
        xs = [g - 0.4 + width * (i + 0.5) for g in range(len(groups))]
        yerr = _whiskers(values, *errors[name]) if name in errors else None
        ax.bar(xs, values, width, label=name, color=COLORS.get(name), yerr=yerr, capsize=2)
    ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right")


def _whiskers(values: list[float], lows: list[float], highs: list[float]) -> list[list[float]]:
    """matplotlib's yerr (distances below and above) of intervals around `values`; an interval
    is rounded to 4 places, so it may sit a hair inside its value."""
    return [
        [max(0.0, v - lo) for v, lo in zip(values, lows, strict=True)],
        [max(0.0, hi - v) for v, hi in zip(values, highs, strict=True)],
    ]


def spec_curves_figure(result: dict[str, Any], path: Path, title: str) -> None:
    """Left: each spec's validation curve (mean over seeds and tasks), the session layer
    marked. Right: test accuracy at the session layer per spec and each in-context prompt
    baseline, average over tasks, with their paired 95% intervals."""
    fig = _figure(10.0, 3.6)
    ax = fig.add_subplot(1, 2, 1)
    curves = result["mean_curve"]
    _lines(ax, {s: (list(range(len(c))), c) for s, c in curves.items()}, {})
    ax.axvline(result["layer"]["layer"], color="black", lw=0.6, alpha=0.4)
    ax.set_xlabel("layer")
    ax.set_ylabel("validation accuracy (mean)")
    ax.legend(fontsize=7, frameon=False)
    ax = fig.add_subplot(1, 2, 2)
    average = result["intervals"]["average"]
    specs = [*curves, *result["prompt"]]
    names = [*curves, *(f"{s} prompt" for s in result["prompt"])]
    values = [result["test_average"][s]["session_layer"] for s in curves]
    values += [result["prompt_average"][s] for s in result["prompt"]]
    ax.bar(
        range(len(names)),
        values,
        0.7,
        color=[COLORS.get(s) for s in specs],
        hatch=["" if n in curves else "//" for n in names],
        yerr=_whiskers(values, [average[n][0] for n in names], [average[n][1] for n in names]),
        capsize=2,
    )
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel(f"test accuracy, layer {result['layer']['layer']} (95% interval)")
    fig.suptitle(title)
    _save(fig, path)


def heatmap_figure(
    matrices: dict[str, tuple[list[str], list[str], list[list[float]]]],
    path: Path,
    title: str,
    curves: dict[str, list[float]] | None = None,
) -> None:
    """Side-by-side heatmaps: name -> (row labels, column labels, values), with values printed;
    `curves` (name -> value per layer) first, as lines over depth."""
    panels = len(matrices) + (1 if curves else 0)
    fig = _figure(4.2 * panels, 3.8)
    if curves:
        ax = fig.add_subplot(1, panels, 1)
        for name, values in curves.items():
            ax.plot(range(len(values)), values, label=name)
        ax.set_xlabel("layer")
        ax.set_ylabel("cosine (mean over tasks)")
        ax.legend(fontsize=6, frameon=False)
    for i, (name, (rows, cols, values)) in enumerate(matrices.items()):
        ax = fig.add_subplot(1, panels, i + 1 + (1 if curves else 0))
        image = ax.imshow(values, vmin=-1, vmax=1, cmap="coolwarm")
        ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=6)
        ax.set_yticks(range(len(rows)), rows, fontsize=6)
        for r, row in enumerate(values):
            for c, v in enumerate(row):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=5)
        ax.set_title(name, fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.7)
    fig.suptitle(title)
    _save(fig, path)
