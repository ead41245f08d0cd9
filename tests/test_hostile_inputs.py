"""Careless and hostile input to `generate` and `HybridPipeline`: every case fails before any work, in one line,
and nothing a user had is overwritten or mixed up."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hybridgen import HybridPipeline, VJEPA2Critic
from hybridgen.cli import main
from hybridgen.models import CALL_DEFAULTS_FILE
from hybridgen.pipelines import limits
from hybridgen.pipelines.guidance import GuidanceOptions
from hybridgen.pipelines.search import SearchOptions
from hybridgen.testing import TINY_CALL_KWARGS, tiny_pipeline

TINY = ["--frames", "17", "--height", "32", "--width", "32", "--steps", "2", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def wan(critic):
    return HybridPipeline(tiny_pipeline("wan"), critic)


@pytest.fixture
def no_generation(monkeypatch):
    """Fail the test if anything is generated: every case here must be refused before the first step."""

    def refuse(*args, **kwargs):
        raise AssertionError("generation started")

    monkeypatch.setattr("hybridgen.pipelines.hybrid.generate_candidates", refuse)
    monkeypatch.setattr("hybridgen.pipelines.hybrid.search_candidates", refuse)


def run_generate(saved_models, tmp_path, capsys, *options):
    argv = ["generate", "a red ball", "--generator", str(saved_models / "generator")]
    argv += ["--critic", str(saved_models / "critic"), *options, *TINY]
    code = main(argv)
    return code, capsys.readouterr().err


# ------------------------------------------------------------------ outputs that collide or cannot be written
@pytest.mark.parametrize(
    "options",
    [
        ["-o", "a.mp4", "--report", "a.mp4"],
        ["-o", "a.mp4", "--sheet", "p.png", "--plot", "p.png"],
        ["-o", "a.mp4", "--sheet", "p.png", "--plot", "sub/../p.png"],
        ["-o", "x.mp4", "--save-candidates", "x.mp4"],
    ],
)
def test_two_outputs_naming_one_file_are_refused_before_any_work(
    saved_models, tmp_path, capsys, monkeypatch, no_generation, options
):
    monkeypatch.chdir(tmp_path)
    code, err = run_generate(saved_models, tmp_path, capsys, *options)
    assert code == 2 and "are the same file" in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-o", "d/candidate_0.mp4", "--save-candidates", "d"], "has a candidate's name"),
        (["-o", "f/candidate_7.mp4", "--save-candidates", "f", "--overwrite"], "has a candidate's name"),
        (["-o", "out/a.mp4", "--report", "out"], "would be inside --report out"),
        (["-o", "a.mp4", "--save-candidates", "q", "--report", "q"], "are the same file"),
        (["-o", "a.mp4", "--save-candidates", "a.mp4/c"], "would be inside -o a.mp4"),
    ],
)
def test_outputs_in_each_others_way_are_refused_before_any_work(
    saved_models, tmp_path, capsys, monkeypatch, no_generation, options, message
):
    monkeypatch.chdir(tmp_path)
    code, err = run_generate(saved_models, tmp_path, capsys, *options)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_a_billion_candidates_into_a_folder_are_refused_at_once(saved_models, tmp_path, capsys):
    started = time.perf_counter()
    options = [
        "-o",
        str(tmp_path / "a.mp4"),
        "--save-candidates",
        str(tmp_path / "all"),
        "--candidates",
        "1000000000",
    ]
    code, err = run_generate(saved_models, tmp_path, capsys, *options)
    assert code == 2 and "num_candidates=1000000000" in err
    assert time.perf_counter() - started < 30  # the models load; nothing is enumerated per candidate


def test_an_output_linked_to_another_is_the_same_file(saved_models, tmp_path, capsys, no_generation):
    (tmp_path / "best.mp4").write_bytes(b"an earlier best clip")
    (tmp_path / "report.json").symlink_to(tmp_path / "best.mp4")
    options = ["-o", str(tmp_path / "best.mp4"), "--report", str(tmp_path / "report.json")]
    code, err = run_generate(saved_models, tmp_path, capsys, *options)
    assert code == 2 and "are the same file" in err
    os.link(tmp_path / "best.mp4", tmp_path / "hard.json")
    code, err = run_generate(
        saved_models,
        tmp_path,
        capsys,
        "-o",
        str(tmp_path / "best.mp4"),
        "--report",
        str(tmp_path / "hard.json"),
    )
    assert code == 2 and "are the same file" in err
    assert (tmp_path / "best.mp4").read_bytes() == b"an earlier best clip"


def test_a_candidates_folder_inside_a_file_is_refused_before_any_work(
    saved_models, tmp_path, capsys, no_generation
):
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "best.mp4").write_bytes(b"an earlier best clip")
    options = ["-o", str(tmp_path / "best.mp4"), "--save-candidates", str(tmp_path / "afile" / "sub")]
    code, err = run_generate(saved_models, tmp_path, capsys, *options)
    assert code == 2 and "afile is a file" in err, err
    assert (tmp_path / "best.mp4").read_bytes() == b"an earlier best clip"


def test_earlier_candidates_are_never_mixed_with_new_ones(saved_models, tmp_path, capsys):
    folder = tmp_path / "candidates"
    folder.mkdir()
    for i in range(6):
        (folder / f"candidate_{i}.mp4").write_bytes(b"an earlier run")
    (folder / "notes.txt").write_text("mine")
    (folder / "candidate_final.mp4").write_bytes(b"mine too")
    options = ["-o", str(tmp_path / "best.mp4"), "--candidates", "2", "--save-candidates", str(folder)]
    code, err = run_generate(saved_models, tmp_path, capsys, *options)
    assert code == 2 and "earlier run" in err and "--overwrite" in err
    assert not (tmp_path / "best.mp4").exists()
    assert (
        main(
            [
                "generate",
                "a red ball",
                "--generator",
                str(saved_models / "generator"),
                "--critic",
                str(saved_models / "critic"),
                *options,
                "--overwrite",
                *TINY,
            ]
        )
        == 0
    )
    assert sorted(path.name for path in folder.iterdir()) == [
        "candidate_0.mp4",
        "candidate_1.mp4",
        "candidate_final.mp4",
        "notes.txt",
    ]
    assert (folder / "candidate_0.mp4").read_bytes() != b"an earlier run"


# ------------------------------------------------------------------ sizes and counts
def test_a_billion_candidates_are_refused_at_once(wan):
    started = time.perf_counter()
    with pytest.raises(
        ValueError, match=r"num_candidates=1000000000 clips .* GiB .* ask for at most \d+ candidates"
    ):
        wan("a red ball", num_candidates=10**9, **TINY_CALL_KWARGS["wan"])
    assert time.perf_counter() - started < 1


def test_the_memory_check_counts_every_candidate():
    sizes = {"num_frames": 17, "height": 32, "width": 32}
    per_candidate = 17 * (32 * 32 + 4 * 64 * 64) * 3 * 4  # frames, and the critic's crops while scoring
    limits.check_candidates_fit(100, sizes, 200 * per_candidate, crop_size=64)
    with pytest.raises(ValueError, match="at most 100 candidates"):
        limits.check_candidates_fit(101, sizes, 200 * per_candidate, crop_size=64)
    limits.check_candidates_fit(
        10**9, None, 1, crop_size=64
    )  # sizes the pipeline derives itself: not checked


def test_frames_beyond_the_positional_embedding_are_refused_before_any_step(wan, no_generation):
    kwargs = dict(TINY_CALL_KWARGS["wan"], num_frames=129)  # 33 latent frames; the tiny rope covers 32
    with pytest.raises(ValueError, match=r"num_frames=129 is beyond .* at most num_frames=125"):
        wan("a red ball", num_candidates=1, **kwargs)
    with pytest.raises(ValueError, match=r"width=640 is beyond .* at most width=512"):
        wan("a red ball", num_candidates=1, **dict(TINY_CALL_KWARGS["wan"], width=640))


def test_the_positional_limit_is_the_generators_own():
    """At the limit the tiny Wan generates; one latent frame more and the transformer itself fails."""
    pipe = tiny_pipeline("wan")
    kwargs = dict(TINY_CALL_KWARGS["wan"], height=16, width=16, num_inference_steps=1, output_type="latent")
    limits.check_positional_limits(pipe, {"num_frames": 125, "height": 16, "width": 16})
    pipe("a ball", **dict(kwargs, num_frames=125))
    with pytest.raises(RuntimeError):
        pipe("a ball", **dict(kwargs, num_frames=129))


def test_the_bundled_generator_refuses_300_frames_in_one_line(tmp_path, capsys):
    code = main(["generate", "a red ball", "-o", str(tmp_path / "a.mp4"), "--frames", "300", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "num_frames=300 is beyond" in err and "--frames" in err
    assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ numbers that are not numbers
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_pipeline_arguments_are_refused(wan, no_generation, value):
    with pytest.raises(ValueError, match="guidance_scale=.* is not a finite number"):
        wan("a red ball", num_candidates=1, guidance_scale=value, **TINY_CALL_KWARGS["wan"])
    with pytest.raises(ValueError, match="not a finite number"):
        HybridPipeline(wan.pipeline, wan.critic, call_defaults={"guidance_scale": value})


def test_a_nan_tensor_is_refused_too(wan, no_generation):
    import torch

    with pytest.raises(ValueError, match="guidance_scale=nan is not a finite number"):
        wan(
            "a red ball",
            num_candidates=1,
            guidance_scale=torch.tensor(float("nan")),
            **TINY_CALL_KWARGS["wan"],
        )


def test_frames_the_critic_would_refuse_are_refused_before_generating(wan, no_generation):
    kwargs = dict(TINY_CALL_KWARGS["wan"], height=32, width=512)
    with pytest.raises(ValueError, match=r"height=32, width=512 makes frames of 16:1; .* at most 8:1"):
        wan("a red ball", num_candidates=1, **kwargs)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_strategy_options_are_refused(value):
    with pytest.raises(ValueError, match="scale must be a finite number"):
        GuidanceOptions(scale=value)
    with pytest.raises(ValueError, match="temperature must be a finite number"):
        SearchOptions(temperature=value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train-critic", "OUT", "--threads", "-1"], "argument --threads: '-1' must be an integer >= 1"),
        (["train-critic", "OUT", "--lr", "nan"], "argument --lr: 'nan' is not a finite number"),
        (["train-critic", "OUT", "--workers", "-2"], "argument --workers: '-2' must be an integer >= 0"),
        (["train-generator", "OUT", "--lr", "inf"], "argument --lr: 'inf' is not a finite number"),
        (["calibrate-critic", "toyworld", "-o", "OUT", "--threads", "0"], "must be an integer >= 1"),
        (
            ["score", "x.mp4", "--top-fraction", "nan"],
            "argument --top-fraction: 'nan' is not a finite number",
        ),
    ],
)
def test_options_that_take_numbers_refuse_nonsense_in_one_line(tmp_path, capsys, argv, message):
    argv = [str(tmp_path / "out") if arg == "OUT" else arg for arg in argv]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_fps_nan_is_refused(saved_models, tmp_path, capsys, no_generation):
    code, err = run_generate(saved_models, tmp_path, capsys, "-o", str(tmp_path / "a.mp4"), "--fps", "nan")
    assert code == 2 and "--fps must be a positive, finite frame rate" in err


# ------------------------------------------------------------------ broken checkpoints
def copy_generator(saved_models, tmp_path):
    import shutil

    return shutil.copytree(saved_models / "generator", tmp_path / "generator")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"pipeline_call": {"no_such_argument": 1}}', "call_defaults.json does not suit its pipeline"),
        ('{"pipeline_call": {"guidance_scale": NaN}}', "guidance_scale=nan is not a finite number"),
        ('{"fps": 16, "extra": 1}', "call_defaults.json must hold"),
        ('{"fps": "fast"}', "call_defaults.json must hold"),
        (
            '{"pipeline_call": {"guidance_scale": "4"}}',
            "guidance_scale must be a number (default 5.0), got '4'",
        ),
        ('{"pipeline_call": {"num_frames": "17"}}', "num_frames must be an integer >= 1, got '17'"),
        ('{"pipeline_call": {"num_frames": 17.9}}', "num_frames must be an integer >= 1, got 17.9"),
        ("{not json", "is not valid JSON"),
    ],
)
def test_a_broken_call_defaults_file_is_one_line(
    saved_models, tmp_path, capsys, no_generation, content, message
):
    generator = copy_generator(saved_models, tmp_path)
    (generator / CALL_DEFAULTS_FILE).write_text(content)
    argv = ["generate", "a ball", "-o", str(tmp_path / "a.mp4"), "--generator", str(generator)]
    code = main([*argv, "--critic", str(saved_models / "critic"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_a_malformed_config_in_a_local_directory_is_named_as_such(saved_models, tmp_path, capsys):
    generator = copy_generator(saved_models, tmp_path)
    (generator / "transformer" / "config.json").write_text('{"num_layers": 2,')
    argv = ["generate", "a ball", "-o", str(tmp_path / "a.mp4"), "--generator", str(generator)]
    code = main([*argv, "--critic", str(saved_models / "critic"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "from the local directory" in err and "config.json" in err, err
    assert "HF cache" not in err and "Hugging Face" not in err
    critic = tmp_path / "critic"
    critic.mkdir()
    (critic / "config.json").write_text("{broken")
    (critic / "model.safetensors").write_bytes((saved_models / "critic" / "model.safetensors").read_bytes())
    with pytest.raises(OSError, match="from the local directory .*critic/config.json"):
        VJEPA2Critic.from_pretrained(str(critic))


# ------------------------------------------------------------------ interrupts
def test_the_command_line_parses_before_importing_torch():
    """So that Ctrl-C while the libraries load is already inside main's handling (exit 130, one line)."""
    code = "import sys, hybridgen.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_ctrl_c_exits_130_with_one_line(saved_models, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("hybridgen.pipelines.hybrid.generate_candidates", interrupted)
    code, err = run_generate(saved_models, tmp_path, capsys, "-o", str(tmp_path / "a.mp4"))
    assert code == 130 and err.strip() == "hybridgen generate: interrupted; nothing half-written was left"


@pytest.mark.slow
def test_a_terminated_generate_exits_143_and_leaves_nothing(saved_models, tmp_path):
    """SIGTERM mid-run (as a job scheduler sends it): one line, exit 128 + 15, nothing written."""
    command = [sys.executable, "-m", "hybridgen.cli", "generate", "a red ball", "-o", str(tmp_path / "a.mp4")]
    command += ["--generator", str(saved_models / "generator"), "--critic", str(saved_models / "critic")]
    command += ["--candidates", "5000", "--batch-size", "1", *TINY[:-3], "--device", "cpu"]  # progress shown
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    seen = b""
    while b"candidates:" not in seen:  # the candidates' progress bar: generating has begun
        chunk = os.read(process.stderr.fileno(), 4096)
        assert chunk, seen.decode(errors="replace")
        seen += chunk
    process.send_signal(signal.SIGTERM)
    err = (seen + process.communicate(timeout=60)[1]).decode(errors="replace")
    assert process.returncode == 143, err
    assert err.strip().splitlines()[-1] == "hybridgen generate: terminated; nothing half-written was left"
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ files from strangers never run code
class PlantedPayload:
    """Unpickling this creates `marker`: proof that a loader ran code from a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_pickle(path, marker):
    import pickle

    path.write_bytes(pickle.dumps(PlantedPayload(marker)))


def test_pickled_critic_weights_are_never_unpickled(saved_models, tmp_path):
    import shutil

    marker = tmp_path / "code-ran"
    critic = tmp_path / "critic"
    critic.mkdir()
    shutil.copy(saved_models / "critic" / "config.json", critic)
    plant_pickle(critic / "pytorch_model.bin", marker)
    with pytest.raises(OSError, match=r"pickled weights \(pytorch_model.bin\), which hybridgen never loads"):
        VJEPA2Critic.from_pretrained(str(critic))
    shutil.copy(
        saved_models / "critic" / "model.safetensors", critic
    )  # beside the pickle, the safetensors are read
    VJEPA2Critic.from_pretrained(str(critic))
    assert not marker.exists()


def test_pickled_pipeline_weights_are_never_unpickled(saved_models, tmp_path):
    marker = tmp_path / "code-ran"
    generator = copy_generator(saved_models, tmp_path)
    weights = generator / "transformer" / "diffusion_pytorch_model.safetensors"
    weights.unlink()
    plant_pickle(weights.with_suffix(".bin"), marker)
    with pytest.raises(OSError, match="from the local directory"):
        HybridPipeline.from_pretrained(str(generator), critic=str(saved_models / "critic"))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"transformer": ["hybridgen_planted_module", "Anything"]}, "from 'hybridgen_planted_module'"),
        ({"_class_name": "MyCustomPipeline"}, "custom pipeline code is not loaded"),
    ],
)
def test_a_pipeline_naming_foreign_code_is_refused_before_importing_it(
    saved_models, tmp_path, monkeypatch, entry, message
):
    marker = tmp_path / "code-ran"
    (tmp_path / "hybridgen_planted_module.py").write_text(f"open({str(marker)!r}, 'w')\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # an installed module diffusers would import by name
    generator = copy_generator(saved_models, tmp_path)
    index = json.loads((generator / "model_index.json").read_text())
    (generator / "model_index.json").write_text(json.dumps({**index, **entry}))
    with pytest.raises(ValueError, match=message):
        HybridPipeline.from_pretrained(str(generator), critic=str(saved_models / "critic"))
    assert not marker.exists()
