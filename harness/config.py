"""What a run is asked to do (`RunConfig`): plain data, and the checks its fields allow alone.

The config is immutable: the run id is a hash of its measurement fields
(`benchmark.measurement_config`), so nothing may change it after the run folder is named.
Checks that need a registry (models, methods, templates, the judge), the machine (CUDA) or the
items run in `prepare.py`, which calls `validate` first. Importing this module imports no torch.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark import (
    CROSS_MODAL_TASKS,
    FIRST_TOKEN_METHODS,
    OVERRIDING,
    QUERIES,
    SPECS,
    VQA,
    get_task,
    measurement_config,
    task_family,
    uses_examples,
)
from benchmark.scoring import SCORES

from .checkpoints import SCHEMES
from .errors import ConfigError
from .items import DEMO_DRAWS, PER_QUERY
from .overriding.redact import public_url
from .templates import CHAT_FORMATS

# Fields left out of the run id: the folder holds generations, which any judge may score later.
JUDGE_KEYS = ("judge", "judge_base_url")
# Where an overriding run patches when neither --layer nor --layer_from says: "main", the
# model's main layer (the six tasks' validation sweep, as the main job chooses it; the authors
# patch at that layer), or "target", the layer best at the overriding target itself on
# override_text's validation split (what every overriding run did before the field existed).
OVERRIDE_LAYERS = ("main", "target")
# Fields added after runs were published, at the value every earlier run had. An overriding run
# made before `override_layer` existed chose its layer on the target, so "target" keeps those
# runs' ids and the new default, "main", gets new ones.
ADDED_DEFAULTS: dict[str, Any] = {
    "demo_draw": PER_QUERY,
    "score": "first_token",
    "override_layer": "target",
}
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class RunConfig:
    model: str = "smollm2-135m"
    model_args: dict[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] = CROSS_MODAL_TASKS
    spec: str = "text_examples"
    query: str = "text"
    n_shot: int = 5
    seeds: tuple[int, ...] = (0, 1, 2)
    demo_draw: str = PER_QUERY  # items.DEMO_DRAWS: ours, or the paper code's stream
    methods: tuple[str, ...] = FIRST_TOKEN_METHODS
    # benchmark.scoring.SCORES: the first token (the paper's), or also the whole answer
    score: str = "first_token"
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
    override_layer: str = "main"  # OVERRIDE_LAYERS
    judge: str | None = None
    judge_base_url: str | None = None
    # --preset: which named setting filled the fields above, and where the command line departed.
    preset: str | None = None
    preset_departures: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The config as written to config.json and results: the judge URL without its
        credentials (a password or a key in its query would otherwise reach every file)."""
        out = asdict(self)
        for key in ("tasks", "seeds", "methods", "preset_departures"):
            out[key] = list(out[key])
        if out.get("judge_base_url"):
            out["judge_base_url"] = public_url(out["judge_base_url"])
        return out

    def identity(self) -> dict[str, Any]:
        """What changes the numbers; its hash (with the items) names the run folder. The judge
        is left out: the folder holds generations, which any judge may score later. A field
        added after runs were published counts only away from its default, so a run made
        before it existed keeps its id (and its folder resumes). `override_layer` counts only
        where it decides the layer (an overriding run given neither --layer nor --layer_from),
        so no other run's id moves."""
        out = measurement_config(self.as_dict())
        for key in JUDGE_KEYS:
            out.pop(key, None)
        if not self.sweeps_override_layer:
            out.pop("override_layer", None)
        for key, default in ADDED_DEFAULTS.items():
            if out.get(key) == default:
                del out[key]
        return out

    @property
    def overriding(self) -> bool:
        """An overriding run (free-form answers, judged): every task is an overriding task."""
        return bool(self.tasks) and all(task_family(t) == OVERRIDING for t in self.tasks)

    @property
    def sweeps_override_layer(self) -> bool:
        """An overriding run that chooses its own layer (`override_layer` says on what)."""
        return self.overriding and self.layer is None and not self.layer_from

    @property
    def image_sets(self) -> list[str]:
        """The image overriding sets among the tasks: judged, with no labels to choose a layer."""
        return [
            t for t in self.tasks if task_family(t) == OVERRIDING and not get_task(t).has_labels
        ]

    @property
    def uses_images(self) -> bool:
        return self.spec == "image_examples" or self.query == "image" or bool(self.image_sets)

    @property
    def chat(self) -> str | bool:
        """The chat format for the adapter: "model" (each example its own turn, the paper's
        Table 10), "model_one_turn" (the whole prompt in one user turn), or False. The two are
        different --template values, so their run ids differ."""
        return self.template if self.template in CHAT_FORMATS else False

    @property
    def named_template(self) -> str | None:
        """A template name to use instead of the adapter's default (None: the default, which a
        chat format's one-turn variant wraps; the per-example-turn format uses none)."""
        return None if self.template is None or self.template in CHAT_FORMATS else self.template

    def validate(self) -> None:
        """The checks the fields allow alone, each a one-line ConfigError naming the fix."""
        if self.tasks and not self.overriding and (self.judge or self.judge_base_url):
            named = f"--judge {self.judge}" if self.judge else "--judge_base_url"
            raise ConfigError(
                f"{named}: nothing in this run is judged (only the overriding tasks' answers "
                "are); leave it out, or judge an overriding run (--tasks override_text)"
            )
        if self.spec not in SPECS:
            raise ConfigError(f"unknown spec {self.spec!r}; use one of {', '.join(SPECS)}")
        if self.query not in QUERIES:
            raise ConfigError(f"unknown query {self.query!r}; use one of {', '.join(QUERIES)}")
        if not self.methods:
            raise ConfigError("--methods is empty")
        if not self.seeds:
            raise ConfigError("--seeds needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(
                f"--seeds {','.join(map(str, self.seeds))} repeats a seed; a repeated seed would "
                "count the same draw twice in the mean and std"
            )
        if self.n_shot < 1:
            raise ConfigError("--n_shot must be at least 1")
        if self.score not in SCORES:
            raise ConfigError(f"--score {self.score!r}: use one of {', '.join(SCORES)}")
        if self.demo_draw not in DEMO_DRAWS:
            raise ConfigError(f"--demo_draw {self.demo_draw!r}: use one of {', '.join(DEMO_DRAWS)}")
        if self.limit is not None and self.limit < 2:
            raise ConfigError("--limit must be at least 2")
        if self.batch_size < 1:
            raise ConfigError("--batch_size must be at least 1")
        if not self.tasks:
            raise ConfigError("--tasks is empty")
        if self.max_new_tokens < 1:
            raise ConfigError("--max_new_tokens must be at least 1")
        if self.layer_from and self.layer is not None:
            raise ConfigError("give --layer or --layer_from, not both")
        self._validate_override_layer()
        self._validate_models()
        self._validate_task_mix()

    def _validate_override_layer(self) -> None:
        """--override_layer is one of OVERRIDE_LAYERS; away from its default it needs an
        overriding run that chooses its layer (elsewhere it would be recorded yet decide
        nothing)."""
        if self.override_layer not in OVERRIDE_LAYERS:
            raise ConfigError(
                f"--override_layer {self.override_layer!r}: use one of {', '.join(OVERRIDE_LAYERS)}"
            )
        if self.override_layer == "main":
            return
        if not self.overriding:
            raise ConfigError("--override_layer applies to the overriding tasks only")
        if not self.sweeps_override_layer:
            raise ConfigError(
                f"--override_layer {self.override_layer} chooses the layer on a sweep, but "
                "--layer or --layer_from (or --preset paper's layer) gives it: pass one of them"
            )

    def _validate_models(self) -> None:
        """dtype and device spellings, and local checkpoint folders that do not exist."""
        for flag, args in (
            ("--model_args", self.model_args),
            ("--source_model_args", self.source_model_args),
        ):
            if args.get("dtype") not in (None, *DTYPES):
                raise ConfigError(
                    f"{flag}: dtype {args['dtype']!r} is not one of {', '.join(DTYPES)}"
                )
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device):
            raise ConfigError(f"--device {self.device!r}: use auto, cpu, cuda, cuda:N or mps")
        for model in (self.model, self.source_model):
            scheme, colon, target = (model or "").partition(":")
            if colon and SCHEMES.get(scheme, ("", ""))[1] == "pretrained":  # a repo or folder
                try:  # a name over the file system's limit raises instead of answering False
                    missing = not Path(target).expanduser().exists()
                except OSError as exc:
                    raise ConfigError(
                        f"--model {model}: not a usable path ({exc.strerror})"
                    ) from None
                if target.startswith(("/", "./", "../", "~")) and missing:
                    raise ConfigError(f"--model {model}: the folder {target} does not exist")

    def _validate_task_mix(self) -> None:
        """Which tasks may share a run, and the spec and data some tasks need."""
        families = {task_family(t) for t in self.tasks}
        if OVERRIDING in families and len(families) > 1:
            raise ConfigError(
                "overriding tasks (free-form, judged) and first-token tasks cannot share a run; "
                "run them separately"
            )
        if self.image_sets and uses_examples(self.spec):
            raise ConfigError(
                f"{', '.join(self.image_sets)}: the image and question 1 set the task up, so the "
                "spec is the overriding instruction: use --spec instruction (the default for "
                "these tasks)"
            )
        vqa = [t for t in self.tasks if task_family(t) == VQA]
        if vqa and len(vqa) != len(self.tasks):
            others = ", ".join(t for t in self.tasks if t not in vqa)
            raise ConfigError(
                f"the VQA tasks ({', '.join(vqa)}) read a built VQA dataset and cannot share a "
                f"run with {others}: run them separately"
            )
