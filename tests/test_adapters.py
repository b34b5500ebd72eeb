from importlib.metadata import EntryPoint

import pytest
import torch

import harness.adapters as adapters
from harness.adapters import adapter_class, make_adapter
from harness.adapters.base import Adapter
from harness.adapters.causal_lm import CausalLMAdapter
from harness.cli import main
from harness.vectors import cached_vector


def test_hf_prefix_gives_the_generic_adapter():
    cls, implied = adapter_class("hf:some/repo")
    assert cls is CausalLMAdapter and implied == {"pretrained": "some/repo"}


def test_unknown_model_lists_known_ones():
    with pytest.raises(ValueError, match="smollm2-135m"):
        make_adapter("llama-99b")


def test_unknown_model_arg_is_named():
    with pytest.raises(ValueError, match="colour"):
        make_adapter("smollm2-135m", colour="blue")


class PluginAdapter(Adapter):
    name = "my-plugin-model"
    description = "a model from another package"


def test_adapters_from_other_packages_via_entry_points(monkeypatch):
    ep = EntryPoint("my-plugin-model", f"{__name__}:PluginAdapter", adapters.ENTRY_POINT_GROUP)
    monkeypatch.setattr(
        adapters, "entry_points", lambda group: [ep] if group == adapters.ENTRY_POINT_GROUP else []
    )
    assert "my-plugin-model" in adapters.adapter_names()
    cls, _ = adapter_class("my-plugin-model")
    assert cls is PluginAdapter


def test_ls_models(capsys):
    assert main(["ls", "models"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m" in out and "hf" in out


def test_text_only_adapter_rejects_images(tiny_adapter):
    with pytest.raises(ValueError, match="text-only"):
        tiny_adapter.query_prompt(object())


def test_decoder_layers_are_found(tiny_adapter):
    assert tiny_adapter.num_layers == 4
    assert tiny_adapter.layers is tiny_adapter.model.model.layers


def test_task_vectors_are_cached_with_metadata(tiny_adapter, monkeypatch):
    from safetensors import safe_open

    import harness.engine as engine

    prompts = [tiny_adapter.example_prompt([("France", "Paris"), ("Peru", "Lima")])]
    meta = {"spec": "text_examples", "seed": 3, "n_shot": 2}
    first = cached_vector(tiny_adapter, 4, "country_capital", meta, prompts)
    assert first.shape == (4, 64)

    def boom(*a, **k):
        raise AssertionError("extracted again instead of reading the cache")

    monkeypatch.setattr(engine, "extract_task_vector", boom)
    again = cached_vector(tiny_adapter, 4, "country_capital", meta, prompts)
    assert torch.equal(first, again)
    from benchmark.files import cache_root

    found = []
    for path in (cache_root() / "vectors").rglob("country-capital-*.safetensors"):
        with safe_open(str(path), "pt") as f:
            md = f.metadata()
        if md.get("seed") == "3" and md.get("n_shot") == "2":
            found.append(md)
    assert len(found) == 1
    assert found[0]["task"] == "country_capital" and found[0]["spec"] == "text_examples"
    assert found[0]["pretrained"] == tiny_adapter.pretrained


def test_a_cached_vector_is_not_reused_after_the_tokenizer_changes(tiny_llama_path, monkeypatch):
    """Same weights, same prompt text, another tokenization (a tokenizer fix, a BOS now added):
    another vector, so the cache must miss."""
    from tokenizers import processors

    import harness.engine as engine

    def loaded():
        adapter = make_adapter(f"hf:{tiny_llama_path}")
        adapter.load()
        return adapter

    plain, with_bos = loaded(), loaded()
    bos = with_bos.tokenizer.convert_tokens_to_ids("<s>")
    with_bos.tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bos)]
    )
    assert plain.describe()["fingerprint"] == with_bos.describe()["fingerprint"]  # weights
    assert plain.inputs_fingerprint() != with_bos.inputs_fingerprint()
    prompts = [plain.example_prompt([("Chile", "Santiago"), ("Peru", "Lima")])]
    meta = {"spec": "text_examples", "seed": 9, "n_shot": 2}
    first = cached_vector(plain, 4, "country_capital", meta, prompts)
    calls = []
    real = engine.extract_task_vector
    monkeypatch.setattr(engine, "extract_task_vector", lambda *a: calls.append(1) or real(*a))
    assert torch.equal(cached_vector(plain, 4, "country_capital", meta, prompts), first)
    assert calls == []  # the same adapter reads its cache
    other = cached_vector(with_bos, 4, "country_capital", meta, prompts)
    assert calls == [1] and not torch.equal(other, first)


def test_load_in_4bit_uses_the_authors_quantisation():
    """Only the arguments are checked: bitsandbytes needs a GPU, which these machines lack."""
    seen = {}

    class FakeModel:
        @classmethod
        def from_pretrained(cls, name, **kwargs):
            seen.update(kwargs, name=name)
            return cls()

    adapter = make_adapter("idefics2", load_in_4bit=True, device="cuda:0")
    adapter._load_weights(FakeModel)
    q = seen["quantization_config"]
    assert seen["name"] == "HuggingFaceM4/idefics2-8b"
    assert seen["revision"] == "2c42686c57fe21cf0348c9ce1077d094b72e7698"
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.float16 and seen["device_map"] == "cuda:0"
    assert seen["dtype"] == torch.bfloat16  # bf16 on GPU by default


def test_a_user_checkpoint_does_not_inherit_the_pinned_revision():
    assert make_adapter("llava-1.5").revision == "a272c74b2481d8aff3aa6fc2c4bf891fe57334fb"
    assert make_adapter("llava-1.5", pretrained="/models/my-llava").revision is None
    assert make_adapter("llava-1.5", revision="abc").revision == "abc"


def test_vlm_and_llm_pairs_are_recorded():
    assert make_adapter("idefics2").paired_with == "mistral-7b"
    assert make_adapter("mistral-7b").paired_with == "idefics2"
    assert make_adapter("llava-1.5").paired_with == "vicuna-7b"
    assert make_adapter("vicuna-7b").paired_with == "llava-1.5"
