"""Saving and sharing: a HybridPipeline as one folder, model cards, and what push_to_hub would upload."""

import importlib.util
import json
import shutil

import huggingface_hub
import huggingface_hub.constants
import numpy as np
import pytest
import torch
from bundle_toyworld import REPOSITORY, ROLES, derived_files, read_record
from huggingface_hub import ModelCard
from transformers.image_utils import PILImageResampling
from transformers.models.auto.video_processing_auto import video_processor_class_from_name
from transformers.video_processing_utils import BaseVideoProcessor

from hybridgen import HybridPipeline, VJEPA2Critic
from hybridgen.critics.vjepa2 import transformers_resize
from hybridgen.hub import PIPELINE_FILE
from hybridgen.models import CRITIC_CONFIG_FILE, VIDEO_PROCESSOR_FILE, WEIGHTS_DIR
from hybridgen.testing import populate_hf_cache, tiny_vjepa2_model

TINY_CALL = {"num_frames": 17, "height": 32, "width": 32, "num_inference_steps": 2}


def generate(pipe, **kwargs):
    return pipe(
        "a red ball bouncing",
        num_candidates=2,
        generator=torch.Generator().manual_seed(0),
        show_progress=False,
        **kwargs,
    )


@pytest.fixture
def tiny_pipe(saved_models):
    return HybridPipeline.from_pretrained(
        str(saved_models / "generator"), critic=str(saved_models / "critic"), device="cpu"
    )


@pytest.fixture
def uploads(monkeypatch, tmp_path):
    """huggingface_hub's HfApi, its two network calls recorded: each uploaded folder is copied for the test."""
    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        copy = shutil.copytree(folder_path, tmp_path / f"uploaded-{len(calls)}")
        calls.append(("upload_folder", repo_id, {**kwargs, "folder": copy}))
        return "commit"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return calls


def test_a_saved_toyworld_pipeline_loads_back_bit_for_bit(tmp_path):
    pipe = HybridPipeline.from_pretrained("toyworld")
    pipe.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / PIPELINE_FILE).is_file()
    back = HybridPipeline.from_pretrained(str(tmp_path / "saved"))
    assert back.call_defaults == pipe.call_defaults and back.fps == pipe.fps
    assert back.critic.options == pipe.critic.options
    assert back.critic.expected_error_head is not None
    assert back.sources == pipe.sources == {"generator": "toyworld", "critic": "toyworld"}
    for name, tensor in pipe.pipeline.transformer.state_dict().items():
        assert torch.equal(tensor, back.pipeline.transformer.state_dict()[name]), name
    first, second = generate(pipe), generate(back)
    assert np.array_equal(first.video, second.video) and first.surprises == second.surprises


def test_a_saved_pipeline_loads_from_the_hub_cache_offline(tiny_pipe, tmp_path, monkeypatch):
    tiny_pipe.save_pretrained(tmp_path / "saved")
    cache = tmp_path / "hub"
    populate_hf_cache(cache, "someone/hybrid-tiny", tmp_path / "saved")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    back = HybridPipeline.from_pretrained("someone/hybrid-tiny", cache_dir=str(cache))
    assert np.array_equal(generate(back, **TINY_CALL).video, generate(tiny_pipe, **TINY_CALL).video)


def test_a_failed_save_leaves_the_old_folder_whole(tiny_pipe, tmp_path, monkeypatch):
    tiny_pipe.save_pretrained(tmp_path / "saved")
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "saved").rglob("*"))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tiny_pipe.critic, "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        tiny_pipe.save_pretrained(tmp_path / "saved")
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "saved").rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]  # no temporary folder left
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="it is a file, not a directory"):
        tiny_pipe.save_pretrained(tmp_path / "file")


def test_push_to_hub_uploads_the_saved_folder_with_its_card(tiny_pipe, uploads, tmp_path):
    tiny_pipe.sources = {"generator": "org/tiny-wan", "critic": "org/tiny-vjepa2"}
    assert (
        tiny_pipe.push_to_hub("me/physics-video", private=True, license="apache-2.0", metrics="| a | 1 |")
        == "commit"
    )
    (create, repo, options), (upload, repo_again, uploaded) = uploads
    assert (create, repo, options["private"], options["exist_ok"]) == (
        "create_repo",
        "me/physics-video",
        True,
        True,
    )
    assert (upload, repo_again) == ("upload_folder", "me/physics-video")
    folder = uploaded["folder"]
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "hybridgen" and card.data.pipeline_tag == "text-to-video"
    assert card.data.base_model == ["org/tiny-wan", "org/tiny-vjepa2"] and card.data.license == "apache-2.0"
    assert 'HybridPipeline.from_pretrained("me/physics-video")' in card.text and "| a | 1 |" in card.text
    back = HybridPipeline.from_pretrained(str(folder))  # exactly what was uploaded loads back
    assert back.sources == tiny_pipe.sources
    assert np.array_equal(generate(back, **TINY_CALL).video, generate(tiny_pipe, **TINY_CALL).video)


def test_a_critic_pushes_with_its_card_and_keeps_a_card_of_its_own(saved_models, uploads, tmp_path):
    critic = VJEPA2Critic.from_pretrained(str(saved_models / "critic"), top_fraction=0.25)
    critic.push_to_hub("me/critic")
    folder = uploads[-1][2]["folder"]
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "hybridgen" and "v-jepa-2" in card.data.tags
    assert 'VJEPA2Critic.from_pretrained("me/critic")' in card.text
    assert VJEPA2Critic.from_pretrained(str(folder)).options == critic.options
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "README.md").write_text("my own card")
    critic.save_pretrained(tmp_path / "mine")
    assert (tmp_path / "mine" / "README.md").read_text() == "my own card"


def test_push_to_hub_is_refused_offline_before_anything_is_written(tiny_pipe, saved_models, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("saved while offline")

    monkeypatch.setattr(HybridPipeline, "save_pretrained", refuse)
    with pytest.raises(OSError, match="HF_HUB_OFFLINE=1 is set"):
        tiny_pipe.push_to_hub("me/physics-video")
    with pytest.raises(OSError, match="HF_HUB_OFFLINE=1 is set"):
        tiny_pipe.critic.push_to_hub("me/critic")


# ----------------------------------------------------------------------------- the bundled cards


def test_the_bundled_folders_hold_exactly_what_the_bundler_derives():
    """The cards and the critic's processor config are generated from each folder, its record and the result files:
    `python scripts/bundle_toyworld.py regenerate` rewrites them, so they cannot drift from what they describe."""
    for role in ROLES:
        derived = derived_files(role)
        assert set(derived) == ({"README.md", VIDEO_PROCESSOR_FILE} if role == "critic" else {"README.md"})
        for name, text in derived.items():
            assert (WEIGHTS_DIR / role / name).read_text(encoding="utf-8") == text, (role, name)


def test_the_bundled_cards_carry_hub_metadata_and_how_to_load_them():
    critic = ModelCard.load(WEIGHTS_DIR / "critic" / "README.md")
    assert critic.data.library_name == "hybridgen" and critic.data.license == "apache-2.0"
    assert {"hybridgen", "v-jepa-2", "world-model"} <= set(critic.data.tags)
    assert critic.data.base_model is None  # trained from random weights
    assert 'VJEPA2Critic.from_pretrained("toyworld")' in critic.text
    assert "`make toyworld-critic`" in critic.text
    # transformers' processor resizes to 73 px, the critic to 64: the card says how to match it
    assert '`size={"shortest_edge": 64}`' in critic.text
    generator = ModelCard.load(WEIGHTS_DIR / "generator" / "README.md")
    assert generator.data.library_name == "diffusers" and generator.data.pipeline_tag == "text-to-video"
    assert generator.data.license == "apache-2.0" and "toy-world" in generator.data.tags
    assert 'HybridPipeline.from_pretrained("toyworld"' in generator.text and "Training time" in generator.text


def test_the_bundled_cards_read_their_numbers_and_commands_from_the_result_files(tmp_path):
    for role, table in (("critic", "| teleport | 0.123 / "), ("generator", "| 8 | 0.1230 |")):
        record = read_record(WEIGHTS_DIR / role)
        for entry in record["measured"]:
            for name in entry["files"]:
                (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPOSITORY / name, tmp_path / name)
        results_file = tmp_path / record["measured"][0]["files"][0]
        results = json.loads(results_file.read_text())
        if role == "critic":
            results["results"]["trained critic"]["teleport"]["accuracy"] = 0.123
        else:
            results["best_of_n"][3]["best"] = 0.123
        results_file.write_text(json.dumps(results))
        card = derived_files(role, root=tmp_path)["README.md"]
        assert table in card and table not in (WEIGHTS_DIR / role / "README.md").read_text()
        for command in record["measured"][0]["commands"]:
            assert f"`{command}`" in card
        assert f"`{record['measured'][0]['files'][0]}`" in card


# ----------------------------------------------------------------------------- the video processor config


@pytest.fixture
def saved_critic(tmp_path):
    """A tiny critic (crop 32) saved with `save_pretrained`, resizing to 40 px with its own mean and std."""
    critic = VJEPA2Critic(
        tiny_vjepa2_model(), resize_to=40, image_mean=(0.5, 0.4, 0.3), image_std=(0.2, 0.3, 0.25)
    )
    critic.save_pretrained(tmp_path / "critic")
    return critic, tmp_path / "critic"


def test_a_saved_critic_carries_the_video_processor_config_transformers_reads(saved_critic):
    critic, folder = saved_critic
    config, _ = BaseVideoProcessor.get_video_processor_dict(str(folder))  # AutoVideoProcessor's first step
    assert video_processor_class_from_name(config["video_processor_type"]).__name__ == "VJEPA2VideoProcessor"
    assert config["do_resize"] and config["size"] == {"shortest_edge": 40}
    assert PILImageResampling(config["resample"]) == PILImageResampling.BILINEAR  # the critic's interpolation
    assert config["do_center_crop"] and config["crop_size"] == {"height": 32, "width": 32}
    assert config["do_rescale"] and config["rescale_factor"] == 1 / 255
    assert config["do_normalize"] and config["image_mean"] == [0.5, 0.4, 0.3]
    assert config["image_std"] == [0.2, 0.3, 0.25]
    assert transformers_resize(32) == 36  # what transformers' processor resizes to instead: the card says so
    assert '`size={"shortest_edge": 40}`' in (folder / "README.md").read_text()
    # the file alone gives hybridgen the critic's preprocessing back
    (folder / CRITIC_CONFIG_FILE).unlink()
    back = VJEPA2Critic.from_pretrained(str(folder))
    assert (back.options.resize_to, back.options.image_mean, back.options.image_std) == (
        40,
        critic.options.image_mean,
        critic.options.image_std,
    )


def test_the_card_of_a_critic_transformers_can_prepare_for_says_so():
    critic = VJEPA2Critic(tiny_vjepa2_model(), resize_to=transformers_resize(32))
    assert "prepares frames as the critic does" in critic.model_card().text
    assert "shortest_edge" not in critic.model_card().text


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None, reason="transformers' video processors need torchvision"
)
def test_transformers_prepares_frames_as_the_critic_does(tmp_path):
    from transformers import AutoVideoProcessor

    # float frames in 0-255: resized without rounding to uint8; 48x72 resizes to whole sizes both ways
    clip = np.random.default_rng(0).integers(0, 256, (4, 48, 72, 3)).astype(np.float32)
    for resize_to, call in ((transformers_resize(32), {}), (32, {"size": {"shortest_edge": 32}})):
        critic = VJEPA2Critic(tiny_vjepa2_model(), resize_to=resize_to)
        critic.save_pretrained(tmp_path / str(resize_to))
        processor = AutoVideoProcessor.from_pretrained(str(tmp_path / str(resize_to)))
        assert type(processor).__name__ == "VJEPA2VideoProcessor"
        theirs = processor(clip, return_tensors="pt", **call)["pixel_values_videos"]
        ours = critic.preprocess(torch.from_numpy(clip / 255).permute(0, 3, 1, 2)[None])
        torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=1e-4)
