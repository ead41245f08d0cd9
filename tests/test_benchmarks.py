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
