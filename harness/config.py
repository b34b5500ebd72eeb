"""What a run is asked to do (`RunConfig`), and every check on it that needs no data and no model.

The config is immutable: the run id is a hash of its measurement fields
(`benchmark.measurement_config`), so nothing may change it after the run folder is named.
Checks that need the task items (split sizes, instructions) live with the data in `data.py`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from benchmark import (
    CROSS_MODAL_TASKS,
    FIRST_TOKEN_METHODS,
    QUERIES,
    SPECS,
    measurement_config,
)


class ConfigError(ValueError):
    """Bad input found before any model loads; the message names the problem and the fix."""


@dataclass(frozen=True)
class RunConfig:
    model: str = "smollm2-135m"
    model_args: dict[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] = CROSS_MODAL_TASKS
    spec: str = "text_examples"
    query: str = "text"
    n_shot: int = 5
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = FIRST_TOKEN_METHODS
    limit: int | None = None
    layer: int | None = None
    template: str | None = None  # None: the model's default; "model": its own chat format
    case_insensitive: bool = False
    instruction: str | None = None
    batch_size: int = 32
    device: str = "auto"
    output_path: str = "runs"
    log_samples: bool = False
    data: str | None = None
    source_model: str | None = None
    source_model_args: dict[str, Any] = field(default_factory=dict)
    # Overriding runs: how long an answer may be, where the layer comes from, who judges.
    max_new_tokens: int = 32
    layer_from: str | None = None
    judge: str | None = None
    judge_base_url: str | None = None
    # --preset: which named setting filled the fields above, and where the command line departed.
    preset: str | None = None
    preset_departures: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("tasks", "seeds", "methods", "preset_departures"):
            out[key] = list(out[key])
        return out

    def identity(self) -> dict[str, Any]:
        """What changes the numbers; its hash (with the items) names the run folder. The judge
        is left out: the folder holds generations, which any judge may score later."""
        out = measurement_config(self.as_dict())
        for key in JUDGE_KEYS:
            out.pop(key, None)
        return out

    @property
    def overriding(self) -> bool:
        """An overriding run (free-form answers, judged): every task is an overriding task."""
        from .overriding import is_overriding

        return bool(self.tasks) and all(is_overriding(t) for t in self.tasks)

    @property
    def uses_images(self) -> bool:
        from .overriding import has_labels, is_overriding

        image_sets = any(is_overriding(t) and not has_labels(t) for t in self.tasks)
        return self.spec == "image_examples" or self.query == "image" or image_sets

    @property
    def chat(self) -> str | bool:
        """The chat format for the adapter: "model" (each example its own turn, the paper's
        Table 10), "model_one_turn" (the whole prompt in one user turn), or False. The two are
        different --template values, so their run ids differ."""
        from .templates import CHAT_FORMATS

        return self.template if self.template in CHAT_FORMATS else False

    @property
    def named_template(self) -> str | None:
        """A template name to use instead of the adapter's default (None: the default, which a
        chat format's one-turn variant wraps; the per-example-turn format uses none)."""
        from .templates import CHAT_FORMATS

        return None if self.template is None or self.template in CHAT_FORMATS else self.template

    def validate(self) -> None:
        """Fail fast, before any data or model loads. Reads at most a model's config file."""
        # Imported here so that `vlm-tv-eval validate` and `ls tasks` never import torch.
        from .adapters import adapter_class, make_adapter
        from .methods import get_method
        from .templates import get_template

        if self.spec not in SPECS:
            raise ConfigError(f"unknown spec {self.spec!r}; use one of {', '.join(SPECS)}")
        if self.query not in QUERIES:
            raise ConfigError(f"unknown query {self.query!r}; use one of {', '.join(QUERIES)}")
        if not self.methods:
            raise ConfigError("--methods is empty")
        for name in self.methods:
            try:
                get_method(name)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        if not self.seeds:
            raise ConfigError("--seeds needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(
                f"--seeds {','.join(map(str, self.seeds))} repeats a seed; a repeated seed would "
                "count the same draw twice in the mean and std"
            )
        if self.n_shot < 1:
            raise ConfigError("--n_shot must be at least 1")
        if self.limit is not None and self.limit < 2:
            raise ConfigError("--limit must be at least 2")
        if self.batch_size < 1:
            raise ConfigError("--batch_size must be at least 1")
        if not self.tasks:
            raise ConfigError("--tasks is empty")
        _validate_environment(self)
        _validate_overriding(self)
        _validate_vqa(self)
        try:
            if self.named_template:
                get_template(self.named_template)
            cls, _ = adapter_class(self.model)
            adapter = make_adapter(self.model, **self.model_args)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.uses_images and not cls.supports_images:
            raise ConfigError(
                f"model {self.model!r} is text-only; --spec image_examples and --query image need "
                "a VLM adapter (idefics2, llava-1.5, mantis-fuyu)"
                + (
                    "; the VQA tasks query images unless --query text"
                    if self.query == "image" and any(t.startswith("vqa_") for t in self.tasks)
                    else ""
                )
            )
        if self.source_model:
            try:
                source_cls, _ = adapter_class(self.source_model)
                make_adapter(self.source_model, **self.source_model_args)
            except ValueError as exc:
                raise ConfigError(f"--source_model: {exc}") from None
            if self.spec == "image_examples" and not source_cls.supports_images:
                raise ConfigError(
                    f"--source_model {self.source_model} is text-only: use --spec text_examples, "
                    "instruction or ensemble for LLM->VLM transfer"
                )
        _check_4bit(self)
        if self.uses_images and not self.data:
            raise ConfigError(
                "image modes need the images: build them with `vlm-tv-build cross-modal --out "
                "DIR` (needs network) and pass --data DIR, or pass --data <hub-dataset-id>"
            )
        if self.layer is not None:
            check_layer(self.layer, self.model, adapter.peek_num_layers())
        if self.layer_from:
            layer_from_results(self.layer_from, self.model, adapter.peek_num_layers())


JUDGE_KEYS = ("judge", "judge_base_url")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def _check_4bit(config: RunConfig) -> None:
    """After the adapters have refused model_args they would ignore (the more useful error)."""
    import torch

    for flag, args in (
        ("--model_args", config.model_args),
        ("--source_model_args", config.source_model_args),
    ):
        if args.get("load_in_4bit") is True and not torch.cuda.is_available():
            raise ConfigError(
                f"{flag}: load_in_4bit needs a CUDA GPU (and bitsandbytes); this machine has "
                "none: add load_in_4bit=false to run unquantised (with --preset paper this is "
                "recorded as a departure from the paper's setting)"
            )


def _validate_environment(config: RunConfig) -> None:
    """Device, dtype, local checkpoint paths and the output folder, checked before any load."""
    import re
    from pathlib import Path

    import torch

    for flag, args in (
        ("--model_args", config.model_args),
        ("--source_model_args", config.source_model_args),
    ):
        if args.get("dtype") not in (None, *DTYPES):
            raise ConfigError(f"{flag}: dtype {args['dtype']!r} is not one of {', '.join(DTYPES)}")
    device = config.device
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
        raise ConfigError(f"--device {device!r}: use auto, cpu, cuda, cuda:N or mps")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: CUDA is not available here; use --device cpu")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s)"
            )
    for model in (config.model, config.source_model):
        if model and model.startswith("hf:"):
            target = model[3:]
            try:  # a name over the file system's limit raises instead of answering False
                missing = not Path(target).expanduser().exists()
            except OSError as exc:
                raise ConfigError(f"--model {model}: not a usable path ({exc.strerror})") from None
            if target.startswith(("/", "./", "../", "~")) and missing:
                raise ConfigError(f"--model {model}: the folder {target} does not exist")
    from .store import check_output_path

    check_output_path(config.output_path)


def _validate_vqa(config: RunConfig) -> None:
    """VQA subsets read their items from a built VQA dataset, so a run is all VQA or none:
    one --data cannot be both the VQA build and the cross-modal build."""
    from .vqa import BUILD_HINT, is_vqa

    vqa = [t for t in config.tasks if is_vqa(t)]
    if vqa and len(vqa) != len(config.tasks):
        others = ", ".join(t for t in config.tasks if not is_vqa(t))
        raise ConfigError(
            f"the VQA tasks ({', '.join(vqa)}) read a built VQA dataset and cannot share a run "
            f"with {others}: run them separately"
        )
    if vqa and not config.data:
        raise ConfigError(f"the VQA tasks need their items: {BUILD_HINT}")


def _validate_overriding(config: RunConfig) -> None:
    from .methods import get_method
    from .overriding import has_labels, is_overriding

    kinds = {is_overriding(t) for t in config.tasks}
    if len(kinds) > 1:
        raise ConfigError(
            "overriding tasks (free-form, judged) and first-token tasks cannot share a run; "
            "run them separately"
        )
    wanted = "overriding" if config.overriding else "first_token"
    wrong = [m for m in config.methods if get_method(m).kind != wanted]
    if wrong:
        raise ConfigError(
            f"method(s) {', '.join(wrong)} do not apply to {wanted.replace('_', '-')} tasks; "
            + (
                "overriding tasks run original, system_prompt, instruction_patch"
                if config.overriding
                else "use no_context, majority, prompt, patch"
            )
        )
    if config.max_new_tokens < 1:
        raise ConfigError("--max_new_tokens must be at least 1")
    if config.layer_from and config.layer is not None:
        raise ConfigError("give --layer or --layer_from, not both")
    if not config.overriding:
        return
    image_sets = [t for t in config.tasks if not has_labels(t)]
    if image_sets and config.spec != "instruction":
        raise ConfigError(
            f"{', '.join(image_sets)}: the image and question 1 set the task up, so the spec is "
            "the overriding instruction: use --spec instruction (the default for these tasks)"
        )
    needs_layer = any(get_method(m).needs_vector for m in config.methods)
    if image_sets and needs_layer and config.layer is None and not config.layer_from:
        raise ConfigError(
            "the image overriding sets have no labels to choose a layer on: pass --layer N (the "
            "authors' layers: idefics2 16, llava-1.5 15, mantis-fuyu 23) or --layer_from "
            "RESULTS_JSON of a run of the same model on the six tasks"
        )
    if config.judge or config.judge_base_url:
        from .judge import DEFAULT_JUDGE, Judge, JudgeConfigError

        try:
            Judge(config.judge or DEFAULT_JUDGE, config.judge_base_url)
        except JudgeConfigError as exc:
            raise ConfigError(str(exc)) from None


def layer_from_results(path: str, model: str, n_layers: int | None) -> dict[str, Any]:
    """The layer another run chose, once the file is shown to be a results file `validate`
    accepts (read strictly: no NaN, duplicate key or deep nesting) of a run of the same model:
    a damaged or hand-edited file must not decide where this run patches."""
    from pathlib import Path

    from benchmark import validate_file
    from benchmark.strict_json import read_json

    def field(outer: str, inner: str) -> Any:
        part = doc.get(outer) if isinstance(doc, dict) else None
        return part.get(inner) if isinstance(part, dict) else None

    doc, errors = read_json(path)
    layer, source_model = field("layer_selection", "layer"), field("model", "name")
    if errors or not isinstance(layer, int) or isinstance(layer, bool):  # not true, 21.9, "7"
        why = f"{errors[0].path}: {errors[0].message}" if errors else f"the layer is {layer!r}"
        raise ConfigError(f"--layer_from {path}: not a results file with a chosen layer ({why})")
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
