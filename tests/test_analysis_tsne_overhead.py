"""The `tsne` and `overhead` analyses on the tiny random Llama: their mechanics (which tokens are
read, how many points, what is measured), not their figures."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from benchmark import validate
from harness.analysis import OPTIONS, overhead, tsne
from harness.analysis.common import Session, write_outputs
from harness.config import RunConfig
from harness.prepare import load_run_data

TASKS = ("country_capital", "food_color")


def _session(path: str, adapter, tmp_path, **options) -> Session:
    config = RunConfig(
        model=f"hf:{path}",
        tasks=TASKS,
        seeds=(0,),
        layer=2,
        limit=12,
        device="cpu",
        batch_size=8,
        output_path=str(tmp_path),
    )
    return Session(config, dict(load_run_data(config)), adapter, options)


def _written(session: Session, name: str, result, figure) -> dict:
    path, png = write_outputs(session, name, result, figure, 1.0)
    doc = json.loads(path.read_text())
    assert validate(doc, "analysis") == []
    assert png is not None and png.stat().st_size > 0
    # the identity keys the file: the options this analysis reads, at the values it used
    assert doc["identity"]["analysis"] == name
    assert doc["identity"]["config"]["layer"] == session.config.layer
    assert set(doc["identity"]["options"]) == set(OPTIONS[name])
    return doc


def test_silhouettes_see_made_up_clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 20
    points = np.concatenate([c + rng.normal(size=(20, 16)) for c in centres])
    by_cluster = [str(i // 20) for i in range(60)]
    shuffled = list(rng.permutation(by_cluster))
    got = tsne.silhouettes(points, {"by_task": by_cluster, "by_spec": shuffled, "one": ["a"] * 60})
    assert got["by_task"] > 0.9
    assert got["by_spec"] < 0.05  # a labelling the points do not follow: about 0 or below
    assert got["one"] is None  # undefined with a single label
    cosine = tsne.silhouettes(points, {"by_task": by_cluster}, metric="cosine")
    assert cosine["by_task"] > 0.9


def test_task_within_spec_ignores_how_far_apart_the_specs_are():
    """Two specs whose task clusters sit far apart: by task over all points is poor, by task
    inside each spec is not."""
    rng = np.random.default_rng(1)
    tasks = np.repeat(np.arange(3), 10)
    points, spec, task = [], [], []
    for s, offset in (("a", 0.0), ("b", 500.0)):
        centres = rng.normal(size=(3, 8)) * 20 + offset
        points.append(centres[tasks] + rng.normal(size=(30, 8)))
        spec += [s] * 30
        task += [str(t) for t in tasks]
    points = np.concatenate(points)
    assert tsne.silhouettes(points, {"t": task})["t"] < 0.2
    assert tsne.within(points, spec, task) > 0.9


def test_input_columns_are_the_example_inputs(tiny_llama_path, tiny_adapter, tmp_path):
    session = _session(tiny_llama_path, tiny_adapter, tmp_path)
    for spec in ("text_examples", "instruction"):
        (point,) = tsne._prompts(session, "country_capital", spec, 1, seed=0)
        prompt = point["prompt"]
        cols = tsne._columns(tiny_adapter, prompt, point["spans"])
        ids = tiny_adapter.encode([prompt]).input_ids[0]
        read = tiny_adapter.tokenizer.decode(ids[cols].tolist()).split()
        inputs = [prompt.text[s:e] for s, e in point["spans"]]
        assert " ".join(read) == " ".join(" ".join(inputs).split())
        assert len(inputs) == (session.config.n_shot if spec != "instruction" else 1)
        assert "\nA:" not in "".join(inputs)  # labels and markers are not context


def test_tsne_points_and_schema(tiny_llama_path, tiny_adapter, tmp_path):
    session = _session(tiny_llama_path, tiny_adapter, tmp_path, points=6)
    result, figure, table = tsne.run(session)
    assert result["specs"] == ["text_examples", "instruction"]  # text-only: no image spec
    for name in tsne.SETS:
        points = result["points"][name]
        # The instruction is its patched vector: one point per task, in the task-vector set.
        vectors = name == "task_vectors"
        assert len(points) == len(TASKS) * 6 + (len(TASKS) if vectors else 0)
        assert {(p["task"], p["spec"]) for p in points} == {
            (t, s)
            for t in TASKS
            for s in ("text_examples", "instruction")
            if vectors or s != "instruction"
        }
        assert all(np.isfinite([p["x"], p["y"]]).all() for p in points)
    sil = result["silhouette"]["task_vectors"]
    assert all(-1 <= sil[k] <= 1 for k in ("by_task", "by_spec", "by_task_within_spec"))
    assert result["silhouette"]["context_embeddings"]["by_spec"] is None  # one spec there
    pairs = result["nearest_centroid"]["pairs"]
    assert set(pairs) == {"text_examples -> instruction", "instruction -> text_examples"}
    assert pairs["instruction -> text_examples"]["n"] == len(TASKS)
    assert pairs["text_examples -> instruction"]["n"] == len(TASKS) * 6
    for got in pairs.values():
        low, high = got["interval"]
        assert low <= got["acc"] <= high
    assert "task_vectors" in table and "nearest centroid" in table
    doc = _written(session, "tsne", result, figure)
    assert doc["result"]["layer"]["layer"] == 2


def test_tsne_instruction_points_are_the_patched_vectors(tiny_llama_path, tiny_adapter, tmp_path):
    """The instruction's point is the vector `--spec instruction` patches (through the final
    norm), not a prompt with a query after it; the query variant stays an option."""
    from harness.analysis.common import normed

    session = _session(tiny_llama_path, tiny_adapter, tmp_path)
    got = tsne._seed_points(session, 0, ["text_examples", "instruction"], 2, "vector", 4)
    data, labels = got["task_vectors"]
    for task in TASKS:
        row = labels.index((task, "instruction"))
        patched = normed(tiny_adapter, session.vector(task, 0, "instruction")[2])
        np.testing.assert_allclose(data[row], patched.double().numpy(), rtol=1e-5, atol=1e-6)
    assert labels.count((TASKS[0], "instruction")) == 1
    query = tsne._seed_points(session, 0, ["text_examples", "instruction"], 2, "query", 4)
    _, query_labels = query["task_vectors"]
    assert query_labels.count((TASKS[0], "instruction")) == 4


def test_tsne_runs_every_seed(tiny_llama_path, tiny_adapter, tmp_path):
    session = _session(tiny_llama_path, tiny_adapter, tmp_path, points=5)
    session.config = dataclasses.replace(session.config, seeds=(0, 1))
    result, _, _ = tsne.run(session)
    per_seed = result["silhouette_per_seed"]["task_vectors"]
    assert len(per_seed) == 2 and per_seed[0]["by_task"] != per_seed[1]["by_task"]
    mean = (per_seed[0]["by_task"] + per_seed[1]["by_task"]) / 2
    assert result["silhouette"]["task_vectors"]["by_task"] == pytest.approx(mean)
    assert result["nearest_centroid"]["pairs"]["text_examples -> instruction"]["n"] == 2 * 5 * 2


def test_nearest_centroid_on_made_up_clusters():
    """Instruction points placed at their own task's example centre score 1; placed at the
    next task's, 0; the other direction is scored from the example points."""
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(3, 8)) * 10
    examples = np.concatenate([c + rng.normal(size=(10, 8)) * 0.1 for c in centres])
    tasks = [str(i // 10) for i in range(30)]
    for shift, expected in ((0, 1.0), (1, 0.0)):
        inst = centres[[(k + shift) % 3 for k in range(3)]]
        points = np.concatenate([examples, inst])
        labels = tasks + ["0", "1", "2"]
        specs = ["ex"] * 30 + ["inst"] * 3
        hits = tsne.nearest_centroid(points, labels, specs, "inst", "ex")
        assert hits == [expected] * 3
        back = tsne.nearest_centroid(points, labels, specs, "ex", "inst", metric="cosine")
        assert len(back) == 30 and np.mean(back) == expected


def test_tsne_reads_image_examples_on_a_vlm(tmp_path_factory, tmp_path):
    """A tiny Idefics2 with image data: the image spec joins, and an image example's context
    is its image tokens, found through the processor's expansion of the placeholder."""
    import tiny_vlms
    from PIL import Image

    from harness.adapters import make_adapter

    path = str(tiny_vlms.build_idefics2(tmp_path_factory.mktemp("idefics2")))
    images = str(tiny_vlms.write_image_dataset(tmp_path_factory.mktemp("built"), list(TASKS)))
    adapter = make_adapter("idefics2", pretrained=path)
    adapter.load()
    prompt = adapter.example_prompt([(Image.new("RGB", (48, 30)), "Paris"), ("Peru", "Lima")])
    before, rest = adapter.template.example.split("{x}", 1)
    spans = tsne._input_spans(prompt.text, ["<image>", "Peru"], before, rest.split("{y}")[0])
    ids = adapter.encode([prompt]).input_ids[0]
    image_id = adapter.tokenizer.convert_tokens_to_ids("<image>")
    image_cols = tsne._columns(adapter, prompt, spans[:1])
    assert int((ids[image_cols] == image_id).sum()) == int((ids == image_id).sum()) > 1
    assert adapter.tokenizer.decode(ids[tsne._columns(adapter, prompt, spans[1:])]) == "Peru"

    config = RunConfig(
        model="idefics2",
        model_args={"pretrained": path},
        tasks=TASKS,
        seeds=(0,),
        layer=1,
        limit=8,
        device="cpu",
        data=images,
        output_path=str(tmp_path),
    )
    # The run's own spec (text examples) loads no images; the image spec needs them.
    data = load_run_data(dataclasses.replace(config, spec="image_examples"))
    session = Session(config, dict(data), adapter, {"points": 4})
    result, figure, _ = tsne.run(session)
    assert result["specs"] == ["text_examples", "instruction", "image_examples"]
    assert len(result["points"]["context_embeddings"]) == len(TASKS) * 2 * 4  # examples' only
    _written(session, "tsne", result, figure)


def test_tsne_needs_enough_points():
    with pytest.raises(ValueError, match="at least 4"):
        tsne.embed_2d(np.zeros((3, 5)), seed=0)


def test_overhead_measures_three_kinds(tiny_llama_path, tiny_adapter, tmp_path, monkeypatch):
    session = _session(tiny_llama_path, tiny_adapter, tmp_path, n_context=8, runs=2)
    spawned = []

    def in_process(config, device, kind, layer):  # the spawned path is tested on its own below
        spawned.append((device, kind[1] is not None, layer))
        return overhead.memory_kind(tiny_adapter, kind, layer)

    monkeypatch.setattr(overhead, "isolated_memory", in_process)
    result, figure, table = overhead.run(session)
    # One process per kind, on the session's device; only the patch kind carries a vector.
    assert spawned == [("cpu", False, 2), ("cpu", True, 2), ("cpu", False, 2)]
    assert set(result["time"]) == set(result["memory"]) == set(overhead.KINDS)
    for kind in overhead.KINDS:
        assert result["time"][kind]["median_s"] > 0 and len(result["time"][kind]["runs_s"]) == 2
        mem = result["memory"][kind]
        assert mem["peak_bytes"] >= mem["baseline_bytes"] > 0
    assert result["memory_method"] == overhead.CPU_METHOD
    tokens = result["tokens"]
    assert tokens["prompt"] > 4 * tokens["query"] and tokens["patch"] == tokens["query"]
    assert set(result["ratio"]) == {"time", "memory", "memory_increase"}
    assert set(result["ratio"]["time"]) == {"prompt/patch", "prompt/query"}
    assert "prompt/patch" in table
    _written(session, "overhead", result, figure)


def test_overhead_needs_enough_items(tiny_llama_path, tiny_adapter, tmp_path):
    session = _session(tiny_llama_path, tiny_adapter, tmp_path)
    with pytest.raises(ValueError, match="fewer than --n_context"):
        overhead._setup(session, 10_000)


def test_overhead_memory_in_a_fresh_process(tiny_llama_path, tiny_adapter, tmp_path):
    """The real CPU path: a spawned process loads the model and reports its resident set."""
    session = _session(tiny_llama_path, tiny_adapter, tmp_path)
    prompt = tiny_adapter.query_prompt("France")
    got = overhead.isolated_memory(session.config, "cpu", (prompt, None), 2)
    assert set(got) == {"baseline_bytes", "peak_bytes", "increase_bytes"}
    assert got["peak_bytes"] >= got["baseline_bytes"] > 0
    assert got["increase_bytes"] == got["peak_bytes"] - got["baseline_bytes"]


def _tokens(adapter, prompt) -> int:
    return int(adapter.encode([prompt]).input_ids.shape[1])


def _demos_and_query(session: Session, setup: dict) -> tuple[list[dict], dict]:
    records = {r["id"]: r for rs in session.data[TASKS[0]].splits.values() for r in rs}
    return [records[i] for i in setup["demo_ids"]], records[setup["query_id"]]


def test_overhead_default_context_is_the_items(tiny_llama_path, tiny_adapter, tmp_path):
    """Without --context the examples are the task's own items, as before dense existed."""
    from harness.analysis import parse

    assert parse(["overhead"])[2]["context"] == "short"
    assert parse(["overhead", "--context", "dense"])[2]["context"] == "dense"
    session = _session(tiny_llama_path, tiny_adapter, tmp_path)
    setup = overhead._setup(session, 8)
    demos, query = _demos_and_query(session, setup)
    expected = tiny_adapter.example_prompt(
        [(d["input"], d["output"]) for d in demos], query=query["input"]
    )
    assert setup["prompts"]["prompt"].text == expected.text
    assert setup["descriptions"] == []


def test_overhead_dense_prompt_has_the_target_length(
    tiny_llama_path, tiny_adapter, tmp_path, monkeypatch
):
    """Each dense example is a description of about DENSE_TOKENS tokens of the model's own
    tokenizer, so the prompt is N of them plus what the short items' template costs."""
    n = 5
    session = _session(tiny_llama_path, tiny_adapter, tmp_path, n_context=n, runs=2)
    session.options["context"] = "dense"
    setup = overhead._setup(session, n, "dense")
    target = overhead.DENSE_TOKENS
    lengths = [overhead._token_count(tiny_adapter, d) for d in setup["descriptions"]]
    assert len(lengths) == n and all(0.9 * target <= k <= target for k in lengths)
    assert len(set(setup["descriptions"])) == n  # every example its own text
    assert overhead._setup(session, n, "dense")["descriptions"] == setup["descriptions"]
    demos, query = _demos_and_query(session, setup)
    bare = tiny_adapter.example_prompt([("", d["output"]) for d in demos], query=query["input"])
    expected = n * target + _tokens(tiny_adapter, bare)
    got = _tokens(tiny_adapter, setup["prompts"]["prompt"])
    assert abs(got - expected) <= 0.1 * expected
    short = overhead._setup(session, n)["prompts"]["prompt"]
    assert got > 3 * _tokens(tiny_adapter, short)

    def in_process(config, device, kind, layer):
        return overhead.memory_kind(tiny_adapter, kind, layer)

    monkeypatch.setattr(overhead, "isolated_memory", in_process)
    result, figure, table = overhead.run(session)
    assert result["context"] == "dense" and result["tokens"]["prompt"] == got
    dense = result["dense"]
    assert dense["target_tokens"] == target
    assert dense["description_tokens"]["min"] == min(lengths)
    assert dense["example_tokens_mean"] == (got - result["tokens"]["query"]) / n
    assert "dense descriptions" in table
    _written(session, "overhead", result, figure)


def test_overhead_prompt_must_fit_the_context(tiny_llama_path, tiny_adapter, tmp_path):
    """Ten dense examples are longer than the tiny model's context: a clear error, not a
    forward past its positions."""
    from harness.errors import ConfigError

    limit = tiny_adapter.model.config.max_position_embeddings
    assert 10 * overhead.DENSE_TOKENS > limit
    session = _session(tiny_llama_path, tiny_adapter, tmp_path)
    with pytest.raises(ConfigError, match=f"context of {limit}; lower --n_context"):
        overhead._setup(session, 10, "dense")
