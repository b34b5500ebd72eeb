"""Text-only causal language models from Hugging Face: `hf:<repo-or-path>` and `smollm2-135m`."""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, ModelLoadError
from ..templates import Prompt
from .base import Adapter, Batch, left_pad, token_covering
from .model_files import (
    HubUnreachable,
    file_stats,
    hub_unreachable,
    is_local_folder,
    load_error,
    local_copy,
    reading,
)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(name: str | None, device: str) -> torch.dtype:
    if name in (None, "auto"):
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; use one of {', '.join(_DTYPES)}") from None


def find_decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder layer list of a HF causal LM or VLM, found from the model's own structure.

    Covers `model.layers` (Llama, Mistral, Qwen...), `model.language_model.layers` (VLMs in
    transformers 5), `transformer.h` (GPT-2 style) and `gpt_neox.layers`.
    """
    candidates = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0:
            if name.endswith(("layers", ".h")) and "vision" not in name and "perceiver" not in name:
                candidates.append((name, module))
    if not candidates:
        raise ModelLoadError(
            f"cannot find the decoder layers of {type(model).__name__}; write an adapter that "
            "names them (see harness/adapters/base.py)"
        )
    # The language model's stack is the longest list of layers that is not a vision tower.
    return max(candidates, key=lambda nm: len(nm[1]))[1]


def contiguous_head_input(model: torch.nn.Module) -> None:
    """Hand the LM head a contiguous input. With `logits_to_keep=1` transformers passes it a
    strided slice of the hidden states, which torch multiplies as a batched matmul against a
    copy of the whole vocabulary matrix per row: 0.21 s instead of 0.05 s for 32 prompts on
    SmolLM2, a sixth of the query-only methods' time."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and not getattr(head, "_vlm_tv_contiguous", False):
        head.register_forward_pre_hook(lambda _m, args: (args[0].contiguous(), *args[1:]))
        head._vlm_tv_contiguous = True


class CausalLMAdapter(Adapter):
    """Any `AutoModelForCausalLM` checkpoint: `--model hf:<repo-or-path>`, and the base LLMs."""

    name = "hf"
    description = "any Hugging Face causal LM: hf:<repo-or-local-path> (text only)"
    default_template = "spaced"
    # Where the decoder layers live, as an attribute path (None: found from the module tree).
    layers_path: str | None = None

    def _revision(self) -> dict[str, Any]:
        """from_pretrained's arguments for where the files come from: the revision, and
        local_files_only for a checkpoint in the local cache while the Hub cannot be reached
        (transformers would ask the Hub for each file, a minute of retries, before using it)."""
        kwargs: dict[str, Any] = {"revision": self.revision} if self.revision else {}
        if getattr(self, "_cache_only", False):
            kwargs["local_files_only"] = True
        return kwargs

    def _load_error(self, exc: Exception) -> ModelLoadError:
        """`load_error` for this checkpoint: the --model prefix that takes a local folder is
        named only for the scheme adapters (hf:, hf-vlm:)."""
        scheme = self.name if self.checkpoint is None and self.name in ("hf", "hf-vlm") else None
        return load_error(str(self.pretrained), exc, scheme=scheme, revision=self.revision)

    def local_files(self) -> Path | None:
        """Where the checkpoint's files are on this machine: its folder, or its snapshot in the
        local Hugging Face cache; None when they are to be downloaded. Decided before anything
        is read or fetched: a checkpoint in neither place while the Hub cannot be reached
        (offline mode, or no answer to one short connection check) is refused here, in one
        line, instead of after huggingface_hub's minute of retries."""
        if not hasattr(self, "_local_files"):
            found = local_copy(str(self.pretrained), self.revision)
            if found is None or not is_local_folder(
                str(self.pretrained)
            ):  # not a folder of the user's
                why = hub_unreachable()
                if found is None and why is not None:
                    raise self._load_error(HubUnreachable(why))
                self._cache_only = why is not None
            self._local_files = found
        return self._local_files

    def preflight(self) -> None:
        """A checkpoint named by --model hf:<repo-or-path> must be on disk, in the local cache
        or reachable on the Hub: checked before the run folder is made (the named checkpoints'
        pinned repos are checked when they load, after the checks that need no files)."""
        if self.checkpoint is None and self.pretrained:
            self.local_files()

    def _load_weights(self, model_class: Any) -> Any:
        """`model_class.from_pretrained` with the revision, dtype and optional 4-bit setting."""
        kwargs = self._revision()
        kwargs["dtype"] = resolve_dtype(self.dtype, self.device)
        if self.load_in_4bit:
            from transformers import BitsAndBytesConfig

            # The authors' setting: NF4 weights, double quantisation, fp16 compute.
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.float16,
                bnb_4bit_quant_storage=torch.float16,
            )
            kwargs["device_map"] = self.device
        return model_class.from_pretrained(self.pretrained, **kwargs)

    def peek_num_layers(self) -> int | None:
        """From the checkpoint table, or from the config alone (no weights)."""
        known = super().peek_num_layers()
        if known is not None or not self.pretrained:
            return known
        from transformers import AutoConfig

        self.local_files()  # a checkpoint that cannot be had fails here, before any retries
        try:
            config = AutoConfig.from_pretrained(self.pretrained, **self._revision())
        except OSError as exc:  # the load would fail alike, after a second round of retries
            raise self._load_error(exc) from None
        except ValueError:
            return None  # a config transformers cannot read; checked again once the model loads
        return int(config.get_text_config().num_hidden_layers)

    def load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not self.pretrained:
            raise ConfigError("the hf adapter needs a checkpoint: --model hf:<repo-or-path>")
        # Not on disk and not reachable, not a checkpoint, or its files deleted while read.
        with reading(self.local_files(), self._load_error):
            self.tokenizer = AutoTokenizer.from_pretrained(self.pretrained, **self._revision())
            self.model = self._load_weights(AutoModelForCausalLM)
        self._finish_load()

    def _checkpoint_fingerprint(self) -> str:
        """What identifies the loaded weights: a Hub checkpoint's resolved commit, or for a
        local folder every file's name, size and modification time (hashing a 7B checkpoint's
        bytes on every load would cost minutes)."""
        folder = Path(str(self.pretrained))
        if folder.is_dir() or getattr(self, "_local_files", None) == folder:
            stats = file_stats(folder)
            if stats is None:  # deleted since the weights were read
                gone = FileNotFoundError("its files are gone")
                raise load_error(str(folder), gone, vanished=True) from None
            return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]
        commit = getattr(self.model.config, "_commit_hash", None) or self.revision or "unpinned"
        return f"{self.pretrained}@{commit}"

    def _finish_load(self) -> None:
        if not getattr(self, "_fingerprint", None):
            self._fingerprint = self._checkpoint_fingerprint()
        if not self.load_in_4bit:
            self.model.to(self.device)
        self.model.eval()
        self.model.requires_grad_(False)
        contiguous_head_input(self.model)
        if self.layers_path:
            self._layers = operator.attrgetter(self.layers_path)(self.model)
        else:
            self._layers = find_decoder_layers(self.model)

    @property
    def layers(self) -> Sequence[torch.nn.Module]:
        return self._layers

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.get_text_config().hidden_size)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.checkpoint is None and type(self) is CausalLMAdapter:
            out["name"] = f"hf:{self.pretrained}"
        return out

    def prompt_lengths(self, prompts: Sequence[Prompt]) -> list[int]:
        rows = self.token_rows(prompts)
        return super().prompt_lengths(prompts) if rows is None else [len(r) for r in rows]

    def token_rows(self, prompts: Sequence[Prompt]) -> list[list[int]] | None:
        if not prompts or any(p.images for p in prompts):
            return None
        return list(self.tokenizer([p.text for p in prompts], add_special_tokens=True)["input_ids"])

    def encode(self, prompts: Sequence[Prompt]) -> Batch:
        if any(p.images for p in prompts):
            raise ValueError(f"model {self.name!r} is text-only; image prompts need a VLM adapter")
        rows, task_cols = [], []
        for p in prompts:
            enc = self.tokenizer(p.text, add_special_tokens=True, return_offsets_mapping=True)
            ids = enc["input_ids"]
            rows.append(ids)
            task_cols.append(
                len(ids) - 1
                if p.task_char is None
                else token_covering(enc["offset_mapping"], p.task_char, p.text)
            )
        inputs, task_index = left_pad(rows, task_cols, self.pad_id)
        return self.to_batch(inputs, task_index)
