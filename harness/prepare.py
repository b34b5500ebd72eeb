"""Before any model loads: every check on a run that needs a registry, the machine or a file,
then the run's items with the checks that need them.

`RunConfig.validate` has checked the fields alone; here the model, method and template names
are looked up, the device and the output folder are tried, the layer is checked against the
model's depth (read from its config, not its weights), and the items are loaded. A run that
passes `prepare` fails later only for what cannot be known before the model loads.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from benchmark import OVERRIDING, VQA, task_family, uses_examples

from .adapters import adapter_class, make_adapter
from .config import RunConfig
from .errors import ConfigError
from .items import TaskData, load_task_data
from .layer_choice import check_layer, layer_from_results
from .loaders import VQA_HINT, from_build, load_vqa_task
from .methods import get_method
from .overriding.data import load_override_set, load_override_text
from .overriding.judge import DEFAULT_JUDGE, Judge
from .store import check_output_path
from .templates import get_template

if TYPE_CHECKING:
    from .adapters.base import Adapter


def prepare(config: RunConfig) -> dict[str, TaskData]:
    """Every check, then the run's items."""
    check_run(config)
    return load_run_data(config)


def check_run(config: RunConfig) -> None:
    """Fail fast, before any data or model loads. Reads at most a model's config file."""
    config.validate()
    methods = [get_method(m) for m in config.methods]
    kind = "overriding" if config.overriding else "first_token"
    wrong = [m.name for m in methods if m.kind != kind]
    if wrong:
        raise ConfigError(
            f"method(s) {', '.join(wrong)} do not apply to {kind.replace('_', '-')} tasks; "
            + (
                "overriding tasks run original, system_prompt, instruction_patch"
                if config.overriding
                else "use no_context, majority, prompt, patch"
            )
        )
    needs_layer = any(m.needs_vector for m in methods)
    target = config.sweeps_override_layer and config.override_layer == "target"
    if config.image_sets and needs_layer and target:
        raise ConfigError(
            "the image overriding sets have no labels to choose a layer on: leave out "
            "--override_layer target (the default patches at the model's main layer, chosen on "
            "the six tasks), or pass --layer N (the authors' layers: idefics2 16, llava-1.5 15, "
            "mantis-fuyu 23) or --layer_from RESULTS_JSON of a run of the same model on the six "
            "tasks"
        )
    if config.overriding and (config.judge or config.judge_base_url):
        with Judge(config.judge or DEFAULT_JUDGE, config.judge_base_url) as judge:
            # Made, so its model, base_url and key are checked; a server of the user's is asked
            # once for its models, so a wrong name stops the run before any generation.
            if config.judge_base_url:
                judge.check_model()
    if any(task_family(t) == VQA for t in config.tasks) and not config.data:
        raise ConfigError(f"the VQA tasks need their items: {VQA_HINT}")
    _check_device(config)
    check_output_path(config.output_path)
    if config.named_template:
        get_template(config.named_template)
    cls, _ = adapter_class(config.model)
    adapter = make_adapter(config.model, **config.model_args)
    adapter.preflight()
    if config.uses_images and not cls.supports_images:
        raise ConfigError(
            f"model {config.model!r} is text-only; --spec image_examples and --query image need "
            "a VLM (idefics2, llava-1.5, mantis-fuyu, smolvlm-256m, or hf-vlm:<repo-or-path>)"
            + (
                "; the VQA tasks query images unless --query text"
                if config.query == "image" and any(task_family(t) == VQA for t in config.tasks)
                else ""
            )
        )
    if config.source_model:
        _check_source_model(config, adapter)
    _check_4bit(config)
    if config.uses_images and not config.data:
        raise ConfigError(
            "image modes need the images: build them with `vlm-tv-build cross-modal --out "
            "DIR` (needs network) and pass --data DIR, or pass --data <hub-dataset-id>"
        )
    if config.layer is not None:
        check_layer(config.layer, config.model, adapter.peek_num_layers())
    if config.layer_from:
        layer_from_results(config.layer_from, config.model, adapter.peek_num_layers())


def _check_source_model(config: RunConfig, target: Adapter) -> None:
    """The source model exists and can give what the run patches; where both configs tell
    their depth, they match (checked before the source model's vectors are extracted: the
    pair check after loading also compares widths)."""
    try:
        source_cls, _ = adapter_class(config.source_model or "")
        source = make_adapter(config.source_model or "", **config.source_model_args)
    except ConfigError as exc:
        raise ConfigError(f"--source_model: {exc}") from None
    depths = source.peek_num_layers(), target.peek_num_layers()
    if None not in depths and depths[0] != depths[1]:
        raise ConfigError(
            f"--source_model {config.source_model} has {depths[0]} layers, {config.model} has "
            f"{depths[1]}: patching 'at the same layer' needs equal depth"
        )
    if config.spec == "image_examples" and not source_cls.supports_images:
        raise ConfigError(
            f"--source_model {config.source_model} is text-only: use --spec text_examples, "
            "instruction or ensemble for LLM->VLM transfer"
        )


def _check_device(config: RunConfig) -> None:
    import torch

    device = config.device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: CUDA is not available here; use --device cpu")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s)"
            )


def _check_4bit(config: RunConfig) -> None:
    """After the adapters have refused model_args they would ignore (the more useful error);
    before any download: transformers would fail on a missing bitsandbytes only once the
    weights are fetched, with a traceback."""
    import torch

    for flag, args in (
        ("--model_args", config.model_args),
        ("--source_model_args", config.source_model_args),
    ):
        if args.get("load_in_4bit") is not True:
            continue
        if not torch.cuda.is_available():
            raise ConfigError(
                f"{flag}: load_in_4bit needs a CUDA GPU (and bitsandbytes); this machine has "
                "none: add load_in_4bit=false to run unquantised (with --preset paper this is "
                "recorded as a departure from the paper's setting)"
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError(
                f"{flag}: load_in_4bit (the paper's 4-bit NF4 setting, which --preset paper "
                "asks for) needs bitsandbytes: pip install -c constraints.txt -e '.[gpu]', or "
                "add load_in_4bit=false to run unquantised"
            )


def load_run_data(config: RunConfig) -> dict[str, TaskData]:
    """Every task of a run with its items (and images, in image modes), and the checks that
    need them: an instruction for instruction specs, enough items for --n_shot demos."""
    methods = [get_method(m) for m in config.methods]
    demo_splits = set()
    if uses_examples(config.spec) and any(m.needs_vector for m in methods):
        demo_splits.add("validation")  # example prompts for the task vectors
    if any(m.needs_demos(config.spec) for m in methods):
        demo_splits.add("test")
    data: dict[str, TaskData] = {}
    for name in config.tasks:
        td = _task_data(name, config)
        if td.id in data:
            raise ConfigError(
                f"two tasks are named {td.id} ({data[td.id].source} and {td.source}): rename "
                "one of the files, or give the task once"
            )
        data[td.id] = td
        if config.overriding:  # their own items, prompts and demos
            continue
        if config.spec in ("instruction", "ensemble") and not td.instruction:
            raise ConfigError(f"task {td.id} has no instruction; pass --instruction")
        for split, records in td.splits.items():
            # Demos come from the split minus the query.
            if split in demo_splits and config.n_shot > len(records) - 1:
                raise ConfigError(
                    f"--n_shot {config.n_shot} is larger than task {td.id}'s {split} split "
                    f"allows ({len(records)} items, so at most {len(records) - 1} demos besides "
                    "the query)"
                )
    return data


def _task_data(name: str, config: RunConfig) -> TaskData:
    """One task's items, from where its family keeps them."""
    family = task_family(name)
    if family == OVERRIDING:
        if name == "override_text":
            return load_override_text()
        return load_override_set(name, config.data or "")
    if family == VQA:  # items, captions and images from one built VQA dataset
        return load_vqa_task(name, config.data, config.instruction)
    td = load_task_data(name, config.instruction)
    if config.data:  # the build's items, and images if used
        td = from_build(td, config.data, need_images=config.uses_images)
    return td
