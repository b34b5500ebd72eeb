"""The analyses' mechanics on the tiny random Llama: the logit lens is the model's own read-out,
typos are seeded and stay inside words, several vectors patched in one pass equal one pass each,
cosine matrices of hand-made vectors, and every command writes a schema-valid JSON and a PNG."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import statistics
from pathlib import Path

import pytest
import torch

from benchmark import ANALYSES, validate
from harness import engine
from harness.analysis.common import Session, final_norm, read_out
from harness.analysis.cosine import _pair_stats
from harness.analysis.lens import phases
from harness.analysis.noise import noisy_instruction
from harness.cli import main
from harness.config import RunConfig
from harness.context import EvalContext
from harness.intervals import analysis_intervals, bracket, estimates, scores_from_file
from harness.prepare import load_run_data

INSTRUCTION = "The scientific name of the animal's species in latin:"


def test_logit_lens_at_the_last_layer_is_the_model_itself(tiny_adapter):
    """Final norm + unembedding of the last layer's output equals the model's own logits."""
    prompt = tiny_adapter.query_prompt("France")
    batch = tiny_adapter.encode([prompt])
    with torch.inference_mode():
        out = tiny_adapter.model(**batch.model_inputs, output_hidden_states=True)
    last_layer = out.hidden_states[-1][0, -1]  # HF applies the final norm to this last entry
    states = engine.capture_task_states(tiny_adapter, [prompt])  # raw layer outputs
    lens = read_out(tiny_adapter, states[0, -1])
    assert torch.allclose(lens, out.logits[0, -1].float(), atol=1e-4)
    assert final_norm(tiny_adapter) is tiny_adapter.model.model.norm
    assert last_layer.shape == states[0, -1].shape


def test_a_known_vector_decodes_to_its_token(tiny_adapter):
    """The unembedding row of the longest-row token, undone through the norm's weight, is read
    out as that token (Cauchy-Schwarz: no other row can have a larger dot product with it)."""
    head = tiny_adapter.model.get_output_embeddings().weight.detach().float()
    token = int(head.norm(dim=-1).argmax())
    weight = final_norm(tiny_adapter).weight.detach().float()
    hidden = head[token] / weight
    assert int(read_out(tiny_adapter, hidden).argmax()) == token


def test_phases_name_the_most_probable_of_three():
    rel = [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]]
    got = phases(rel)
    assert got["winner"] == ["input", "input", "task", "answer"]
    assert got["share"] == {"input": 0.5, "task": 0.25, "answer": 0.25}
    assert got["first_layer"] == {"input": 0, "task": 2, "answer": 3}


@pytest.mark.parametrize("s", [1, 2, 3])
def test_s_swaps_per_instruction_are_s_adjacent_transpositions(s):
    """The paper's noise (Kumar et al. 2023's char_swap): s swaps in the whole instruction,
    each of two adjacent, different letters of one word; seeded."""
    for seed in range(20):
        noisy = noisy_instruction(INSTRUCTION, s, seed=seed, key="animal_latin")
        assert noisy == noisy_instruction(INSTRUCTION, s, seed=seed, key="animal_latin")
        diffs = [i for i, (a, b) in enumerate(zip(INSTRUCTION, noisy, strict=True)) if a != b]
        pairs = list(zip(diffs[::2], diffs[1::2], strict=True))
        assert len(pairs) == s and all(j == i + 1 for i, j in pairs)
        for i, j in pairs:
            assert noisy[i] == INSTRUCTION[j] and noisy[j] == INSTRUCTION[i]
            assert INSTRUCTION[i].isalpha() and INSTRUCTION[j].isalpha()
    draws = {noisy_instruction(INSTRUCTION, s, seed=seed, key="k") for seed in range(20)}
    assert len(draws) > 10  # the positions are drawn, not fixed


# Seed 0 draws the pair "ca" of "capital" (one transposition, checked by hand): a pin, so a
# change of the draw (and of every committed noise figure) cannot pass unnoticed.
NOISY_S1_SEED0 = "The acpital city of the country:"


def test_one_swap_per_instruction_on_a_fixed_seed():
    assert noisy_instruction(
        "The capital city of the country:", 1, seed=0, key="country_capital"
    ) == (NOISY_S1_SEED0)


@pytest.mark.parametrize("s", [1, 2])
def test_typos_are_seeded_and_stay_inside_words(s):
    noisy = noisy_instruction(INSTRUCTION, s, seed=0, key="animal_latin", scope="word")
    assert noisy == noisy_instruction(INSTRUCTION, s, seed=0, key="animal_latin", scope="word")
    assert noisy != noisy_instruction(INSTRUCTION, s, seed=1, key="animal_latin", scope="word")
    assert noisy != INSTRUCTION
    # Punctuation, spaces and the apostrophe stay where they were; each word keeps its letters.
    assert [c for c in noisy if not c.isalpha()] == [c for c in INSTRUCTION if not c.isalpha()]
    assert re.sub(r"[A-Za-z]", "x", noisy) == re.sub(r"[A-Za-z]", "x", INSTRUCTION)
    for before, after in zip(INSTRUCTION.split(), noisy.split(), strict=True):
        assert sorted(before) == sorted(after)
        changed = sum(a != b for a, b in zip(before, after, strict=True))
        # one swap moves two letters; s swaps at distinct positions move at most 2s
        assert changed <= 2 * s
        letters = re.sub(r"[^A-Za-z]", "", before)
        if len(set(letters)) > 1 and len(letters) >= 2:
            assert changed >= 2


def test_no_swaps_leaves_the_instruction_alone():
    assert noisy_instruction(INSTRUCTION, 0, seed=5) == INSTRUCTION


def test_one_swap_is_one_adjacent_transposition():
    noisy = noisy_instruction("capital", 1, seed=3, scope="word")
    diffs = [i for i, (a, b) in enumerate(zip("capital", noisy, strict=True)) if a != b]
    assert len(diffs) == 2 and diffs[1] == diffs[0] + 1
    assert noisy[diffs[0]] == "capital"[diffs[1]] and noisy[diffs[1]] == "capital"[diffs[0]]


def test_patch_variants_equal_one_patched_pass_each(tiny_adapter):
    prompts = [tiny_adapter.query_prompt(x) for x in ("France", "Peru", "Japan", "Kenya")]
    torch.manual_seed(0)
    vectors = torch.randn(3, tiny_adapter.hidden_size) * 4
    together = engine.patch_variants(tiny_adapter, prompts, vectors, layer=1, max_rows=5)
    for j in range(3):
        alone = engine.patch_last_token(tiny_adapter, prompts, vectors[j], layer=1)
        assert together[:, j].tolist() == alone.tolist()


def test_cosine_matrix_of_hand_made_vectors():
    """Two tasks with orthogonal vectors: matched 1, mismatched 0, at every layer."""
    e = torch.eye(4)
    a = {"t1": e[0].expand(1, 3, 4), "t2": e[1].expand(1, 3, 4)}
    b = {"t1": (2 * e[0]).expand(2, 3, 4), "t2": e[1].expand(2, 3, 4)}
    got = _pair_stats(a, b, layer=2)
    assert got["matrix"] == [[1.0, 0.0], [0.0, 1.0]]
    assert got["matched"] == 1.0 and got["mismatched"] == 0.0 and got["gap"] == 1.0
    assert got["mean"] == [1.0, 1.0, 1.0]
    assert got["mismatched_per_layer"] == [0.0, 0.0, 0.0]
    same = _pair_stats(a, {"t1": e[0].expand(1, 3, 4), "t2": e[0].expand(1, 3, 4)}, layer=0)
    assert same["mismatched_per_layer"] == [0.5, 0.5, 0.5]  # a.t1-b.t2: 1, a.t2-b.t1: 0


@pytest.fixture
def session(tiny_llama_path):
    def make(**options):
        config = RunConfig(
            model=f"hf:{tiny_llama_path}",
            tasks=("country_capital", "food_color"),
            seeds=(0,),
            limit=6,
            layer=2,
        )
        from harness.adapters import load_adapter

        adapter = load_adapter(config.model, config.model_args, config)
        return Session(config, dict(load_run_data(config)), adapter, options)

    return make


def test_lens_records_tokens_and_probabilities(session):
    from harness.analysis.lens import lens_spec

    s = session(runs=4)
    got = lens_spec(s, "country_capital", "text_examples", 4, layer=2)
    mean = torch.tensor(got["relative_prob"]["mean"])
    assert mean.shape == (s.adapter.num_layers, 3)
    assert torch.allclose(mean.sum(-1), torch.ones(s.adapter.num_layers), atol=1e-5)
    assert got["runs"] == 4 and len(got["top1"]) == s.adapter.num_layers
    assert len(got["top5"]) == 5
    # the input token is the token at the task position: the ':' closing "A:"
    assert [s.adapter.decode_token(t).strip() for t in got["token_ids"]["input"]] == [":"]
    instruction = lens_spec(s, "country_capital", "instruction", 4, layer=2)
    assert instruction["runs"] == 1


def test_lens_reports_absolute_probabilities_and_ranks(session):
    """Beside the relative curves: the absolute probability of each token group and its rank
    in the whole vocabulary, recomputed here from the model's own read-out of one run."""
    from harness import engine
    from harness.analysis.common import read_out
    from harness.analysis.lens import _runs, lens_spec

    s = session(runs=1)
    got = lens_spec(s, "country_capital", "text_examples", 1, layer=2)
    (run,) = _runs(s, "country_capital", "text_examples", 1)
    states = engine.capture_task_states(s.adapter, [run["prompt"]], 1)
    probs = read_out(s.adapter, states[0]).softmax(-1)
    answer = got["token_ids"]["answer"]
    for layer in (0, s.adapter.num_layers - 1):
        p = probs[layer, answer].mean()
        assert got["absolute_prob"]["mean"][layer][2] == pytest.approx(float(p), rel=1e-4)
        rank = int((probs[layer] > probs[layer, answer].max()).sum()) + 1
        assert got["rank"]["median"][layer][2] == rank
    rel = torch.tensor(got["relative_prob"]["mean"])
    absolute = torch.tensor(got["absolute_prob"]["mean"])
    assert torch.allclose(rel, absolute / absolute.sum(-1, keepdim=True), atol=1e-5)


def test_a_phase_needs_its_winner_within_the_rank_floor():
    """Three improbable tokens still have a most probable one; with ranks, that layer is no
    phase."""
    from harness.analysis.lens import RANK_FLOOR

    rel = [[0.2, 0.2, 0.6], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8]]
    ranks = [[900, 800, RANK_FLOOR + 1], [1, 50, 60], [30, 40, RANK_FLOOR]]
    assert phases(rel)["winner"] == ["answer", "input", "answer"]
    ranked = phases(rel, ranks)
    assert ranked["winner"] == ["none", "input", "answer"]
    assert ranked["share"]["none"] == pytest.approx(1 / 3)


def test_lens_runs_are_spread_over_the_seeds(session):
    from harness.analysis.lens import _runs

    s = session(runs=5)
    s.config = dataclasses.replace(s.config, seeds=(0, 1))
    runs = _runs(s, "country_capital", "text_examples", 5)
    assert [r["seed"] for r in runs] == [0, 0, 0, 1, 1]
    texts = [r["prompt"].text for r in runs]
    assert len(set(texts)) == 5


@pytest.mark.parametrize("name", ["logit-lens", "noise", "scaling", "cosine"])
def test_every_command_writes_schema_valid_json_and_png(name, tiny_llama_path, tmp_path, capsys):
    argv = [
        name,
        "--model",
        f"hf:{tiny_llama_path}",
        "--tasks",
        "country_capital,food_color",
        "--seeds",
        "0,1",
        "--limit",
        "6",
        "--layer",
        "2",
        "--output_path",
        str(tmp_path),
        "--runs",
        "3",
        "--max_r",
        "2",
    ]
    assert main(["analyze", *argv]) == 0
    folder = next(tmp_path.glob("*/analysis"))
    doc = json.loads((folder / f"{name}.json").read_text())
    assert validate(doc, "analysis") == []
    assert doc["analysis"] == name and doc["result"]["layer"]["layer"] == 2
    assert (folder / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert name in capsys.readouterr().out


def test_layer_is_chosen_by_the_run_protocol_when_not_given(session):
    s = session()
    s.config = RunConfig(**{**s.config.__dict__, "layer": None})
    chosen = s.layer()
    curve = chosen["mean_curve"]
    assert chosen["layer"] == max(range(len(curve)), key=lambda la: (curve[la], -la))
    assert "validation sweep" in chosen["source"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bogus"], "unknown analysis 'bogus'"),
        (["noise", "--swaps", "a,b"], "--swaps"),
        (["noise", "--swaps", "-1"], "--swaps"),
        (["logit-lens", "--runs", "0"], "--runs must be at least 1"),
    ],
)
def test_bad_analysis_arguments_are_one_line_errors(argv, message, capsys):
    assert main(["analyze", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_the_swept_layer_is_cached_and_a_tampered_cache_is_swept_again(
    session, monkeypatch, tmp_path, capsys
):
    monkeypatch.setenv("VLM_TV_EVAL_CACHE", str(tmp_path / "cache"))
    s = session()
    s.config = RunConfig(**{**s.config.__dict__, "layer": None})
    first = s.layer()
    [cached] = (tmp_path / "cache" / "analysis-layers").glob("*.json")

    def no_sweep(*args, **kwargs):
        raise AssertionError("swept again although the cache holds this run's layer")

    fresh = session()
    fresh.config = s.config
    with monkeypatch.context() as m:
        m.setattr(engine, "sweep_layers", no_sweep)
        assert fresh.layer() == first
    doc = json.loads(cached.read_text())
    doc["key"]["seed"] = 99  # a file that belongs to another run
    cached.write_text(json.dumps(doc))
    again = session()
    again.config = s.config
    assert again.layer() == first
    assert "does not match this run" in capsys.readouterr().err


# -- the layer cache proves itself; scaling never repeats an item ------------------------------
def _sweeping_session(session, monkeypatch, tmp_path):
    """A session that sweeps for its layer, its cache in tmp_path, and a count of its sweeps."""
    monkeypatch.setenv("VLM_TV_EVAL_CACHE", str(tmp_path / "cache"))
    sweeps = []
    real = engine.sweep_layers

    def counted(*args, **kwargs):
        sweeps.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "sweep_layers", counted)
    monkeypatch.setattr(EvalContext, "score_tokens", _by_parity)  # curves that are not all 0

    def make():
        s = session()
        s.config = dataclasses.replace(s.config, layer=None)
        return s

    return make, sweeps


def _edited_cache(tmp_path, edit):
    """The one layer cache file, after `edit(doc)` (None: leave it) or written as `edit`
    (a string)."""
    [cached] = (tmp_path / "cache" / "analysis-layers").glob("*.json")
    if isinstance(edit, str):
        cached.write_text(edit)
    else:
        doc = json.loads(cached.read_text())
        edit(doc)
        cached.write_text(json.dumps(doc))
    return cached


def _set_layer(value):
    def edit(doc):
        doc["layer"]["layer"] = value

    return edit


def _one_recompute_warning(err, cached):
    lines = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1, err
    assert str(cached) in lines[0] and "recomputing it" in lines[0]
    assert "Traceback" not in err


def test_a_cached_layer_edited_to_another_valid_layer_is_swept_again(
    session, monkeypatch, tmp_path, capsys
):
    """The file holds the sweep scores the layer was chosen from: a layer they do not choose
    is an edit, and the run's layer is a fresh sweep's, not the file's."""
    make, sweeps = _sweeping_session(session, monkeypatch, tmp_path)
    first = make().layer()
    n_layers = len(first["mean_curve"])
    assert len(sweeps) == 2  # one per task
    capsys.readouterr()
    wrong = (first["layer"] + 1) % n_layers
    cached = _edited_cache(tmp_path, _set_layer(wrong))
    got = make().layer()
    assert got == first and got["layer"] != wrong
    assert len(sweeps) == 4
    err = capsys.readouterr().err
    _one_recompute_warning(err, cached)
    assert f"holds the layer {wrong}, but its sweep scores choose {first['layer']}" in err
    # the file is overwritten with the sweep's choice, and then reused as it is
    assert json.loads(cached.read_text())["layer"] == first
    assert make().layer() == first and len(sweeps) == 4
    assert capsys.readouterr().err.count("warning:") == 0


def test_a_cached_layer_whose_scores_were_edited_to_choose_it_still_rederives(
    session, monkeypatch, tmp_path, capsys
):
    """Scores edited so that they no longer choose the stored layer (or its curve) are found
    the same way: the record is re-derived from the scores by `choose_layer`."""
    make, sweeps = _sweeping_session(session, monkeypatch, tmp_path)
    first = make().layer()
    capsys.readouterr()
    other = (first["layer"] + 1) % len(first["mean_curve"])

    def edit(doc):
        for by_seed in doc["sweeps"].values():
            acc = by_seed["0"]["acc"]
            acc[:] = [0.0] * len(acc)
            acc[other] = 1.0

    cached = _edited_cache(tmp_path, edit)
    assert make().layer() == first
    _one_recompute_warning(capsys.readouterr().err, cached)


@pytest.mark.parametrize(
    "edit, why",
    [
        (_set_layer(99), "holds the layer 99, not a layer of"),
        (_set_layer(-1), "holds the layer -1, not a layer of"),
        (_set_layer("x"), 'holds the layer "x", not an integer'),
        (_set_layer(True), "holds the layer true, not an integer"),
        (_set_layer(2.0), "holds the layer 2.0, not an integer"),
        (lambda doc: doc.update(layer=[]), "holds no layer record"),
        (lambda doc: doc.update(layer=5), "holds no layer record"),
        (lambda doc: doc.pop("sweeps"), "does not hold the sweep scores"),
        (lambda doc: doc["sweeps"]["food_color"]["0"]["acc"].pop(), "malformed sweep scores"),
        (lambda doc: doc["sweeps"]["food_color"]["0"]["acc"].__setitem__(0, 7), "malformed"),
        (lambda doc: doc["sweeps"].update(food_color="0"), "malformed sweep scores"),
        ("[]", "is not a layer record (a JSON list"),
        ("5", "is not a layer record (a JSON int"),
        ('{"key": ', "is not readable, valid JSON"),
        ('{"key": NaN}', "is not readable, valid JSON"),
        ("", "is not readable, valid JSON"),
    ],
)
def test_a_malformed_layer_cache_is_one_warning_and_a_fresh_sweep(
    edit, why, session, monkeypatch, tmp_path, capsys
):
    make, sweeps = _sweeping_session(session, monkeypatch, tmp_path)
    first = make().layer()
    capsys.readouterr()
    cached = _edited_cache(tmp_path, edit)
    assert make().layer() == first
    err = capsys.readouterr().err
    _one_recompute_warning(err, cached)
    assert why in err
    assert len(sweeps) == 4
    assert json.loads(cached.read_text())["layer"] == first


def test_an_analysis_run_records_the_fresh_sweeps_layer_not_an_edited_cache(
    tiny_llama_path, monkeypatch, tmp_path, capsys
):
    """End to end: `analyze` with no --layer, its layer cache edited in between, writes the
    layer a fresh sweep chooses, with one warning and exit 0."""
    monkeypatch.setenv("VLM_TV_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(EvalContext, "score_tokens", _by_parity)
    argv = ["cosine", "--model", f"hf:{tiny_llama_path}", "--tasks", ",".join(TASKS)]
    argv += ["--seeds", "0", "--limit", "6", "--output_path", str(tmp_path / "out")]
    assert main(["analyze", *argv]) == 0
    written = tmp_path.glob("out/*/analysis/cosine.json")
    first = json.loads(next(written).read_text())["result"]["layer"]
    assert "validation sweep" in first["source"]
    capsys.readouterr()
    for edit in (_set_layer((first["layer"] + 1) % len(first["mean_curve"])), _set_layer(99)):
        cached = _edited_cache(tmp_path, edit)
        assert main(["analyze", *argv]) == 0
        doc = json.loads(next(tmp_path.glob("out/*/analysis/cosine.json")).read_text())
        assert doc["result"]["layer"] == first
        _one_recompute_warning(capsys.readouterr().err, cached)


def test_scaling_refuses_more_prompts_than_distinct_items(
    tiny_llama_path, tmp_path, capsys, monkeypatch
):
    """30 validation items make six five-shot prompts of different items: --max_r 100 would
    reuse each item 16 times and count it as 16 examples, so it is refused, naming the
    largest --max_r that fits, before the model loads."""
    argv = ["scaling", "--model", f"hf:{tiny_llama_path}", "--tasks", ",".join(TASKS)]
    argv += ["--seeds", "0", "--limit", "6", "--layer", "2", "--max_r", "100"]
    monkeypatch.setattr(engine, "capture_task_states", None)  # no model time is spent
    assert main(["analyze", *argv, "--output_path", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Loading" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("vlm-tv-eval analyze: error: ")
    assert "--max_r 100 needs 500 distinct validation items" in err
    assert "has 30" in err and "use --max_r 6 or less" in err
    assert not list(tmp_path.glob("*/analysis/scaling.json"))


def test_scaling_prompts_use_distinct_items_up_to_the_largest_max_r(session):
    from harness.analysis import scaling
    from harness.errors import ConfigError

    s = session()
    data = s.data
    seen = []
    real = s.adapter.example_prompt

    def recording(examples, **kwargs):
        seen.extend(x for x, _ in examples)
        return real(examples, **kwargs)

    s.adapter.example_prompt = recording
    n = len(s.data["food_color"].splits["validation"])
    prompts = scaling._prompts(s, "food_color", 0, n // scaling.SHOTS)
    assert len(prompts) == n // scaling.SHOTS
    assert len(seen) == len(set(seen)) == scaling.SHOTS * (n // scaling.SHOTS)
    with pytest.raises(ConfigError, match=rf"use --max_r {n // scaling.SHOTS} or less"):
        scaling._prompts(s, "food_color", 0, n // scaling.SHOTS + 1)
    scaling.check_max_r(data, n // scaling.SHOTS)
    with pytest.raises(ConfigError, match="--max_r 7 needs 35"):
        scaling.check_max_r(data, 7)
    assert "fewer than the 5 of one 5-shot prompt" in scaling._too_few("t", 4, 1)


def test_analyses_need_their_extra(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a)
    )
    assert main(["analyze", "tsne"]) == 2
    assert "pip install 'vlm-tv-eval[analysis]'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["logit-lens", "cosine"])
def test_a_vlm_with_data_compares_image_examples_too(name, tmp_path_factory, tmp_path):
    """On a VLM given --data, the image spec joins the text specs even though the run's own
    spec is text (the items are loaded with their images for it)."""
    import tiny_vlms

    tasks = ["country_capital", "food_color"]
    path = str(tiny_vlms.build_idefics2(tmp_path_factory.mktemp("idefics2")))
    images = str(tiny_vlms.write_image_dataset(tmp_path_factory.mktemp("built"), tasks))
    argv = [
        name,
        "--model",
        "idefics2",
        "--model_args",
        f"pretrained={path}",
        "--data",
        images,
        "--tasks",
        ",".join(tasks),
        "--seeds",
        "0",
        "--limit",
        "6",
        "--layer",
        "1",
        "--device",
        "cpu",
        "--runs",
        "2",
        "--output_path",
        str(tmp_path),
    ]
    assert main(["analyze", *argv]) == 0
    doc = json.loads(next(tmp_path.glob(f"*/analysis/{name}.json")).read_text())
    assert validate(doc, "analysis") == []
    if name == "logit-lens":
        assert doc["result"]["specs"] == ["text_examples", "instruction", "image_examples"]
        assert set(doc["result"]["by_task"]["food_color"]) == set(doc["result"]["specs"])
    else:
        assert "text_examples vs image_examples" in doc["result"]["task_matrix"]


def test_cosine_with_a_source_model_compares_its_vectors(tiny_llama_path, tmp_path):
    """--source_model: the source's vectors against the evaluated model's. The same weights
    on both sides give the same vectors, so matched tasks have cosine 1."""
    argv = [
        "cosine",
        "--model",
        f"hf:{tiny_llama_path}",
        "--source_model",
        f"hf:{tiny_llama_path}",
        "--tasks",
        "country_capital,food_color",
        "--seeds",
        "0",
        "--limit",
        "6",
        "--layer",
        "2",
        "--output_path",
        str(tmp_path),
    ]
    assert main(["analyze", *argv]) == 0
    doc = json.loads(next(tmp_path.glob("*/analysis/cosine.json")).read_text())
    pair = doc["result"]["task_matrix"][f"hf:{tiny_llama_path} vs hf:{tiny_llama_path}"]
    assert pair["matched"] == pytest.approx(1.0, abs=1e-5)
    assert pair["mismatched"] < 1.0 - 1e-4


def test_accuracies_score_each_column_by_the_runs_rule(session):
    """One id column per vector: each column is scored like a run's first tokens."""
    from harness.analysis.common import accuracies

    s = session()
    ctx = s.context()
    items = ctx.items("country_capital", "test")[:2]
    prompts = [ctx.query_prompt(r) for r in items]
    right = [
        s.adapter.answer_token(p.text, r["output"]) for p, r in zip(prompts, items, strict=True)
    ]
    wrong = [s.adapter.tokenizer.convert_tokens_to_ids("Q")] * 2
    ids = torch.tensor([right, wrong, [right[0], wrong[1]]]).T  # [n=2, k=3]
    assert accuracies(ctx, "country_capital", items, ids, prompts) == [1.0, 0.0, 0.5]
    assert accuracies(ctx, "country_capital", items, ids[:, 0], prompts) == [1.0]


# -- scaling, noise and spec-curves over every seed, with paired intervals ----------------------
SEEDED = ("scaling", "noise", "spec-curves")
TASKS = ("country_capital", "food_color")
# The differences the README's claims rest on (with --max_r 2 and --swaps 0,1,2).
CLAIMS = {
    "scaling": [
        "examples r=2 - examples r=1",
        "ensemble r=1 - examples r=1",
        "ensemble r=2 - examples r=2",
    ],
    "noise": ["s=1 - s=0", "s=2 - s=0"],
    "spec-curves": [
        "instruction - text_examples",
        "ensemble - text_examples",
        "instruction_marker - instruction",
        "instruction prompt - text_examples prompt",
    ],
}
_SCORE_TOKENS = EvalContext.score_tokens


def _by_parity(self, task, items, pred_ids, prompts):
    """The random model never names a label, so every score would be 0 and every interval
    [0, 0]: here an answer is right when its token id and the item's id (its letters' codes)
    add up to an even number, a mix of 0 and 1 that follows the model's answers (and so each
    vector and seed) even where it gives one answer to every query."""
    scored = _SCORE_TOKENS(self, task, items, pred_ids, prompts)
    codes = [sum(map(ord, r["id"])) for r in items]
    return {
        **scored,
        "lenient": [(int(i) + c) % 2 == 0 for i, c in zip(pred_ids, codes, strict=True)],
    }


@pytest.fixture(scope="module")
def seeded(tiny_llama_path, tmp_path_factory):
    """scaling, noise and spec-curves, each run once over seeds 0 and 1: (document, table)."""
    out = tmp_path_factory.mktemp("seeded")
    runs = {}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(EvalContext, "score_tokens", _by_parity)
        m.setenv("VLM_TV_EVAL_CACHE", str(out / "cache"))
        for name in SEEDED:
            argv = [name, "--model", f"hf:{tiny_llama_path}", "--tasks", ",".join(TASKS)]
            argv += ["--seeds", "0,1", "--limit", "6", "--layer", "2", "--max_r", "2"]
            table = io.StringIO()
            with contextlib.redirect_stdout(table):
                assert main(["analyze", *argv, "--output_path", str(out)]) == 0
            [folder] = out.glob("*/analysis")
            doc = json.loads((folder / f"{name}.json").read_text())
            assert (folder / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            runs[name] = doc, table.getvalue()
    return runs


def _main_numbers(name, result):
    """(number the JSON reports, variant of item_scores it is the mean of, task)."""
    if name == "scaling":
        return [
            (result[v]["by_task"][t][i], f"{v} r={r}", t)
            for v in ("examples", "ensemble")
            for i, r in enumerate(result["r"])
            for t in TASKS
        ]
    if name == "noise":
        return [
            (result["acc"][t][str(s)]["acc"], f"s={s}", t) for s in result["swaps"] for t in TASKS
        ]
    got = [(result["prompt"][s][t], f"{s} prompt", t) for s in result["prompt"] for t in TASKS]
    for spec, by_task in result["test"].items():
        for t in TASKS:
            got += [
                (by_task[t]["session_layer"], spec, t),
                (by_task[t]["own_layer"], f"{spec} own layer", t),
            ]
    return got


@pytest.mark.parametrize("name", SEEDED)
def test_seeded_analyses_give_the_intervals_of_their_stored_scores(name, seeded):
    doc, table = seeded[name]
    assert validate(doc, "analysis") == []
    result = doc["result"]
    assert result["seeds"] == [0, 1]
    scores = scores_from_file(result["item_scores"]["by_task"])
    for task in TASKS:
        n = len(result["item_scores"]["doc_ids"][task])
        assert n == 6 and {s.shape for s in scores[task].values()} == {(2, n)}
    if name == "noise":  # the clean instruction is the same for every seed
        assert all((scores[t]["s=0"][0] == scores[t]["s=0"][1]).all() for t in TASKS)
    pairs = [tuple(claim.split(" - ")) for claim in CLAIMS[name]]
    intervals = result["intervals"]
    # the intervals are the paired bootstrap of the per-item scores stored beside them
    redrawn = analysis_intervals(scores, pairs)
    assert intervals == json.loads(json.dumps(redrawn))
    assert set(CLAIMS[name]) <= set(intervals["average"])
    assert intervals["level"] == 0.95 and intervals["replicates"] == 2000
    # the scores are those the reported numbers are the means of
    for value, variant, task in _main_numbers(name, result):
        assert value == pytest.approx(scores[task][variant].mean())
    # every interval holds its point estimate, and some are wide (the scores are not constant)
    point = estimates(scores, pairs)
    for where in [intervals["average"], *intervals["per_task"].values()]:
        at = point["average"] if where is intervals["average"] else None
        for key, (low, high) in where.items():
            value = (
                at[key]
                if at is not None
                else next(
                    p[key]
                    for t, p in point["per_task"].items()
                    if intervals["per_task"][t] is where
                )
            )
            assert low - 1e-4 <= value <= high + 1e-4, (key, low, value, high)
    assert any(high - low > 0.1 for low, high in intervals["average"].values())
    # the table prints the average's interval of each claim beside its estimate
    for claim in CLAIMS[name]:
        estimate = f"{point['average'][claim]:+.2f}"
        assert f"{estimate} {bracket(intervals['average'][claim], signed=True)}" in table


def test_spec_curves_use_every_seed(seeded, tiny_llama_path, monkeypatch):
    """Seed 1's own vectors and in-context examples, computed here one at a time, are the
    rows spec-curves stores for seed 1, and its validation curves are the seeds' mean."""
    monkeypatch.setattr(EvalContext, "score_tokens", _by_parity)
    result = seeded["spec-curves"][0]["result"]
    stored = result["item_scores"]["by_task"]
    config = RunConfig(model=f"hf:{tiny_llama_path}", tasks=TASKS, seeds=(0, 1), limit=6, layer=2)
    from harness.adapters import load_adapter

    adapter = load_adapter(config.model, config.model_args, config)
    s = Session(config, dict(load_run_data(config)), adapter, {})
    ctx, examples = s.context(), s.context("text_examples")
    for task in TASKS:
        vectors = torch.stack([s.vector(task, seed, "text_examples") for seed in (0, 1)])
        assert not torch.equal(vectors[0], vectors[1])
        items = ctx.items(task, "test")
        queries = [ctx.query_prompt(r) for r in items]
        patched = engine.patch_last_token(adapter, queries, vectors[1, 2], layer=2)
        hits = ctx.score_tokens(task, items, patched.tolist(), queries)["lenient"]
        assert stored[task]["text_examples"][1] == [int(h) for h in hits]
        in_context = [examples.spec_and_query_prompt(task, r, 1) for r in items]
        answered = engine.first_tokens(adapter, in_context)
        hits = ctx.score_tokens(task, items, answered.tolist(), in_context)["lenient"]
        assert stored[task]["text_examples prompt"][1] == [int(h) for h in hits]
        # validation: each seed's curve of its own vector, then the mean over the seeds
        items = ctx.items(task, "validation")
        queries = [ctx.query_prompt(r) for r in items]
        ids = engine.sweep_layers(adapter, queries, vectors)  # [n, seeds, layers]
        curves = [
            [
                statistics.fmean(
                    ctx.score_tokens(task, items, ids[:, k, la].tolist(), queries)["lenient"]
                )
                for la in range(adapter.num_layers)
            ]
            for k in (0, 1)
        ]
        mean = [statistics.fmean(pair) for pair in zip(*curves, strict=True)]
        assert result["validation_curve"]["text_examples"][task] == pytest.approx(mean)


# -- one file per setting: an analysis's identity keys its file ---------------------------------
ROOT = Path(__file__).resolve().parents[1]
BASE = ["--tasks", ",".join(TASKS), "--seeds", "0", "--limit", "6", "--layer", "2"]


def _no_model(monkeypatch):
    """A refusal must come before the model loads: loading one fails the test."""
    import harness.adapters

    def refuse(*_args, **_kwargs):
        raise AssertionError("the model was loaded for a refused analysis")

    monkeypatch.setattr(harness.adapters, "load_adapter", refuse)


def _refused(argv, path, capsys, *there_here):
    """`analyze argv` exits 2 with one line naming the file, what differs and the way out."""
    assert main(["analyze", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("vlm-tv-eval analyze: error: ")
    assert str(path) in err and "of another setting" in err
    assert "give another --output_path, or remove it" in err
    for words in there_here:
        assert words in err, (words, err)


@pytest.mark.parametrize(
    "change, there_here",
    [
        (["--seeds", "0,1"], "--seeds [0] there, [0, 1] here"),
        (["--layer", "1"], "--layer 2 there, 1 here"),
        (["--tasks", "country_capital"], "--tasks"),
        (["--n_shot", "3"], "--n_shot 5 there, 3 here"),
        (["--template", "paper"], '--template null there, "paper" here'),
        (["--spec", "text_examples"], "--spec given false there, true here"),
        (["--spec", "instruction"], '--spec "text_examples" there, "instruction" here'),
        (["--limit", "4"], "--limit 6 there, 4 here"),
    ],
)
def test_other_run_flags_never_replace_an_analysis_file(
    change, there_here, tiny_llama_path, tmp_path, monkeypatch, capsys
):
    """Two settings of one analysis into one --output_path: the second is refused, naming the
    file and the flag that differs, before the model loads, and the first file is untouched;
    given its own --output_path it is written there, so both results are kept."""
    argv = ["cosine", "--model", f"hf:{tiny_llama_path}", *BASE]
    assert main(["analyze", *argv, "--output_path", str(tmp_path / "a")]) == 0
    [path] = tmp_path.glob("a/*/analysis/cosine.json")
    first = path.read_bytes()
    capsys.readouterr()
    with monkeypatch.context() as m:
        _no_model(m)
        _refused([*argv, *change, "--output_path", str(tmp_path / "a")], path, capsys, there_here)
    assert path.read_bytes() == first
    assert main(["analyze", *argv, *change, "--output_path", str(tmp_path / "b")]) == 0
    [other] = tmp_path.glob("b/*/analysis/cosine.json")
    assert json.loads(first)["identity"]["config"]["seeds"] == [0]
    assert json.loads(other.read_text())["identity"] != json.loads(first)["identity"]
    assert path.read_bytes() == first


def test_the_same_setting_rerun_replaces_its_own_file(tiny_llama_path, tmp_path, capsys):
    """The same flags replace their own file, and so do options the analysis does not read
    (cosine reads none: --max_r and --runs change none of its numbers)."""
    argv = ["cosine", "--model", f"hf:{tiny_llama_path}", *BASE, "--output_path", str(tmp_path)]
    assert main(["analyze", *argv]) == 0
    [path] = tmp_path.glob("*/analysis/cosine.json")
    for extra in ([], ["--max_r", "3", "--runs", "7", "--points", "5"]):
        doc = json.loads(path.read_text())
        doc["result"]["marker"] = "an earlier file"
        path.write_text(json.dumps(doc))
        assert main(["analyze", *argv, *extra]) == 0
        doc = json.loads(path.read_text())
        assert "marker" not in doc["result"] and validate(doc, "analysis") == []
        assert doc["identity"]["options"] == {} and doc["identity"]["analysis"] == "cosine"
    assert str(path) in capsys.readouterr().out


def test_another_max_r_never_replaces_a_scaling_file(seeded, monkeypatch, capsys):
    """The tester's case: `scaling --max_r 1` after `--max_r 2` into the same folder."""
    doc, _ = seeded["scaling"]
    out = doc["config"]["output_path"]
    [path] = Path(out).glob("*/analysis/scaling.json")
    before = path.read_bytes()
    argv = ["scaling", "--model", doc["config"]["model"], "--tasks", ",".join(TASKS)]
    argv += ["--seeds", "0,1", "--limit", "6", "--layer", "2", "--output_path", out]
    _no_model(monkeypatch)
    _refused([*argv, "--max_r", "1"], path, capsys, "--max_r 2 there, 1 here")
    _refused([*argv], path, capsys, "--max_r 2 there, 6 here")  # the default is a setting too
    assert path.read_bytes() == before
    assert json.loads(before)["identity"]["options"] == {"max_r": 2}


def test_write_outputs_refuses_another_settings_file_and_drops_a_stale_figure(session, tmp_path):
    """The check is made again when the file is written (another run may have written it
    meanwhile); a result without a figure leaves no earlier PNG beside it."""
    from harness.analysis.common import write_outputs
    from harness.errors import ConfigError

    s = session()
    s.config = dataclasses.replace(s.config, output_path=str(tmp_path))
    result = {"layer": {"layer": 2, "source": "--layer"}, "per_layer": {}, "task_matrix": {}}

    def figure(path):
        path.write_bytes(b"\x89PNG\r\n\x1a\n")

    path, png = write_outputs(s, "cosine", result, figure, 1.0)
    assert png is not None and png.exists()
    assert write_outputs(s, "cosine", result, None, 1.0) == (path, None)
    assert not png.exists()
    before = path.read_bytes()
    s.config = dataclasses.replace(s.config, seeds=(0, 1))
    with pytest.raises(ConfigError, match=re.escape("--seeds [0] there, [0, 1] here")):
        write_outputs(s, "cosine", result, figure, 1.0)
    assert path.read_bytes() == before and not png.exists()


@pytest.mark.parametrize(
    "content, why",
    [
        ("not json", "is not readable, valid JSON"),
        ('{"kind": "results"}', "is not a cosine analysis file"),
        ('{"kind": "analysis", "analysis": "tsne"}', "is not a cosine analysis file"),
        ('{"kind": "analysis", "analysis": "cosine"}', "records no identity, and its config"),
    ],
)
def test_a_file_that_is_no_analysis_of_this_setting_is_refused(content, why, tmp_path):
    from harness.analysis import parse
    from harness.analysis.common import check_output, identity, json_path
    from harness.errors import ConfigError

    name, config, options, given = parse(["cosine", "--output_path", str(tmp_path)])
    path = json_path(config, name)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(f"{path} {why}")):
        check_output(path, identity(name, config, options, given))
    assert path.read_text() == content


# The Makefile's commands that wrote the committed analysis files (`make analyses`, with and
# without MODEL, and `make template-paper`), which were written before analyses recorded their
# identity: their config and options must say it.
def _make(args, model):
    """`analyze ARGS` with `$(if $(MODEL),--model $(MODEL))` after the name."""
    return [args[0], *(["--model", model] if model else []), *args[1:]]


COMMITTED = [
    *[_make([n, "--output_path", "docs"], m) for n in ANALYSES for m in ("", "gemma3-270m")],
    *[
        _make(["overhead", "--context", "dense", "--output_path", "docs/overhead-dense"], m)
        for m in ("", "gemma3-270m")
    ],
    *[
        _make(["spec-curves", "--template", "paper", "--output_path", "docs/template-paper"], m)
        for m in ("smollm2-135m", "gemma3-270m")
    ],
]


@pytest.mark.parametrize("argv", COMMITTED)
def test_the_committed_analysis_files_are_their_make_commands_own(argv, monkeypatch):
    """`make analyses` replaces the committed files (each is its command's own setting, read
    from the config and options it records), and another setting there is refused: the README's
    files cannot be overwritten by a run of other flags."""
    from harness.analysis import parse
    from harness.analysis.common import _not_own, identity, json_path

    monkeypatch.chdir(ROOT)
    name, config, options, given = parse(argv)
    path = json_path(config, name)
    assert path.is_file(), path
    assert _not_own(path, identity(name, config, options, given)) is None
    name, config, options, given = parse([*argv, "--seeds", "0"])
    assert "--seeds [0, 1, 2] there, [0] here" in _not_own(
        path, identity(name, config, options, given)
    )


def test_a_file_without_an_identity_is_read_from_its_config(seeded, tmp_path):
    """A file written before analyses recorded their identity: its config, options and (for
    the spec-comparing analyses) the specs it compared say whose it is."""
    from harness.analysis import parse
    from harness.analysis.common import _not_own, identity

    doc, _ = seeded["noise"]
    legacy = {k: v for k, v in doc.items() if k != "identity"}
    path = tmp_path / "noise.json"
    path.write_text(json.dumps(legacy))
    argv = ["noise", "--model", doc["config"]["model"], "--tasks", ",".join(TASKS)]
    argv += ["--seeds", "0,1", "--limit", "6", "--layer", "2"]
    assert _not_own(path, identity(*parse(argv))) is None
    assert "--swaps [0, 1, 2] there, [0, 1] here" in _not_own(
        path, identity(*parse([*argv, "--swaps", "0,1"]))
    )
    # a logit-lens of one spec was run with --spec, which narrows the specs it compares
    lens = {**legacy, "analysis": "logit-lens", "result": {"specs": ["text_examples"]}}
    path.write_text(json.dumps(lens))
    lens_argv = ["logit-lens", *argv[1:]]
    assert _not_own(path, identity(*parse([*lens_argv, "--spec", "text_examples"]))) is None
    assert "--spec given true there, false here" in _not_own(path, identity(*parse(lens_argv)))


def test_every_option_an_analysis_reads_is_in_its_identity():
    """Each module's `options.get("X") or DEFAULT` names an option of `OPTIONS[name]`, with
    the same default; the command line's defaults give those values too."""
    import ast

    from harness.analysis import ANALYSES as MODULES
    from harness.analysis import OPTIONS, parse
    from harness.analysis.common import identity

    for name, (module, _) in MODULES.items():
        source = (ROOT / "harness" / "analysis" / f"{module}.py").read_text()
        read = set(re.findall(r"options(?:\.get\(|\[)\"(\w+)\"", source))
        assert read == set(OPTIONS[name]), (name, read)
        for option, default in re.findall(r"options\.get\(\"(\w+)\"\) or ([^)\n]+)", source):
            assert ast.literal_eval(default) == OPTIONS[name][option], (name, option)
        assert identity(*parse([name]))["options"] == OPTIONS[name]
