"""Where the patch goes: the layer chosen on validation, given by --layer, or taken from another
run's results (--layer_from), each checked against the model's depth."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmark import best_layer, validate_file
from benchmark.reading import file_problem
from benchmark.strict_json import read_json

from .errors import ConfigError


def choose_layer(
    sweeps: Mapping[str, Mapping[int, Mapping[str, list[float]]]],
    n_layers: int,
    override: int | None,
) -> dict[str, Any]:
    """The layer with the best mean validation accuracy over tasks (each task's curve averaged
    over its seeds first); ties go to the lowest layer. `override` (--layer) skips the choice."""
    if override is not None:
        return {"mode": "override", "layer": override}
    curves = {
        task: [
            statistics.fmean(by_seed[s]["acc"][layer] for s in by_seed) for layer in range(n_layers)
        ]
        for task, by_seed in sweeps.items()
    }
    mean_curve = [statistics.fmean(c[layer] for c in curves.values()) for layer in range(n_layers)]
    return {
        "mode": "sweep",
        "layer": best_layer(mean_curve),
        "split": "validation",
        "validation_curve": curves,
        "mean_curve": mean_curve,
    }


def layer_from_results(path: str, model: str, n_layers: int | None) -> dict[str, Any]:
    """The layer another run chose, once the file is shown to be a results file `validate`
    accepts (read strictly: no NaN, duplicate key or deep nesting) of a run of the same model:
    a damaged or hand-edited file must not decide where this run patches."""

    def field(outer: str, inner: str) -> Any:
        part = doc.get(outer) if isinstance(doc, dict) else None
        return part.get(inner) if isinstance(part, dict) else None

    problem = file_problem(path)
    if problem:
        raise ConfigError(f"--layer_from {path} {problem}; give the results.json of a run")
    doc, errors = read_json(path)
    layer, source_model = field("layer_selection", "layer"), field("model", "name")
    if errors or not isinstance(layer, int) or isinstance(layer, bool):  # not true, 21.9, "7"
        why = (
            f"{errors[0].path}: {errors[0].message}"
            if errors
            else "it records no layer_selection.layer"
            if layer is None
            else f"its layer_selection.layer is {layer!r}, not a layer number"
        )
        raise ConfigError(
            f"--layer_from {path}: not a results file with a chosen layer ({why}); give the "
            "results.json of a run of this model that chose a layer"
        )
    if source_model != model:
        raise ConfigError(
            f"--layer_from {path} is a run of {source_model}, not {model}: a layer does not carry "
            "over between models"
        )
    problems = validate_file(path, "results")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        first = f"{problems[0].path}: {problems[0].message}{more}"
        raise ConfigError(f"--layer_from {path}: `vlm-tv-eval validate` refuses it: {first}")
    check_layer(layer, model, n_layers)
    return {
        "mode": "from_results",
        "layer": layer,
        "source": str(Path(path)),
        "run_id": doc.get("run_id"),
    }


def check_layer(layer: int, model: str, n_layers: int | None) -> None:
    if layer < 0 or (n_layers is not None and layer >= n_layers):
        raise ConfigError(
            f"--layer {layer} out of range: {model} has layers 0..{(n_layers or 1) - 1}"
        )
