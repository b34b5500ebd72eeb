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
of the last example's answer marker, as for a run's vectors. The instruction spec has a single
prompt (the raw instruction), which would give 30 copies of one point; here each point is the
instruction followed by one test query (`{instruction}\\n\\nQ: {x}\\nA:`, the prompt baseline of
the instruction spec), read at its last token: like the examples prompt, the instruction plays
the demonstrations and the query the last input. Its context is that query's tokens.

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


def run(session: Session) -> tuple[dict[str, Any], Any, str]:
    n_points = int(session.options.get("points") or 30)
    layer = session.layer()
    seed = session.config.seeds[0]
    specs = session.specs(SPECS)
    prompts, labels = [], []
    for task in session.progress("t-SNE points"):
        for spec in specs:
            for p in _prompts(session, task, spec, n_points, seed):
                p["columns"] = _columns(session.adapter, p["prompt"], p["spans"])
                prompts.append(p)
                labels.append((task, spec))
    vectors = _read(session, prompts, layer["layer"])
    by = {
        "by_task": [t for t, _ in labels],
        "by_spec": [s for _, s in labels],
        "by_source": [_source(t) for t, _ in labels],
    }
    points: dict[str, list[dict[str, Any]]] = {}
    silhouette: dict[str, dict[str, Any]] = {}
    for name in SETS:
        data = vectors[name].double().numpy()
        xy = embed_2d(data, seed)
        points[name] = [
            {"x": float(x), "y": float(y), "task": t, "spec": s}
            for (x, y), (t, s) in zip(xy.tolist(), labels, strict=True)
        ]
        silhouette[name] = {
            **silhouettes(data, by),
            "by_task_within_spec": within(data, by["by_spec"], by["by_task"]),
            "metric": "euclidean",
            "cosine": {
                **silhouettes(data, by, metric="cosine"),
                "by_task_within_spec": within(data, by["by_spec"], by["by_task"], "cosine"),
            },
        }
    result = {
        "layer": layer,
        "specs": specs,
        "points_per_group": n_points,
        "n_points": len(prompts),
        "seed": seed,
        "definitions": {
            "task_vectors": "layer output at the task token, through the final norm",
            "context_embeddings": "layer output averaged over the example inputs' tokens, each "
            "through the final norm (instruction spec: the query's tokens)",
            "input_embeddings": "first decoder layer's input averaged over the same tokens, "
            "each through the final norm",
            "instruction_points": "instruction + one test query, read at its last token",
        },
        "tokens_per_context": float(np.mean([len(p["columns"]) for p in prompts])),
        "silhouette": silhouette,
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
