"""The benchmark scripts' smoke runs: they run end to end and write what they promise."""

import json
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_critic_scaling_quick_prints_tables_and_writes_json(tmp_path):
    output = tmp_path / "results.json"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "critic_scaling.py"), "--quick", "--json", str(output)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "| frames | windows |" in result.stdout and "score / generate" in result.stdout
    results = json.loads(output.read_text())
    assert [row["windows"] for row in results["scaling"]] == [1, 3]
    assert results["environment"]["threads"] == 1
    assert all(row["score_over_generate"] > 0 for row in results["generation"])


def test_best_of_n_smoke_run_on_tiny_components(tmp_path):
    """Tiny random models stand in for the bundled toy-world ones: the script runs and reports every N."""
    from hybridgen.testing import TINY_CALL_KWARGS, tiny_pipeline, tiny_vjepa2_model

    tiny_vjepa2_model().save_pretrained(tmp_path / "critic")
    tiny_pipeline("wan").save_pretrained(tmp_path / "generator")
    defaults = {"fps": 8, "pipeline_call": TINY_CALL_KWARGS["wan"]}
    (tmp_path / "generator" / "call_defaults.json").write_text(json.dumps(defaults))
    output, plot = tmp_path / "results.json", tmp_path / "best_of_n.png"
    command = [sys.executable, str(BENCHMARKS / "toyworld_best_of_n.py")]
    command += ["--generator", str(tmp_path / "generator"), "--critic", str(tmp_path / "critic")]
    command += [
        "--prompts",
        "2",
        "--seeds",
        "1",
        "--candidates",
        "4",
        "--json",
        str(output),
        "--plot",
        str(plot),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "best / average" in result.stdout and "prompt following" in result.stdout
    results = json.loads(output.read_text())
    assert [row["n"] for row in results["best_of_n"]] == [1, 2, 4]
    assert [row["blocks"] for row in results["best_of_n"]] == [8, 4, 2]
    first = results["best_of_n"][0]
    assert first["best"] == first["average"] == first["random"] == first["oracle"]  # N = 1: one choice
    for row in results["best_of_n"]:
        assert row["oracle"] <= row["best"] and row["oracle"] <= row["average"]
    assert results["groups"] == 2 and len(results["groups_detail"][0]["physics_error"]) == 4
    assert 0 < results["timing"]["score_over_generate"] and plot.stat().st_size > 0
