"""Shared fixtures: a tiny random Llama built offline (tokenizer trained in-process)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Task vectors and converted models go to a throwaway folder, never the user's cache."""
    import os

    old = os.environ.get("VLM_TV_EVAL_CACHE")
    os.environ["VLM_TV_EVAL_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        del os.environ["VLM_TV_EVAL_CACHE"]
    else:
        os.environ["VLM_TV_EVAL_CACHE"] = old


def _corpus() -> list[str]:
    from benchmark import POOLS, load_pool

    lines = ["Q: A:", "The capital city of the country:", "12:30 a:b"]
    for pool in POOLS:
        for item in load_pool(pool)["items"]:
            lines.append(f"Q: {item['input']}\nA: {' '.join(item['labels'].values())}")
    return lines


@pytest.fixture(scope="session")
def tiny_llama_path(tmp_path_factory) -> str:
    """A 4-layer random Llama and a byte-level BPE tokenizer, saved like a Hub checkpoint."""
    import tiny_vlms
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    fast = tiny_vlms.make_tokenizer([], corpus=_corpus(), vocab_size=400)
    torch.manual_seed(0)
    config = LlamaConfig(**tiny_vlms.text_config(len(fast)), bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_adapter(tiny_llama_path):
    from harness.adapters import make_adapter

    adapter = make_adapter(f"hf:{tiny_llama_path}")
    adapter.load()
    return adapter


# A distinctive fake key: tests assert it is written to no file.
JUDGE_TEST_KEY = "sk-test-JUDGE-key-0123456789abcdef"


@pytest.fixture
def computed(monkeypatch):
    """The names of the units a run computes (rather than reuses), in order."""
    from harness.store import RunStore

    names = []
    real = RunStore.unit

    def counting(self, name, compute, items):
        return real(self, name, lambda: (names.append(name), compute())[1], items)

    monkeypatch.setattr(RunStore, "unit", counting)
    return names


@pytest.fixture
def judge_server(monkeypatch):
    """The loopback OpenAI-compatible server of judge_server.py, with a fake key set and no
    proxy or base URL in the environment to lead the client elsewhere."""
    from judge_server import FakeOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", JUDGE_TEST_KEY)
    for name in ("OPENAI_BASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()
