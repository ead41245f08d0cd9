"""The hybridgen command line, on tiny models saved to local directories and a Hub cache."""

import json
import os
import subprocess
import sys

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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["score", "missing.mp4", "--critic", "CRITIC"], "missing.mp4"),
        (["score", "CORRUPT", "--critic", "CRITIC"], "could not decode"),
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
        (["score", "EMPTY", "--critic", "CRITIC"], "got a directory"),
        (["score", "SHORT", "--critic", "CRITIC", "--plot", "p.jpg"], "must end in .png"),
        (["score", "SHORT", "--critic", "CRITIC"], "short.mp4: clip has 3 frames"),
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
