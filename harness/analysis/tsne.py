"""`tsne` (the paper's Figure 2): do task vectors cluster by task where the context
they are read from does not?

For every (task, spec), `--points` prompts (default 30) are drawn from the test split (seeded by
the first seed). Each prompt gives one point in each of three sets, all read in one forward
pass and all through the model's final norm (token by token, before any averaging), as the
paper compares them:

- `task_vectors`: the output of the session's layer at the prompt's task token.
- `context_embeddings`: the output of the same layer averaged over the tokens of the prompt's
  example inputs (the paper's "input tokens of each example"; image tokens for image examples).
  Labels and delimiters are left out: they are the task, and would leak it into the "context".
- `input_embeddings`: the same tokens as they enter the first decoder layer (token embeddings,
  or the projected image features of a VLM), which no attention has mixed yet: the paper's
  reading of raw inputs clustering by modality, kept because at a middle layer an input token
  has already seen the labels of the examples before it.

Examples specs: one N-shot prompt (N = --n_shot) per point, the task token being the delimiter
of the last example's answer marker, as for a run's vectors. The instruction spec is the vector
`--spec instruction` patches: the raw instruction read at its last token, one point per task (it
has no examples to draw, so every seed gives the same point), in the task-vector set only: its
text is the task, so it has no context apart from the task. `--instruction_points query` keeps
the earlier variant (instruction + one test query, read at the query's last token, its context
the query's tokens), which answers a different question: how a prompted query sits, not where
the patched vector does.

Every seed of the run draws its own prompts; silhouettes are the mean over seeds (each seed's
in `silhouette_per_seed`), the plot shows the first seed. The cross-spec claim gets a number
beside the picture: the nearest-centroid accuracy from each spec to each other (does an
instruction vector lie nearest its own task's centroid of example vectors?), with a paired
bootstrap interval over seeds and points.

Each set gets scikit-learn's t-SNE (perplexity min(30, n-1), PCA init, random_state = seed),
and a number the paper only shows as a picture: silhouette scores on the original d-dimensional
normed vectors, by task, by spec, and by input source (countries/animals/foods: two tasks share
each), Euclidean (what t-SNE sees, and blind to the direction all residual states share, which
inflates raw cosines) with cosine beside it. Near 1: tight separate clusters; near 0: none.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from benchmark import TASKS

from ..adapters.base import Adapter
from ..templates import Prompt
from .common import Session, normed

SETS = ("input_embeddings", "context_embeddings", "task_vectors")
SPECS = ["text_examples", "instruction", "image_examples"]


# -- points ---------------------------------------------------------------------------------------
def _input_spans(
    text: str, inputs: Sequence[str], before: str, after: str
) -> list[tuple[int, int]]:
    """Character spans of `inputs` in `text`, in order, each found as `before + x + after` (the
    template's own text around an input), so an input that also occurs elsewhere (in an
    instruction, a label, a chat header) is not mistaken for the example."""
    spans, cursor = [], 0
    for x in inputs:
        at = text.find(before + x + after, cursor)
        if at < 0:
            raise ValueError(f"input {x!r} not found in the prompt where the template puts it")
        start = at + len(before)
        spans.append((start, start + len(x)))
        cursor = start + len(x)
    return spans


def _prompts(session: Session, task: str, spec: str, n_points: int, seed: int) -> list[dict]:
    """`n_points` prompts for one (task, spec), each with the character spans of its inputs."""
    ctx = session.context(spec)
    adapter = session.adapter
    items = ctx.items(task, "test")
    rng = random.Random(f"tsne:{seed}:{task}:{spec}")
    template = adapter.template
    out = []
    if spec == "instruction":
        instruction = session.data[task].instruction
        queries = rng.sample(items, min(n_points, len(items)))
        queries += rng.choices(items, k=n_points - len(queries))
        before, after = template.query.split("{x}", 1)
        for record in queries:
            prompt = adapter.query_prompt(record["input"], instruction=instruction)
            text = adapter.split_input(record["input"])[0]
            # The query ends the prompt (a chat format may add a tail): search from the end.
            start = prompt.text.rindex(before + text + after) + len(before)
            out.append({"prompt": prompt, "spans": [(start, start + len(text))]})
        return out
    n = session.config.n_shot
    if len(items) < n:
        raise ValueError(f"task {task}: {len(items)} test items, fewer than N={n}")
    before, rest = template.example.split("{x}", 1)
    after = rest.split("{y}", 1)[0]
    for _ in range(n_points):
        chosen = rng.sample(items, n)
        examples = [(ctx.spec_input(r), r["output"]) for r in chosen]
        prompt = adapter.example_prompt(examples)
        texts = [adapter.split_input(x)[0] for x, _ in examples]
        out.append({"prompt": prompt, "spans": _input_spans(prompt.text, texts, before, after)})
    return out


def _common_prefix(a: torch.Tensor, b: torch.Tensor) -> int:
    n = min(len(a), len(b))
    differ = (a[:n] != b[:n]).nonzero()
    return int(differ[0]) if len(differ) else n


def _columns(adapter: Adapter, prompt: Prompt, spans: list[tuple[int, int]]) -> list[int]:
    """Token columns (unpadded) of the characters in `spans`, found by tokenizing the prompt's
    text up to each span's ends and keeping the part that agrees with the whole prompt's tokens:
    no offsets are needed, so it works the same when a VLM processor expands an image
    placeholder into image tokens. A token that straddles a span's start counts as the input's."""
    placeholder = getattr(adapter, "image_placeholder", None)
    full = adapter.encode([prompt]).input_ids[0].cpu()

    def tokens_before(char: int) -> int:
        head = prompt.text[:char]
        n_images = head.count(placeholder) if placeholder else 0
        ids = adapter.encode([Prompt(head, list(prompt.images[:n_images]))]).input_ids[0].cpu()
        return _common_prefix(ids, full)

    cols: list[int] = []
    for start, end in spans:
        first, last = tokens_before(start), tokens_before(end)
        cols.extend(range(first, max(last, first + 1)))
    return cols


@torch.inference_mode()
def _read(session: Session, prompts: list[dict], layer: int) -> dict[str, torch.Tensor]:
    """One forward per batch; per prompt: the normed input and layer states averaged over its
    input columns, and the normed layer state at its task token. Each set: [n_prompts, d]."""
    adapter = session.adapter
    layers = adapter.layers
    base = adapter.body()
    store: dict[str, torch.Tensor] = {}

    def grab_input(_module: Any, args: tuple, kwargs: dict) -> None:
        store["input"] = args[0] if args else kwargs["hidden_states"]

    def grab_output(_module: Any, _args: Any, output: Any) -> None:
        store["layer"] = output if isinstance(output, torch.Tensor) else output[0]

    out = {name: torch.empty(len(prompts), adapter.hidden_size) for name in SETS}
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]["prompt"].text))
    size = max(1, session.config.batch_size)
    handles = [
        layers[0].register_forward_pre_hook(grab_input, with_kwargs=True),
        layers[layer].register_forward_hook(grab_output),
    ]
    try:
        for at in range(0, len(order), size):
            idx = order[at : at + size]
            batch = adapter.encode([prompts[i]["prompt"] for i in idx])
            base(**batch.model_inputs)
            pads = (batch.model_inputs["attention_mask"] == 0).sum(-1).tolist()
            inputs, states = normed(adapter, store["input"]), normed(adapter, store["layer"])
            for b, i in enumerate(idx):
                cols = [pads[b] + c for c in prompts[i]["columns"]]
                out["input_embeddings"][i] = inputs[b, cols].mean(0)
                out["context_embeddings"][i] = states[b, cols].mean(0)
                out["task_vectors"][i] = states[b, int(batch.task_index[b])]
    finally:
        for handle in handles:
            handle.remove()
    return out


# -- numbers --------------------------------------------------------------------------------------
def silhouettes(
    points: np.ndarray, labels: dict[str, Sequence[str]], metric: str = "euclidean"
) -> dict[str, float | None]:
    """Silhouette score of `points` under each labelling (None where it is undefined: fewer
    than two labels, or every point its own label). Fed any [n, d] array, so it can be checked
    on made-up clusters."""
    from sklearn.metrics import silhouette_score

    out: dict[str, float | None] = {}
    for name, labelling in labels.items():
        k = len(set(labelling))
        ok = 2 <= k <= len(labelling) - 1
        out[name] = float(silhouette_score(points, list(labelling), metric=metric)) if ok else None
    return out


def within(
    points: np.ndarray, groups: Sequence[str], labels: Sequence[str], metric: str = "euclidean"
) -> float | None:
    """Mean over `groups` of the silhouette by `labels` inside each group: by task within each
    spec, whether tasks separate at all, apart from whether specs of one task meet (the
    paper's cross-spec claim, which `by_task` over all points mixes in)."""
    scores = []
    for group in sorted(set(groups)):
        rows = [i for i, g in enumerate(groups) if g == group]
        got = silhouettes(points[rows], {"x": [labels[i] for i in rows]}, metric)["x"]
        if got is not None:
            scores.append(got)
    return float(np.mean(scores)) if scores else None


def embed_2d(points: np.ndarray, seed: int) -> np.ndarray:
    """scikit-learn's t-SNE to 2-D, perplexity min(30, n-1) (it must stay below n).

    On one OpenMP thread: for a few hundred points threads save little, and on a busy machine
    their spin-waiting made it 4x slower (62 s against 14 s for 540 points on 2 shared cores)."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n = len(points)
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {n}; raise --points")
    tsne = TSNE(n_components=2, perplexity=min(30.0, n - 1.0), init="pca", random_state=seed)
    with threadpool_limits(limits=1, user_api="openmp"):
        return tsne.fit_transform(points)


def _source(task: str) -> str:
    return TASKS[task].source if task in TASKS else task


def nearest_centroid(
    points: np.ndarray,
    tasks: Sequence[str],
    specs: Sequence[str],
    source: str,
    target: str,
    metric: str = "euclidean",
) -> list[float]:
    """For each point of spec `source`: 1.0 when the nearest centroid of spec `target`'s
    per-task points is its own task's, else 0.0 (the paper's cross-spec claim as a number:
    an instruction vector lands among its own task's example vectors; chance is 1 / tasks).
    Fed any [n, d] array, so it can be checked on made-up clusters."""
    rows = [i for i, s in enumerate(specs) if s == source]
    names = sorted({tasks[i] for i, s in enumerate(specs) if s == target})
    centroids = np.stack(
        [
            points[[i for i, s in enumerate(specs) if s == target and tasks[i] == t]].mean(0)
            for t in names
        ]
    )
    x = points[rows]
    if metric == "cosine":
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        cunit = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        distance = -unit @ cunit.T
    else:
        distance = ((x[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
    nearest = distance.argmin(1)
    return [float(names[j] == tasks[i]) for i, j in zip(rows, nearest, strict=True)]


def _instruction_vectors(session: Session, layer: int) -> dict[str, torch.Tensor]:
    """Each task's instruction vector at `layer` through the final norm: the very vector
    `--spec instruction` patches (one per task: the instruction has no examples to draw)."""
    seed = session.config.seeds[0]
    return {
        t: normed(session.adapter, session.vector(t, seed, "instruction")[layer])
        for t in session.tasks
    }


def _seed_points(
    session: Session, seed: int, specs: list[str], layer: int, mode: str, n_points: int
) -> dict[str, tuple[np.ndarray, list[tuple[str, str]]]]:
    """set -> (points [n, d], (task, spec) of each) for one seed. Under `mode` "vector" the
    instruction is its patched vector, a point in the task-vector set only (its text is the
    task itself, so it has no context apart from the task); under "query" it is the earlier
    variant, instruction + one test query read at the query's last token."""
    prompts, labels = [], []
    read_specs = [s for s in specs if s != "instruction" or mode == "query"]
    for task in session.progress(f"t-SNE points, seed {seed}"):
        for spec in read_specs:
            for p in _prompts(session, task, spec, n_points, seed):
                p["columns"] = _columns(session.adapter, p["prompt"], p["spans"])
                prompts.append(p)
                labels.append((task, spec))
    vectors = _read(session, prompts, layer)
    out = {name: (vectors[name].double().numpy(), list(labels)) for name in SETS}
    if "instruction" in specs and mode == "vector":
        inst = _instruction_vectors(session, layer)
        data, names = out["task_vectors"]
        extra = np.stack([inst[t].double().numpy() for t in session.tasks])
        out["task_vectors"] = (
            np.concatenate([data, extra]),
            names + [(t, "instruction") for t in session.tasks],
        )
    out["_tokens"] = (np.array([len(p["columns"]) for p in prompts], dtype=float), [])
    return out


def _scores(data: np.ndarray, labels: list[tuple[str, str]]) -> dict[str, Any]:
    by = {
        "by_task": [t for t, _ in labels],
        "by_spec": [s for _, s in labels],
        "by_source": [_source(t) for t, _ in labels],
    }
    return {
        **silhouettes(data, by),
        "by_task_within_spec": within(data, by["by_spec"], by["by_task"]),
        "metric": "euclidean",
        "cosine": {
            **silhouettes(data, by, metric="cosine"),
            "by_task_within_spec": within(data, by["by_spec"], by["by_task"], "cosine"),
        },
    }


def _mean_scores(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Silhouettes averaged over seeds (None where any seed's is undefined)."""

    def mean(values: list[Any]) -> float | None:
        return None if any(v is None for v in values) else float(np.mean(values))

    out: dict[str, Any] = {"metric": "euclidean"}
    for key, value in per_seed[0].items():
        if isinstance(value, dict):
            out[key] = {k: mean([s[key][k] for s in per_seed]) for k in value}
        elif key != "metric":
            out[key] = mean([s[key] for s in per_seed])
    return out


def _cross_spec(
    per_seed: list[tuple[np.ndarray, list[tuple[str, str]]]], specs: list[str]
) -> dict[str, Any]:
    """Nearest-centroid accuracy between every ordered pair of specs, over all seeds, with a
    paired bootstrap interval (seeds, then points)."""
    from ..intervals import LEVEL, REPLICATES, bootstrap_intervals

    out: dict[str, Any] = {}
    for source in specs:
        for target in specs:
            if source == target:
                continue
            name = f"{source} -> {target}"
            hits = {
                metric: np.array(
                    [
                        nearest_centroid(
                            data, [t for t, _ in lab], [s for _, s in lab], source, target, metric
                        )
                        for data, lab in per_seed
                    ]
                )
                for metric in ("euclidean", "cosine")
            }
            interval = bootstrap_intervals({"all": {"acc": hits["euclidean"]}})
            out[name] = {
                "acc": float(hits["euclidean"].mean()),
                "interval": interval["per_task"]["all"]["acc"],
                "per_seed": [float(row.mean()) for row in hits["euclidean"]],
                "cosine_acc": float(hits["cosine"].mean()),
                "n": int(hits["euclidean"].size),
            }
    tasks = {t for t, _ in per_seed[0][1]}
    return {
        "rule": f"share of the source spec's points whose nearest target-spec task centroid "
        f"(euclidean on the normed vectors; cosine beside it) is their own task's; "
        f"{int(LEVEL * 100)}% percentile bootstrap, {REPLICATES} replicates over seeds then points",
        "chance": 1 / len(tasks),
        "pairs": out,
    }


def run(session: Session) -> tuple[dict[str, Any], Any, str]:
    n_points = int(session.options.get("points") or 30)
    mode = session.options.get("instruction_points") or "vector"
    layer = session.layer()
    seeds = list(session.config.seeds)
    specs = session.specs(SPECS)
    per_seed = [_seed_points(session, s, specs, layer["layer"], mode, n_points) for s in seeds]
    points: dict[str, list[dict[str, Any]]] = {}
    silhouette: dict[str, dict[str, Any]] = {}
    silhouette_per_seed: dict[str, list[dict[str, Any]]] = {}
    for name in SETS:
        scores = [_scores(*got[name]) for got in per_seed]
        silhouette_per_seed[name] = scores
        silhouette[name] = _mean_scores(scores)
        data, labels = per_seed[0][name]  # the plot: the first seed's points
        xy = embed_2d(data, seeds[0])
        points[name] = [
            {"x": float(x), "y": float(y), "task": t, "spec": s}
            for (x, y), (t, s) in zip(xy.tolist(), labels, strict=True)
        ]
    task_specs = sorted({s for _, s in per_seed[0]["task_vectors"][1]}, key=specs.index)
    result = {
        "layer": layer,
        "specs": specs,
        "instruction_points": mode,
        "points_per_group": n_points,
        "n_points": len(points["task_vectors"]),
        "seed": seeds[0],
        "seeds": seeds,
        "definitions": {
            "task_vectors": "layer output at the task token, through the final norm",
            "context_embeddings": "layer output averaged over the example inputs' tokens, each "
            "through the final norm",
            "input_embeddings": "first decoder layer's input averaged over the same tokens, "
            "each through the final norm",
            "instruction_points": (
                "the instruction vector --spec instruction patches (one per task, in the task "
                "vector set only)"
                if mode == "vector"
                else "instruction + one test query, read at its last token (context: the query)"
            ),
            "silhouette": "mean over the seeds (each seed draws its own prompts); per seed in "
            "silhouette_per_seed; the plot shows the first seed",
        },
        "tokens_per_context": float(np.mean(per_seed[0]["_tokens"][0])),
        "silhouette": silhouette,
        "silhouette_per_seed": silhouette_per_seed,
        "nearest_centroid": _cross_spec([got["task_vectors"] for got in per_seed], task_specs),
        "points": points,
    }
    return result, lambda path: _figure(result, path), _table(result)


def _table(result: dict[str, Any]) -> str:
    sil = result["silhouette"]
    lines = [
        f"t-SNE at layer {result['layer']['layer']}: {result['n_points']} points, "
        f"{result['points_per_group']} per (task, spec); specs {', '.join(result['specs'])}",
        "silhouette on the normed vectors (euclidean; cosine in the JSON), -1..1, higher = "
        "tighter, better separated clusters",
        f"{'set':20} {'by task':>8} {'by spec':>8} {'by source':>10} {'task in spec':>13}",
    ]

    def cell(v: float | None, width: int) -> str:
        return f"{v:{width}.2f}" if v is not None else f"{'-':>{width}}"

    for name in SETS:
        s = sil[name]
        lines.append(
            f"{name:20} {cell(s['by_task'], 8)} {cell(s['by_spec'], 8)} "
            f"{cell(s['by_source'], 10)} {cell(s['by_task_within_spec'], 13)}"
        )
    lines.append(
        "source: the input pool (two tasks share each); task in spec: by task inside "
        "each spec, averaged"
    )
    cross = result["nearest_centroid"]
    for pair, got in cross["pairs"].items():
        low, high = got["interval"]
        lines.append(
            f"nearest centroid {pair}: {got['acc']:.2f} [{low:.2f}, {high:.2f}] "
            f"of {got['n']} points (chance {cross['chance']:.2f})"
        )
    lines.append(
        f"silhouettes: mean over seeds {', '.join(map(str, result['seeds']))}; "
        f"instruction points: {result['definitions']['instruction_points']}"
    )
    lines.append("paper: task vectors cluster by task, context embeddings do not")
    return "\n".join(lines)


def _figure(result: dict[str, Any], path: Any) -> None:
    """plots.scatter_figure formats every silhouette as a number: undefined ones become NaN."""
    from .plots import scatter_figure

    def number(v: Any) -> Any:
        return float("nan") if v is None else v

    shown = dict(result)
    shown["silhouette"] = {
        name: {k: number(v) for k, v in s.items()} for name, s in result["silhouette"].items()
    }
    scatter_figure(shown, path)
