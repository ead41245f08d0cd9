"""The benchmark scripts' smoke runs: they run end to end and write what they promise."""

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # the edit-run loop skips these: pytest -m "not slow"

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
    assert results["machine"]["threads"] == 1  # the common block, next to the script's own environment
    assert results["machine"]["torch"] == results["environment"]["torch"]
    assert all(row["score_over_generate"] > 0 for row in results["generation"])


def test_shared_options_refuse_bad_outputs_before_the_work_and_results_say_where_they_ran(tmp_path, capsys):
    import common

    parser = common.benchmark_parser("A benchmark.\n\nMore.", threads=2, device="cpu")
    parser.add_argument("--plot", type=Path)
    for argv in (["--threads", "0"], ["--json", "notes.txt"], ["--json", str(tmp_path)], ["--plot", "a.jpg"]):
        with pytest.raises(SystemExit) as exit_info:
            common.parse_args(parser, argv)
        assert exit_info.value.code == 2
    args = common.parse_args(parser, ["--json", str(tmp_path / "out" / "results.json")])
    assert (args.threads, args.device, args.plot) == (2, "cpu", None)
    capsys.readouterr()
    common.write_results({"rows": [1, 2]}, args.json, device=args.device)
    assert f"wrote {args.json}" in capsys.readouterr().out
    written = json.loads(args.json.read_text())
    assert list(written) == ["rows", "command", "machine"] and written["machine"]["device"] == "cpu"
    assert written["command"] == shlex.join(["python", *sys.argv])  # how to rerun it, which cards quote
    assert written["machine"]["accelerator"] is None and written["machine"]["cpu_cores"] >= 1
    given = {"command": "python mine.py", "machine": {"given": True}}
    common.write_results(given, args.json)  # blocks of the script's own are kept
    assert json.loads(args.json.read_text()) == given
    # a script refuses a bad --json at once, before loading anything
    result = run_script("toyworld_critic.py", ["--skip-critics", "--json", str(tmp_path / "notes.txt")])
    assert result.returncode == 2 and "--json: cannot write" in result.stderr


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Tiny random models stand in for the bundled toy-world ones (saved with call defaults, like the bundle)."""
    from hybridgen.testing import TINY_CALL_KWARGS, tiny_pipeline, tiny_vjepa2_model

    root = tmp_path_factory.mktemp("tiny-models")
    tiny_vjepa2_model().save_pretrained(root / "critic")
    tiny_pipeline("wan").save_pretrained(root / "generator")
    defaults = {"fps": 8, "pipeline_call": dict(TINY_CALL_KWARGS["wan"], num_inference_steps=4)}
    (root / "generator" / "call_defaults.json").write_text(json.dumps(defaults))
    return ["--generator", str(root / "generator"), "--critic", str(root / "critic")]


def run_script(name: str, arguments: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    command = [sys.executable, str(BENCHMARKS / name), *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_best_of_n_smoke_run_on_tiny_components(tiny_models, tmp_path):
    output, plot = tmp_path / "results.json", tmp_path / "best_of_n.png"
    arguments = [
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
    result = run_script("toyworld_best_of_n.py", tiny_models + arguments)
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
    detail = results["groups_detail"][0]
    terms = np.array(list(detail["physics_terms"].values()))  # (terms, candidates)
    assert np.allclose(terms.sum(axis=0), detail["physics_error"])  # the total is the sum of the terms
    assert set(results["term_correlation"]) == set(detail["physics_terms"])
    assert "| checker term |" in result.stdout
    assert 0 < results["timing"]["score_over_generate"] and plot.stat().st_size > 0
    assert len(results["critic_weights"]) == 16  # which weights the critic's name meant
    from bundle_toyworld import results_lines

    assert f"(weights sha256 {results['critic_weights']}...)" in "\n".join(results_lines(results))


def test_strategies_smoke_run_on_tiny_components(tiny_models, tmp_path):
    output, plot = tmp_path / "results.json", tmp_path / "strategies.png"
    arguments = ["--prompts", "1", "--seeds", "1", "--max-candidates", "8", "--scales", "0.1"]
    result = run_script(
        "toyworld_strategies.py", tiny_models + arguments + ["--json", str(output), "--plot", str(plot)]
    )
    assert result.returncode == 0, result.stderr
    methods = json.loads(output.read_text())["methods"]
    assert [name for name in methods if name.startswith("best-of-")] == [f"best-of-{n}" for n in (1, 2, 4, 8)]
    assert methods["best-of-8"]["steps"] == 8 * 4
    # 8 trajectories for 1 step, 4 for 1 step, 2 for the last 2 (checkpoints at 25% and 50% of 4 steps)
    assert methods["search 8, keep 1/2 at 25% and 50%"]["steps"] == 8 + 4 + 2 * 2
    assert methods["guidance 0.1"]["steps"] == 4 and plot.stat().st_size > 0
    assert methods["plain, guidance's seeds"]["steps"] == 4  # guidance's baseline: the same first seeds
    assert methods["guidance 0.05, every 2nd step of all, mean scoring"]["steps"] == 4


def test_cuda_smoke_runs_its_checks_on_the_cpu_and_reports_each(tmp_path):
    """On a machine without an accelerator the smoke script still runs (device cpu); a check that fails is
    recorded and counted in the exit status, not fatal to the others."""
    output = tmp_path / "smoke.json"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    command = [sys.executable, str(BENCHMARKS / "cuda_smoke.py"), "--device", "cpu", "--json", str(output)]
    result = subprocess.run(
        [*command, "--checks", "hub_ids_offline", "critic_parity"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    assert report["device"] == "cpu" and list(report["checks"]) == ["hub_ids_offline", "critic_parity"]
    assert report["machine"]["device"] == "cpu" and report["machine"]["accelerator"] is None
    assert all(check["ok"] for check in report["checks"].values())
    parity = report["checks"]["critic_parity"]["result"]
    assert parity["float32"]["max_relative_difference"] == 0.0  # CPU float32 against itself
    assert parity["bfloat16"]["rank_correlation"] > 0.9
    assert report["checks"]["hub_ids_offline"]["result"]["denoising_steps"] == 40  # 2 candidates x 20 steps
    # an unusable device fails every check it reaches, each recorded
    failed = subprocess.run(
        [*command, "--checks", "critic_parity", "--device", "no-such-device"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode == 1
    assert not json.loads(output.read_text())["checks"]["critic_parity"]["ok"]


def test_cuda_smoke_conditioning_critic_device_and_guidance_memory_checks_run_on_the_cpu(tmp_path):
    output = tmp_path / "smoke.json"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    checks = ["conditioned_generation", "critic_on_another_device", "guidance_memory"]
    command = [sys.executable, str(BENCHMARKS / "cuda_smoke.py"), "--device", "cpu", "--json", str(output)]
    result = subprocess.run(
        [*command, "--checks", *checks], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())["checks"]
    conditioned = report["conditioned_generation"]["result"]
    assert set(conditioned) == {
        f"{name}_{strategy}"
        for name in ("wan_image", "ltx_image", "cogvideox_image", "cogvideox_video")
        for strategy in ("rerank", "search", "guidance")
    }
    assert all(row["frames_finite"] for row in conditioned.values())
    elsewhere = report["critic_on_another_device"]["result"]
    assert (
        elsewhere["critic_device"] == "cpu"
        and elsewhere["rerank"]["max_surprise_difference_vs_same_device"] == 0
    )
    memory = report["guidance_memory"]["result"]
    assert memory["decode_scale=0.25"]["peak_mib"] < memory["full"]["peak_mib"]


def test_guidance_memory_measures_each_setting_in_a_fresh_process(tmp_path):
    output = tmp_path / "memory.json"
    command = [sys.executable, str(BENCHMARKS / "guidance_memory.py"), "--threads", "1", "--families", "ltx"]
    command += ["--frames", "9", "--height", "64", "--width", "64", "--json", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = json.loads(output.read_text())["rows"]
    assert [row["setting"] for row in rows] == [
        "full",
        "decode_scale=0.5",
        "decode_scale=0.25",
        "gradient_checkpointing",
        "both (0.5)",
    ]
    assert all(row["peak_mib"] > 0 and row["seconds"] > 0 for row in rows)
    assert rows[0]["memory_vs_full"] == 1 and rows[1]["peak_mib"] < rows[0]["peak_mib"]


def test_real_size_cost_tiny_run_times_generation_and_each_scoring(tmp_path):
    output = tmp_path / "results.json"
    arguments = ["--tiny", "--device", "cpu", "--dtype", "float32", "--steps", "2", "--json", str(output)]
    result = run_script("real_size_cost.py", arguments)
    assert result.returncode == 0, result.stderr
    results = json.loads(output.read_text())
    (row,) = results["rows"]
    assert row["frames"] == 9 and row["generate_seconds"] > 0
    assert set(row["critics"]) == {"tiny V-JEPA 2, forward (Hub default)", "tiny V-JEPA 2, both directions"}
    for cost in row["critics"].values():
        assert cost["windows"] >= 1 and cost["score_seconds"] > 0
        assert cost["score_over_generate"] == pytest.approx(
            cost["score_seconds"] / row["generate_seconds"], rel=0.01
        )
    assert results["parameters"]["generator transformer"] > 0


def test_toyworld_vae_measures_a_pipeline_vae_and_a_freshly_trained_one(tiny_models, tmp_path):
    output = tmp_path / "vae.json"
    generator = tiny_models[1]
    arguments = ["--generator", generator, "--train-temporal", "2", "--steps", "2", "--clips", "2"]
    result = run_script("toyworld_vae.py", [*arguments, "--train-clips", "4", "--json", str(output)])
    assert result.returncode == 0, result.stderr
    rows = json.loads(output.read_text())["rows"]
    assert [row["vae"] for row in rows] == [generator, "trained here: 2x time, 2 steps"]
    for row in rows:
        assert np.isfinite(row["physics_error"]) and row["physics_error"] >= 0
        assert set(row["terms"]) == {"count", "area", "colour", "accel", "jump", "flicker"}
        assert 0 < row["psnr"] < 100 and 0 <= row["ball_mae"] <= 1
    assert "| VAE | physics error" in result.stdout


def test_toyworld_critic_skip_critics_scores_the_baselines_on_the_same_pairs(tmp_path):
    output = tmp_path / "baselines.json"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    argv = ["--skip-critics", "--pairs", "6", "--kinds", "vanish", "freeze", "--json", str(output)]
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "toyworld_critic.py"), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(output.read_text())["results"]
    assert set(results) == {
        "pixels: constant-velocity extrapolation error",
        "physics checker (hand-written rules)",
    }
    checker = results["physics checker (hand-written rules)"]
    pixels = results["pixels: constant-velocity extrapolation error"]
    # a vanished or frozen ball is less pixel change, yet it breaks the rules the checker knows
    assert checker["vanish"]["accuracy"] == checker["freeze"]["accuracy"] == 1.0
    assert pixels["vanish"]["accuracy"] < 0.5 and pixels["freeze"]["accuracy"] < 0.5


def save_tiny_calibrated_critic(directory):
    """A tiny critic with an (unfitted) expected-error head, saved to `directory`: what the benchmark loads."""
    from hybridgen import VJEPA2Critic
    from hybridgen.critics.error_head import ExpectedErrorHead
    from hybridgen.testing import tiny_vjepa2_model

    model = tiny_vjepa2_model(seed=0)
    critic = VJEPA2Critic(model, window=8, context=4, direction="both")
    critic.with_options(expected_error_head=ExpectedErrorHead(model.config.hidden_size)).save_pretrained(
        directory
    )
    return directory


def test_toyworld_critic_skip_untrained_scores_the_trained_critic_under_the_violation_scoring(tmp_path):
    from hybridgen.toyworld.evaluation import VIOLATION_SCORING

    output = tmp_path / "results.json"
    argv = [
        "--critic",
        str(save_tiny_calibrated_critic(tmp_path / "critic")),
        "--skip-untrained",
        "--pairs",
        "2",
        "--kinds",
        "vanish",
    ]
    result = run_script("toyworld_critic.py", [*argv, "--json", str(output)])
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    assert set(report["results"]) == {
        "trained critic",
        "pixels: constant-velocity extrapolation error",
        "physics checker (hand-written rules)",
    }
    assert {key: report["scoring"][key] for key in VIOLATION_SCORING} == VIOLATION_SCORING
    assert report["clips_per_second"] > 0


def test_toyworld_critic_skip_trained_scores_only_an_untrained_critic_of_the_same_shape(tmp_path):
    output = tmp_path / "results.json"
    argv = [
        "--critic",
        str(save_tiny_calibrated_critic(tmp_path / "critic")),
        "--skip-trained",
        "--calibration-steps",
        "2",
    ]
    result = run_script(
        "toyworld_critic.py", [*argv, "--pairs", "2", "--kinds", "vanish", "--json", str(output)]
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(output.read_text())["results"]) == {
        "untrained critic (same shape and scoring)",
        "pixels: constant-velocity extrapolation error",
        "physics checker (hand-written rules)",
    }


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_critic_windows_splits_directions_and_finds_the_violation_windows():
    from hybridgen.critics.options import ScoringOptions
    from hybridgen.critics.report import CriticReport

    windows = load_benchmark("toyworld_critic_windows")
    # 9 windows of 8 frames (context 4) at every frame of a 16-frame clip; 2 forward then 2 backward tubelets
    errors = np.ones((9, 4, 2, 2))
    errors[:, 2:] = 3.0  # backward tokens err 3x as much
    errors[5, :2] = 10.0  # forward window starting at frame 5: its target (frames 9-12) holds t_v = 10
    errors[8, 2:] = 20.0  # backward window starting at frame 8: context 12-15 after t_v, target 8-11 holds 9
    report = CriticReport(
        surprise=0.0,
        window_surprise=np.zeros(9),
        window_starts=np.arange(9),
        token_errors=errors,
        window=8,
        context=4,
        tubelet=2,
        target_offsets=np.array([4, 6, 0, 2]),
        frame_indices=np.arange(16),
        options=ScoringOptions(window=8, context=4, direction="both", relative=True),
    )
    scores = windows.direction_scores(report, t_violation=10, top_fraction=None)
    assert scores["forward"] == pytest.approx((8 * 1 + 10) / 9)
    assert scores["backward"] == pytest.approx((8 * 3 + 20) / 9)
    # forward windows that see t_v = 10 first in their target: starts 3, 4, 5, 6 (context ends before frame 10)
    assert scores["at the violation, forward"] == pytest.approx((3 * 1 + 10) / 4)
    # backward windows whose context starts at or after 10 and whose target holds frame 9: starts 6, 7, 8
    assert scores["at the violation, backward"] == pytest.approx((2 * 3 + 20) / 3)


def test_critic_windows_tells_slow_downs_from_speed_ups():
    from hybridgen.toyworld.evaluation import violation_pairs

    windows = load_benchmark("toyworld_critic_windows")
    pairs = violation_pairs("speed_change", 12, 2_000_000)
    labels = [windows.speed_change_subset(pair) for pair in pairs]
    assert set(labels) == {"slow-downs", "speed-ups"}
    # over the two frames up to t_v + 1, a slowed ball moves less than its twin, a sped-up one more
    for pair, label in zip(pairs, labels):
        t, ball = pair.t_violation, pair.ball
        moved = [
            np.hypot(*(trajectories[t + 1, ball] - trajectories[t - 1, ball]))
            for trajectories in (pair.plausible_trajectories, pair.impossible_trajectories)
        ]
        assert (moved[1] < moved[0]) == (label == "slow-downs")


def test_critic_windows_smoke_run_on_a_tiny_critic_with_a_head(tmp_path):
    from hybridgen import VJEPA2Critic
    from hybridgen.critics.error_head import ExpectedErrorHead
    from hybridgen.testing import tiny_vjepa2_model
    from hybridgen.toyworld.evaluation import VIOLATION_SCORING, evaluate_violations

    model = tiny_vjepa2_model(seed=0)
    head = ExpectedErrorHead(model.config.hidden_size)
    critic = VJEPA2Critic(model, window=8, context=4, direction="both", expected_error_head=head)
    critic.save_pretrained(tmp_path / "critic")
    output = tmp_path / "results.json"
    arguments = ["--critic", str(tmp_path / "critic"), "--pairs", "3", "--kinds", "vanish", "speed_change"]
    result = run_script("toyworld_critic_windows.py", [*arguments, "--json", str(output)])
    assert result.returncode == 0, result.stderr
    accuracy = json.loads(output.read_text())["accuracy"]
    subsets = {key for key in accuracy if key.startswith("speed_change, ")}
    assert set(accuracy) - subsets == {"vanish", "speed_change", "mean"}
    assert sum(int(key.split("(")[1].split()[0]) for key in subsets) == 3  # every pair in one subset
    assert accuracy["mean"]["both"] == (accuracy["vanish"]["both"] + accuracy["speed_change"]["both"]) / 2
    for row in accuracy.values():
        assert all(0.0 <= value <= 1.0 for value in row.values())
        assert row["at the violation, better direction"] >= row["at the violation, forward"]
    # "both" is the critic's own surprise under the violation scoring, pair for pair
    scoring = critic.with_options(**VIOLATION_SCORING)
    results = evaluate_violations(
        lambda clips: [r.surprise for r in scoring.score_batch(clips)],
        kinds=["vanish"],
        num_pairs=3,
        seed=2_000_000,
    )
    assert accuracy["vanish"]["both"] == results["vanish"].accuracy


def test_critic_training_speed_smoke_run(tmp_path):
    output = tmp_path / "results.json"
    arguments = ["--variants", "float32", "bfloat16", "--rounds", "2", "--steps", "1", "--warmup", "0"]
    result = run_script("critic_training_speed.py", [*arguments, "--threads", "1", "--json", str(output)])
    assert result.returncode == 0, result.stderr
    results = json.loads(output.read_text())["results"]
    assert set(results) == {"float32", "bfloat16"} and results["float32"]["speedup"] == 1.0
    for row in results.values():
        assert len(row["rounds"]) == 2 and row["seconds_per_step"] > 0 and np.isfinite(row["loss"])
    # two steps from the same weights, data and masks: the two precisions are still close
    assert abs(results["bfloat16"]["loss"] - results["float32"]["loss"]) < 0.05


def test_streaming_decode_measures_both_ways_in_fresh_processes(tmp_path):
    output = tmp_path / "streaming.json"
    result = run_script(
        "streaming_decode.py", ["--sizes", "720p", "--lengths", "8", "--threads", "1", "--json", str(output)]
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(output.read_text())["rows"]
    assert [row["way"] for row in rows] == ["baseline", "whole", "streaming"]
    baseline, whole, streaming = rows
    assert baseline["surprise"] is None and all(row["peak_mb"] > 50 for row in rows)
    assert streaming["surprise"] == pytest.approx(
        whole["surprise"], rel=1e-3
    )  # the same clip, the same critic


def test_critic_finetune_source_smoke_run_fine_tunes_on_both_folders_and_judges_every_critic(tmp_path):
    output, work = tmp_path / "results.json", tmp_path / "work"
    arguments = ["--work", str(work), "--clips", "6", "--steps", "2", "--batch-size", "2", "--runs", "1"]
    arguments += ["--eval-seeds", "1000", "--candidates", "2", "--pairs", "1", "--workers", "0"]
    result = run_script("critic_finetune_source.py", [*arguments, "--threads", "1", "--json", str(output)])
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (work / "generated").iterdir()) == [
        f"{5000 + i}.mp4" for i in range(6)
    ]
    report = json.loads(output.read_text())
    assert list(report["results"]) == [
        "bundled (no fine-tune)",
        "fine-tuned on rendered (seed 0)",
        "fine-tuned on generated (seed 0)",
    ]
    for row in report["results"].values():
        assert -1 <= row["spearman"] <= 1 and 0 <= row["accuracy_dynamics"] <= 1
        assert len(row["surprise"]) == len(report["groups"]) == 8  # the 8 benchmark prompts x 1 seed
