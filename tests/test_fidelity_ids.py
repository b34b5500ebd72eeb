"""The ids each adapter feeds the model, and the column it reads or patches, for every prompt
kind, against lists written out by hand from the paper authors' code and each processor.

Authors (g-luo/task_vectors_are_cross_modal, src/xpatch_dataset.py): `format_prompt` writes
each sample as `Q:{x}\\nA:` (x = `<image>` for an image) and, unless it is the query,
`{y}\\n\\n`. The vector prompt is the demos then the query (include_regular); the query prompt
is `Q:{q}\\nA:`; the prompt baseline is the vector prompt answered after its last token; an
instruction is its raw string, read at its last token (`embed_prompt`, src_token -1). The vector
is read at `find_token(match=src_match)`: the src_match-th token from the end whose id is that of
the ":" in "A:" (src_match -3: the last demo's "A:" after the query's "Q:" and "A:";
configs/models/mantis.yaml sets -4 because MFuyuProcessor writes "image {j}: " before each
image, one colon more when the query is an image). configs/models/llava.yaml adds
`image_offset: 575` to the column of a prompt in the image modality, once: transformers 4.44.2
kept one `<image>` id per image and the model expanded it to 576 features. Mantis's specs here
carry an image query, the runs that -4 was set for (with a text query it would land one colon
early: the last demo's "Q:", or "image 1:" after image examples).
Table 10 (Idefics2, `--template model`, as the paper writes it): each example
`User:{x}<end_of_utterance>\\nAssistant:{y}<end_of_utterance>\\n` (x = `<image>` for an image),
the query `User:{q}<end_of_utterance>\\nAssistant:`; match -3 is the last example's "Assistant:".

Processors (transformers 4.44.2 for Idefics2, as harness/adapters/vlm.py replicates it; LLaVA
as installed; Mantis's MFuyuProcessor as harness/adapters/fuyu.py describes it):
  Idefics2: `<image>` -> <fake> + <image> * image_seq_len (4 here) + <fake>, then the tokenizer
    runs on the text; `<s>` first when the tokenizer adds a BOS.
  LLaVA: `<image>` -> <image> * ((32 // 8) ** 2 + 1 CLS - 1 dropped by the "default" feature
    strategy) = 16 copies here (576 in LLaVA-1.5); `<s>` first when the tokenizer adds a BOS.
  Mantis-Fuyu: with images, the text is cut at each `<image>`, segment j < n gets "image {j}: ",
    each non-empty segment is tokenized alone without special tokens and opened by `<s>`, image j
    is |IMAGE| + rows of (|SPEAKER| * cols + |NEWLINE|) closed by |ENDOFIMAGE|; patch 8, and a
    16x8 image is first resized to width 224 (224x112): 28 cols, 14 rows. Without images: the
    text alone, no `<s>` (add_special_tokens=False), whatever the tokenizer's own BOS.

The tiny byte-level BPE tokenizers (tiny_vlms.CORPUS) were checked word by word: "France",
"Paris", "Tokyo" are one token each; "Japan" is Jap+an; "Peru" has no merge (P e r u);
"User" none (U s e r); "Assistant" is A s s is t an t (a+n, then i+s); the instruction is one
token per word (it is a corpus line); " 0" is Ġ0 but " 2" is Ġ+2 (only "image 0: image 1:" was
in the corpus); "\\n" is Ċ and ":" is never merged with its neighbours here.
"""

from __future__ import annotations

import pytest
import tiny_vlms
from PIL import Image
from tokenizers import processors

from harness.adapters import make_adapter

EXAMPLES = [("France", "Paris"), ("Japan", "Tokyo")]
QUERY = "Peru"
INSTRUCTION = "The capital city of the country:"


def image(rgb: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (16, 8), rgb)  # the adapters resize it to 224x112


PROMPTS = {
    "spec_text_text": lambda a: a.example_prompt(EXAMPLES, query=QUERY),
    "spec_text_image": lambda a: a.example_prompt(EXAMPLES, query=image((0, 255, 0))),
    "spec_image_image": lambda a: a.example_prompt(
        [(image((255, 0, 0)), "Paris"), (image((0, 0, 255)), "Tokyo")], query=image((0, 255, 0))
    ),
    "instruction": lambda a: a.instruction_prompt(INSTRUCTION),
    "query_text": lambda a: a.query_prompt(QUERY),
    "query_image": lambda a: a.query_prompt(image((0, 255, 0))),
}
PROMPTS["baseline_text_text"] = PROMPTS["spec_text_text"]  # the same text, read at the end
PROMPTS["baseline_text_image"] = PROMPTS["spec_text_image"]
# Table 10 (`--template model`): the same calls on an adapter made with chat="model".
PROMPTS.update({f"chat_{k}": PROMPTS[k] for k in ("spec_text_text", "spec_image_image")})
PROMPTS["chat_query_image"] = PROMPTS["query_image"]

# -- token runs, by hand ------------------------------------------------------------------------
FAKE, EOU = "<fake_token_around_image>", "<end_of_utterance>"
IDEFICS2_IMAGE = [FAKE, "<image>", "<image>", "<image>", "<image>", FAKE]  # image_seq_len 4
LLAVA_IMAGE = ["<image>"] * 16  # (32 // 8) ** 2 patches + 1 CLS - 1 (strategy "default")
FUYU_IMAGE = ["|IMAGE|", *(["|SPEAKER|"] * 28 + ["|NEWLINE|"]) * 14]  # 224x112, patch 8

# Byte-level BPE, the same merges in all three tiny models:
# fmt: off
DEMOS = [
    "Q", ":", "France", "Ċ", "A", ":", "Paris", "Ċ", "Ċ",  # "Q:France\nA:Paris\n\n"
    "Q", ":", "Jap", "an", "Ċ", "A", ":", "Tokyo", "Ċ", "Ċ",  # "Q:Japan\nA:Tokyo\n\n"
]
# fmt: on
TEXT_QUERY = ["Q", ":", "P", "e", "r", "u", "Ċ", "A", ":"]  # "Q:Peru\nA:"
INSTRUCTION_IDS = ["The", "Ġcapital", "Ġcity", "Ġof", "Ġthe", "Ġcountry", ":"]
# Table 10 pieces: "User:" and "\nAssistant:" (the "\n" after each <end_of_utterance>).
USER = ["U", "s", "e", "r", ":"]
ASSISTANT = ["Ċ", "A", "s", "s", "is", "t", "an", "t", ":"]

# Idefics2 with idefics2-8b's tokenizer.json (tiny_vlms.build_idefics2_llama_letters): the text
# is cut at the special tokens, every piece gets "▁" prepended, then BPE with byte fallback
# ("\n" -> <0x0A>); the merges are LLAMA_STYLE_MERGES (▁Q, User, ▁User, France, an, ...), the new
# letters have none, and the post-processor adds <s>. A `legacy` rebuild would drop the "▁"
# that opens each piece after an image or an <end_of_utterance>.
NL = "<0x0A>"
L_PARIS, L_TOKYO, L_PERU = ["P", "a", "r", "i", "s"], ["T", "o", "k", "y", "o"], list("Peru")
L_JAPAN = ["J", "a", "p", "an"]
L_ASSISTANT = ["▁", NL, "A", "s", "s", "i", "s", "t", "an", "t", ":"]  # "▁\nAssistant:"


def llama(tokens: list[str]) -> list[str]:
    return ["<s>", *tokens]


I2, LL = IDEFICS2_IMAGE, LLAVA_IMAGE
# fmt: off
BYTES = {  # Idefics2 and LLaVA on the byte-level tokenizer differ only in their image runs
    "spec_text_text": lambda img: [*DEMOS, *TEXT_QUERY],
    "spec_text_image": lambda img: [*DEMOS, "Q", ":", *img, "Ċ", "A", ":"],
    "spec_image_image": lambda img: [
        "Q", ":", *img, "Ċ", "A", ":", "Paris", "Ċ", "Ċ",
        "Q", ":", *img, "Ċ", "A", ":", "Tokyo", "Ċ", "Ċ",
        "Q", ":", *img, "Ċ", "A", ":",
    ],
    "instruction": lambda img: INSTRUCTION_IDS,
    "query_text": lambda img: TEXT_QUERY,
    "query_image": lambda img: ["Q", ":", *img, "Ċ", "A", ":"],
}
BYTES["baseline_text_image"] = BYTES["spec_text_image"]  # the vector prompt's text, to answer
TABLE_10 = {  # User:{x}<eou>\nAssistant:{y}<eou>\n ... User:{q}<eou>\nAssistant:
    "chat_spec_text_text": [
        *USER, "France", EOU, *ASSISTANT, "Paris", EOU,
        "Ċ", *USER, "Jap", "an", EOU, *ASSISTANT, "Tokyo", EOU,
        "Ċ", *USER, "P", "e", "r", "u", EOU, *ASSISTANT,
    ],
    "chat_spec_image_image": [
        *USER, *I2, EOU, *ASSISTANT, "Paris", EOU,
        "Ċ", *USER, *I2, EOU, *ASSISTANT, "Tokyo", EOU,
        "Ċ", *USER, *I2, EOU, *ASSISTANT,
    ],
    "chat_query_image": [*USER, *I2, EOU, *ASSISTANT],
}
LLAMA = {
    "spec_text_image": [  # "▁" + the text up to the image, the image, "▁" + "\nA:"
        "▁Q", ":", "France", NL, "A", ":", *L_PARIS, NL, NL,
        "Q", ":", *L_JAPAN, NL, "A", ":", *L_TOKYO, NL, NL,
        "Q", ":", *I2, "▁", NL, "A", ":",
    ],
    "spec_image_image": [
        "▁Q", ":", *I2, "▁", NL, "A", ":", *L_PARIS, NL, NL,
        "Q", ":", *I2, "▁", NL, "A", ":", *L_TOKYO, NL, NL,
        "Q", ":", *I2, "▁", NL, "A", ":",
    ],
    "query_text": ["▁Q", ":", *L_PERU, NL, "A", ":"],  # one piece: one "▁"
    "query_image": ["▁Q", ":", *I2, "▁", NL, "A", ":"],
    "chat_spec_text_text": [  # "User:France" -> ▁User : France; "\nUser:" -> ▁ <0x0A> User :
        "▁User", ":", "France", EOU, *L_ASSISTANT, *L_PARIS, EOU,
        "▁", NL, "User", ":", *L_JAPAN, EOU, *L_ASSISTANT, *L_TOKYO, EOU,
        "▁", NL, "User", ":", *L_PERU, EOU, *L_ASSISTANT,
    ],
    "chat_spec_image_image": [
        "▁User", ":", *I2, EOU, *L_ASSISTANT, *L_PARIS, EOU,
        "▁", NL, "User", ":", *I2, EOU, *L_ASSISTANT, *L_TOKYO, EOU,
        "▁", NL, "User", ":", *I2, EOU, *L_ASSISTANT,
    ],
    "chat_query_image": ["▁User", ":", *I2, EOU, *L_ASSISTANT],
}
FUYU = {  # segments: <s> text "image j: " |IMAGE| grid |ENDOFIMAGE| ... <s> last text
    # Text demos, image query: <s> opens the demos (the prompt carries an image). The column is
    # the 4th ":" from the end (mantis.yaml): "\nA:", "image 0:", the query's "Q:", then the
    # last demo's "A:", the same token as the adapter's task character.
    "spec_text_image": [
        "<s>", *DEMOS, "Q", ":", "image", "Ġ0", ":", "Ġ", *FUYU_IMAGE, "|ENDOFIMAGE|",
        "<s>", "Ċ", "A", ":",
    ],
    # " 2" has no merge (the corpus has "image 0: image 1:" only): Ġ then 2.
    "spec_image_image": [
        "<s>", "Q", ":", "image", "Ġ0", ":", "Ġ", *FUYU_IMAGE, "|ENDOFIMAGE|",
        "<s>", "Ċ", "A", ":", "Paris", "Ċ", "Ċ", "Q", ":", "image", "Ġ1", ":", "Ġ",
        *FUYU_IMAGE, "|ENDOFIMAGE|",
        "<s>", "Ċ", "A", ":", "Tokyo", "Ċ", "Ċ", "Q", ":", "image", "Ġ", "2", ":", "Ġ",
        *FUYU_IMAGE, "|ENDOFIMAGE|",
        "<s>", "Ċ", "A", ":",
    ],
    "instruction": INSTRUCTION_IDS,  # no image: plain text, no <s>
    "query_text": TEXT_QUERY,
    "query_image": [
        "<s>", "Q", ":", "image", "Ġ0", ":", "Ġ", *FUYU_IMAGE, "|ENDOFIMAGE|",
        "<s>", "Ċ", "A", ":",
    ],
    "baseline_text_text": [*DEMOS, *TEXT_QUERY],  # no image: no <s>
}
# fmt: on


def colon_from_end(tokens: list[str], match: int) -> int:
    """The authors' find_token: the position of the match-th ":" from the end."""
    return [i for i, t in enumerate(tokens) if t == ":"][-match]


def authors_column(model: str, kind: str, tokens: list[str]) -> int:
    if not kind.removeprefix("chat_").startswith("spec"):
        return len(tokens) - 1  # query: last ":" = last token; instruction, baseline: the end
    return colon_from_end(tokens, 4 if model == "mantis-fuyu" else 3)


def llava_authors_column(tokens: list[str]) -> int:
    """llava.yaml's column for an image-modality prompt: find_token on 4.44.2's ids, one
    `<image>` per image, then + image_offset once (575 = 576 - 1 there; 16 - 1 here)."""
    runs = zip(tokens, ["", *tokens[:-1]], strict=True)
    unexpanded = [t for t, before in runs if (t, before) != ("<image>", "<image>")]
    return colon_from_end(unexpanded, 3) + len(LLAVA_IMAGE) - 1


def cell(model, bos, kind, tokens, column=None, marks=()):
    column = authors_column(model, kind, tokens) if column is None else column
    name = f"{model}-{'bos' if bos else 'nobos'}-{kind}"
    return pytest.param(model, bos, kind, tokens, column, id=name, marks=marks)


def cells():
    out = []
    for kind, ids in BYTES.items():  # Idefics2 (byte-level), no BOS
        if kind != "spec_text_image":
            out.append(cell("idefics2", False, kind, ids(I2)))
    out += [cell("idefics2", False, k, ids) for k, ids in TABLE_10.items()]
    for kind in ("spec_image_image", "query_image", "instruction"):  # the tokenizer adds <s>
        out.append(cell("idefics2", True, kind, ["<s>", *BYTES[kind](I2)]))
    chat = "chat_spec_text_text"
    out.append(cell("idefics2", True, chat, ["<s>", *TABLE_10[chat]]))
    out += [cell("idefics2-llama", True, k, llama(ids)) for k, ids in LLAMA.items()]
    for kind, ids in BYTES.items():  # LLaVA, without and with the BOS LLaVA-1.5's Llama adds
        for bos in (False, True):
            if bos and kind in ("query_text", "baseline_text_image", "spec_text_text"):
                continue
            tokens = ["<s>", *ids(LL)] if bos else ids(LL)
            out.append(cell("llava-1.5", bos, kind, tokens))
    out += [cell("mantis-fuyu", False, k, ids) for k, ids in FUYU.items()]
    for kind in ("spec_text_image", "instruction", "query_text"):  # its BOS is never added
        out.append(cell("mantis-fuyu", True, kind, FUYU[kind]))
    return out


BUILDERS = {
    "idefics2": tiny_vlms.build_idefics2,
    "idefics2-llama": tiny_vlms.build_idefics2_llama_letters,
    "llava-1.5": tiny_vlms.build_llava,
    "mantis-fuyu": tiny_vlms.build_fuyu,
}


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    paths, made = {}, {}

    def get(model, bos, chat):
        if model not in paths:
            paths[model] = str(BUILDERS[model](tmp_path_factory.mktemp(model)))
        key = (model, bos, chat)
        if key not in made:
            name = "idefics2" if model == "idefics2-llama" else model
            adapter = make_adapter(name, pretrained=paths[model], chat="model" if chat else False)
            adapter.load()
            if bos and model != "idefics2-llama":  # that one's tokenizer.json adds <s> itself
                bos_id = adapter.tokenizer.convert_tokens_to_ids("<s>")
                adapter.tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
                    single="<s> $A", special_tokens=[("<s>", bos_id)]
                )
            made[key] = adapter
        return made[key]

    return get


@pytest.mark.parametrize("model, bos, kind, expected, column", cells())
def test_fed_ids_and_task_column_match_the_authors_pipeline(
    adapters, model, bos, kind, expected, column
):
    adapter = adapters(model, bos, chat=kind.startswith("chat"))
    batch = adapter.encode([PROMPTS[kind](adapter)])
    assert bool(batch.model_inputs["attention_mask"].all())  # one prompt: no padding
    assert adapter.tokenizer.convert_ids_to_tokens(batch.input_ids[0].tolist()) == expected
    # The vector is read at task_index (spec), a query patched and an instruction read there
    # too (its last token); the prompt baseline's answer is read after the last token.
    read = batch.input_ids.shape[1] - 1 if kind.startswith("baseline") else batch.task_index[0]
    assert int(read) == column, f"column {int(read)} ({expected[int(read)]!r}), not {column}"


@pytest.mark.parametrize("bos", [False, True])
def test_llava_image_specs_read_the_colon_where_the_authors_offset_falls_short(adapters, bos):
    """A deliberate difference: llava.yaml's image_offset (575) is added once, right for one
    image (their text->image runs), but N image examples put 575 x (N - 1) more image tokens
    before the last demo's "A:": their column lands inside an image's features (LLaVA image
    examples are not a setting the paper ran). The harness reads the ":" itself."""
    adapter = adapters("llava-1.5", bos, chat=False)
    batch = adapter.encode([PROMPTS["spec_image_image"](adapter)])
    tokens = adapter.tokenizer.convert_ids_to_tokens(batch.input_ids[0].tolist())
    ours, theirs = int(batch.task_index[0]), llava_authors_column(tokens)
    assert tokens[ours] == ":" and tokens[ours - 1] == "A"
    assert tokens[theirs] == "<image>" and theirs == ours - (len(LLAVA_IMAGE) - 1)
