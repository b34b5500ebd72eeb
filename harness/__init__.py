"""The evaluation harness: adapters, task vectors, patching, methods, scoring and the CLI.

A run flows one way, down the layers the README's Layout table lists: `arguments` turns the
command line into a `config.RunConfig` (plain data); `prepare` checks it against the
registries and loads the items (`items`, `loaders`, `overriding.data`); `store` names the run
folder; `evaluator.evaluate` loads an adapter (`adapters`), makes task vectors (`vectors`),
sweeps layers on validation (`engine`), chooses a layer (`layer_choice`), runs each registered
method (`methods`) with an `context.EvalContext`, and `results` aggregates and writes.
"""
