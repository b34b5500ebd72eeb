"""How long the cross-modal protocol would take on this CPU with SmolVLM-256M: `python -m
harness.laptop`.

The weights cannot be fetched here, so the model is built at random from the real checkpoint's
dimensions (its config.json: a SigLIP tower of 12 layers, width 768, on 512x512 tiles cut into
16x16 patches, pixel shuffle 4 -> 64 tokens per tile; SmolLM2-135M's 30 layers of width 576):
the time of a forward does not depend on the weights' values. One image-query prompt is timed
as the default run feeds it (5 text examples, then the query) and as a bare query, for the
processor's two ways of cutting a 224-wide image: split into 512-px tiles after its longest edge
is scaled to 2048 (SmolVLM's processor default: 4 x 3 tiles + the whole image = 13 tiles) and
unsplit (1 tile). The run's forwards with an image are then counted from the protocol, and the
time is their sum: an estimate, printed with its parts, never asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
from typing import Any

import torch

from .floor import matmul_gflops, timed

TOKENS_PER_TILE = 64  # (512 / 16)^2 patches, pixel-shuffled by 4 x 4
DEMO_TOKENS = 60  # five "Q: France\nA: Paris" examples and the query's own text, roughly
TASKS, VALIDATION, TEST, SEEDS = 6, 30, 100, 3  # the default run (DESIGN §2)


def smolvlm_256m_config() -> Any:
    from transformers import SmolVLMConfig

    return SmolVLMConfig(
        vision_config=dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            image_size=512,
            patch_size=16,
        ),
        text_config=dict(
            model_type="llama",
            vocab_size=49280,
            hidden_size=576,
            intermediate_size=1536,
            num_hidden_layers=30,
            num_attention_heads=9,
            num_key_value_heads=3,
            max_position_embeddings=8192,
            tie_word_embeddings=True,
        ),
        scale_factor=4,
        image_token_id=49190,
    )


def image_forwards() -> dict[str, int]:
    """Forwards whose prompt holds an image in a default `--query image` run: each test query
    once for no_context and patch (one pass, the patch a cached single-token step) and once per
    seed with its examples (prompt); each validation query once for the whole layer sweep
    (every layer and seed a cached single-token step). Text-only spec prompts are not counted."""
    return {
        "bare query": TASKS * (TEST + VALIDATION),
        "examples + query": TASKS * TEST * SEEDS,
    }


@torch.inference_mode()
def time_prompt(model: Any, tiles: int, text_tokens: int, repeats: int) -> float:
    config = model.config
    image = [config.image_token_id] * (tiles * TOKENS_PER_TILE)
    ids = torch.tensor([[1] * text_tokens + image + [2, 3]])
    pixels = torch.randn(1, tiles, 3, 512, 512)

    def forward() -> Any:
        return model(input_ids=ids, pixel_values=pixels, logits_to_keep=1)

    forward()  # warm-up
    return min(timed(forward)[1] for _ in range(repeats))


def measure(repeats: int = 2) -> dict[str, Any]:
    from transformers import SmolVLMForConditionalGeneration

    torch.manual_seed(0)
    model = SmolVLMForConditionalGeneration(smolvlm_256m_config()).eval()
    params = sum(p.numel() for p in model.parameters())
    counts = image_forwards()
    out: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "matmul_gflops": round(matmul_gflops(), 1),
        "parameters_millions": round(params / 1e6, 1),
        "forwards": counts,
    }
    for label, tiles in (("split, 13 tiles", 13), ("unsplit, 1 tile", 1)):
        bare = time_prompt(model, tiles, 8, repeats)
        with_examples = time_prompt(model, tiles, DEMO_TOKENS, repeats)
        total = counts["bare query"] * bare + counts["examples + query"] * with_examples
        out[label] = {
            "image_tokens": tiles * TOKENS_PER_TILE,
            "seconds_bare_query": round(bare, 3),
            "seconds_examples_and_query": round(with_examples, 3),
            "estimated_hours": round(total / 3600, 2),
        }
    out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.laptop", description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = measure(args.repeats)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{figures['threads']} threads, fp32 matmul {figures['matmul_gflops']} GFLOP/s")
    print(f"SmolVLM-256M shape, random weights: {figures['parameters_millions']}M parameters")
    print(f"forwards with an image in a default run: {figures['forwards']}")
    for label in ("split, 13 tiles", "unsplit, 1 tile"):
        f = figures[label]
        print(
            f"{label} ({f['image_tokens']} image tokens): {f['seconds_bare_query']} s bare, "
            f"{f['seconds_examples_and_query']} s with examples -> "
            f"estimate {f['estimated_hours']} h"
        )
    print(f"peak resident memory: {figures['peak_rss_gb']} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
