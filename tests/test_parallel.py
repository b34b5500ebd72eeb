"""Data parallelism: two processes (torch.distributed, as `accelerate launch` starts them on
GPUs; gloo on this CPU) split the units and end with the single-process results."""

import os
import subprocess
import sys

from examples import run_results

from harness.parallel import Shard


def test_shards_split_jobs_without_overlap_or_gaps():
    jobs = list(range(11))
    parts = [Shard(i, 3).take(jobs) for i in range(3)]
    assert sorted(sum(parts, [])) == jobs
    assert Shard().take(jobs) == jobs and Shard().is_main and not Shard(1, 2).is_main


_results = run_results


def test_two_processes_give_the_single_process_results(tiny_llama_path, tmp_path):
    args = [
        "--model",
        f"hf:{tiny_llama_path}",
        "--tasks",
        "country_capital,food_color",
        "--limit",
        "6",
        "--seeds",
        "0,1",
        "--n_shot",
        "3",
    ]
    env = dict(os.environ, VLM_TV_EVAL_CACHE=str(tmp_path / "cache"))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "harness.cli",
        *args,
        "--output_path",
        str(tmp_path / "dp"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("run folder:") == 2  # both processes ran

    single = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args, "--output_path", str(tmp_path / "sp")],
        env=dict(env, VLM_TV_EVAL_CACHE=str(tmp_path / "cache1")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    a, b = _results(tmp_path / "dp"), _results(tmp_path / "sp")
    assert a["results"] == b["results"]
    assert a["layer_selection"] == b["layer_selection"]
