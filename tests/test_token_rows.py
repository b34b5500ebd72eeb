"""Two ways of reading one prompt's tokens must agree: `token_rows` (which the shared-prefix
paths cut at the task token) and `encode` (which the model is fed). Checked for every adapter,
every prompt kind, with the test tokenizers as they are (no BOS) and with a BOS-adding one,
where Mantis-Fuyu's text prompts (no special tokens, as MFuyuProcessor writes them) once read
the task vector one token early."""

from __future__ import annotations

import pytest
import tiny_vlms
from PIL import Image
from tokenizers import processors

from harness import engine, prefix
from harness.adapters import make_adapter

BUILDERS = {
    "idefics2": tiny_vlms.build_idefics2,
    "llava-1.5": tiny_vlms.build_llava,
    "mantis-fuyu": tiny_vlms.build_fuyu,
}
EXAMPLES = [("France", "Paris"), ("Peru", "Lima"), ("Japan", "Tokyo")]
CHAT = (
    "{% for m in messages %}{{ m['role'] }}:{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


@pytest.fixture(scope="module")
def paths(tmp_path_factory, tiny_llama_path):
    out = {"hf": tiny_llama_path}
    for name, build in BUILDERS.items():
        out[name] = str(build(tmp_path_factory.mktemp(name)))
    return out


def _adapter(paths, name, bos, chat=False):
    model = f"hf:{paths['hf']}" if name == "hf" else name
    args = {} if name == "hf" else {"pretrained": paths[name]}
    adapter = make_adapter(model, chat=chat, **args)
    adapter.load()
    if chat:
        adapter.tokenizer.chat_template = CHAT
    if bos:  # the tokenizer now adds <s> itself, as Llama-family tokenizers do
        bos_id = adapter.tokenizer.convert_tokens_to_ids("<s>")
        adapter.tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
        )
        assert adapter.tokenizer("Q")["input_ids"][0] == bos_id
    return adapter


def _prompt_kinds(adapter):
    return {
        "spec": adapter.example_prompt(EXAMPLES),
        "spec + query (vector prompt)": adapter.example_prompt(EXAMPLES, query="Chile"),
        "prompt baseline": adapter.example_prompt(EXAMPLES[:2], query="Chile"),
        "ensemble baseline": adapter.example_prompt(EXAMPLES[:2], "Chile", "Name the capital"),
        "query": adapter.query_prompt("Chile"),
        "instruction + query": adapter.query_prompt("Chile", instruction="Name the capital"),
        "instruction": adapter.instruction_prompt("The capital city of the country:"),
    }


def _encoded_rows(adapter, prompts):
    rows = []
    for p in prompts:
        batch = adapter.encode([p])
        mask = batch.model_inputs["attention_mask"][0].bool()
        rows.append(batch.input_ids[0][mask.to(batch.input_ids.device)].tolist())
    return rows


@pytest.mark.parametrize("bos", [False, True], ids=["no-bos", "bos"])
@pytest.mark.parametrize("name", ["hf", "idefics2", "llava-1.5", "mantis-fuyu"])
def test_token_rows_are_what_encode_feeds(paths, name, bos):
    adapter = _adapter(paths, name, bos)
    kinds = _prompt_kinds(adapter)
    prompts = list(kinds.values())
    rows = adapter.token_rows(prompts)
    for kind, row, fed in zip(kinds, rows, _encoded_rows(adapter, prompts), strict=True):
        assert row == fed, f"{name}, {kind}"
    assert adapter.prompt_lengths(prompts) == [len(r) for r in rows]


@pytest.mark.parametrize("bos", [False, True], ids=["no-bos", "bos"])
def test_token_rows_in_the_chat_format(paths, bos):
    adapter = _adapter(paths, "hf", bos, chat="model")
    kinds = _prompt_kinds(adapter)
    prompts = list(kinds.values())
    for kind, row, fed in zip(
        kinds, adapter.token_rows(prompts), _encoded_rows(adapter, prompts), strict=True
    ):
        assert row == fed, kind


@pytest.mark.parametrize("name", ["hf", "idefics2", "llava-1.5", "mantis-fuyu"])
def test_shared_prefix_states_read_the_same_token_as_a_whole_batch(paths, name):
    """With a BOS-adding tokenizer: the shared-prefix extraction (rows cut at encode's task
    index) equals the whole-batch capture at encode's task index, for every adapter."""
    adapter = _adapter(paths, name, bos=True)
    prompts = [adapter.example_prompt(EXAMPLES[:k], query="Chile") for k in (2, 3)]
    prompts += [adapter.example_prompt(EXAMPLES[1:], query="Spain")]
    shared = prefix.states_at_task_tokens(adapter, prompts, batch_size=8)
    whole = engine.capture_task_states(adapter, prompts, batch_size=8)
    assert shared is not None
    assert (shared - whole).abs().max() < 1e-4


def test_image_prompts_stay_on_the_whole_batch_path(paths):
    adapter = _adapter(paths, "mantis-fuyu", bos=False)
    image = Image.new("RGB", (16, 8), (255, 0, 0))
    assert adapter.token_rows([adapter.query_prompt(image)]) is None
