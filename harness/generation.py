"""Free-form greedy generation, patched or not (the overriding study and the judge's inputs)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .adapters.base import Adapter
from .engine import last_logits_only, length_batches, ticked
from .hooks import Intervention, patched
from .templates import Prompt


def _cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    cut = min((i for s in stop if (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


@torch.inference_mode()
def generate(
    adapter: Adapter,
    prompts: Sequence[Prompt],
    max_new_tokens: int = 32,
    vector: torch.Tensor | None = None,
    layer: int | None = None,
    batch_size: int = 32,
    stop: Sequence[str] = ("\n",),
) -> list[str]:
    """Greedy continuation of each prompt, cut at EOS or at the first stop string.

    Batched with left padding and a KV cache: the prompt is run once, then one token per step.
    With `vector` ([d], or [n_prompts, d]: one per prompt), layer `layer`'s output at the
    prompt's last token is replaced in the prompt pass only, as the authors patch: the
    generated tokens see the patched state through the cache but are not patched themselves.
    """
    if vector is not None and layer is None:
        raise ValueError("patching needs a layer")
    eos = adapter.tokenizer.eos_token_id
    out: list[str] = [""] * len(prompts)
    for idx in ticked(length_batches(adapter, prompts, batch_size)):
        batch = adapter.encode([prompts[i] for i in idx])
        inputs = batch.model_inputs
        ivs = []
        if vector is not None:
            rows_vector = vector if vector.dim() == 1 else vector[list(idx)]
            ivs = [Intervention(int(layer), torch.arange(batch.size), -1, rows_vector)]  # type: ignore[arg-type]
        with patched(adapter.layers, ivs):
            step = adapter.model(**inputs, use_cache=True, **last_logits_only(adapter.model))
        mask = inputs["attention_mask"]
        # Each new token's position is one past the last (on every M-RoPE axis too), and it
        # reads the images the prompt's last token reads through cross attention (Mllama).
        position = inputs["position_ids"][..., -1:] if "position_ids" in inputs else None
        cross = inputs.get("cross_attention_mask")
        tokens: list[list[int]] = [[] for _ in idx]
        done = torch.zeros(batch.size, dtype=torch.bool)
        for _ in range(max_new_tokens):
            next_ids = step.logits[:, -1].argmax(-1)
            for b, token in enumerate(next_ids.tolist()):
                if done[b]:
                    continue
                if token == eos:
                    done[b] = True
                    continue
                tokens[b].append(token)
                if stop and _cut_at_stop(adapter.tokenizer.decode(tokens[b]), stop)[1]:
                    done[b] = True
            if bool(done.all()):
                break
            mask = torch.cat([mask, mask.new_ones(batch.size, 1)], dim=1)
            step_inputs = {"input_ids": next_ids[:, None].to(mask.device), "attention_mask": mask}
            if position is not None:
                position = position + 1
                step_inputs["position_ids"] = position
            if cross is not None:
                step_inputs["cross_attention_mask"] = cross[:, -1:]
            step = adapter.model(**step_inputs, cache=step.cache, use_cache=True)
        for b, i in enumerate(idx):
            out[i] = _cut_at_stop(adapter.tokenizer.decode(tokens[b]), stop)[0]
    return out
