"""The trainers and the model-card bundler against hostile and careless inputs: a stranger's checkpoint folder must
never run code; a broken file, a run directory that is a file, must fail with one clear line naming what to do.

A planted pickle is refused with a clear error (`PickledCheckpointError`) rather than skipped for a fresh start: a
silent fresh start would overwrite the folder the user meant to resume.
"""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_toyworld import run_critic_card, run_generator_card
from test_generator_training import tiny_config

import hybridgen
from hybridgen.cli import main
from hybridgen.testing import tiny_vjepa2_model
from hybridgen.training import critic as critic_module
from hybridgen.training import generator as generator_module
from hybridgen.training.checkpoints import BrokenCheckpointError
from hybridgen.training.critic import CriticTrainer, CriticTrainingConfig, ToyWorldClips, train_critic
from hybridgen.training.generator import GeneratorTrainer, train_generator
from hybridgen.training.state import PickledCheckpointError, load_state, save_state

SCORING = {"window": 8, "context": 4, "stride": 2, "direction": "both", "top_fraction": 0.1}
STATE_FILES = ("trainer_state.json", "trainer_state.safetensors")


class Payload:
    """Unpickling this creates the file `marker`; a stranger's pickle could run any code the same way."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def plant_pickle(path, marker):
    """Write at `path` a torch checkpoint whose loading would create `marker`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"step": Payload(marker), "config": {}}, path)


@pytest.fixture(scope="module")
def clips():
    return ToyWorldClips(pool_size=12, refresh=2, size=32, seed=0)


def critic_trainer(clips, **options):
    config = CriticTrainingConfig(
        **{"steps": 2, "batch_size": 2, "warmup_steps": 1, "scoring": SCORING, **options}
    )
    return CriticTrainer(tiny_vjepa2_model(seed=0), clips, config)


@pytest.fixture(scope="module")
def critic_run(clips, tmp_path_factory):
    """A finished two-step critic run; tests work on copies of it."""
    run = tmp_path_factory.mktemp("critic") / "run"
    critic_trainer(clips).fit(run, show_progress=False)
    return run


@pytest.fixture(scope="module")
def generator_run(tmp_path_factory):
    """A finished one-step generator run, past stage 1 (its checkpoint holds the latents); tests work on copies."""
    run = tmp_path_factory.mktemp("generator") / "run"
    GeneratorTrainer(tiny_config(steps=1, vae_steps=1)).fit(run, show_progress=False)
    return run


def copy_run(run, tmp_path):
    return shutil.copytree(run, tmp_path / "run")


def pickled_only(run):
    """Make `run`'s checkpoint look like one of before: the new state files gone, `trainer_state.pt` left."""
    for name in STATE_FILES:
        (run / "checkpoint" / name).unlink()


# ---------------------------------------------------------------------- the state format
def test_a_trainer_state_round_trips_exactly(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), betas=(0.8, 0.99))
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = {
        "optimizer": optimizer.state_dict(),  # int keys, tuples, 0-d tensors
        "generator": torch.Generator().manual_seed(3).get_state(),
        "pending": [(1, 7), (2, 8)],
        "user": {"__tensor__": "not a reference", 5: None, (1, "a"): [1.5, float("inf"), "x", True]},
        "count": np.int64(4),
    }
    save_state(tmp_path, state)
    loaded = load_state(tmp_path)
    assert loaded["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.99)
    for key, values in state["optimizer"]["state"].items():
        for name, value in values.items():
            assert torch.equal(loaded["optimizer"]["state"][key][name], value), (key, name)
    assert torch.equal(loaded["generator"], state["generator"])
    assert loaded["pending"] == [(1, 7), (2, 8)] and loaded["user"] == state["user"] and loaded["count"] == 4
    with pytest.raises(TypeError, match=r"cannot save state\['bad'\]: a object"):
        save_state(tmp_path, {"bad": object()})


def test_nothing_in_the_package_or_its_scripts_unpickles():
    unpickling = re.compile(
        r"torch\.load\(|pickle\.loads?\(|import pickle|weights_only=False|allow_pickle=True"
    )
    package = Path(hybridgen.__file__).parent
    paths = [*package.rglob("*.py"), *(package.parent / "scripts").rglob("*.py")]
    assert any(path.name == "bundle_toyworld.py" for path in paths)
    for path in paths:
        assert not unpickling.search(path.read_text()), path


# ---------------------------------------------------------------------- planted pickles never run
def test_a_pickled_critic_state_is_refused_unread_and_no_resume_starts_over(clips, critic_run, tmp_path):
    run, marker = copy_run(critic_run, tmp_path), tmp_path / "pwned"
    plant_pickle(run / "checkpoint" / "trainer_state.pt", marker)
    pickled_only(run)
    with pytest.raises(PickledCheckpointError, match="old pickle format.*--no-resume") as error:
        critic_trainer(clips).fit(run, show_progress=False)
    assert "trainer_state.pt" in str(error.value) and isinstance(error.value, ValueError)
    assert not marker.exists()
    trainer = critic_trainer(clips)
    trainer.fit(run, resume=False, show_progress=False)
    assert trainer.step == 2 and not marker.exists()
    assert not (run / "checkpoint" / "trainer_state.pt").exists()  # the new checkpoint replaced it


@pytest.mark.slow
def test_a_pickled_generator_state_is_refused_unread(generator_run, tmp_path):
    run, marker = copy_run(generator_run, tmp_path), tmp_path / "pwned"
    plant_pickle(run / "checkpoint" / "trainer_state.pt", marker)
    pickled_only(run)
    with pytest.raises(PickledCheckpointError, match="old pickle format.*--no-resume"):
        GeneratorTrainer(tiny_config(steps=1, vae_steps=1)).fit(run, show_progress=False)
    assert not marker.exists()


def test_pickles_planted_next_to_a_critic_checkpoint_are_never_read(clips, critic_run, tmp_path):
    run, marker = copy_run(critic_run, tmp_path), tmp_path / "pwned"
    checkpoint = run / "checkpoint"
    plant_pickle(checkpoint / "trainer_state.pt", marker)  # beside the real state: ignored
    trainer = critic_trainer(clips, steps=3)
    trainer.fit(run, show_progress=False)
    assert trainer.step == 3 and not marker.exists()
    # the model's weights replaced by a pickle that transformers would fall back to
    (checkpoint / "model" / "model.safetensors").unlink()
    plant_pickle(checkpoint / "model" / "pytorch_model.bin", marker)
    with pytest.raises(BrokenCheckpointError, match="model.safetensors"):
        critic_trainer(clips, steps=4).fit(run, show_progress=False)
    # pickles under the names the trainer reads
    for name in ("target_encoder.safetensors", *STATE_FILES):
        broken = copy_run(critic_run, tmp_path / name)
        plant_pickle(broken / "checkpoint" / name, marker)
        with pytest.raises(BrokenCheckpointError, match=name):
            critic_trainer(clips, steps=3).fit(broken, show_progress=False)
    assert not marker.exists()


@pytest.mark.slow
def test_pickles_planted_as_generator_checkpoint_files_are_never_read(generator_run, tmp_path):
    marker = tmp_path / "pwned"
    for name in ("vae", "transformer", "latents", "trainer_state"):
        run = copy_run(generator_run, tmp_path / name)
        plant_pickle(run / "checkpoint" / f"{name}.safetensors", marker)
        with pytest.raises(BrokenCheckpointError, match=f"{name}.safetensors"):
            GeneratorTrainer(tiny_config(steps=2, vae_steps=1)).fit(run, show_progress=False)
    # the EMA weights travel in the trainer state: a file under the name earlier versions used is not read
    run = copy_run(generator_run, tmp_path / "ema")
    plant_pickle(run / "checkpoint" / "ema.safetensors", marker)
    trainer = GeneratorTrainer(tiny_config(steps=2, vae_steps=1))
    trainer.fit(run, show_progress=False)
    assert trainer.step == 2 and not marker.exists()


def test_the_bundler_never_unpickles_a_trainer_state(clips, critic_run, generator_run, tmp_path):
    marker = tmp_path / "pwned"
    critic, generator = copy_run(critic_run, tmp_path / "c"), copy_run(generator_run, tmp_path / "g")
    for run in (critic, generator):
        plant_pickle(run / "checkpoint" / "trainer_state.pt", marker)
        pickled_only(run)
    with pytest.raises(PickledCheckpointError, match="old pickle format"):
        run_critic_card(critic)
    with pytest.raises(PickledCheckpointError, match="old pickle format"):
        run_generator_card(generator)
    # a run started from an earlier stage whose checkpoint is an old pickle: the card follows `init` back to it
    later = tmp_path / "later"
    critic_trainer(clips, init=str(critic)).fit(later, show_progress=False)
    with pytest.raises(PickledCheckpointError, match="old pickle format"):
        run_critic_card(later)
    assert not marker.exists()


# ---------------------------------------------------------------------- broken files: one clear error
def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def assert_one_clear_line(error, path):
    message = str(error)
    assert isinstance(error, ValueError) and "\n" not in message  # the CLI prints ValueErrors as one line
    assert str(path) in message and "--no-resume" in message


@pytest.mark.parametrize("name", ["model/model.safetensors", "target_encoder.safetensors", *STATE_FILES])
def test_a_truncated_critic_checkpoint_file_is_named(clips, critic_run, tmp_path, name):
    run = copy_run(critic_run, tmp_path)
    truncate(run / "checkpoint" / name)
    with pytest.raises(BrokenCheckpointError) as error:
        critic_trainer(clips, steps=3).fit(run, show_progress=False)
    assert_one_clear_line(error.value, run / "checkpoint" / name)
    trainer = critic_trainer(clips, steps=3)
    trainer.fit(run, resume=False, show_progress=False)  # as the message says
    assert trainer.step == 3


@pytest.mark.parametrize(
    "name",
    ["vae.safetensors", "transformer.safetensors", "latents.safetensors", *STATE_FILES],
)
@pytest.mark.slow
def test_a_truncated_generator_checkpoint_file_is_named(generator_run, tmp_path, name):
    run = copy_run(generator_run, tmp_path)
    truncate(run / "checkpoint" / name)
    with pytest.raises(BrokenCheckpointError) as error:
        GeneratorTrainer(tiny_config(steps=2, vae_steps=1)).fit(run, show_progress=False)
    assert_one_clear_line(error.value, run / "checkpoint" / name)


def test_a_missing_state_file_is_named(clips, critic_run, tmp_path):
    run = copy_run(critic_run, tmp_path)
    (run / "checkpoint" / "trainer_state.safetensors").unlink()
    with pytest.raises(BrokenCheckpointError) as error:
        critic_trainer(clips, steps=3).fit(run, show_progress=False)
    assert_one_clear_line(error.value, run / "checkpoint" / "trainer_state.safetensors")


# ---------------------------------------------------------------------- a run directory that is a file
def refuse_to_render(*args, **kwargs):
    raise AssertionError("rendered training clips for a run that cannot be written")


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_training_into_a_file_fails_before_any_rendering(tmp_path, monkeypatch, where):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    output = notes if where == "file" else notes / "run"
    monkeypatch.setattr(critic_module, "ToyWorldClips", refuse_to_render)
    monkeypatch.setattr(generator_module, "GeneratorTrainer", refuse_to_render)
    expected = re.escape(f"cannot train into {output}: ") + ".*is a file"
    with pytest.raises(NotADirectoryError, match=expected):
        train_critic(output, show_progress=False)
    with pytest.raises(NotADirectoryError, match=expected):
        train_generator(output, show_progress=False)
    assert notes.read_text() == "mine"


def test_the_trainers_own_fit_refuses_a_file(clips, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(NotADirectoryError, match="it is a file"):
        critic_trainer(clips).fit(notes, show_progress=False)
    with pytest.raises(NotADirectoryError, match="it is a file"):
        GeneratorTrainer(tiny_config()).fit(notes, show_progress=False)


def test_the_cli_says_so_in_one_line_at_once(tmp_path, capsys, monkeypatch):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")

    def no_rendering(*args, **kwargs):
        raise AssertionError("clips were rendered")

    monkeypatch.setattr("hybridgen.training.critic.ToyWorldClips", no_rendering)
    assert main(["train-critic", str(notes), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert (
        error == f"hybridgen train-critic: error: cannot train into {notes}: it is a file, not a directory.\n"
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_training_configs_refuse_non_finite_numbers(value):
    from hybridgen.training.critic import CriticTrainingConfig
    from hybridgen.training.generator import GeneratorTrainingConfig

    with pytest.raises(ValueError, match="CriticTrainingConfig: lr=.* is not a finite number"):
        CriticTrainingConfig(lr=value)
    with pytest.raises(ValueError, match="GeneratorTrainingConfig: kl_weight=.* is not a finite number"):
        GeneratorTrainingConfig(kl_weight=value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"step": "2"}, "step='2' is not a step count"),
        ({"step": 1.5}, "step=1.5 is not a step count"),
        ({"step": 10**9}, "step=1000000000 is not a step count"),
        ({"history": "xx"}, "history is not a list of records"),
        ({"history": []}, "step=2 is not a step count between 0 and the 0 logged"),
    ],
)
def test_a_trainer_state_with_senseless_counts_is_named(clips, critic_run, tmp_path, edit, message):
    import json

    run = copy_run(critic_run, tmp_path)
    path = run / "checkpoint" / "trainer_state.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **edit}))
    with pytest.raises(BrokenCheckpointError, match=re.escape(message)) as error:
        critic_trainer(clips, steps=3).fit(run, show_progress=False)
    assert_one_clear_line(error.value, path)


def test_a_resume_accepts_another_spelling_of_the_same_data_folder(tmp_path, monkeypatch):
    from hybridgen.training.checkpoints import check_same_settings

    (tmp_path / "clips").mkdir()
    monkeypatch.chdir(tmp_path)
    saved, wanted = {"data": "clips/"}, {"data": str(tmp_path / "clips")}
    check_same_settings(tmp_path, saved, wanted, changeable=())
    with pytest.raises(ValueError, match="data="):
        check_same_settings(tmp_path, saved, {"data": "toyworld"}, changeable=())
