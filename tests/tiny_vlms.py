"""Tiny random VLMs built offline from configs, saved like Hub checkpoints.

Each has a byte-level BPE tokenizer trained in-process with the special tokens its processor
needs; the text backbones share hidden size 64 so LLM->VLM transfer can be tested.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

HIDDEN = 64
CORPUS = [
    "Q:France\nA:Paris",
    "Q:<image>\nA:Tokyo",
    "Q: Japan\nA: Tokyo",
    "The capital city of the country:",
    "image 0: image 1: The color of the food:",
]


def make_tokenizer(
    specials: list[str], corpus: list[str] | None = None, vocab_size: int = 320
) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>", *specials],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus or CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


# Every tiny vision tower: 2 layers of width 32 on 32x32 images cut into 8x8 patches.
VISION = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=32,
    patch_size=8,
)


def text_config(
    vocab: int, model_type: str | None = None, layers: int = 4, hidden: int = HIDDEN
) -> dict:
    """The tiny text backbone every test model shares (hidden 64 unless asked otherwise)."""
    cfg = dict(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        pad_token_id=0,
        max_position_embeddings=1024,
    )
    if model_type:
        cfg["model_type"] = model_type
    return cfg


def build_llava(path: Path) -> Path:
    import json

    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = make_tokenizer(["<image>"])
    vision = CLIPVisionConfig(**VISION, projection_dim=32)
    config = LlavaConfig(
        vision_config=vision,
        text_config=LlamaConfig(**text_config(len(tok))),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(1)
    LlavaForConditionalGeneration(config).save_pretrained(path)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(image_processor=images, tokenizer=tok, image_token="<image>")
    processor.save_pretrained(path)
    # Like llava-hf/llava-1.5-7b-hf at the pinned revision, the processor config lacks the three
    # fields that size the image-token run; the adapter must fill them in from the model.
    saved = path / "processor_config.json"
    fields = json.loads(saved.read_text())
    for key in ("patch_size", "vision_feature_select_strategy", "num_additional_image_tokens"):
        fields.pop(key, None)
    saved.write_text(json.dumps(fields, indent=2))
    return path


# Idefics2's tiny perceiver (image_seq_len = resampler_n_latents = 4).
IDEFICS2_PERCEIVER = dict(
    hidden_size=HIDDEN,
    resampler_n_latents=4,
    resampler_depth=1,
    resampler_n_heads=2,
    resampler_head_dim=8,
    num_key_value_heads=1,
)


def build_idefics2(path: Path) -> Path:
    from transformers import (
        Idefics2Config,
        Idefics2ForConditionalGeneration,
        Idefics2ImageProcessor,
        Idefics2Processor,
    )

    tok = make_tokenizer(["<image>", "<fake_token_around_image>", "<end_of_utterance>"])
    config = Idefics2Config(
        vision_config=dict(VISION),
        perceiver_config=dict(IDEFICS2_PERCEIVER),
        text_config=text_config(len(tok), "mistral"),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        tie_word_embeddings=False,
    )
    torch.manual_seed(2)
    Idefics2ForConditionalGeneration(config).save_pretrained(path)
    images = Idefics2ImageProcessor(
        do_image_splitting=False, size={"shortest_edge": 32, "longest_edge": 32}
    )
    Idefics2Processor(image_processor=images, tokenizer=tok, image_seq_len=4).save_pretrained(path)
    return path


# A SentencePiece-style (Llama/Mistral) BPE vocabulary, small enough to tokenize by hand: ids in
# list order, then the three Idefics2 tokens added as specials (27, 28, 29).
LLAMA_STYLE_VOCAB = [
    "<unk>", "<s>", "</s>", "<0x0A>", "▁", ":", "A", "Q", "U", "s", "e", "r", "F", "a", "n",
    "c", "▁Q", "Us", "Use", "User", "▁User", "Fr", "an", "Fran", "ce", "France", "▁A",
]  # fmt: skip
LLAMA_STYLE_MERGES = [
    ("▁", "Q"), ("U", "s"), ("Us", "e"), ("Use", "r"), ("▁", "User"), ("F", "r"), ("a", "n"),
    ("Fr", "an"), ("c", "e"), ("Fran", "ce"), ("▁", "A"),
]  # fmt: skip
IDEFICS2_SPECIALS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>"]


def make_llama_style_tokenizer():
    """A `tokenizers.Tokenizer` laid out like Idefics2's tokenizer.json (Mistral-7B's): byte-
    fallback BPE, no pre-tokenizer, a normalizer that prepends `▁` to every piece of text
    between special tokens and turns spaces into `▁`, the added tokens unnormalized specials,
    and a post-processor that adds `<s>`."""
    from tokenizers import AddedToken, normalizers, processors

    vocab = {token: i for i, token in enumerate(LLAMA_STYLE_VOCAB)}
    bpe = models.BPE(
        vocab=vocab, merges=LLAMA_STYLE_MERGES, unk_token="<unk>", fuse_unk=True, byte_fallback=True
    )
    tok = Tokenizer(bpe)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    specials = ["<unk>", "<s>", "</s>", *IDEFICS2_SPECIALS]
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return tok


def build_idefics2_llama_tokenizer(path: Path, legacy: bool | None = None) -> Path:
    """A tiny Idefics2 whose tokenizer files look like HuggingFaceM4/idefics2-8b's: the
    tokenizer.json of `make_llama_style_tokenizer` and a tokenizer_config.json naming
    `LlamaTokenizer`, with `legacy` as given (None: the key is absent)."""
    import json

    from transformers import (
        Idefics2Config,
        Idefics2ForConditionalGeneration,
        Idefics2ImageProcessor,
        Idefics2Processor,
    )

    backend = make_llama_style_tokenizer()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<unk>",
    )
    config = Idefics2Config(
        vision_config=dict(VISION),
        perceiver_config=dict(IDEFICS2_PERCEIVER),
        text_config=text_config(backend.get_vocab_size(), "mistral"),
        image_token_id=backend.token_to_id("<image>"),
        tie_word_embeddings=False,
    )
    torch.manual_seed(5)
    Idefics2ForConditionalGeneration(config).save_pretrained(path)
    images = Idefics2ImageProcessor(
        do_image_splitting=False, size={"shortest_edge": 32, "longest_edge": 32}
    )
    Idefics2Processor(image_processor=images, tokenizer=tok, image_seq_len=4).save_pretrained(path)
    # The tokenizer files as the Hub checkpoint has them, not as transformers would write them.
    backend.save(str(path / "tokenizer.json"))
    added = {
        str(backend.token_to_id(t)): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t in ["<unk>", "<s>", "</s>", *IDEFICS2_SPECIALS]
    }
    tokenizer_config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": IDEFICS2_SPECIALS,
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": "<unk>",
        "processor_class": "Idefics2Processor",
        "sp_model_kwargs": {},
        "spaces_between_special_tokens": False,
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>",
        "use_default_system_prompt": True,
    }
    if legacy is not None:
        tokenizer_config["legacy"] = legacy
    (path / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    return path


def build_fuyu(path: Path, mantis_markers: bool = True) -> Path:
    """A tiny Mantis-Fuyu: its tokenizer has the image markers Mantis added to Fuyu's vocabulary
    (`|IMAGE|`, `|ENDOFIMAGE|`); without them (mantis_markers=False) it stands for plain Fuyu."""
    from transformers import FuyuConfig, FuyuForCausalLM

    markers = ["|IMAGE|", "|ENDOFIMAGE|"] if mantis_markers else []
    tok = make_tokenizer(["|SPEAKER|", "|NEWLINE|", "<0x04>", *markers])
    text = text_config(len(tok), "persimmon")
    text.pop("num_key_value_heads")
    config = FuyuConfig(
        text_config=text,
        patch_size=8,
        num_channels=3,
        image_token_id=tok.convert_tokens_to_ids("|SPEAKER|"),
        vocab_size=len(tok),
        hidden_size=HIDDEN,
    )
    torch.manual_seed(3)
    FuyuForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def build_llm(path: Path, hidden: int = HIDDEN) -> Path:
    """A tiny Mistral standing in for a VLM's base LLM (hidden 64 matches the VLMs above)."""
    from transformers import MistralConfig, MistralForCausalLM

    tok = make_tokenizer([])
    torch.manual_seed(4)
    MistralForCausalLM(MistralConfig(**text_config(len(tok), hidden=hidden))).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def build_wide_llm(path: Path) -> Path:
    """Hidden size 96: a mismatched pair for any of the VLMs above."""
    return build_llm(path, hidden=96)


def write_image_dataset(root: Path, tasks: list[str]) -> Path:
    """A built cross-modal dataset (the builders' own writer) with a small generated image per
    item, a colour that depends on the item, for the harness's image modes."""
    import hashlib

    from PIL import Image

    from benchmark import load_task
    from builders.cross_modal import write_dataset

    rows = {}
    for task in tasks:
        rows[task] = [
            {
                **r,
                "image": Image.new(
                    "RGB", (32, 24), tuple(hashlib.sha256(r["id"].encode()).digest()[:3])
                ),
            }
            for r in load_task(task)
        ]
    return write_dataset(root, rows)


# Letters the fidelity tests' words need beyond LLAMA_STYLE_VOCAB ("Paris", "Japan", "Tokyo",
# "Peru", "Assistant"), with no merges: each is one token, after the existing ones.
LLAMA_STYLE_LETTERS = ["P", "i", "J", "p", "T", "o", "k", "y", "u", "t"]


def build_idefics2_llama_letters(path: Path) -> Path:
    """`build_idefics2_llama_tokenizer` (legacy absent, as idefics2-8b has it) with
    LLAMA_STYLE_LETTERS added to the vocabulary, so those words tokenize letter by letter
    instead of falling back to `<unk>`; the three Idefics2 tokens then follow the letters."""
    import sys
    from unittest import mock

    vocab = [*LLAMA_STYLE_VOCAB, *LLAMA_STYLE_LETTERS]
    with mock.patch.object(sys.modules[__name__], "LLAMA_STYLE_VOCAB", vocab):
        return build_idefics2_llama_tokenizer(path)
