"""The protocol's shared names: what a run measures and which settings a results file can hold.

Everything here is defined once so the harness (which runs), the schemas (which validate) and
the leaderboard (which displays and compares) cannot drift apart. No torch, no model code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# How the task is specified to the model: by text examples, image examples, an instruction, or
# an instruction and examples together. Order is the paper's, used wherever settings are listed.
SPECS: tuple[str, ...] = ("text_examples", "image_examples", "instruction", "ensemble")


def uses_examples(spec: str) -> bool:
    """Whether a spec shows the model examples (drawn per seed), so that what it measures
    depends on the seed; an instruction is the same string whatever the seed."""
    return spec != "instruction"


# The modality of the query a task is applied to. Spec x query makes a setting; the paper's
# headline is text examples patched onto image queries.
QUERIES: tuple[str, ...] = ("text", "image")

# Every method id the project knows, in the order tables list them. The first four apply to every
# first-token task; the last two belong to the overriding study. Methods are plug-ins in the
# harness, so a results file may also hold ids that are not listed here (see METHOD_ID_PATTERN).
METHODS: tuple[str, ...] = (
    "no_context",
    "majority",
    "prompt",
    "patch",
    "original",
    "system_prompt",
    "instruction_patch",
)

# The methods a first-token task (cross-modal and VQA) runs by default.
FIRST_TOKEN_METHODS: tuple[str, ...] = ("no_context", "majority", "prompt", "patch")

# The overriding study's three rows (the paper's Table 5): the original task alone, the
# overriding instruction in the system prompt, and the overriding task patched as an
# instruction vector. The model answers free-form; a judge (or, for override_text, the known
# labels) says which task the answer addresses.
OVERRIDING_METHODS: tuple[str, ...] = ("original", "system_prompt", "instruction_patch")

# What any method id must look like. A researcher can register a method from their own package,
# so results and submission files accept ids beyond METHODS as long as they match this.
METHOD_ID_PATTERN = r"^[a-z][a-z0-9_]*$"

# Config fields that say where and how a run executed, not what it measured. Device and batch
# size change floating-point rounding only, and `device` defaults to "auto", so it could not
# identify a measurement anyway; output_path and log_samples change no number at all. A preset
# only says how the other fields were filled in; those fields are what was measured.
EXECUTION_KEYS: tuple[str, ...] = (
    "output_path",
    "batch_size",
    "device",
    "log_samples",
    "preset",
    "preset_departures",
)


def measurement_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config without EXECUTION_KEYS: the fields that decide the numbers.

    This is the one rule for "same measurement": the harness's run id hashes it and the
    leaderboard's duplicate detection compares it.
    """
    return {key: value for key, value in config.items() if key not in EXECUTION_KEYS}


def best_layer(curve: Sequence[float]) -> int:
    """The layer a validation curve chooses: the highest accuracy, ties to the lowest layer
    (the one rule the harness chooses by and the results check re-derives)."""
    if not curve:
        raise ValueError("an empty layer curve chooses no layer")
    return max(range(len(curve)), key=lambda layer: (curve[layer], -layer))


# The paper's analyses, by the name `vlm-tv-eval analyze NAME` takes, in the order the README
# lists them; the analysis schema's enum and the Makefile's `analyses` target name the same.
ANALYSES: tuple[str, ...] = (
    "logit-lens",
    "tsne",
    "scaling",
    "noise",
    "overhead",
    "cosine",
    "spec-curves",
)
