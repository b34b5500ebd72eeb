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

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("tasks", "seeds", "methods"):
            out[key] = list(out[key])
        return out

    def identity(self) -> dict[str, Any]:
        """What changes the numbers; its hash (with the items) names the run folder."""
        return measurement_config(self.as_dict())

    @property
    def uses_images(self) -> bool:
        return self.spec == "image_examples" or self.query == "image"

    @property
    def chat(self) -> bool:
        return self.template == "model"

    @property
    def named_template(self) -> str | None:
        """A template name to use instead of the adapter's default (None: the default)."""
        return None if self.template in (None, "model") else self.template

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
        if self.n_shot < 1:
            raise ConfigError("--n_shot must be at least 1")
        if self.limit is not None and self.limit < 2:
            raise ConfigError("--limit must be at least 2")
        if self.batch_size < 1:
            raise ConfigError("--batch_size must be at least 1")
        if not self.tasks:
            raise ConfigError("--tasks is empty")
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
        if self.uses_images and not self.data:
            raise ConfigError(
                "image modes need the images: build them with `vlm-tv-build cross-modal --out "
                "DIR` (needs network) and pass --data DIR, or pass --data <hub-dataset-id>"
            )
        if self.layer is not None:
            n_layers = adapter.peek_num_layers()
            check_layer(self.layer, self.model, n_layers)


def check_layer(layer: int, model: str, n_layers: int | None) -> None:
    if layer < 0 or (n_layers is not None and layer >= n_layers):
        raise ConfigError(
            f"--layer {layer} out of range: {model} has layers 0..{(n_layers or 1) - 1}"
        )
