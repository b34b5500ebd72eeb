"""What every analysis shares: the loaded model and data, vectors per spec, the layer it looks
at, the model's own read-out (final norm + unembedding), and one way to write its JSON and PNG.

An analysis is a function `run(session) -> (result, figure_maker, table)`; `session` is made once
from the same flags as a run (`--model`, `--tasks`, `--data`, `--seeds`, `--layer`, ...), so an
analysis never re-implements model loading, item splits or vector extraction.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from benchmark import validate
from benchmark.files import atomic_output, slug, write_json_atomic
from benchmark.strict_json import read_json

from .. import engine
from ..adapters.base import Adapter
from ..cache import cache_root
from ..config import RunConfig
from ..context import EvalContext
from ..errors import ConfigError
from ..items import TaskData, record_digest, sha256
from ..layer_choice import check_layer, choose_layer, layer_from_results
from ..progress import ItemBar, routed_output
from ..results import versions
from ..store import code_version
from ..vectors import task_vector

# Bumped when an analysis's numbers would change for the same inputs.
ANALYSIS_VERSION = 1


@dataclasses.dataclass
class Session:
    """A loaded model and its tasks; vectors and the layer are computed once and kept."""

    config: RunConfig
    data: dict[str, TaskData]
    adapter: Adapter
    options: dict[str, Any]
    specs_given: bool = False
    _layer: dict[str, Any] | None = None

    @property
    def tasks(self) -> list[str]:
        return list(self.data)

    def progress(self, what: str) -> Iterator[str]:
        """The tasks, with a progress bar on stderr that names the task being worked on (an
        analysis runs minutes per task on a CPU); warnings print above the bar, not in it."""
        bar = ItemBar(self.tasks, lambda _task: 1, what, unit="task", ticks=False)
        try:
            with routed_output():
                for task in self.tasks:
                    with bar.unit(task, task):
                        yield task
        finally:
            bar.close()

    def context(self, spec: str | None = None, **changes: Any) -> EvalContext:
        """An evaluation context for `spec` (default: the run's), whose vectors are that spec's."""
        config = dataclasses.replace(self.config, spec=spec or self.config.spec, **changes)
        holder: dict[str, EvalContext] = {}

        def vectors(task: str, seed: int) -> torch.Tensor:
            return task_vector(self.adapter, holder["ctx"], task, seed)

        holder["ctx"] = EvalContext(config, self.data, self.adapter, vectors=vectors)
        return holder["ctx"]

    def vector(self, task: str, seed: int, spec: str) -> torch.Tensor:
        """[n_layers, d]: the task vector of `spec` (cached on disk like a run's)."""
        return self.context(spec).vector(task, seed)

    def specs(self, default: Sequence[str]) -> list[str]:
        """The specs an analysis compares: `--spec` when given, else `default` (image examples
        only where the model takes images and `--data` has them)."""
        if self.specs_given:
            return [self.config.spec]
        images = self.adapter.supports_images and self.config.data is not None
        return [s for s in default if s != "image_examples" or images]

    def layer(self) -> dict[str, Any]:
        """The layer the analysis looks at, and where it came from: --layer, --layer_from, or
        the run protocol's own choice (best mean validation accuracy of the spec's vectors,
        first seed)."""
        if self._layer is None:
            n_layers = self.adapter.num_layers
            if self.config.layer is not None:
                check_layer(self.config.layer, self.config.model, n_layers)
                self._layer = {"layer": self.config.layer, "source": "--layer"}
            elif self.config.layer_from:
                chosen = layer_from_results(self.config.layer_from, self.config.model, n_layers)
                self._layer = {"layer": chosen["layer"], "source": self.config.layer_from}
            else:
                self._layer = self._sweep_layer()
        return self._layer

    def _sweep_layer(self) -> dict[str, Any]:
        """The sweep's choice, from the cache when this model, code, template, spec, seed and
        items chose it before (each analysis would otherwise sweep again for minutes)."""
        seed = self.config.seeds[0]
        ctx = self.context()
        key = {
            "model": self.adapter.describe(),
            "code": code_version(),
            "template": self.adapter.prompting(),
            "spec": self.config.spec,
            "n_shot": self.config.n_shot,
            "seed": seed,
            "items": {
                t: sha256([record_digest(r) for r in ctx.items(t, "validation")])
                for t in self.tasks
            },
        }
        path = cache_root() / "analysis-layers" / f"{sha256(key)[:24]}.json"
        cached, errors = read_json(path) if path.is_file() else (None, [])
        if isinstance(cached, dict) and cached.get("key") == json.loads(json.dumps(key)):
            return cached["layer"]
        if path.exists():
            warn(f"layer cache {path} does not match this run ({errors or 'other key'}); sweeping")
        sweeps: dict[str, dict[int, dict]] = {}
        for task in self.progress("layer sweep"):
            items = ctx.items(task, "validation")
            prompts = [ctx.query_prompt(r) for r in items]
            ids = engine.sweep_layers(self.adapter, prompts, ctx.vector(task, seed))
            sweeps[task] = {seed: {"acc": accuracies(ctx, task, items, ids, prompts)}}
        chosen = choose_layer(sweeps, self.adapter.num_layers, None)
        layer = {
            "layer": chosen["layer"],
            "source": f"validation sweep ({self.config.spec}, seed {seed})",
            "mean_curve": chosen["mean_curve"],
        }
        write_json_atomic(path, {"key": key, "layer": layer})
        return layer


def accuracies(
    ctx: EvalContext, task: str, items: list[dict], ids: torch.Tensor, prompts: Sequence[Any]
) -> list[float]:
    """Lenient accuracy of each column of first-token ids ([n] or [n, k]): every analysis
    scores by the run's own rule."""
    columns = ids[:, None] if ids.dim() == 1 else ids
    return [
        statistics.fmean(ctx.score_tokens(task, items, columns[:, j].tolist(), prompts)["lenient"])
        for j in range(columns.shape[1])
    ]


# -- the model's read-out ---------------------------------------------------------------------
_NORM_NAMES = ("norm", "final_layernorm", "final_layer_norm", "ln_f")


def final_norm(adapter: Adapter) -> torch.nn.Module:
    """The norm the model applies after its last layer, found beside the decoder layers (the
    module that holds the layer list holds the norm too: Llama, Mistral, Gemma, Persimmon)."""
    layers = adapter.layers
    for module in adapter.model.modules():
        children = dict(module.named_children())
        if any(child is layers for child in children.values()):
            for name in _NORM_NAMES:
                if name in children:
                    return children[name]
    raise ValueError(
        f"cannot find the final norm of {type(adapter.model).__name__} beside its decoder "
        f"layers (looked for {', '.join(_NORM_NAMES)}); an adapter for it must say where it is"
    )


@torch.inference_mode()
def read_out(adapter: Adapter, hidden: torch.Tensor) -> torch.Tensor:
    """Logits of hidden states as if they were the last layer's output (the logit lens):
    final norm, then the unembedding. [..., d] -> [..., vocab] (float32)."""
    norm = final_norm(adapter)
    head = adapter.model.get_output_embeddings()
    param = next(head.parameters())
    return head(norm(hidden.to(param.device, param.dtype))).float().cpu()


@torch.inference_mode()
def normed(adapter: Adapter, hidden: torch.Tensor) -> torch.Tensor:
    """Hidden states through the final norm (how the paper compares vectors in t-SNE)."""
    norm = final_norm(adapter)
    param = next(norm.parameters(), None)
    if param is not None:
        hidden = hidden.to(param.device, param.dtype)
    return norm(hidden).float().cpu()


# -- output -----------------------------------------------------------------------------------
def out_dir(config: RunConfig) -> Path:
    return Path(config.output_path) / slug(config.model, "model") / "analysis"


def write_outputs(
    session: Session,
    name: str,
    result: dict[str, Any],
    figure: Callable[[Path], None] | None,
    seconds: float,
) -> tuple[Path, Path | None]:
    """<output_path>/<model>/analysis/<name>.json (schema-checked) and .png."""
    folder = out_dir(session.config)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {folder}: {exc.strerror or exc}") from None
    doc = {
        "kind": "analysis",
        "analysis": name,
        "analysis_version": ANALYSIS_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": session.adapter.describe(),
        "config": session.config.as_dict(),
        "options": session.options,
        "tasks": session.tasks,
        "versions": versions(),
        "seconds": round(seconds, 3),
        "result": result,
    }
    errors = validate(doc, "analysis")
    if errors:  # a bug in the analysis, not the user's input
        raise RuntimeError(
            f"{name} result does not match the schema: " + "; ".join(map(str, errors))
        )
    path = folder / f"{name}.json"
    write_json_atomic(path, doc)
    png = None
    if figure is not None:
        png = folder / f"{name}.png"
        with atomic_output(png) as tmp:
            figure(tmp)
    return path, png


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std (the runs or seeds are all there are)."""
    values = list(values)
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0
