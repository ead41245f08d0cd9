"""The hybridgen command line, on tiny models saved to local directories and a Hub cache."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hybridgen.cli import main
from hybridgen.testing import populate_hf_cache
from hybridgen.video import read_video, write_video

TINY = ["--frames", "17", "--height", "32", "--width", "32", "--steps", "2", "--quiet", "--device", "cpu"]


def test_generate_writes_best_candidates_and_report(saved_models, tmp_path, capsys):
    output = tmp_path / "best.mp4"
    code = main(
        ["generate", "a red ball bouncing", "-o", str(output), "--generator", str(saved_models / "generator")]
        + ["--critic", str(saved_models / "critic"), "--candidates", "3", "--seed", "7"]
        + ["--save-candidates", str(tmp_path / "all"), "--report", str(tmp_path / "report.json")]
        + ["--sheet", str(tmp_path / "sheet.png"), "--plot", str(tmp_path / "curves.png")]
        + TINY
    )
    assert code == 0
    frames, _ = read_video(output)
    assert frames.shape == (17, 32, 32, 3)
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [f"candidate_{i}.mp4" for i in range(3)]
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["candidates"]) == 3 and report["denoising_steps"] == 6
    surprises = [c["surprise"] for c in report["candidates"]]
    assert report["best_index"] == int(np.argmin(surprises))
    assert "<- best" in capsys.readouterr().out
    assert Image.open(tmp_path / "sheet.png").format == Image.open(tmp_path / "curves.png").format == "PNG"


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["search", "guidance"])
def test_generate_with_a_strategy(saved_models, tmp_path, strategy):
    report = tmp_path / "report.json"
    argv = ["generate", "a red ball bouncing", "-o", str(tmp_path / "best.mp4"), "--strategy", strategy]
    argv += [
        "--generator",
        str(saved_models / "generator"),
        "--critic",
        str(saved_models / "critic"),
        "--candidates",
        "4",
    ]
    assert main(argv + ["--report", str(report)] + TINY) == 0
    result = json.loads(report.read_text())
    assert result["strategy"] == strategy
    # search: 4 trajectories for step 1 of 2, then 2 for step 2; guidance: 4 candidates x 2 steps
    assert result["denoising_steps"] == {"search": 4 + 2, "guidance": 8}[strategy]


def test_score_ranks_videos_and_plots(saved_models, tmp_path, capsys):
    rng = np.random.default_rng(0)
    still = np.full((16, 32, 32, 3), 0.3, dtype=np.float32)
    noise = rng.random((16, 32, 32, 3), dtype=np.float32)
    paths = [write_video(still, tmp_path / "still.mp4"), write_video(noise, tmp_path / "noise.mp4")]
    plot = tmp_path / "curves.png"
    code = main(
        ["score", *map(str, paths), "--critic", str(saved_models / "critic"), "--json", "--plot", str(plot)]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["rank"] for row in rows] == [0, 1]
    assert rows[0]["surprise"] <= rows[1]["surprise"]
    assert {row["path"] for row in rows} == set(map(str, paths))
    assert Image.open(plot).format == "PNG"
    argv = [
        "score",
        str(paths[0]),
        "--critic",
        str(saved_models / "critic"),
        "--json",
        "--shift",
        "0,4",
        "--shift=-4,4",  # a leading minus would read as an option after a space
    ]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)[0]["shifts"] == [[0, 4], [-4, 4]]
    with pytest.raises(SystemExit):
        main(["score", str(paths[0]), "--critic", str(saved_models / "critic"), "--shift", "4"])
    assert "not DY,DX" in capsys.readouterr().err


def test_score_takes_folders_writes_rows_and_pictures_and_reports_unreadable_files(
    saved_models, tmp_path, capsys
):
    rng = np.random.default_rng(1)
    folder = tmp_path / "videos"
    write_video(rng.random((12, 32, 48, 3), dtype=np.float32), folder / "a.mp4")
    write_video(rng.random((10, 40, 32, 3), dtype=np.float32), folder / "deeper" / "b.mov")
    write_video(rng.random((10, 32, 32, 3), dtype=np.float32), folder / ".hidden" / "c.mp4")  # skipped
    (folder / "deeper" / "broken.mp4").write_bytes(b"not a video")
    (folder / "notes.txt").write_text("not a video either, and not looked at")
    critic = ["--critic", str(saved_models / "critic"), "--quiet"]
    out = tmp_path / "out"
    argv = ["score", str(folder), "--output", str(out / "rows.jsonl"), "--heatmap", str(out / "heat")]
    assert main([*argv, "--overlay", str(out / "overlay"), *critic]) == 1  # one file could not be scored
    captured = capsys.readouterr()
    assert "scored 2 of 3 videos; 1 could not be read" in captured.err
    assert f"cannot score {folder / 'deeper' / 'broken.mp4'}: could not decode" in captured.err
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert [Path(row["path"]).name for row in rows] == ["a.mp4", "b.mov", "broken.mp4"]  # sorted, recursive
    assert rows[0]["frames"] == 12 and rows[0]["fps"] == 16 and len(rows[0]["window_surprise"]) >= 1
    assert "could not decode" in rows[2]["error"] and "surprise" not in rows[2]
    assert Image.open(out / "heat" / "a.png").format == "PNG"
    assert (out / "heat" / "deeper" / "b.png").is_file()  # named as in the folder, so none collide
    overlay, fps = read_video(out / "overlay" / "deeper" / "b.mp4")
    assert overlay.shape == (10, 32, 32, 3) and fps == 16  # what the critic saw: 32x32 crops
    # the same rows as CSV; files given directly keep their names; the exit status is 0 when all are scored
    argv = ["score", str(folder / "a.mp4"), str(folder), "--output", str(out / "rows.csv"), *critic]
    assert main(argv) == 1
    table = list(csv.DictReader((out / "rows.csv").open()))
    assert [row["path"] for row in table] == [
        str(folder / "a.mp4"),
        *(str(folder / "deeper" / f) for f in ("b.mov", "broken.mp4")),
    ]
    assert float(table[0]["surprise"]) == pytest.approx(rows[0]["surprise"]) and table[2]["error"]
    assert main(["score", str(folder / "a.mp4"), *critic]) == 0


def test_score_refuses_colliding_pictures_before_the_critic_loads(
    saved_models, tmp_path, capsys, monkeypatch
):
    rng = np.random.default_rng(2)
    first = write_video(rng.random((8, 32, 32, 3), dtype=np.float32), tmp_path / "one" / "clip.mp4")
    second = write_video(rng.random((8, 32, 32, 3), dtype=np.float32), tmp_path / "two" / "clip.mp4")
    monkeypatch.setattr(
        "hybridgen.VJEPA2Critic.from_pretrained", lambda *a, **k: pytest.fail("critic loaded")
    )
    argv = ["score", str(first), str(second), "--heatmap", str(tmp_path / "heat"), "--quiet"]
    assert main(argv) == 2
    assert "several videos would write" in capsys.readouterr().err
    argv = [
        "score",
        str(first),
        "--output",
        str(tmp_path / "heat" / "x.csv"),
        "--heatmap",
        str(tmp_path / "heat"),
    ]
    monkeypatch.undo()
    assert (
        main([*argv, "--critic", str(saved_models / "critic"), "--quiet"]) == 0
    )  # a file beside the pictures


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["score", "missing.mp4", "--critic", "CRITIC"], "missing.mp4"),
        (["generate", "", "-o", "x.mp4", "--generator", "GEN", "--critic", "CRITIC"], "prompt is empty"),
        (
            [
                "generate",
                "a ball",
                "-o",
                "x.mp4",
                "--generator",
                "GEN",
                "--critic",
                "CRITIC",
                "--candidates",
                "0",
            ],
            "num_candidates",
        ),
        (["score", "CORRUPT", "--critic", "EMPTY"], "not a saved V-JEPA 2 model"),
        (["generate", "a ball", "-o", "x.mp4", "--generator", "GEN"], "no critic given"),
        # outputs are checked before anything is generated
        (
            ["generate", "a ball", "-o", "x.gif", "--generator", "GEN", "--critic", "CRITIC"],
            "must end in .mp4",
        ),
        (["generate", "a ball", "-o", "x.mp4", "--generator", "GEN", "--sheet", "s.jpg"], "must end in .png"),
        (["generate", "a ball", "-o", "x.mp4", "--generator", "GEN", "--report", "EMPTY"], "is a directory"),
        (
            ["generate", "a ball", "-o", "x.mp4", "--generator", "GEN", "--fps", "0"],
            "--fps must be a positive",
        ),
        (["score", "EMPTY", "--critic", "CRITIC"], "empty holds no video files"),
        (["score", "SHORT", "--critic", "CRITIC", "--output", "rows.json"], "must end in .jsonl or .csv"),
        (["score", "SHORT", "--critic", "CRITIC", "--heatmap", "SHORT"], "it is a file, not a directory"),
        (["score", "SHORT", "--critic", "CRITIC", "--plot", "p.jpg"], "must end in .png"),
        (["score", "SHORT", "--critic", "CRITIC", "--device", "gpu"], "not a torch device"),
        (["score", "SHORT", "--critic", "/no/such/critic"], "directory '/no/such/critic' does not exist"),
    ],
)
def test_errors_are_one_line_not_a_traceback(saved_models, tmp_path, capsys, argv, message):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"this is not a video")
    (tmp_path / "empty").mkdir()
    short = write_video(np.zeros((3, 32, 32, 3), dtype=np.float32), tmp_path / "short.mp4")
    substitutes = {
        "SHORT": str(short),
        "CRITIC": str(saved_models / "critic"),
        "GEN": str(saved_models / "generator"),
        "CORRUPT": str(corrupt),
        "EMPTY": str(tmp_path / "empty"),
    }
    argv = [substitutes.get(arg, arg) for arg in argv]
    extra = TINY if argv[0] == "generate" else ["--quiet"]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.mp4").exists()


def test_generate_refuses_sizes_before_loading_or_generating(saved_models, tmp_path, capsys):
    argv = [
        "generate",
        "a ball",
        "-o",
        str(tmp_path / "x.mp4"),
        "--generator",
        str(saved_models / "generator"),
    ]
    argv += ["--critic", str(saved_models / "critic"), "--quiet", "--device", "cpu"]
    for extra, messages in (
        (["--steps", "0"], ["num_inference_steps must be an integer >= 1, got 0"]),
        (["--frames", "3"], ["num_frames=3 is too short for the critic", "--frames"]),
    ):
        assert main(argv + extra) == 2
        err = capsys.readouterr().err
        assert all(message in err for message in messages), err
    assert list(tmp_path.iterdir()) == []


def test_generate_lists_every_file_it_wrote(saved_models, tmp_path, capsys):
    argv = [
        "generate",
        "a ball",
        "-o",
        str(tmp_path / "best.mp4"),
        "--generator",
        str(saved_models / "generator"),
    ]
    argv += [
        "--critic",
        str(saved_models / "critic"),
        "--candidates",
        "2",
        "--save-candidates",
        str(tmp_path / "all"),
    ]
    assert main(argv + TINY) == 0
    wrote = capsys.readouterr().out.splitlines()[-1]
    assert wrote == "wrote " + ", ".join(
        str(path)
        for path in (
            tmp_path / "best.mp4",
            tmp_path / "all/candidate_0.mp4",
            tmp_path / "all/candidate_1.mp4",
        )
    )


@pytest.mark.slow
def test_console_script_offline_with_hub_ids(saved_models, tmp_path):
    """The installed `hybridgen` command, Hub ids, HF_HUB_OFFLINE=1 and a pre-populated cache: no network."""
    cache = tmp_path / "hub"
    populate_hf_cache(cache, "org/tiny-critic", saved_models / "critic")
    populate_hf_cache(cache, "org/tiny-wan", saved_models / "generator")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache), HF_HOME=str(tmp_path / "home"))
    command = [
        sys.executable,
        "-m",
        "hybridgen.cli",
        "generate",
        "a red ball",
        "-o",
        str(tmp_path / "best.mp4"),
    ]
    command += ["--generator", "org/tiny-wan", "--critic", "org/tiny-critic", "--candidates", "2", *TINY]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "best.mp4").is_file()
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "hybridgen.cli",
            "score",
            str(tmp_path / "best.mp4"),
            "--critic",
            "org/nothing",
            "--quiet",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2
    assert "HF_HUB_OFFLINE=1 is set" in missing.stderr


@pytest.mark.slow
def test_score_splits_videos_across_two_processes_and_merges_one_output(saved_models, tmp_path):
    """`torchrun --nproc_per_node 2 -m hybridgen.cli score ...`: accelerate's PartialState gives each process
    half the videos; one process writes the merged rows, in the videos' order, as one process would."""
    rng = np.random.default_rng(5)
    folder = tmp_path / "videos"
    for index in range(5):
        write_video(rng.random((8 + index, 32, 32, 3), dtype=np.float32), folder / f"clip{index}.mp4")
    (folder / "broken.mp4").write_bytes(b"not a video")
    score = ["score", str(folder), "--critic", str(saved_models / "critic"), "--quiet", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"]
    command = [*launcher, "-m", "hybridgen.cli", *score, "--output", str(tmp_path / "two.jsonl")]
    command += ["--heatmap", str(tmp_path / "heat")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0 and "scored 5 of 6 videos; 1 could not be read" in result.stderr, (
        result.stderr
    )
    assert result.stdout.count("rank   surprise") == 1  # one ranking, from the main process
    assert main([*score, "--output", str(tmp_path / "one.jsonl")]) == 1
    two = [json.loads(line) for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    one = [json.loads(line) for line in (tmp_path / "one.jsonl").read_text().splitlines()]
    assert [row["path"] for row in two] == [row["path"] for row in one]
    assert [("error" in row) for row in two] == [("error" in row) for row in one]
    for mine, theirs in zip(two, one):
        assert mine.get("surprise", 0) == pytest.approx(theirs.get("surprise", 0), rel=1e-5)
    assert sorted(path.name for path in (tmp_path / "heat").iterdir()) == [f"clip{i}.png" for i in range(5)]
