"""A results file's layer, checked against how the run says it chose it.

A run patches at one layer, which every results entry of a method that patched records as its
`layer`: with `--layer` (or a preset) the configured one ("override"), with `--layer_from`
another run's ("from_results"), otherwise the layer of the best mean validation accuracy
("sweep": `mean_curve` is the mean over tasks of `validation_curve`, and ties go to the lowest
layer, `benchmark.protocol.best_layer`). A file whose layer is not the one its own curve and
config pick, or whose curve does not fit the model's depth, was not written by a run.
"""

from __future__ import annotations

import statistics
from typing import Any

from ..protocol import best_layer
from ..strict_json import SchemaError, json_path
from .numbers import CURVE_TOLERANCE, is_count, is_curve, on_grid


def _method_layers(doc: dict[str, Any]) -> list[tuple[list[Any], Any]]:
    """(JSON path, value) of every layer a number was measured at: each results entry that
    records a `layer` (a method that patched), and the LLM->VLM transfer cosines'."""
    results = doc.get("results") if isinstance(doc.get("results"), dict) else {}
    transfer = doc.get("transfer")
    out = []
    if isinstance(transfer, dict) and "layer" in transfer:
        out.append((["transfer", "layer"], transfer["layer"]))
    for task, by_method in results.items():
        if not isinstance(by_method, dict):
            continue
        for method, entry in by_method.items():
            if isinstance(entry, dict) and "layer" in entry:
                out.append((["results", task, method, "layer"], entry["layer"]))
    return out


def _depth_errors(doc: dict[str, Any], chosen: Any, layers: list[Any]) -> list[SchemaError]:
    """Every layer named is one the model has (`model.num_layers`)."""
    model = doc.get("model") if isinstance(doc.get("model"), dict) else {}
    depth = model.get("num_layers")
    if not is_count(depth):
        return []
    named = [(["layer_selection", "layer"], chosen), *layers]
    return [
        SchemaError(
            json_path(at),
            f"layer {value} does not exist: model.num_layers is {depth} (layers 0..{depth - 1})",
        )
        for at, value in named
        if is_count(value) and value >= depth
    ]


def _method_errors(chosen: Any, layers: list[tuple[list[Any], Any]]) -> list[SchemaError]:
    """Each entry that records a layer was patched at the chosen layer, the one
    `layer_selection` records."""
    if chosen is None:
        return [
            SchemaError(
                json_path(at),
                f"{value!r}, but the file has no layer_selection saying how a layer was chosen "
                "(vlm-tv-eval writes one whenever a method patches)",
            )
            for at, value in layers
        ]
    return [
        SchemaError(json_path(at), f"{value!r} differs from layer_selection.layer ({chosen!r})")
        for at, value in layers
        if value != chosen
    ]


def _mode_errors(selection: dict[str, Any], config: dict[str, Any]) -> list[SchemaError]:
    """The mode agrees with the config: --layer is an override of exactly that layer,
    --layer_from a layer from another run, neither a sweep."""
    mode, chosen = selection.get("mode"), selection.get("layer")
    fixed, source = config.get("layer"), config.get("layer_from")
    want = "override" if fixed is not None else "from_results" if source else "sweep"
    errors = []
    if "layer" in config or "layer_from" in config:
        if mode != want:
            why = {
                "override": f"config.layer is {fixed!r}",
                "from_results": f"config.layer_from is {source!r}",
                "sweep": "config sets neither layer nor layer_from",
            }[want]
            errors.append(
                SchemaError("$.layer_selection.mode", f"{mode!r}, but {why}: it is {want!r}")
            )
    if mode == "override" and fixed is not None and chosen != fixed:
        errors.append(
            SchemaError(
                "$.layer_selection.layer",
                f"{chosen!r}, but the run was told config.layer {fixed!r}",
            )
        )
    return errors


def _curve_errors(
    selection: dict[str, Any], depth: Any, sizes: dict[Any, int]
) -> list[SchemaError]:
    """A sweep's curves: one point per layer, `mean_curve` the mean of the task curves, and the
    chosen layer its first maximum."""
    mean, per_task = selection.get("mean_curve"), selection.get("validation_curve")
    errors = []
    for key, value in (("mean_curve", mean), ("validation_curve", per_task)):
        if value is None:
            errors.append(
                SchemaError(
                    f"$.layer_selection.{key}",
                    "missing: a layer chosen by a sweep cannot be checked without the curve it "
                    "was chosen from (vlm-tv-eval writes it)",
                )
            )
    if not is_curve(mean) or not mean:
        return errors
    if is_count(depth) and len(mean) != depth:
        errors.append(
            SchemaError(
                "$.layer_selection.mean_curve",
                f"{len(mean)} point(s), but model.num_layers is {depth}: a sweep scores every "
                "layer",
            )
        )
    if isinstance(per_task, dict):
        errors += _task_curve_errors(mean, per_task, depth, sizes)
    chosen, best = selection.get("layer"), best_layer(mean)
    if is_count(chosen) and chosen != best:
        errors.append(
            SchemaError(
                "$.layer_selection.layer",
                f"{chosen}, but the sweep's best layer is {best} (mean_curve[{best}] = "
                f"{mean[best]!r}; mean_curve[{chosen}] = "
                f"{mean[chosen] if chosen < len(mean) else 'absent'}): the layer chosen by a "
                "sweep is the first maximum of mean_curve",
            )
        )
    return errors


def _sweep_sizes(doc: dict[str, Any]) -> dict[Any, int]:
    """Per task, how many validation answers each curve point counts: the recorded validation
    split (already cut to --limit) times the seeds, which the curve averages."""
    splits = doc.get("splits") if isinstance(doc.get("splits"), dict) else {}
    seeds = doc.get("seeds") if isinstance(doc.get("seeds"), list) else []
    out = {}
    for task, split in splits.items():
        size = split.get("validation") if isinstance(split, dict) else None
        if is_count(size) and size > 0 and seeds:
            out[task] = size * len(seeds)
    return out


def _grid_errors(per_task: dict[str, Any], sizes: dict[Any, int]) -> list[SchemaError]:
    """A curve point is a mean over seeds of hits out of the validation items: a whole number
    of hits out of items x seeds. The first point off that grid is named, per task."""
    errors = []
    for task, curve in per_task.items():
        total = sizes.get(task)
        if total is None:
            continue
        off = [i for i, v in enumerate(curve) if not on_grid(v, total)]
        if off:
            errors.append(
                SchemaError(
                    json_path(["layer_selection", "validation_curve", task, off[0]]),
                    f"{curve[off[0]]!r} is not a whole number of hits out of {total} "
                    "(validation items x seeds): no sweep scores it"
                    + (f" ({len(off)} such point(s))" if len(off) > 1 else ""),
                )
            )
    return errors


def _task_curve_errors(
    mean: list[float], per_task: dict[str, Any], depth: Any, sizes: dict[Any, int]
) -> list[SchemaError]:
    """Each task's curve has one point per layer, each a count of validation hits, and
    `mean_curve` is their mean point by point."""
    curves = list(per_task.values())
    if not curves:
        message = "empty: a sweep scores every task, and mean_curve is the mean of their curves"
        return [SchemaError("$.layer_selection.validation_curve", message)]
    if not all(is_curve(c) for c in curves):
        return []
    errors = _grid_errors(per_task, sizes)
    for task, curve in per_task.items():
        if len(curve) != len(mean):
            errors.append(
                SchemaError(
                    json_path(["layer_selection", "validation_curve", task]),
                    f"{len(curve)} point(s), but mean_curve has {len(mean)}"
                    + (f" and model.num_layers is {depth}" if is_count(depth) else ""),
                )
            )
    if any(len(c) != len(mean) for c in curves):
        return errors
    for layer, value in enumerate(mean):
        expected = statistics.fmean(c[layer] for c in curves)
        if abs(value - expected) > CURVE_TOLERANCE:
            errors.append(
                SchemaError(
                    json_path(["layer_selection", "mean_curve", layer]),
                    f"{value!r} is not the mean of the task curves at layer {layer} ({expected!r})",
                )
            )
    return errors


def check_layers(doc: dict[str, Any]) -> list[SchemaError]:
    """The layer of a results file against how it was chosen: the mode against the config, a
    sweep's layer against its curves, every layer against the model's depth and each layer an
    entry records against the chosen one. Empty when they agree."""
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    model = doc.get("model") if isinstance(doc.get("model"), dict) else {}
    selection = doc.get("layer_selection")
    selection = selection if isinstance(selection, dict) else None
    chosen = selection.get("layer") if selection else None
    layers = _method_layers(doc)
    errors = _depth_errors(doc, chosen, layers) + _method_errors(chosen, layers)
    if selection is None:
        return errors
    errors += _mode_errors(selection, config)
    if selection.get("mode") == "sweep":
        errors += _curve_errors(selection, model.get("num_layers"), _sweep_sizes(doc))
    return errors
