"""`vlm-tv-eval` evaluation runs: parse, check, then extract, sweep, test, write.

A run is a set of units (a task vector, a validation sweep, one method on test for one seed),
each saved in the run folder when done. Rerunning the same command finds the same folder (its
name is a hash of the config) and skips finished units, so an interrupted run resumes and ends
with the same results as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmark import CROSS_MODAL_TASKS, validate

from .data import (
    TaskData,
    TaskFileError,
    load_task_data,
    majority_answer,
    record_digest,
    sample_demos,
    sha256,
    with_images,
)
from .parallel import current_shard
from .results import method_summary, versions, write_json_atomic

SPECS = ("text_examples", "image_examples", "instruction", "ensemble")
QUERIES = ("text", "image")
ALL_METHODS = ("no_context", "majority", "prompt", "patch")


class ConfigError(ValueError):
    """Bad input found before any model loads."""


@dataclass
class RunConfig:
    model: str = "smollm2-135m"
    model_args: dict[str, Any] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=lambda: list(CROSS_MODAL_TASKS))
    spec: str = "text_examples"
    query: str = "text"
    n_shot: int = 5
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    methods: list[str] = field(default_factory=lambda: list(ALL_METHODS))
    limit: int | None = None
    layer: int | None = None
    template: str | None = None
    case_insensitive: bool = False
    instruction: str | None = None
    batch_size: int = 32
    device: str = "auto"
    output_path: str = "runs"
    log_samples: bool = False
    data: str | None = None
    source_model: str | None = None
    source_model_args: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """What changes the numbers; its hash names the run folder."""
        skip = {"batch_size", "output_path", "log_samples"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


def _parse_model_args(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise ConfigError(f"--model_args: {part!r} is not key=value")
        key, value = (s.strip() for s in part.split("=", 1))
        if value.lower() in ("true", "false"):
            out[key] = value.lower() == "true"
        else:
            out[key] = value
    return out


def _int_list(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vlm-tv-eval",
        description="Evaluate cross-modal task vectors. With no arguments: the main job "
        "(smollm2-135m, six tasks, text examples -> text queries, all methods, 3 seeds, sweep). "
        "Also: `vlm-tv-eval validate FILE...`, `vlm-tv-eval ls tasks|models`.",
    )
    d = RunConfig()
    p.add_argument("--model", default=d.model, help="adapter name (see `ls models`) or hf:<repo>")
    p.add_argument(
        "--model_args",
        default="",
        help="k=v,... e.g. pretrained=PATH,revision=R,dtype=bfloat16,load_in_4bit=true",
    )
    p.add_argument(
        "--tasks",
        default="all",
        help="comma-separated task ids, `all`, or a path to your own JSONL task file",
    )
    p.add_argument("--spec", default=d.spec, choices=SPECS)
    p.add_argument(
        "--query",
        default=d.query,
        choices=QUERIES,
        help="query modality; image queries (and --spec image_examples) need a VLM and --data",
    )
    p.add_argument(
        "--data",
        default=None,
        help="the built cross-modal dataset with images: a folder written by `vlm-tv-build` "
        "or a Hub dataset id (datasets.load_dataset)",
    )
    p.add_argument(
        "--source_model",
        default=None,
        help="extract task vectors in this model (e.g. the VLM's base LLM) and patch them into "
        "--model at the same layer",
    )
    p.add_argument("--source_model_args", default="", help="k=v,... for --source_model")
    p.add_argument("--n_shot", type=int, default=d.n_shot)
    p.add_argument("--seeds", type=_int_list, default=d.seeds, help="e.g. 0,1,2")
    p.add_argument("--methods", default=",".join(d.methods), help=",".join(ALL_METHODS))
    p.add_argument("--limit", type=int, default=None, help="items per split (quick runs)")
    p.add_argument(
        "--layer",
        type=int,
        default=None,
        help="patch at this layer instead of choosing it on validation",
    )
    p.add_argument(
        "--template",
        default=None,
        help="paper | spaced | model (the model's own chat format); default: the adapter's",
    )
    p.add_argument("--case_insensitive", action="store_true")
    p.add_argument("--instruction", default=None, help="instruction for a custom task file")
    p.add_argument("--batch_size", type=int, default=d.batch_size)
    p.add_argument("--device", default=d.device, help="auto (cuda if available), cpu, cuda:N")
    p.add_argument("--output_path", default=d.output_path)
    p.add_argument("--log_samples", action="store_true")
    return p


def parse_config(argv: Sequence[str]) -> RunConfig:
    args = build_parser().parse_args(argv)
    tasks = (
        list(CROSS_MODAL_TASKS)
        if args.tasks == "all"
        else [t.strip() for t in args.tasks.split(",") if t.strip()]
    )
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    return RunConfig(
        model=args.model,
        model_args=_parse_model_args(args.model_args),
        tasks=tasks,
        spec=args.spec,
        query=args.query,
        n_shot=args.n_shot,
        seeds=args.seeds,
        methods=methods,
        limit=args.limit,
        layer=args.layer,
        template=args.template,
        case_insensitive=args.case_insensitive,
        instruction=args.instruction,
        batch_size=args.batch_size,
        device=args.device,
        output_path=args.output_path,
        log_samples=args.log_samples,
        data=args.data,
        source_model=args.source_model,
        source_model_args=_parse_model_args(args.source_model_args),
    )


def check_config(cfg: RunConfig) -> tuple[type, dict[str, TaskData]]:
    """Every check that needs no model: fail fast, naming the problem and the fix."""
    from .adapters import adapter_class
    from .templates import get_template

    try:
        cls, _ = adapter_class(cfg.model)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    unknown = [m for m in cfg.methods if m not in ALL_METHODS]
    if unknown or not cfg.methods:
        raise ConfigError(f"unknown method(s) {unknown}; use some of {', '.join(ALL_METHODS)}")
    if not cfg.seeds:
        raise ConfigError("--seeds needs at least one seed")
    if cfg.n_shot < 1:
        raise ConfigError("--n_shot must be at least 1")
    if cfg.limit is not None and cfg.limit < 2:
        raise ConfigError("--limit must be at least 2")
    if cfg.batch_size < 1:
        raise ConfigError("--batch_size must be at least 1")
    if cfg.template is not None and cfg.template != "model":
        try:
            get_template(cfg.template)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if not cfg.tasks:
        raise ConfigError("--tasks is empty")
    needs_images = cfg.spec == "image_examples" or cfg.query == "image"
    if needs_images and not cls.supports_images:
        raise ConfigError(
            f"model {cfg.model!r} is text-only; --spec image_examples and --query image need a "
            "VLM adapter (idefics2, llava-1.5, mantis-fuyu)"
        )
    if cfg.source_model:
        try:
            source_cls, _ = adapter_class(cfg.source_model)
        except ValueError as exc:
            raise ConfigError(f"--source_model: {exc}") from None
        if cfg.spec == "image_examples" and not source_cls.supports_images:
            raise ConfigError(
                f"--source_model {cfg.source_model} is text-only: use --spec text_examples, "
                "instruction or ensemble for LLM->VLM transfer"
            )
    if needs_images and not cfg.data:
        raise ConfigError(
            "image modes need the images: build them with `vlm-tv-build cross-modal --out DIR` "
            "(needs network) and pass --data DIR, or pass --data <hub-dataset-id>"
        )
    data: dict[str, TaskData] = {}
    for name in cfg.tasks:
        try:
            td = load_task_data(name, cfg.instruction)
            if needs_images:
                td = with_images(td, cfg.data)
        except (KeyError, ValueError, TaskFileError) as exc:
            raise ConfigError(str(exc).strip("'\"")) from None
        if cfg.spec in ("instruction", "ensemble") and not td.instruction:
            raise ConfigError(f"task {td.id} has no instruction; pass --instruction")
        for split, records in td.splits.items():
            # Demos come from the split minus the query.
            if cfg.n_shot > len(records) - 1 and _needs_demos(cfg, split):
                raise ConfigError(
                    f"--n_shot {cfg.n_shot} is larger than task {td.id}'s {split} split allows "
                    f"({len(records)} items, so at most {len(records) - 1} demos besides the query)"
                )
        data[td.id] = td
    if cfg.layer is not None:
        n_layers = (
            cls.peek_num_layers(**cfg.model_args) if hasattr(cls, "peek_num_layers") else None
        )
        if cfg.layer < 0 or (n_layers is not None and cfg.layer >= n_layers):
            raise ConfigError(
                f"--layer {cfg.layer} out of range: {cfg.model} has layers 0..{(n_layers or 1) - 1}"
            )
    return cls, data


def _needs_demos(cfg: RunConfig, split: str) -> bool:
    if split == "validation":
        return cfg.spec != "instruction" and "patch" in cfg.methods
    return bool({"majority", "prompt"} & set(cfg.methods))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("_") or "model"


class Run:
    """One evaluation: folders, units, aggregation."""

    def __init__(self, cfg: RunConfig, data: dict[str, TaskData]):
        self.cfg = cfg
        self.data = data
        # The items themselves are part of the identity: an edited task file is a new run.
        items = {
            t: {s: [record_digest(r) for r in rs] for s, rs in d.splits.items()}
            for t, d in data.items()
        }
        self.run_id = f"{cfg.spec}-{sha256([cfg.identity(), items])[:12]}"
        self.dir = Path(cfg.output_path) / _slug(cfg.model) / self.run_id
        self.parts = self.dir / "parts"
        self.timings: dict[str, float] = {}
        self.adapter: Any = None
        self.template: Any = None
        self.source: Any = None  # LLM->VLM: the model the vectors come from
        self.source_vectors: dict[tuple[str, int], Any] = {}
        self.shard = current_shard()
        self.source_description: dict[str, Any] | None = None
        self._first_tokens: dict[tuple[str, str], str] = {}

    # -- inputs in the configured modalities -------------------------------------------------
    def spec_input(self, record: dict[str, Any]) -> Any:
        return record["image"] if self.cfg.spec == "image_examples" else record["input"]

    def query_input(self, record: dict[str, Any]) -> Any:
        return record["image"] if self.cfg.query == "image" else record["input"]

    # -- items ---------------------------------------------------------------------------------
    def items(self, task: str, split: str) -> list[dict[str, Any]]:
        records = self.data[task].splits[split]
        return records[: self.cfg.limit] if self.cfg.limit else records

    def demos(self, task: str, split: str, query: dict[str, Any], seed: int) -> list[dict]:
        return sample_demos(self.data[task].splits[split], query, self.cfg.n_shot, seed, task)

    # -- units ---------------------------------------------------------------------------------
    def unit(self, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        path = self.parts / f"{name}.json"
        if path.is_file():
            return json.loads(path.read_text("utf-8"))
        start = time.perf_counter()
        out = compute()
        kind = name.split("/")[-1].split("-")[0]  # sweep, prompt, patch, ...
        self.timings[kind] = self.timings.get(kind, 0.0) + time.perf_counter() - start
        write_json_atomic(path, out)
        return out

    def _load(self, model: str, model_args: dict[str, Any]) -> Any:
        from .adapters import make_adapter
        from .templates import get_template

        args = dict(model_args)
        device = self.cfg.device
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.shard.count > 1 and self.shard.device and device.startswith("cuda"):
            device = self.shard.device  # one GPU per process
        args.setdefault("device", device)
        adapter = make_adapter(model, **args)
        adapter.load()
        if self.cfg.template == "model":
            adapter.use_chat_template = True
            adapter.chat_parts()  # fails now, with a clear message, if there is no chat template
        elif self.cfg.template:
            adapter.template = get_template(self.cfg.template)
        return adapter

    def load_model(self) -> None:
        start = time.perf_counter()
        self.adapter = self._load(self.cfg.model, self.cfg.model_args)
        self.template = self.adapter.template
        if self.cfg.source_model:
            self.source = self._load(self.cfg.source_model, self.cfg.source_model_args)
            src, dst = self.source.hidden_size, self.adapter.hidden_size
            if src != dst:
                raise ConfigError(
                    f"--source_model {self.cfg.source_model} has hidden size {src} but "
                    f"{self.cfg.model} has {dst}: vectors can only move between a VLM and its own "
                    "base LLM (idefics2 <- mistral-7b, llava-1.5 <- vicuna-7b)"
                )
            if self.source.num_layers != self.adapter.num_layers:
                raise ConfigError(
                    f"--source_model has {self.source.num_layers} layers, {self.cfg.model} has "
                    f"{self.adapter.num_layers}: patching 'at the same layer' needs equal depth"
                )
        self.timings["load"] = time.perf_counter() - start
        if self.cfg.layer is not None and self.cfg.layer >= self.adapter.num_layers:
            raise ConfigError(
                f"--layer {self.cfg.layer} out of range: {self.cfg.model} has "
                f"layers 0..{self.adapter.num_layers - 1}"
            )

    def score(self, task: str, items: list[dict], pred_ids: Sequence[int]) -> dict[str, Any]:
        from .scoring import lenient_match, strict_match

        ci = self.cfg.case_insensitive
        preds = [self.adapter.decode_token(i) for i in pred_ids]
        firsts = [self.target_first_token(task, r) for r in items]
        return {
            "doc_ids": [r["id"] for r in items],
            "preds": preds,
            "lenient": [
                lenient_match(p, r["output"], ci) for p, r in zip(preds, items, strict=True)
            ],
            "strict": [strict_match(p, f, ci) for p, f in zip(preds, firsts, strict=True)],
        }

    def target_first_token(self, task: str, record: dict[str, Any]) -> str:
        """The label's first token as it follows the query (for the strict rule), computed once
        per item rather than once per layer of the sweep."""
        key = (task, record["id"])
        if key not in self._first_tokens:
            token = self.adapter.answer_token(
                self.adapter.query_prompt(record["input"]).text,
                self.template.answer_prefix,
                record["output"],
            )
            self._first_tokens[key] = self.adapter.decode_token(token)
        return self._first_tokens[key]

    # -- the pipeline --------------------------------------------------------------------------
    def task_vector(self, task: str, seed: int, adapter: Any = None):
        """[n_layers, d] vector for the configured spec from `adapter` (default: the patched
        model), cached as safetensors."""
        from .vectors import cached_vector

        adapter = adapter or self.adapter
        examples = "image_examples" if self.cfg.spec == "image_examples" else "text_examples"

        def examples_vector(s: int):
            items = self.items(task, "validation")
            prompts = [
                adapter.example_prompt(
                    [
                        (self.spec_input(d), d["output"])
                        for d in self.demos(task, "validation", q, s)
                    ]
                )
                for q in items
            ]
            meta = {
                "spec": examples,
                "seed": s,
                "n_shot": self.cfg.n_shot,
                "items": sha256([record_digest(q) for q in items]),
            }
            return cached_vector(adapter, self.cfg.batch_size, task, meta, prompts)

        def instruction_vector():
            prompt = adapter.instruction_prompt(self.data[task].instruction)
            meta = {"spec": "instruction", "instruction": self.data[task].instruction}
            return cached_vector(adapter, self.cfg.batch_size, task, meta, [prompt])

        if self.cfg.spec == "instruction":
            return instruction_vector()
        if self.cfg.spec == "ensemble":
            return (examples_vector(seed) + instruction_vector()) / 2
        return examples_vector(seed)

    def patch_vector(self, task: str, seed: int):
        """The vector that is patched: the source model's under LLM->VLM, else the model's own."""
        if self.cfg.source_model:
            return self.source_vectors[task, seed]
        return self.task_vector(task, seed)

    def sweep(self, task: str, seed: int) -> dict[str, Any]:
        from . import engine

        def compute():
            items = self.items(task, "validation")
            vec = self.patch_vector(task, seed)
            prompts = [self.adapter.query_prompt(self.query_input(r)) for r in items]
            ids = engine.sweep_layers(self.adapter, prompts, vec)
            per_layer = [
                self.score(task, items, ids[:, layer].tolist()) for layer in range(ids.shape[1])
            ]
            return {
                "acc": [statistics.fmean(s["lenient"]) for s in per_layer],
                "acc_strict": [statistics.fmean(s["strict"]) for s in per_layer],
            }

        return self.unit(f"{_slug(task)}/sweep-s{seed}", compute)

    def test_unit(self, task: str, method: str, seed: int, layer: int | None) -> dict[str, Any]:
        from . import engine

        items = self.items(task, "test")
        queries = [self.adapter.query_prompt(self.query_input(r)) for r in items]
        bs = self.cfg.batch_size

        def compute():
            hashes = [sha256(q.text) for q in queries]
            if method == "no_context":
                ids = engine.first_tokens(self.adapter, queries, bs).tolist()
            elif method == "majority":
                answers = [majority_answer(self.demos(task, "test", r, seed)) for r in items]
                out = self.score_strings(task, items, answers)
                out["prompt_hashes"] = hashes
                return out
            elif method == "prompt":
                prompts = [
                    self.adapter.example_prompt(
                        [
                            (self.spec_input(d), d["output"])
                            for d in self.demos(task, "test", r, seed)
                        ],
                        query=self.query_input(r),
                    )
                    for r in items
                ]
                hashes = [sha256(p.text) for p in prompts]
                ids = engine.first_tokens(self.adapter, prompts, bs).tolist()
            else:
                vec = self.patch_vector(task, seed)
                ids = engine.patch_last_token(self.adapter, queries, vec[layer], layer, bs).tolist()
            out = self.score(task, items, ids)
            out["prompt_hashes"] = hashes
            return out

        # no_context does not depend on the seed: computed once, counted for every seed.
        name = "no_context" if method == "no_context" else f"{method}-s{seed}"
        if method == "patch":
            name += f"-L{layer}"
        return self.unit(f"{_slug(task)}/{name}", compute)

    def score_strings(self, task: str, items: list[dict], answers: list[str]) -> dict[str, Any]:
        """Majority answers are whole labels: scored by the same rules as model tokens."""
        from .scoring import lenient_match

        ci = self.cfg.case_insensitive
        return {
            "doc_ids": [r["id"] for r in items],
            "preds": answers,
            "lenient": [
                lenient_match(a, r["output"], ci) for a, r in zip(answers, items, strict=True)
            ],
            "strict": [
                (a.casefold() == r["output"].casefold()) if ci else a == r["output"]
                for a, r in zip(answers, items, strict=True)
            ],
        }

    def choose_layer(self, sweeps: dict[str, dict[int, dict]]) -> dict[str, Any]:
        n_layers = self.adapter.num_layers
        if self.cfg.layer is not None:
            return {"mode": "override", "layer": self.cfg.layer}
        curves = {
            task: [
                statistics.fmean(by_seed[s]["acc"][layer] for s in by_seed)
                for layer in range(n_layers)
            ]
            for task, by_seed in sweeps.items()
        }
        mean_curve = [
            statistics.fmean(c[layer] for c in curves.values()) for layer in range(n_layers)
        ]
        best = max(range(n_layers), key=lambda layer: (mean_curve[layer], -layer))
        return {
            "mode": "sweep",
            "layer": best,
            "split": "validation",
            "validation_curve": curves,
            "mean_curve": mean_curve,
        }

    def execute(self) -> dict[str, Any] | None:
        """Run every unit not done yet and write results.json; None in a non-main process."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.dir / "config.json", asdict(cfg))
        start = time.perf_counter()
        shard = self.shard
        quiet = not shard.is_main
        self.load_model()
        need_vectors = "patch" in cfg.methods
        task_seeds = [(t, s) for t in self.data for s in cfg.seeds]
        if self.source is not None and need_vectors:
            desc = f"vectors from {cfg.source_model}"
            for task, seed in tqdm(shard.take(task_seeds), desc=desc, disable=quiet):
                self.task_vector(task, seed, self.source)
            shard.barrier()
            for task, seed in task_seeds:  # read back from the vector cache
                self.source_vectors[task, seed] = self.task_vector(task, seed, self.source)
        if self.source is not None:
            self.source_description = self.source.describe()
            self.source = None
            _release_memory()
        sweeps: dict[str, dict[int, dict]] = {t: {} for t in self.data}
        if need_vectors and cfg.layer is None:
            desc = "validation sweep"
            for task, seed in tqdm(shard.take(task_seeds), desc=desc, disable=quiet):
                self.sweep(task, seed)
            shard.barrier()
            for task, seed in task_seeds:  # read back the units every process wrote
                sweeps[task][seed] = self.sweep(task, seed)
        selection = self.choose_layer(sweeps) if need_vectors else None
        layer = selection["layer"] if selection else None

        jobs = [(t, m, s) for t in self.data for m in cfg.methods for s in cfg.seeds]
        for task, method, seed in tqdm(shard.take(jobs), desc="test", unit="unit", disable=quiet):
            self.test_unit(task, method, seed, layer)
        shard.barrier()
        if not shard.is_main:
            return None
        test = {(t, m, s): self.test_unit(t, m, s, layer) for t, m, s in jobs}
        self.timings["total"] = time.perf_counter() - start

        results: dict[str, Any] = {}
        for task in self.data:
            results[task] = {}
            for method in cfg.methods:
                runs = [test[task, method, s] for s in cfg.seeds]
                extra: dict[str, Any] = {"split": "test"}
                if method == "patch":
                    extra["layer"] = layer
                results[task][method] = method_summary(
                    [statistics.fmean(r["lenient"]) for r in runs],
                    [statistics.fmean(r["strict"]) for r in runs],
                    len(runs[0]["lenient"]),
                    **extra,
                )
        doc = self.results_file(results, selection)
        if self.source_vectors and selection:
            doc["transfer"] = self.transfer_similarity(selection["layer"])
        errors = validate(doc, "results")
        if errors:  # a bug in the harness, not the user's input
            raise RuntimeError("results do not match the schema: " + "; ".join(map(str, errors)))
        write_json_atomic(self.dir / "results.json", doc)
        if cfg.log_samples:
            self.write_samples(test, layer)
        return doc

    def transfer_similarity(self, layer: int) -> dict[str, Any]:
        """Cosine similarity at the patched layer between the source model's vector and the
        model's own vector for the same task (matched) and for the other tasks (mismatched),
        averaged over seeds."""
        cos = torch_cosine()
        own = {(t, s): self.task_vector(t, s) for t in self.data for s in self.cfg.seeds}
        matched, mismatched = {}, {}
        for t in self.data:
            matched[t] = statistics.fmean(
                cos(self.source_vectors[t, s][layer], own[t, s][layer]) for s in self.cfg.seeds
            )
            others = [u for u in self.data if u != t]
            if others:
                mismatched[t] = statistics.fmean(
                    cos(self.source_vectors[t, s][layer], own[u, s][layer])
                    for u in others
                    for s in self.cfg.seeds
                )
        out: dict[str, Any] = {
            "source_model": self.cfg.source_model,
            "layer": layer,
            "cosine": matched,
            "mean_cosine": statistics.fmean(matched.values()),
        }
        if mismatched:
            out["mismatched_cosine"] = mismatched
            out["mean_mismatched_cosine"] = statistics.fmean(mismatched.values())
        return out

    def results_file(self, results: dict[str, Any], selection: dict | None) -> dict[str, Any]:
        cfg = self.cfg
        config = asdict(cfg)
        config["tasks"] = list(self.data)
        config["task_sources"] = {t: d.source for t, d in self.data.items()}
        config["template"] = self.template.record()
        if self.adapter.use_chat_template:  # --template model: the exact wrapping is recorded
            before, after = self.adapter.chat_parts()
            config["template"]["chat"] = {"before": before, "after": after}
        config["std"] = "population std over seeds (ddof=0)"
        config["metric"] = (
            "first token, greedy; acc = lenient (strip, either a prefix of the "
            "other), acc_strict = exact first token"
        )
        doc: dict[str, Any] = {
            "kind": "results",
            "schema_version": 1,
            "run_id": self.run_id,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": {**self.adapter.describe(), "source_model": self.source_description},
            "config": config,
            "versions": versions(),
            "seeds": list(cfg.seeds),
            "results": results,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "splits": {
                t: {
                    "source": d.source,
                    "validation": len(self.items(t, "validation")),
                    "test": len(self.items(t, "test")),
                    "made": d.split_made,
                    "missing_images": d.extra.get("missing_images", []),
                }
                for t, d in self.data.items()
            },
        }
        if selection:
            doc["layer_selection"] = selection
        return doc

    def write_samples(self, test: dict[tuple[str, str, int], dict], layer: int | None) -> None:
        for task in self.data:
            items = {r["id"]: r for r in self.items(task, "test")}
            lines = []
            for method in self.cfg.methods:
                for seed in self.cfg.seeds:
                    unit = test[task, method, seed]
                    for i, doc_id in enumerate(unit["doc_ids"]):
                        rec = items[doc_id]
                        lines.append(
                            json.dumps(
                                {
                                    "doc_id": doc_id,
                                    "task": task,
                                    "split": "test",
                                    "method": method,
                                    "spec": self.cfg.spec,
                                    "seed": seed,
                                    "layer": layer if method == "patch" else None,
                                    "prompt_hash": unit["prompt_hashes"][i],
                                    "doc_hash": sha256(record_digest(rec)),
                                    "prediction": unit["preds"][i],
                                    "target": rec["output"],
                                    "lenient": unit["lenient"][i],
                                    "strict": unit["strict"][i],
                                },
                                ensure_ascii=False,
                            )
                        )
            path = self.dir / f"samples_{_slug(task)}.jsonl"
            path.write_text("\n".join(lines) + "\n", "utf-8")


def torch_cosine():
    import torch

    def cos(a, b) -> float:
        return float(torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=0))

    return cos


def _release_memory() -> None:
    """Give a dropped model's memory back (GPU memory for the patched model)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def summary_table(doc: dict[str, Any]) -> str:
    methods = doc["config"]["methods"]
    head = f"{'task':20}" + "".join(f"{m:>16}" for m in methods)
    lines = [head, "-" * len(head)]
    avg: dict[str, list[float]] = {m: [] for m in methods}
    for task, by_method in doc["results"].items():
        cells = []
        for m in methods:
            r = by_method[m]
            avg[m].append(r["acc"])
            cell = f"{r['acc']:.2f}±{r['acc_std']:.2f}"
            if m == "patch":
                cell += f" L{r['layer']}"
            cells.append(f"{cell:>16}")
        lines.append(f"{task:20}" + "".join(cells))
    lines.append(f"{'average':20}" + "".join(f"{statistics.fmean(avg[m]):>16.2f}" for m in methods))
    return "\n".join(lines)


def cmd_run(argv: Sequence[str]) -> int:
    try:
        cfg = parse_config(argv)
        _, data = check_config(cfg)
    except ConfigError as exc:
        print(f"vlm-tv-eval: error: {exc}", file=sys.stderr)
        return 2
    run = Run(cfg, data)
    print(f"run folder: {run.dir}", file=sys.stderr)
    try:
        doc = run.execute()
    except ConfigError as exc:
        print(f"vlm-tv-eval: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; finished units are kept in {run.parts}. Run the same command again "
            "to resume.",
            file=sys.stderr,
        )
        return 130
    if doc is None:  # another process of an `accelerate launch` writes the results
        return 0
    print(summary_table(doc))
    transfer = doc.get("transfer")
    if transfer:
        print(
            f"LLM->VLM from {transfer['source_model']} at layer {transfer['layer']}: cosine "
            f"{transfer['mean_cosine']:.2f} (mismatched tasks "
            f"{transfer.get('mean_mismatched_cosine', float('nan')):.2f})"
        )
    sel = doc.get("layer_selection")
    if sel:
        print(
            f"layer {sel['layer']} ({sel['mode']}); "
            f"total {doc['timings'].get('total', 0):.0f} s; results: {run.dir / 'results.json'}"
        )
    return 0
