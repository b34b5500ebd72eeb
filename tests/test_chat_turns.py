"""`--template model`: the paper's Table 10 prompts, each example its own chat turn, with the
turn strings taken from the tokenizer's chat template; `--template model_one_turn`: the older
whole-prompt-in-one-user-turn format, kept and recorded as a different run."""

from __future__ import annotations

import json
import shutil

import pytest
from examples import run_results
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from harness.adapters import make_adapter
from harness.cli import main
from harness.config import RunConfig
from harness.prepare import load_run_data
from harness.store import run_id
from harness.templates import derive_chat_turns

# Idefics2's format with string content: "User:{x}<end_of_utterance>\nAssistant:{y}...", and a
# BOS of its own, which the tokenizer also adds (so the prompt text must not carry it).
IDEFICS2_LIKE = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] | capitalize }}:{{ m['content'] }}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
WORDS = ["User", "Assistant", "System", ":", "\n", "<end_of_utterance>", "Q", "A"]
WORDS += ["France", "Paris", "Peru", "Lima", "Chile", "Santiago", "Say", "the", "capital"]


def _word_tokenizer(chat_template: str = IDEFICS2_LIKE) -> PreTrainedTokenizerFast:
    """One token per word, colon, newline or marker, so token columns can be written by hand;
    a BOS added on encoding, as Idefics2's tokenizer does."""
    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(
        Regex(r"<end_of_utterance>|\w+|[^\w ]| "), behavior="isolated"
    )
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    fast.chat_template = chat_template
    return fast


def _adapter(chat: str | bool, template: str = "paper"):
    adapter = make_adapter("hf:./tiny", template=template, chat=chat)
    adapter.tokenizer = _word_tokenizer()
    return adapter


EXAMPLES = [("France", "Paris"), ("Peru", "Lima")]

# The paper's Table 10 prompt: each example a user turn and the assistant's answer, the query a
# last user turn and the generation prompt; no BOS in the text (the tokenizer adds it).
TURNS_TEXT = (
    "User:France<end_of_utterance>\nAssistant:Paris<end_of_utterance>\n"
    "User:Peru<end_of_utterance>\nAssistant:Lima<end_of_utterance>\n"
    "User:Chile<end_of_utterance>\nAssistant:"
)


def test_examples_and_query_are_each_their_own_turn():
    adapter = _adapter("model")
    prompt = adapter.example_prompt(EXAMPLES, query="Chile")
    assert prompt.text == TURNS_TEXT
    batch = adapter.encode([prompt])
    # <s> User : France <eou> \n Assistant : Paris <eou> \n User : Peru <eou> \n Assistant :
    # Lima <eou> \n User : Chile <eou> \n Assistant : -> the last ':' is column 27, where the
    # prompt baseline answers; the task token stays on the last example's marker (17).
    assert batch.input_ids.shape[1] - 1 == 27
    assert adapter.decode_token(batch.input_ids[0, 27]) == ":"
    assert adapter.decode_token(batch.input_ids[0, 26]) == "Assistant"
    assert int(batch.task_index[0]) == 17


def test_a_spec_prompt_puts_the_task_token_on_the_last_examples_marker():
    adapter = _adapter("model")
    prompt = adapter.example_prompt(EXAMPLES)
    assert prompt.text == TURNS_TEXT.split("User:Chile")[0]
    assert prompt.text[prompt.task_char - len("Assistant") : prompt.task_char + 1] == "Assistant:"
    batch = adapter.encode([prompt])
    # <s> User : France <eou> \n Assistant : Paris <eou> \n User : Peru <eou> \n Assistant(16) :(17)
    assert int(batch.task_index[0]) == 17
    assert adapter.decode_token(batch.input_ids[0, 18]) == "Lima"
    # The vector prompt carries the query after the demos, as the authors' does: same token.
    with_query = adapter.encode([adapter.example_prompt(EXAMPLES, query="Chile")])
    assert int(with_query.task_index[0]) == 17


def test_queries_instructions_and_the_system_turn():
    adapter = _adapter("model")
    assert adapter.query_prompt("Chile").text == "User:Chile<end_of_utterance>\nAssistant:"
    assert adapter.query_prompt("Chile").task_char is None  # the end of the generation prompt
    # An instruction opens the first user turn.
    ensemble = adapter.example_prompt(EXAMPLES[:1], query="Chile", instruction="Say the capital")
    assert ensemble.text == (
        "User:Say the capital\n\nFrance<end_of_utterance>\nAssistant:Paris<end_of_utterance>\n"
        "User:Chile<end_of_utterance>\nAssistant:"
    )
    assert adapter.instruction_prompt("Say the capital").text == (
        "User:Say the capital<end_of_utterance>\nAssistant:"
    )
    # The overriding study's system prompt is a system turn before the first user turn.
    assert adapter.query_prompt("Chile", system="Say Lima").text == (
        "System:Say Lima<end_of_utterance>\nUser:Chile<end_of_utterance>\nAssistant:"
    )
    record = adapter.prompting()
    assert record["name"] == "model" and record["chat"]["format"] == "model"
    assert record["example"] == "User:{x}<end_of_utterance>\nAssistant:{y}<end_of_utterance>\n"
    assert record["query"] == "User:{x}<end_of_utterance>\nAssistant:"


def test_one_turn_keeps_the_whole_prompt_in_one_user_turn():
    adapter = _adapter("model_one_turn")
    prompt = adapter.example_prompt(EXAMPLES, query="Chile")
    assert prompt.text == (
        "User:Q:France\nA:Paris\n\nQ:Peru\nA:Lima\n\nQ:Chile\nA:<end_of_utterance>\nAssistant:"
    )
    record = adapter.prompting()
    assert record["name"] == "paper" and record["chat"]["format"] == "model_one_turn"
    assert record["chat"]["before"] == "User:"
    # The two formats never share a cached vector: the cache keys on `chat`.
    assert _adapter("model").chat != adapter.chat
    with pytest.raises(ValueError, match="chat must be one of model, model_one_turn"):
        _adapter(True)  # the flag's values only: no second name for the one-turn format


def test_the_two_formats_are_different_runs():
    data = load_run_data(RunConfig(tasks=("country_capital",)))
    templates = ("model", "model_one_turn", None)
    ids = {run_id(RunConfig(tasks=("country_capital",), template=t), data) for t in templates}
    assert len(ids) == 3
    assert RunConfig(template="model").chat == "model"
    assert RunConfig(template="model_one_turn").chat == "model_one_turn"
    assert RunConfig(template="paper").chat is False
    assert RunConfig(template="model_one_turn").named_template is None


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        # Only the last message is written: turns are dropped.
        ("{{ messages[-1]['content'] }}", "drops or repeats messages"),
        # User and assistant written back to back: no answer marker.
        ("{% for m in messages %}{{ m['content'] }}{% endfor %}", "merges a user turn"),
        # Turns numbered: an example's turn depends on its place.
        (
            "{% for m in messages %}{{ m['role'] }} {{ loop.index }}:{{ m['content'] }}\n"
            "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}",
            "differently depending on where",
        ),
        # add_generation_prompt ignored.
        (
            "{% for m in messages %}{{ m['role'] }}:{{ m['content'] }}\n{% endfor %}",
            "no generation prompt",
        ),
    ],
)
def test_templates_that_drop_or_merge_turns_are_refused(template, problem):
    adapter = _adapter("model")
    adapter.tokenizer.chat_template = template
    with pytest.raises(ValueError, match=problem):
        adapter.query_prompt("Chile")


def test_a_template_without_a_system_role_is_refused_for_the_system_turn():
    def render(messages, generation):
        return "".join(f"{m['content']}|" for m in messages if m["role"] != "system") + "A:"

    with pytest.raises(ValueError, match="drops the system message"):
        derive_chat_turns(render, "'m'", system="Be brief")


@pytest.fixture(scope="module")
def chat_llama_path(tiny_llama_path, tmp_path_factory) -> str:
    """The tiny Llama with an Idefics2-like chat template on its tokenizer."""
    path = tmp_path_factory.mktemp("tiny-chat-llama") / "model"
    shutil.copytree(tiny_llama_path, path)
    config = path / "tokenizer_config.json"
    doc = json.loads(config.read_text())
    doc["chat_template"] = IDEFICS2_LIKE
    config.write_text(json.dumps(doc))
    return str(path)


def test_a_tiny_run_in_each_chat_format(chat_llama_path, tmp_path):
    docs = {}
    for template in ("model", "model_one_turn"):
        out = tmp_path / template
        args = ["--model", f"hf:{chat_llama_path}", "--tasks", "country_capital"]
        args += ["--limit", "4", "--seeds", "0", "--template", template]
        assert main([*args, "--output_path", str(out)]) == 0
        docs[template] = run_results(out)
    turns, one_turn = docs["model"], docs["model_one_turn"]
    assert turns["run_id"] != one_turn["run_id"]
    assert turns["config"]["template"]["chat"]["format"] == "model"
    assert turns["config"]["template"]["query"] == "User:{x}<end_of_utterance>\nAssistant:"
    assert one_turn["config"]["template"]["chat"]["format"] == "model_one_turn"
    for doc in docs.values():
        assert set(doc["results"]["country_capital"]) == {
            "no_context",
            "majority",
            "prompt",
            "patch",
        }


# Idefics2's processor template reads content as a list of parts ("User: " before text).
IDEFICS2_PARTS = (
    "{% for m in messages %}{{ m['role'] | capitalize }}: {% for part in m['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


def test_image_examples_and_queries_in_turns_on_a_tiny_idefics2(tmp_path):
    """Table 10 as the paper writes it (`leaderboard.paper.CHAT_TEMPLATE`): no space after
    `User:` or `Assistant:`, an image right after `User:`, whatever the checkpoint's own chat
    template writes (Idefics2's: `User: {x}`, `Assistant: {y}`)."""
    import tiny_vlms
    from PIL import Image

    from leaderboard.paper import CHAT_TEMPLATE

    path = str(tiny_vlms.build_idefics2(tmp_path))
    adapter = make_adapter("idefics2", pretrained=path, chat="model")
    adapter.load()
    adapter.tokenizer.chat_template = None  # only the processor has one, as on the Hub
    adapter.processor.chat_template = IDEFICS2_PARTS
    red, blue, green = (Image.new("RGB", (48, 30), c) for c in ("red", "blue", "green"))
    spec = adapter.example_prompt([(red, "Paris"), (blue, "Lima")])
    both = adapter.example_prompt([(red, "Paris"), (blue, "Lima")], query=green)
    assert spec.text == (
        "User:<image><end_of_utterance>\nAssistant:Paris<end_of_utterance>\n"
        "User:<image><end_of_utterance>\nAssistant:Lima<end_of_utterance>\n"
    )
    assert both.text.endswith("User:<image><end_of_utterance>\nAssistant:")
    assert adapter.query_prompt("Chile").text == "User:Chile<end_of_utterance>\nAssistant:"
    record = adapter.prompting()
    assert record["example"] == CHAT_TEMPLATE["example"] + "<end_of_utterance>\n"
    assert record["query"] == CHAT_TEMPLATE["query"]
    assert [len(p.images) for p in (spec, both)] == [2, 3]
    assert both.images[2].getpixel((0, 0)) == (0, 128, 0)  # images in the order of the turns
    batch = adapter.encode([spec, both, adapter.query_prompt(green)])
    tokens = adapter.tokenizer.convert_ids_to_tokens
    for row in (0, 1):  # the spec, and the spec with its query: the last example's marker
        col = int(batch.task_index[row])
        assert tokens(int(batch.input_ids[row, col])).endswith(":")
        after = adapter.tokenizer.decode(batch.input_ids[row, col + 1 :].tolist())
        assert after.startswith("Lima")
    assert int(batch.task_index[2]) == batch.input_ids.shape[1] - 1
    assert tokens(int(batch.input_ids[2, -1])).endswith(":")
