"""Saving and sharing: a HybridPipeline as one folder, model cards, and what push_to_hub would upload."""

import shutil

import huggingface_hub
import huggingface_hub.constants
import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard

from hybridgen import HybridPipeline, VJEPA2Critic
from hybridgen.hub import PIPELINE_FILE
from hybridgen.testing import populate_hf_cache

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
