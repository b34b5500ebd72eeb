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
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from benchmark import validate
from benchmark.files import atomic_output, cache_root, slug, write_json_atomic
from benchmark.strict_json import read_json

from .. import engine
from ..adapters.base import Adapter
from ..config import RunConfig
from ..context import EvalContext
from ..errors import ConfigError
from ..items import TaskData, record_digest, sha256
from ..layer_choice import check_layer, choose_layer, layer_from_results
from ..progress import ItemBar, routed_output
from ..results import versions
from ..store import code_version, layer_from_digest
from ..vectors import task_vector
from .options import OPTIONS

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
        items chose it before (each analysis would otherwise sweep again for minutes).

        The cache file proves itself: it holds the per-task sweep scores the layer was chosen
        from, and is reused only when its key is this run's, its scores are this run's tasks'
        accuracies at every layer, and `choose_layer` on them gives back exactly the layer
        record stored beside them (an integer in [0, num_layers)). Anything else (not JSON,
        not an object, another run's, edited) is named in a one-line warning, swept again and
        overwritten."""
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
        if path.exists() or path.is_symlink():
            layer, problem = self._cached_layer(path, json.loads(json.dumps(key)), seed)
            if layer is not None:
                return layer
            warn(
                f"layer cache {path} {problem}; recomputing it (sweeping again, the file is "
                "replaced)"
            )
        sweeps: dict[str, dict[str, dict[str, list[float]]]] = {}
        for task in self.progress("layer sweep"):
            items = ctx.items(task, "validation")
            prompts = [ctx.query_prompt(r) for r in items]
            ids = engine.sweep_layers(self.adapter, prompts, ctx.vector(task, seed))
            sweeps[task] = {str(seed): {"acc": accuracies(ctx, task, items, ids, prompts)}}
        layer = self._swept_choice(sweeps, seed)
        try:
            write_json_atomic(path, {"key": key, "sweeps": sweeps, "layer": layer})
        except OSError as exc:  # the layer is right; only the next analysis sweeps again
            warn(f"cannot write layer cache {path} ({exc.strerror or exc}); it is not cached")
        return layer

    def _swept_choice(
        self, sweeps: dict[str, dict[str, dict[str, list[float]]]], seed: int
    ) -> dict[str, Any]:
        """The layer record the run protocol's rule (`choose_layer`) makes of sweep scores:
        the one rule for a fresh sweep and for checking a cached one."""
        chosen = choose_layer(sweeps, self.adapter.num_layers, None)
        return {
            "layer": chosen["layer"],
            "source": f"validation sweep ({self.config.spec}, seed {seed})",
            "mean_curve": chosen["mean_curve"],
        }

    def _cached_layer(
        self, path: Path, key: Any, seed: int
    ) -> tuple[dict[str, Any] | None, str | None]:
        """(the layer record re-derived from the cache file, None), or (None, what is wrong
        with the file, as words that follow its name)."""
        doc, errors = read_json(path)
        if errors:
            first = " ".join(f"{errors[0].path}: {errors[0].message}".split())
            return None, f"is not readable, valid JSON ({first})"
        if not isinstance(doc, dict):
            return None, f"is not a layer record (a JSON {type(doc).__name__}, not an object)"
        if doc.get("key") != key:
            return (
                None,
                "does not match this run (another model, code, template, spec, seed or items)",
            )
        n_layers = self.adapter.num_layers
        sweeps = doc.get("sweeps")
        if not isinstance(sweeps, dict) or set(sweeps) != set(self.tasks):
            return (
                None,
                "does not hold the sweep scores of this run's tasks the layer was chosen from",
            )
        for task in self.tasks:
            by_seed = sweeps[task]
            scores = by_seed.get(str(seed)) if isinstance(by_seed, dict) else None
            acc = scores.get("acc") if isinstance(scores, dict) else None
            well_formed = (
                isinstance(by_seed, dict)
                and list(by_seed) == [str(seed)]
                and isinstance(scores, dict)
                and list(scores) == ["acc"]
                and isinstance(acc, list)
                and len(acc) == n_layers
                and all(_is_accuracy(a) for a in acc)
            )
            if not well_formed:
                return None, (
                    f"holds malformed sweep scores for {task} (expected {n_layers} accuracies "
                    f"in [0, 1] for seed {seed})"
                )
        stored = doc.get("layer")
        if not isinstance(stored, dict):
            return None, f"holds no layer record (its 'layer' is {_shown(stored)}, not an object)"
        stored_layer = stored.get("layer")
        if not isinstance(stored_layer, int) or isinstance(stored_layer, bool):
            return None, f"holds the layer {_shown(stored_layer)}, not an integer"
        if not 0 <= stored_layer < n_layers:
            return None, (
                f"holds the layer {stored_layer}, not a layer of {self.config.model} "
                f"(0..{n_layers - 1})"
            )
        derived = self._swept_choice({t: sweeps[t] for t in self.tasks}, seed)
        if stored != derived:
            if stored_layer != derived["layer"]:
                return None, (
                    f"holds the layer {stored_layer}, but its sweep scores choose "
                    f"{derived['layer']} (edited?)"
                )
            return None, "holds a layer record its sweep scores do not re-derive (edited?)"
        return derived, None


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


# -- identity: what changes an analysis's numbers ---------------------------------------------
def identity(
    name: str, config: RunConfig, options: Mapping[str, Any], specs_given: bool
) -> dict[str, Any]:
    """What changes an analysis's numbers, as JSON data (recorded in its file as "identity"):
    the analysis; the options it reads (`OPTIONS`), at the value it uses, so a flag given at
    its default is the same setting; the run's measurement flags (`RunConfig.identity()`, the
    rule a run folder's id hashes: model, tasks, spec, seeds, n_shot, layer, template, ...);
    whether --spec narrowed the specs an analysis compares to one; and the sha256 of a
    --layer_from file (its path says nothing of the layer in it)."""
    out: dict[str, Any] = {
        "analysis": name,
        "options": {key: options.get(key) or default for key, default in OPTIONS[name].items()},
        "config": config.identity(),
        "spec_given": bool(specs_given),
    }
    if config.layer_from:
        out["layer_from_sha256"] = layer_from_digest(config.layer_from)
    return json.loads(json.dumps(out))  # tuples as lists: as it reads back from the file


def check_output(path: Path, own: dict[str, Any]) -> None:
    """Nothing at `path`, or this identity's own file there (a rerun replaces it): else a
    ConfigError naming the file, why it is not this run's, and the way out. Another setting's
    file is never replaced, so a file's numbers are always those of the identity it records."""
    if not (path.exists() or path.is_symlink()):
        return
    problem = _not_own(path, own)
    if problem:
        raise ConfigError(
            f"{path} {problem}; give another --output_path, or remove it (and its .png) to "
            "replace it"
        )


def _not_own(path: Path, own: dict[str, Any]) -> str | None:
    """None when the file at `path` is an analysis file of identity `own`; else what it is,
    as words that follow its name."""
    name = own["analysis"]
    if path.is_symlink() or not path.is_file():
        return "is not a regular file"
    doc, errors = read_json(path)
    if errors:
        first = " ".join(f"{errors[0].path}: {errors[0].message}".split())
        return f"is not readable, valid JSON ({first})"
    if not isinstance(doc, dict) or doc.get("kind") != "analysis" or doc.get("analysis") != name:
        return f"is not a {name} analysis file"
    if "identity" in doc:
        recorded = doc["identity"]
    else:  # written before analysis files recorded their identity: its config says it
        recorded, problem = _identity_of_record(doc, name)
        if problem:
            return f"records no identity, and {problem}"
    if recorded != own:
        return f"holds {name} of another setting ({_differences(recorded, own)})"
    return None


# RunConfig fields that are tuples (a file records them as lists).
_TUPLE_FIELDS = ("tasks", "seeds", "methods", "preset_departures")


def _identity_of_record(doc: dict[str, Any], name: str) -> tuple[dict[str, Any] | None, str]:
    """The identity of an analysis file that records none (written before they did), from the
    config and options it records: (identity, "") or (None, why it cannot be told)."""
    config, options, result = doc.get("config"), doc.get("options"), doc.get("result")
    if not (isinstance(config, dict) and isinstance(options, dict) and isinstance(result, dict)):
        return None, "its config, options or result is not an object"
    if config.get("layer_from"):
        return None, "the content of its --layer_from file then is unknown"
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(config) - fields)
    if unknown:
        return (
            None,
            f"its config has fields this code does not know ({_shown(unknown)})",
        )
    values = {
        k: tuple(v) if k in _TUPLE_FIELDS and isinstance(v, list) else v for k, v in config.items()
    }
    try:
        run = RunConfig(**values)
        return identity(name, run, options, _one_spec(result)), ""
    except (TypeError, ValueError, KeyError, ConfigError) as exc:
        return None, f"its config does not read as a run's ({exc})"


def _one_spec(result: dict[str, Any]) -> bool:
    """Whether a result compares a single spec, as an analysis does only when --spec is given
    (every default list has text examples and the instruction): logit-lens and tsne record
    their specs, cosine names them in its pairs ("a vs a" per spec)."""
    specs = result.get("specs")
    per_layer = result.get("per_layer")
    if specs is None and isinstance(per_layer, dict):
        specs = [k for k in per_layer if len(set(str(k).split(" vs "))) == 1]
    return isinstance(specs, list) and len(specs) == 1


def _differences(there: Any, here: dict[str, Any], most: int = 3) -> str:
    """What differs between two identities, as flags: "--max_r 6 there, 3 here; ..."."""
    if not isinstance(there, dict):
        return f"its identity is {_shown(there)}"

    def flat(ident: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in ident.items():
            if key in ("options", "config") and isinstance(value, dict):
                out.update({f"--{k}": v for k, v in value.items()})
            elif key == "spec_given":
                out["--spec given"] = value
            elif key == "layer_from_sha256":
                out["--layer_from content"] = value[:12] if isinstance(value, str) else value
            else:
                out[key] = value
        return out

    a, b = flat(there), flat(here)
    absent = object()  # a field an identity leaves out at its default (`RunConfig.identity`)

    def value(side: dict[str, Any], key: str) -> str:
        got = side.get(key, absent)
        return "(default)" if got is absent else _shown(got)

    keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k, absent) != b.get(k, absent)]
    shown = [f"{k} {value(a, k)} there, {value(b, k)} here" for k in keys[:most]]
    if len(keys) > most:
        shown.append(f"{len(keys) - most} more")
    return "; ".join(shown) or "its identity is not one this code writes"


# -- output -----------------------------------------------------------------------------------
def out_dir(config: RunConfig) -> Path:
    return Path(config.output_path) / slug(config.model, "model") / "analysis"


def json_path(config: RunConfig, name: str) -> Path:
    """Where analysis `name` of this run's flags writes its JSON (its PNG is beside it)."""
    return out_dir(config) / f"{name}.json"


def write_outputs(
    session: Session,
    name: str,
    result: dict[str, Any],
    figure: Callable[[Path], None] | None,
    seconds: float,
) -> tuple[Path, Path | None]:
    """<output_path>/<model>/analysis/<name>.json (schema-checked, recording its identity) and
    .png. A JSON there of another identity (written while this one ran) is refused, not
    replaced (`check_output`); this identity's own is replaced, and so is its PNG."""
    folder = out_dir(session.config)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {folder}: {exc.strerror or exc}") from None
    own = identity(name, session.config, session.options, session.specs_given)
    doc = {
        "kind": "analysis",
        "analysis": name,
        "analysis_version": ANALYSIS_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": session.adapter.describe(),
        "config": session.config.as_dict(),
        "options": session.options,
        "identity": own,
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
    path = json_path(session.config, name)
    check_output(path, own)
    write_json_atomic(path, doc)
    png = folder / f"{name}.png"
    if figure is not None:
        with atomic_output(png) as tmp:
            figure(tmp)
        return path, png
    if png.is_file() or png.is_symlink():  # an earlier figure is not this result's
        png.unlink()
    return path, None


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _shown(value: Any) -> str:
    """A value read from a file, for a one-line message: its JSON, cut short."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_accuracy(value: Any) -> bool:
    """A finite number in [0, 1] (not a bool: JSON true is no accuracy)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std (the runs or seeds are all there are)."""
    values = list(values)
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0
