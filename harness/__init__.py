"""The evaluation harness: adapters, task vectors, patching, methods, scoring and the CLI.

A run flows one way: `cli` parses a `config.RunConfig` and validates it, `data` loads the items,
`store` names the run folder, and `evaluator.evaluate` loads an adapter, makes task vectors
(`vectors`), sweeps layers on validation (`engine`), chooses a layer and runs each registered
method (`methods`) with an `context.EvalContext`, then `results` aggregates and writes. See the
README's Layout section for a table of the modules.
"""
