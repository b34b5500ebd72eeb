"""A results file checked against itself, against the rows its run logged, and against how its
layer was chosen; a submission against the results it recorded the hash of.

A schema says each number is in range; it cannot say that `acc` is the mean of `per_seed`, that
a rate is a whole number of hits out of `n`, or that the layer is the one the sweep's curve
picks. Those checks live in the submodules, which callers import directly:

- `results`: `check_results_consistency` and `check_submission`, the entry points;
- `rows`: a results file against its logged per-sample rows (`samples_*.jsonl`,
  `generations_*.jsonl`), re-scored with the harness's rules;
- `layers`: the layer against the config, the sweep's curves and the model's depth;
- `numbers`: what every check shares: what counts as a number or a count, the tolerances, and
  the "k hits out of n" rule.
"""
