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
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=32,
    )
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


def build_idefics2(path: Path) -> Path:
    from transformers import (
        Idefics2Config,
        Idefics2ForConditionalGeneration,
        Idefics2ImageProcessor,
        Idefics2Processor,
    )

    tok = make_tokenizer(["<image>", "<fake_token_around_image>", "<end_of_utterance>"])
    config = Idefics2Config(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        perceiver_config=dict(
            hidden_size=HIDDEN,
            resampler_n_latents=4,
            resampler_depth=1,
            resampler_n_heads=2,
            resampler_head_dim=8,
            num_key_value_heads=1,
        ),
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
