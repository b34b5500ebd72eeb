"""Registries that fill themselves: in a fresh interpreter, whatever was imported first, listing,
lookup and the run's checks see every built-in and every entry-point plug-in; the tables that
only hold facts cost no torch; the list of analyses is one list."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from benchmark import ANALYSES, METHODS
from benchmark.validation import schema

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def _listed_methods(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_ls_methods_lists_every_method_the_benchmark_knows():
    done = _cli("ls", "methods")
    assert done.returncode == 0, done.stderr
    listed = _listed_methods(done.stdout)
    assert [m for m in METHODS if m not in listed] == []
    patch = next(line for line in done.stdout.splitlines() if line.startswith("patch "))
    assert "task vector + layer" in patch


def test_an_overriding_method_is_known_in_a_fresh_interpreter():
    """The bug the lazy registry fixes: only the first-token methods were registered unless
    the overriding module happened to be imported first."""
    done = _python(
        """
        from harness.config import RunConfig
        from harness.prepare import check_run
        from harness.methods import get_method
        check_run(RunConfig(tasks=("override_text",), methods=("original",), layer=3))
        print(get_method("instruction_patch").kind)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "overriding"


def _plugin(tmp_path: Path) -> dict[str, str]:
    """An installed distribution, as pip leaves one: a module and a dist-info folder whose
    entry_points.txt names it in the methods group. Nothing imports it by hand."""
    (tmp_path / "toy_plugin.py").write_text(
        textwrap.dedent(
            """
            from harness import engine
            from harness.methods import register_method

            @register_method("toy_echo", context="the query with its input repeated")
            def toy_echo(ctx, task, seed, layer):
                items = ctx.items(task, "test")
                prompts = [ctx.adapter.query_prompt(r["input"] * 2) for r in items]
                ids = engine.first_tokens(ctx.adapter, prompts, ctx.config.batch_size)
                return ctx.score_tokens(task, items, ids.tolist(), prompts)
            """
        )
    )
    info = tmp_path / "toy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[vlm_tv_eval.methods]\ntoy_echo = toy_plugin\n")
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}


def test_an_entry_point_method_is_listed_and_runs(tmp_path, tiny_llama_path):
    site = tmp_path / "site"
    site.mkdir()
    env = _plugin(site)
    listed = _cli("ls", "methods", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "toy_echo" in _listed_methods(listed.stdout)
    out = tmp_path / "runs"
    run = _cli(
        "--model", f"hf:{tiny_llama_path}", "--tasks", "country_capital", "--limit", "4",
        "--seeds", "0", "--n_shot", "2", "--methods", "no_context,toy_echo",
        "--output_path", str(out), env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    (results,) = out.glob("*/*/results.json")
    entry = json.loads(results.read_text())["results"]["country_capital"]["toy_echo"]
    assert entry["n"] == 4 and entry["context"] == "the query with its input repeated"
    assert "layer" not in entry  # it patches nothing


def test_a_broken_plugin_is_named_in_one_line(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    env = _plugin(site)
    (site / "toy_plugin.py").write_text("raise ImportError('no module named toy_dependency')\n")
    done = _cli("ls", "methods", env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "toy_plugin" in done.stderr
    assert "toy_dependency" in done.stderr


def test_the_run_description_and_the_checkpoint_table_import_no_torch():
    done = _python(
        """
        import sys
        import harness.config, harness.checkpoints, harness.presets, harness.prepare
        from harness.adapters import describe_adapters
        assert describe_adapters()
        heavy = [m for m in ("torch", "transformers") if m in sys.modules]
        assert not heavy, heavy
        """
    )
    assert done.returncode == 0, done.stderr


def test_one_list_of_analyses_for_the_cli_the_schema_and_the_makefile():
    from harness.analysis import ANALYSES as modules

    assert tuple(modules) == ANALYSES
    assert tuple(schema("analysis")["properties"]["analysis"]["enum"]) == ANALYSES
    makefile = (ROOT / "Makefile").read_text()
    (line,) = re.findall(r"^ANALYSES := (.*)$", makefile, flags=re.MULTILINE)
    assert tuple(line.split()) == ANALYSES
