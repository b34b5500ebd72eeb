"""The method registry: how a model is asked to do a task on the test split, one function each.

A method is `fn(ctx, task, seed, layer) -> Scored`: it builds prompts for the test items,
runs the model through `engine`, and scores what came out with `ctx.score_tokens` or
`ctx.score_strings`. `@register_method` declares what the method needs, so the evaluator can
plan the run (task vectors and a layer; demos from the test split) and knows whether the
number depends on the seed under a given spec.

The registry fills itself: the first lookup imports the modules of the built-in methods
(`BUILTIN_MODULES`) and every module the `vlm_tv_eval.methods` entry-point group names, so
`ls methods`, `get_method` and the run's checks see the same complete set whatever was
imported before. Another package adds a method by decorating a function in a module it names
in that group; nothing else changes.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from benchmark import METHOD_ID_PATTERN

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..context import EvalContext, Scored

ENTRY_POINT_GROUP = "vlm_tv_eval.methods"
METHOD_KINDS = ("first_token", "overriding")
# The modules that register the built-in methods, imported on the first lookup.
BUILTIN_MODULES = ("harness.methods.first_token", "harness.overriding.methods")

MethodFn = Callable[["EvalContext", str, int, "int | None"], "Scored"]


@dataclass(frozen=True)
class Method:
    name: str
    fn: MethodFn
    kind: str  # "first_token" (scored by the first token) or "overriding" (free-form answers)
    needs_vector: bool  # patches a task vector, so the run extracts vectors and picks a layer
    needs_demos: Callable[[str], bool]  # spec -> draws demos from the test split
    seeded: Callable[[str], bool]  # spec -> the result depends on the seed
    context: Callable[[str, int], str]  # (spec, n_shot) -> what the model saw, for results

    def __call__(self, ctx: EvalContext, task: str, seed: int, layer: int | None) -> Scored:
        return self.fn(ctx, task, seed, layer)


_METHODS: dict[str, Method] = {}


def _as_rule(value: bool | Callable[[str], bool]) -> Callable[[str], bool]:
    return value if callable(value) else (lambda _spec: bool(value))


def register_method(
    name: str,
    *,
    kind: str = "first_token",
    needs_vector: bool = False,
    needs_demos: bool | Callable[[str], bool] = False,
    seeded: bool | Callable[[str], bool] = True,
    context: str | Callable[[str, int], str] = "",
) -> Callable[[MethodFn], MethodFn]:
    """Decorator: make `fn` available as `--methods <name>`."""
    if not re.fullmatch(METHOD_ID_PATTERN, name):
        raise ValueError(f"method id {name!r} must match {METHOD_ID_PATTERN}")
    if kind not in METHOD_KINDS:
        raise ValueError(f"method kind {kind!r}: use one of {', '.join(METHOD_KINDS)}")

    def decorate(fn: MethodFn) -> MethodFn:
        describe = context if callable(context) else (lambda _spec, _n: context)
        _METHODS[name] = Method(
            name, fn, kind, needs_vector, _as_rule(needs_demos), _as_rule(seeded), describe
        )
        return fn

    return decorate


_loaded = False


def _load_all() -> None:
    """Import the built-in methods' modules and every entry point's, once: importing a module
    registers its methods. A plug-in that fails to import is named, with the package to fix."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001 - whatever the plug-in's import raises
            raise ConfigError(
                f"the method plug-in {ep.name!r} ({ep.value}, entry point group "
                f"{ENTRY_POINT_GROUP}) cannot be imported: {type(exc).__name__}: {exc}; fix or "
                "uninstall the package that declares it"
            ) from None


def get_method(name: str) -> Method:
    _load_all()
    if name not in _METHODS:
        raise ConfigError(f"unknown method {name!r}; use some of {', '.join(method_names())}")
    return _METHODS[name]


def method_names() -> list[str]:
    """Every registered method: the built-ins, then the plug-ins, in registration order."""
    _load_all()
    return list(_METHODS)
