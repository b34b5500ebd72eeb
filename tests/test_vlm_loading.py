"""How the VLM adapters load their processors: the tokenizer reads the checkpoint's
tokenizer.json as written, and images go through the PIL image processors, as under the
transformers 4.44.2 the paper's authors ran."""

import pytest
import tiny_vlms
from PIL import Image
from tokenizers import Tokenizer
from transformers import AutoProcessor, AutoTokenizer

from harness.adapters import make_adapter

# Idefics2-style text: an image's tokens, then text after a space, then text after
# <end_of_utterance>. The Idefics2 tokens are 27 (<fake_token_around_image>), 28 (<image>),
# 29 (<end_of_utterance>); the rest is tiny_vlms.LLAMA_STYLE_VOCAB.
TEXT = (
    "User:<fake_token_around_image><image><image><fake_token_around_image>"
    " Q:France<end_of_utterance>\nA:"
)

# Worked out by hand from tokenizer.json. Added tokens are unnormalized, so the text is cut at
# them first and the normalizer (prepend "▁", then " " -> "▁") runs on each piece:
#   <s>                                   -> 1 (post-processor)
#   "User:"      -> "▁User:"              -> ▁User 20, : 5   (U s, Us e, Use r, ▁ User)
#   <fake> <image> <image> <fake>         -> 27, 28, 28, 27
#   " Q:France"  -> "▁▁Q:France"          -> ▁ 4, ▁Q 16, : 5, France 25   (▁ Q merges first)
#   <end_of_utterance>                    -> 29
#   "\nA:"       -> "▁\nA:"               -> ▁ 4, <0x0A> 3 (byte fallback), A 6, : 5
AS_WRITTEN = [1, 20, 5, 27, 28, 28, 27, 4, 16, 5, 25, 29, 4, 3, 6, 5]
# What transformers 5's LlamaTokenizer rebuilds instead (Metaspace, no normalizer): with legacy
# false or absent, "▁" goes before the first piece only; with legacy true, before every piece
# that does not start with one, so " Q:France" gets one "▁" where the file gives two.
REBUILT = {
    None: [1, 20, 5, 27, 28, 28, 27, 16, 5, 25, 29, 3, 6, 5],
    False: [1, 20, 5, 27, 28, 28, 27, 16, 5, 25, 29, 3, 6, 5],
    True: [1, 20, 5, 27, 28, 28, 27, 16, 5, 25, 29, 4, 3, 6, 5],
}
# The paper template's image query "Q:<image>\nA:" after Idefics2's processor expands the image
# to <fake> <image>x4 <fake> (image_seq_len 4): <s> ▁Q : <fake> <image>x4 <fake> ▁ <0x0A> A :
IMAGE_QUERY = [1, 16, 5, 27, 28, 28, 28, 28, 27, 4, 3, 6, 5]


@pytest.fixture(scope="module")
def llama_style_idefics2(tmp_path_factory):
    return {
        legacy: str(
            tiny_vlms.build_idefics2_llama_tokenizer(tmp_path_factory.mktemp("idefics2"), legacy)
        )
        for legacy in REBUILT
    }


@pytest.mark.parametrize(
    "legacy", list(REBUILT), ids=["legacy-absent", "legacy-false", "legacy-true"]
)
def test_idefics2_tokenizer_follows_tokenizer_json_whatever_the_legacy_flag(
    llama_style_idefics2, legacy
):
    path = llama_style_idefics2[legacy]
    # The hand-worked ids are what the file itself gives (as transformers 4.44.2 read it) ...
    assert Tokenizer.from_file(f"{path}/tokenizer.json").encode(TEXT).ids == AS_WRITTEN
    # ... and not what plain transformers 5 gives: without the fix the ids would differ.
    plain = AutoTokenizer.from_pretrained(path)
    assert type(plain).__name__ == "LlamaTokenizer"
    assert plain(TEXT)["input_ids"] == REBUILT[legacy] != AS_WRITTEN

    a = make_adapter("idefics2", pretrained=path)
    a.load()
    assert a.processor.tokenizer is a.tokenizer
    assert a.tokenizer(TEXT)["input_ids"] == AS_WRITTEN
    batch = a.encode([a.query_prompt(Image.new("RGB", (40, 30), (9, 99, 199)))])
    assert batch.input_ids[0].tolist() == IMAGE_QUERY
    assert int(batch.task_index[0]) == len(IMAGE_QUERY) - 1
    # Decoding follows the file too (its decoder strips the one leading space).
    assert a.tokenizer.decode(AS_WRITTEN[1:3]) == "User:"


@pytest.mark.parametrize("build", [tiny_vlms.build_llava, tiny_vlms.build_idefics2])
def test_tokenizers_transformers_already_reads_as_written_keep_their_ids(tmp_path, build):
    """LLaVA loads as TokenizersBackend (tokenizer.json as written) under transformers 5, as do
    the byte-level tiny tokenizers: reading the file again changes none of their ids."""
    path = str(build(tmp_path / "model"))
    plain = AutoProcessor.from_pretrained(path).tokenizer
    a = make_adapter("llava-1.5" if build is tiny_vlms.build_llava else "idefics2", pretrained=path)
    a.load()
    raw = Tokenizer.from_file(f"{path}/tokenizer.json")
    for text in ["Q:France\nA:Paris", "Q:<image>\nA: Tokyo", " image 0: The color of the food:"]:
        ids = a.tokenizer(text)["input_ids"]
        assert ids == plain(text)["input_ids"]
        assert ids[-len(raw.encode(text).ids) :] == raw.encode(text).ids


@pytest.mark.parametrize(
    ("name", "build", "pil_class"),
    [
        ("idefics2", tiny_vlms.build_idefics2, "Idefics2ImageProcessorPil"),
        ("llava-1.5", tiny_vlms.build_llava, "CLIPImageProcessorPil"),
    ],
)
def test_image_processor_is_the_pil_one_even_with_torchvision(
    tmp_path, monkeypatch, name, build, pil_class
):
    """torchvision is not installed here; the test makes transformers believe it is and hands
    out a stand-in for each torchvision class, as a CUDA machine would get the real ones."""
    import transformers
    from transformers.image_processing_backends import PilBackend
    from transformers.models.auto import image_processing_auto as auto

    path = str(build(tmp_path / "model"))
    resolve = auto.get_image_processor_class_from_name
    stand_ins = {}

    def with_torchvision(class_name):
        cls = resolve(class_name)
        if cls is None or class_name.endswith("Pil") or not class_name.endswith("ImageProcessor"):
            return cls
        pil = getattr(transformers, f"{class_name}Pil")
        return stand_ins.setdefault(class_name, type(f"{class_name}StandIn", (pil,), {}))

    monkeypatch.setattr(auto, "is_torchvision_available", lambda: True)
    monkeypatch.setattr(auto, "get_image_processor_class_from_name", with_torchvision)
    # The guard: left to itself, transformers now picks the torchvision class.
    assert type(AutoProcessor.from_pretrained(path).image_processor).__name__.endswith("StandIn")

    a = make_adapter(name, pretrained=path)
    a.load()
    processor = a.processor.image_processor
    assert type(processor).__name__ == pil_class
    assert isinstance(processor, PilBackend)
    if name == "idefics2":
        assert processor.do_image_splitting is False  # the adapter's setting lands on it
    batch = a.encode([a.query_prompt(Image.new("RGB", (40, 30), (9, 99, 199)))])
    assert batch.model_inputs["pixel_values"].shape[-1] == 32


def test_a_word_right_after_an_image_gets_no_extra_space(llama_style_idefics2):
    """The overriding query `Q:<image>{question}` (the authors' demo): transformers 4.44.2's
    Idefics2Processor tokenized the expanded text as it reads; 5.x inserts a space after the
    closing <fake_token_around_image>, one more "▁". Worked out by hand as above:
    <s> ▁Q : <fake> <image>x4 <fake> then "France\\nA:" -> "▁France\\nA:" -> ▁ France <0x0A> A :"""
    adapter = make_adapter("idefics2", pretrained=llama_style_idefics2[None])
    adapter.load()
    image = Image.new("RGB", (40, 30))
    expected = [1, 16, 5, 27, 28, 28, 28, 28, 27, 4, 25, 3, 6, 5]
    batch = adapter.encode([adapter.query_prompt((image, "France"))])
    assert batch.input_ids[0].tolist() == expected
    plain = adapter.processor(text=["Q:<image>France\nA:"], images=[[image]], return_tensors="pt")
    assert plain["input_ids"][0].tolist() == [*expected[:9], 4, *expected[9:]]  # the extra "▁"
    assert batch.model_inputs["pixel_values"].shape == plain["pixel_values"].shape
