"""The engine calls transformers by its current names: a KV cache goes in as `cache=` and comes
out as `output.cache`. transformers 5.24 still takes `past_key_values` but says it is deprecated
(a FutureWarning naming its removal in 5.40, and a logged "Use `cache` instead"), so code that
works today would break on the first install past 5.40; these runs fail on any such notice."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import tiny_vlms
import tiny_vlms_more
import torch

from harness import engine, generation
from harness.adapters import make_adapter

EXAMPLES = [("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "Lima")]


@contextmanager
def deprecation_notices() -> Iterator[list[str]]:
    """Every FutureWarning and every deprecation transformers logs inside the block. Its log
    notices go through `Logger.warning_once`, which says a message once per process, so an
    earlier test could have used it up: it is replaced here to see each call."""
    said: list[str] = []

    def warning_once(_logger, message, *args, **kwargs):
        if "deprecat" in str(message):
            said.append(str(message))

    with warnings.catch_warnings(record=True) as caught, pytest.MonkeyPatch.context() as patch:
        warnings.simplefilter("always")
        patch.setattr(logging.Logger, "warning_once", warning_once)
        yield said
    said += [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]


def test_the_notices_are_seen():
    """The check itself: the deprecated keyword, given, is caught both ways."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**tiny_vlms.text_config(50))).eval()
    ids = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
        with deprecation_notices() as said:
            model(input_ids=ids[:, -1:], past_key_values=out.cache)
            _ = out.past_key_values
    assert any("will be removed" in s for s in said)  # the FutureWarning
    assert any("Use `cache` instead" in s for s in said)  # the logged notice


def _run_the_paths(adapter, queries, texts) -> None:
    """The KV-cached layer sweep, the one-pass query and patch (its cache cut back a token),
    greedy generation, and shared beginnings for first tokens and task states."""
    torch.manual_seed(0)
    vectors = torch.randn(adapter.num_layers, adapter.hidden_size)
    engine.sweep_layers(adapter, queries, vectors)
    engine.query_and_patched(adapter, queries, vectors[None, 1], layer=1)
    generation.generate(adapter, queries, max_new_tokens=3, vector=vectors[1], layer=1)
    engine.first_tokens(adapter, texts)
    engine.capture_task_states(adapter, texts, sharing=True)


def _texts(adapter) -> list:
    return [
        adapter.example_prompt(EXAMPLES[:k], query=q) for k in (1, 2) for q in ("Peru", "Chile")
    ]


def test_llm_paths_say_nothing_deprecated(tiny_adapter):
    queries = [tiny_adapter.query_prompt("France"), tiny_adapter.query_prompt("Kingdom of Norway")]
    with deprecation_notices() as said:
        _run_the_paths(tiny_adapter, queries, _texts(tiny_adapter))
    assert said == []


# LLaVA, as most VLMs; Qwen2-VL feeds 3-D positions of its own; Mllama feeds a cross-attention
# mask at each cached step and keeps its images' keys in the same cache.
@pytest.mark.parametrize(
    "arch, build",
    [
        ("llava", tiny_vlms.build_llava),
        ("qwen2_vl", tiny_vlms_more.build_qwen2_vl),
        ("mllama", tiny_vlms_more.build_mllama),
    ],
)
def test_vlm_paths_say_nothing_deprecated(tmp_path, arch, build):
    from PIL import Image

    adapter = make_adapter(f"hf-vlm:{build(tmp_path / arch)}")
    adapter.load()
    queries = [
        adapter.query_prompt(Image.new("RGB", (48, 30), (0, 200, 0))),
        adapter.query_prompt(Image.new("RGB", (20, 44), (30, 0, 90))),
    ]
    with deprecation_notices() as said:
        _run_the_paths(adapter, queries, _texts(adapter))
    assert said == []


def test_the_suite_fails_on_a_deprecation_our_code_triggers(tmp_path):
    """pyproject's filterwarnings turn a FutureWarning or DeprecationWarning attributed to our
    packages into a failure in every test, not only in the runs above; a third party's own
    warning about itself stays a warning."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    test = tmp_path / "test_warns.py"
    test.write_text(
        "import warnings\n"
        "def test_ours():\n"
        "    warnings.warn_explicit('old', FutureWarning, 'e.py', 1, module='harness.engine')\n"
        "def test_theirs():\n"
        "    warnings.warn_explicit('old', FutureWarning, 'x.py', 1, module='somelib.core')\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
         str(root / "pyproject.toml"), "--rootdir", str(tmp_path), str(test)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "1 failed, 1 passed" in done.stdout, done.stdout[-2000:]
    assert "test_ours" in done.stdout and "FutureWarning" in done.stdout
