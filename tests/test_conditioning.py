"""Conditioned generation: every candidate conditioned on the same input, as a direct diffusers call would be."""

import json
import shutil

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import LTXImageToVideoPipeline

from hybridgen import HybridPipeline, VJEPA2Critic
from hybridgen.cli import main
from hybridgen.jobs import read_items
from hybridgen.testing import tiny_pipeline, tiny_vjepa2_model

CALL = {"num_frames": 17, "height": 32, "width": 32, "num_inference_steps": 2}


@pytest.fixture(scope="module")
def image_to_video():
    """A tiny LTX image-to-video pipeline (the text-to-video components) under a tiny critic, and an image."""
    pipeline = LTXImageToVideoPipeline(**tiny_pipeline("ltx").components)
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return HybridPipeline(pipeline, VJEPA2Critic(tiny_vjepa2_model())), image


def test_every_candidate_is_the_direct_call_with_the_same_image(image_to_video):
    pipe, image = image_to_video
    out = pipe(
        "a ball",
        image=image,
        num_candidates=3,
        generator=torch.Generator().manual_seed(0),
        show_progress=False,
        **CALL,
    )
    for seed, candidate in zip(out.seeds, out.candidates):  # one pipeline call made all three
        direct = pipe.pipeline(
            prompt="a ball",
            image=image,
            generator=torch.Generator().manual_seed(seed),
            output_type="np",
            **CALL,
        ).frames[0]
        assert np.allclose(candidate, direct, atol=1e-5)


def test_strategies_that_cannot_follow_the_conditioned_denoising_are_refused_first(
    image_to_video, monkeypatch
):
    pipe, image = image_to_video
    monkeypatch.setattr(
        "hybridgen.pipelines.hybrid.search_candidates", lambda *a, **k: pytest.fail("started")
    )
    for strategy in ("search", "guidance"):
        with pytest.raises(ValueError, match="Use strategy='rerank'"):
            pipe("a ball", image=image, strategy=strategy, show_progress=False, **CALL)


@pytest.fixture(scope="module")
def saved_image_to_video(image_to_video, tmp_path_factory):
    """The tiny LTX image-to-video pipeline and its critic saved as folders, and an image file."""
    pipe, image = image_to_video
    root = tmp_path_factory.mktemp("image-to-video")
    pipe.pipeline.save_pretrained(root / "generator")
    pipe.critic.save_pretrained(root / "critic")
    image.save(root / "first.png")
    return root


def test_generate_conditions_on_an_image_file(saved_image_to_video, saved_models, tmp_path, capsys):
    root = saved_image_to_video
    argv = ["generate", "a ball", "--frames", "17", "--height", "32", "--width", "32", "--steps", "2"]
    argv += ["--candidates", "2", "--quiet", "--device", "cpu", "-o", str(tmp_path / "out.mp4")]
    models = ["--generator", str(root / "generator"), "--critic", str(root / "critic")]
    assert main([*argv, *models, "--image", str(root / "first.png")]) == 0
    assert (tmp_path / "out.mp4").stat().st_size > 0
    (tmp_path / "out.mp4").unlink()
    for image, message in (
        (tmp_path / "missing.png", "image not found"),
        (root / "critic" / "config.json", "not an image"),
    ):
        assert (
            main([*argv, "--generator", "/no/such/model", "--image", str(image)]) == 2
        )  # before models load
        assert message in capsys.readouterr().err
    text_to_video = ["--generator", str(saved_models / "generator"), "--critic", str(saved_models / "critic")]
    assert main([*argv, *text_to_video, "--image", str(root / "first.png")]) == 2
    assert "--image needs a generator that takes an image; WanPipeline does not" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()


def test_batch_items_name_their_image_and_a_missing_one_fails_that_item_alone(saved_image_to_video, tmp_path):
    root = saved_image_to_video
    items = tmp_path / "items.jsonl"
    shutil.copy(root / "first.png", tmp_path / "first.png")
    items.write_text(
        json.dumps({"prompt": "a ball", "id": "good", "image": "first.png"})
        + "\n"
        + json.dumps({"prompt": "a ball", "id": "bad", "image": "missing.png"})
        + "\n"
    )
    assert read_items(items)[0].options["image"] == str(tmp_path / "first.png")  # relative to the items file
    argv = [
        "batch",
        str(items),
        "-o",
        str(tmp_path / "out"),
        "--generator",
        str(root / "generator"),
        "--critic",
    ]
    argv += [str(root / "critic"), "--frames", "17", "--height", "32", "--width", "32", "--steps", "2"]
    assert main([*argv, "--candidates", "2", "--quiet", "--device", "cpu"]) == 1
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert "surprise" in rows[0] and "image not found" in rows[1]["error"]
