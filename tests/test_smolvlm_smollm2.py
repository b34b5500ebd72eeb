"""LLM->VLM "at the same layer", checked end to end on real weights: a SmolVLM-architecture
model (Idefics3 layout, as HuggingFaceTB/SmolVLM-256M-Instruct is saved) whose text model
carries the real SmolLM2-135M weights, served by `hf-vlm`, reads text-only prompts exactly as
`--model smollm2-135m` does: the same ids, the same task vectors (cosine 1 within float
error), the same answers, the same answers under each other's patches."""

from __future__ import annotations

import copy

import pytest
import tiny_vlms_more
import torch

from harness import engine
from harness.adapters import make_adapter

EXAMPLES = [("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "Lima"), ("Egypt", "Cairo")]
QUERIES = ["Spain", "Chile", "Kenya", "Italy"]


def _smolvlm_with(llm, folder):
    """Idefics3 with a tiny vision tower and SmolLM2-135M as its text model (its vocabulary
    grown by the image tokens, whose rows are new; every other weight is SmolLM2's)."""
    import transformers

    tokenizer = copy.deepcopy(llm.tokenizer)
    tokenizer.add_special_tokens({"additional_special_tokens": tiny_vlms_more.IDEFICS3_SPECIALS})
    text = llm.model.config.to_dict()
    text.update(vocab_size=len(tokenizer), tie_word_embeddings=False)
    config = transformers.Idefics3Config(
        vision_config=dict(tiny_vlms_more.VISION),
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=tiny_vlms_more.SCALE_FACTOR,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = transformers.Idefics3ForConditionalGeneration(config)
    weights = dict(llm.model.model.state_dict())
    rows = weights["embed_tokens.weight"].shape[0]
    grown = model.model.text_model.embed_tokens.weight.detach().clone()
    grown[:rows] = weights.pop("embed_tokens.weight")
    model.model.text_model.load_state_dict({**weights, "embed_tokens.weight": grown})
    head = model.lm_head.weight.detach().clone()
    head[:rows] = llm.model.get_output_embeddings().weight
    model.lm_head.weight.data.copy_(head)
    processor = tiny_vlms_more.idefics3_processor(
        tokenizer, tiny_vlms_more.CHAT_TEMPLATES["idefics3"]
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    llm = make_adapter("smollm2-135m")
    llm.load()
    vlm = make_adapter(f"hf-vlm:{_smolvlm_with(llm, tmp_path_factory.mktemp('smolvlm'))}",
                       template="spaced")  # fmt: skip
    vlm.load()
    return llm, vlm


def test_the_same_ids_and_layers(pair):
    llm, vlm = pair
    assert (vlm.num_layers, vlm.hidden_size) == (llm.num_layers, llm.hidden_size) == (30, 576)
    prompts = [vlm.example_prompt(EXAMPLES, query=q) for q in QUERIES]
    prompts += [vlm.query_prompt(q) for q in QUERIES]
    ours, theirs = vlm.encode(prompts), llm.encode(prompts)
    assert torch.equal(ours.input_ids.cpu(), theirs.input_ids.cpu())
    assert torch.equal(ours.task_index.cpu(), theirs.task_index.cpu())


def test_the_same_task_vectors_and_answers(pair):
    llm, vlm = pair
    specs = [vlm.example_prompt(EXAMPLES[:3], query=q) for q in QUERIES]
    ours = engine.extract_task_vector(vlm, specs)
    theirs = engine.extract_task_vector(llm, specs)
    cosine = torch.nn.functional.cosine_similarity(ours, theirs, dim=-1)
    assert cosine.min() > 1 - 1e-5, cosine.min()
    queries = [vlm.query_prompt(q) for q in QUERIES]
    prompts = [vlm.example_prompt(EXAMPLES, query=q) for q in QUERIES]
    assert torch.equal(engine.first_tokens(vlm, prompts), engine.first_tokens(llm, prompts))
    for layer in (10, 20):  # LLM->VLM: the LLM's vector patched into the VLM at its layer
        into_vlm = engine.patch_last_token(vlm, queries, theirs[layer], layer)
        into_llm = engine.patch_last_token(llm, queries, ours[layer], layer)
        assert torch.equal(into_vlm, into_llm), layer
