"""The JEPA critic trainer, for a few steps on a tiny model and the toy world, and the training core under it."""

import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_toyworld import run_critic_card

from hybridgen import VJEPA2Critic
from hybridgen.cli import main
from hybridgen.critics.error_head import ERROR_HEAD_FILE, ExpectedErrorHead
from hybridgen.testing import tiny_vjepa2_model
from hybridgen.toyworld.evaluation import VIOLATION_SCORING
from hybridgen.training.checkpoints import recover_directory, replacing_directory
from hybridgen.training.core import ScheduledAdamW, TrainingRun
from hybridgen.training.critic import (
    CollapseError,
    CriticTrainer,
    CriticTrainingConfig,
    ToyWorldClips,
    ema_momentum,
)
from hybridgen.training.state import load_state, save_state
from hybridgen.video import write_json_atomic

SCORING = {"window": 8, "context": 4, "stride": 2, "direction": "both", "top_fraction": 0.1}


@pytest.fixture(scope="module")
def clips():
    return ToyWorldClips(pool_size=48, refresh=2, size=32, seed=0)


def make_trainer(clips, **options):
    config = CriticTrainingConfig(
        **{"steps": 30, "batch_size": 8, "warmup_steps": 3, "lr": 2e-3, "scoring": SCORING, **options}
    )
    return CriticTrainer(tiny_vjepa2_model(seed=0), clips, config)


def test_loss_falls_and_nothing_collapses(clips, tmp_path):
    trainer = make_trainer(clips)
    critic = trainer.fit(tmp_path / "run", show_progress=False)
    losses = [record["loss"] for record in trainer.history]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert min(record["spread"] for record in trainer.history) > trainer.config.collapse_threshold
    # the exported critic is saved like any checkpoint and keeps its scoring options
    loaded = VJEPA2Critic.from_pretrained(str(tmp_path / "run"))
    assert loaded.options == critic.options and loaded.options.direction == "both"
    log = [json.loads(line) for line in (tmp_path / "run" / "training_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == list(range(1, 31))
    # the model card reads the run: recipe, its scoring defaults, the violation-pair scoring, the benchmark's table
    results = {
        "pairs": 2,
        "scoring": {**SCORING, **VIOLATION_SCORING},
        "results": {"trained critic": {"teleport": {"accuracy": 0.75}, "mean": {"accuracy": 0.75}}},
    }
    card = str(run_critic_card(tmp_path / "run", [results]))
    assert "- 30 steps of batch 8" in card
    assert '"top_fraction": 0.1' in card  # the run's own default
    assert f"VIOLATION_SCORING` instead: {json.dumps(VIOLATION_SCORING)}" in card
    assert "| teleport | 0.750 |" in card
    assert "- Initialised from random weights." in card
    assert f"at {torch.get_num_threads()} torch threads on a {os.cpu_count()}-core CPU" in card
    assert "### Stage" not in card  # one run, one recipe


def test_a_run_started_from_a_checkpoint_records_it_on_the_card(clips, tmp_path):
    make_trainer(clips, steps=2, init="runs/first-stage").fit(tmp_path / "run", show_progress=False)
    assert "- Initialised from `runs/first-stage`" in str(run_critic_card(tmp_path / "run"))


def test_the_card_states_the_runs_own_data_masks_and_watch(clips, tmp_path):
    trainer = make_trainer(clips, steps=2, eval_every=1, eval_pairs=3, data="my/videos")
    trainer.evaluate = lambda critic: {"mean": 0.5}
    trainer.fit(tmp_path / "run", show_progress=False)
    results = {"pairs": 2, "seed": 7, "scoring": SCORING, "results": {"critic": {"mean": {"accuracy": 0.5}}}}
    card = str(run_critic_card(tmp_path / "run", [results]))
    assert "- Data: the videos under `my/videos`, random 8-frame windows" in card
    tubelets = 8 // trainer.model.config.tubelet_size
    assert f"context = 1..{tubelets - 1} leading or trailing tubelets" in card
    assert "Mean over kinds, 3 pairs per kind (seeds 500,000+)" in card
    assert "pair seeds 7+;" in card


def test_the_card_of_a_staged_training_describes_every_stage(clips, tmp_path):
    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    make_trainer(clips, steps=2).fit(first, show_progress=False)
    make_trainer(clips, steps=3, init=str(first), seed=7).fit(second, show_progress=False)
    make_trainer(clips, steps=4, init=str(second), seed=9).fit(third, show_progress=False)
    card = str(run_critic_card(third))  # follows each run's init back to the first
    assert card.index(f"### Stage 1: `{first}`") < card.index(f"### Stage 2: `{second}`")
    assert card.index(f"### Stage 2: `{second}`") < card.index(f"### Stage 3: `{third}`")
    assert "- 2 steps of batch 8" in card and "- 4 steps of batch 8" in card
    assert "(seed 9 onward)" in card and f"- Initialised from `{second}`" in card
    # given explicitly (a run started from a bundled name cannot be followed), the earlier stages are taken as they are
    explicit = str(run_critic_card(third, earlier_stages=[first]))
    assert f"### Stage 2: `{third}`" in explicit and "### Stage 3" not in explicit
    assert "- Initialised from random weights." in str(run_critic_card(first))


def test_bundling_a_run_records_it_and_regenerates_the_same_card(clips, tmp_path):
    from bundle_toyworld import bundle, derived_files, read_record

    trainer = make_trainer(clips, steps=2)
    trainer.fit(tmp_path / "run", show_progress=False)
    ExpectedErrorHead(trainer.model.config.hidden_size, 8).save(tmp_path / "run" / ERROR_HEAD_FILE)
    table = {
        "pairs": 2,
        "scoring": SCORING,
        "results": {"critic": {"teleport": {"accuracy": 0.75, "auroc": 0.5}}},
    }
    results = write_json_atomic(
        {**table, "command": "python benchmarks/toyworld_critic.py --pairs 2"}, tmp_path / "b.json"
    )
    with pytest.raises(ValueError, match="outside the repository"):
        bundle("critic", tmp_path / "run", [[results]], root=tmp_path / "repo", target=tmp_path / "bundled")
    assert not (tmp_path / "bundled").exists()
    folder = bundle("critic", tmp_path / "run", [[results]], root=tmp_path, target=tmp_path / "bundled")
    record = read_record(folder)
    assert record["measured"] == [
        {"files": ["b.json"], "commands": ["python benchmarks/toyworld_critic.py --pairs 2"]}
    ]
    stage = record["stages"][0]
    assert stage["segments"][0]["steps"] == [1, 2] and stage["config"]["steps"] == 2
    for name, text in derived_files("critic", folder, root=tmp_path).items():  # what `regenerate` would write
        assert (folder / name).read_text(encoding="utf-8") == text
    card = (folder / "README.md").read_text()
    assert "| teleport | 0.750 / 0.500 |" in card
    assert "Command: `python benchmarks/toyworld_critic.py --pairs 2`." in card
    assert VJEPA2Critic.from_pretrained(str(folder)).options == trainer.export_critic().options


def cosine_lr(step, *, lr=2e-3, min_lr=1e-5, warmup=3, total):
    """The warm-up + cosine schedule, written out: what `make_trainer`'s runs should train with at `step`."""
    if step < warmup:
        return lr * step / warmup
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def test_resume_continues_from_the_checkpoint(clips, tmp_path):
    make_trainer(clips, steps=4, checkpoint_every=2).fit(tmp_path / "run", show_progress=False)
    resumed = make_trainer(clips, steps=6, checkpoint_every=2)
    resumed.fit(tmp_path / "run", show_progress=False)
    assert resumed.step == 6 and len(resumed.history) == 6
    # asked for more steps, the resumed run continues on the cosine recomputed over all 6 (as the Makefile's
    # 2000 -> 4000-step critic does)
    lrs = [record["lr"] for record in resumed.history]
    assert lrs == pytest.approx(
        [cosine_lr(step, total=4) for step in range(4)] + [cosine_lr(4, total=6), cosine_lr(5, total=6)]
    )
    assert lrs[4] == pytest.approx(1e-5 + 0.75 * (2e-3 - 1e-5))  # a third of the way down the new cosine
    fresh = make_trainer(clips, steps=6)
    fresh.fit(tmp_path / "other", resume=False, show_progress=False)
    assert fresh.history[-1]["step"] == 6


@pytest.mark.parametrize(
    "changed",
    [
        {"seed": 1},
        {"lr": 1e-3},
        {"batch_size": 4},
        {"window": 4},
        {"init": "runs/other"},
        {"lr": 5e-4, "seed": 2},  # each differing setting is named, in the config's order
    ],
)
def test_resume_refuses_other_training_settings(clips, tmp_path, changed):
    first = {"steps": 1, "batch_size": 2}
    second = {**first, "steps": 2, **changed}  # more steps alone would be fine
    make_trainer(clips, **first).fit(tmp_path / "run", show_progress=False)
    state = tmp_path / "run" / "checkpoint" / "trainer_state.json"
    recorded = state.read_text()
    with pytest.raises(ValueError, match="--no-resume") as error:
        make_trainer(clips, **second).fit(tmp_path / "run", show_progress=False)
    saved = {"seed": 0, "lr": 2e-3, "batch_size": 2, "window": 8, "init": None}
    trained = ", ".join(f"{name}={saved[name]!r}" for name in changed)
    asked = ", ".join(f"{name}={value!r}" for name, value in changed.items())
    expected = f"in {tmp_path / 'run' / 'checkpoint'} was trained with {trained}; this run asks {asked}:"
    assert expected in str(error.value)
    assert state.read_text() == recorded  # the recorded config is not rewritten
    trainer = make_trainer(clips, **second)
    trainer.fit(tmp_path / "run", resume=False, show_progress=False)  # starting over is the user's call
    assert trainer.step == 2 and len(trainer.history) == 2


def test_resume_accepts_more_steps_and_other_watch_settings(clips, tmp_path):
    make_trainer(clips, steps=2, batch_size=2).fit(tmp_path / "run", show_progress=False)
    changed = {"eval_every": 7, "eval_pairs": 3, "checkpoint_every": 5, "collapse_patience": 50}
    resumed = make_trainer(clips, steps=3, batch_size=2, **changed)
    resumed.fit(tmp_path / "run", show_progress=False)
    assert resumed.step == 3 and len(resumed.history) == 3
    recorded = json.loads((tmp_path / "run" / "checkpoint" / "trainer_state.json").read_text())["config"]
    assert recorded["steps"] == 3 and recorded["eval_pairs"] == 3  # the card states the last run's


def fresh_process_trainer(checkpoint_every: int) -> CriticTrainer:
    """A 4-step trainer built from nothing (new model, new pool), as a new process would build it."""
    clips = ToyWorldClips(pool_size=12, refresh=2, size=32, seed=5)
    config = CriticTrainingConfig(
        steps=4, batch_size=4, warmup_steps=1, checkpoint_every=checkpoint_every, scoring=SCORING
    )
    return CriticTrainer(tiny_vjepa2_model(seed=0), clips, config)


def test_a_resumed_run_trains_exactly_as_an_uninterrupted_one(tmp_path):
    """A new process (new model, new pool) resumes at the checkpoint and ends with the same weights; the steps
    logged after the checkpoint and lost are logged once."""

    def trainer():
        return fresh_process_trainer(checkpoint_every=2)

    straight = trainer()
    straight.fit(tmp_path / "straight", show_progress=False)
    interrupted = trainer()
    train_step = interrupted.train_step

    def step_until_three():
        if interrupted.step == 3:
            raise KeyboardInterrupt
        return train_step()

    interrupted.train_step = step_until_three
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(tmp_path / "run", show_progress=False)
    resumed = trainer()
    resumed.fit(tmp_path / "run", show_progress=False)
    for name, weight in straight.model.state_dict().items():
        assert torch.equal(weight, resumed.model.state_dict()[name]), name
    log = [json.loads(line) for line in (tmp_path / "run" / "training_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3, 4]
    assert [row["loss"] for row in log] == [row["loss"] for row in straight.history]


def test_a_time_budget_stops_at_a_step_saves_what_it_has_and_the_next_run_goes_on(tmp_path, monkeypatch):
    def trainer():
        return fresh_process_trainer(checkpoint_every=3)

    straight = trainer()
    straight.fit(tmp_path / "straight", show_progress=False)
    budgeted = trainer()
    monkeypatch.setattr(TrainingRun, "time_is_up", lambda run: budgeted.step >= 2)  # the budget runs out here
    critic = budgeted.fit(tmp_path / "run", show_progress=False, max_minutes=1)
    assert budgeted.step == 2
    state = json.loads((tmp_path / "run" / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 2  # checkpointed at the stop, though checkpoint_every is 3
    saved = VJEPA2Critic.from_pretrained(tmp_path / "run")  # exported as at the end
    for name, weight in critic.model.state_dict().items():
        assert torch.equal(saved.model.state_dict()[name], weight), name
    card = (tmp_path / "run" / "README.md").read_text()
    assert "stopped by its time budget after 2 of the 4 steps" in card
    monkeypatch.undo()
    resumed = trainer()
    resumed.fit(tmp_path / "run", show_progress=False)  # the same call again goes on to the end
    for name, weight in straight.model.state_dict().items():
        assert torch.equal(weight, resumed.model.state_dict()[name]), name
    assert "time budget" not in (tmp_path / "run" / "README.md").read_text()


def test_time_is_up_past_the_deadline_and_budgets_must_be_positive(clips, tmp_path):
    run = make_trainer(clips).open_run(tmp_path / "run", resume=False, show_progress=False)
    assert run.deadline is None and not run.time_is_up()
    run.deadline = run.started - 1
    assert run.time_is_up()
    for bad in (0, -1, float("inf"), float("nan"), True):
        with pytest.raises(ValueError, match="max_minutes must be a finite number of minutes > 0"):
            make_trainer(clips).fit(tmp_path / "bad", max_minutes=bad, show_progress=False)
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_train_critic_max_minutes_stops_early_and_says_how_to_go_on(tmp_path, capsys):
    argv = ["train-critic", str(tmp_path / "run"), "--steps", "500", "--batch-size", "2", "--quiet"]
    assert main([*argv, "--max-minutes", "0.0001", "--threads", "2", "--device", "cpu"]) == 0
    printed = capsys.readouterr()
    summary = json.loads(printed.out)
    assert summary["stopped_early"] and summary["steps"] < 500
    assert (
        f"the checkpoint is in {tmp_path / 'run' / 'checkpoint'}: run the same command again" in printed.err
    )
    assert VJEPA2Critic.from_pretrained(tmp_path / "run").model is not None
    with pytest.raises(SystemExit):
        main([*argv, "--max-minutes", "0"])


@pytest.mark.slow
def test_the_gpu_session_script_dry_runs_on_the_cpu_and_leaves_three_files(tmp_path):
    """scripts/gpu_critic_session.sh, the one device call of a lent GPU session, at a tiny size on the CPU."""
    out = tmp_path / "out"
    settings = {"OUT": str(out), "DEVICE": "cpu", "STEPS": "2", "BATCH": "2", "POOL": "8", "WORKERS": "0"}
    settings |= {"EVAL_PAIRS": "1", "CALIBRATION_STEPS": "2", "PAIRS": "1", "KINDS": "teleport drag"}
    env = {**os.environ, **settings, "PYTHON": sys.executable, "OMP_NUM_THREADS": "2"}
    script = Path(__file__).parents[1] / "scripts" / "gpu_critic_session.sh"
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]
    assert sorted(path.name for path in out.iterdir()) == [
        "critic.tar",
        "session.log",
        "toyworld_critic.json",
    ]
    with tarfile.open(out / "critic.tar") as archive:
        archive.extractall(tmp_path, filter="data")
    critic = VJEPA2Critic.from_pretrained(tmp_path / "critic")
    assert critic.expected_error_head is not None  # fitted by calibrate-critic
    results = json.loads((out / "toyworld_critic.json").read_text())
    assert "== done" in (out / "session.log").read_text() and results["pairs"] == 1


def test_a_checkpoint_swap_cut_off_between_its_renames_is_recovered(tmp_path):
    checkpoint = tmp_path / "checkpoint"
    for step in (1, 2):
        with replacing_directory(checkpoint) as folder:
            (folder / "step").write_text(str(step))
    # a crash after the old folder was moved aside, before the new one took its place
    checkpoint.rename(tmp_path / "checkpoint.hybridgen-old")
    with replacing_directory(tmp_path / "new") as folder:
        (folder / "step").write_text("3")
    (tmp_path / "new").rename(tmp_path / "checkpoint.hybridgen-new")
    assert (recover_directory(checkpoint) / "step").read_text() == "3"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint"]
    # a user's own backup next to it is not the swap's: left alone, by replacing too
    (tmp_path / "checkpoint.old").mkdir()
    with replacing_directory(checkpoint) as folder:
        (folder / "step").write_text("4")
    assert (tmp_path / "checkpoint.old").is_dir() and (checkpoint / "step").read_text() == "4"


def test_collapse_is_detected_and_stops_training(clips, tmp_path):
    trainer = make_trainer(clips, collapse_threshold=10.0, collapse_patience=3)
    with pytest.warns(UserWarning, match="collapsed"), pytest.raises(CollapseError):
        trainer.fit(tmp_path / "run", show_progress=False)
    assert trainer.step == 3
    assert (tmp_path / "run" / "checkpoint" / "trainer_state.json").is_file()


def test_evaluation_runs_on_schedule(clips, tmp_path):
    seen = []
    trainer = make_trainer(clips, steps=4, eval_every=2)
    trainer.evaluate = lambda critic: seen.append(critic.options.direction) or {"mean": 0.5}
    trainer.fit(tmp_path / "run", show_progress=False)
    assert seen == ["both", "both"]
    assert [("eval" in r) for r in trainer.history] == [False, True, False, True]


def test_momentum_schedule_and_validation():
    config = CriticTrainingConfig(steps=100, warmup_steps=10, lr=1e-3, min_lr=1e-5)
    assert ema_momentum(0, config) == pytest.approx(0.996) and ema_momentum(100, config) == 1.0
    assert ema_momentum(50, config) == pytest.approx(0.998)
    with pytest.raises(ValueError, match="ema_start"):
        CriticTrainingConfig(ema_start=1.1)
    with pytest.raises(ValueError, match="directions"):
        CriticTrainingConfig(directions=("sideways",))


@pytest.mark.slow
def test_render_workers_give_the_same_batches_every_run():
    def batches():
        clips = ToyWorldClips(pool_size=6, refresh=2, num_frames=8, size=32, seed=3, workers=2)
        try:
            generator = torch.Generator().manual_seed(0)
            return [clips(generator, 4, 8) for _ in range(3)], clips.next_seed
        finally:
            clips.close()

    first, next_seed = batches()
    second, _ = batches()
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert next_seed == 3 + 6 + 3 * 2  # the initial pool, then two fresh seeds per call
    # the initial pool holds the same clips as rendering in this process
    in_process = ToyWorldClips(pool_size=6, refresh=2, num_frames=8, size=32, seed=3)
    parallel = ToyWorldClips(pool_size=6, refresh=2, num_frames=8, size=32, seed=3, workers=2)
    try:
        assert np.array_equal(in_process.pool, parallel.pool)
    finally:
        parallel.close()
    with pytest.raises(ValueError, match="workers=-1"):
        ToyWorldClips(pool_size=2, workers=-1)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_the_clip_pool_is_carried_across_a_resume(workers):
    def pool():
        return ToyWorldClips(pool_size=6, refresh=2, num_frames=8, size=32, seed=3, workers=workers)

    straight, first = pool(), pool()
    second = None
    try:
        one, other = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        for _ in range(2):
            straight(one, 4, 8), first(other, 4, 8)
        second = pool()  # a new process's pool, from the same seed
        second.load_state_dict(first.state_dict())
        assert second.next_seed == straight.next_seed == 3 + 6 + 2 * 2
        assert np.array_equal(second.slot_seeds, first.slot_seeds)
        assert torch.equal(straight(one, 4, 8), second(other, 4, 8))
    finally:
        for clips in (straight, first, second):
            if clips is not None:
                clips.close()


# ---------------------------------------------------------------------- the training core
def scheduled_adamw(total_steps, parameters=None):
    parameters = parameters if parameters is not None else [torch.nn.Parameter(torch.zeros(3))]
    return ScheduledAdamW(
        parameters,
        lr=1e-3,
        min_lr=1e-5,
        warmup_steps=10,
        total_steps=total_steps,
        weight_decay=0.1,
        grad_clip=1.0,
    )


def train(optimizer, steps):
    """`steps` updates of a quadratic loss; the learning rate each one used."""
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.lr)
        (parameter,) = optimizer.parameters
        optimizer.update(((parameter - torch.arange(3.0)) ** 2).sum())
    return lrs


def test_the_schedule_warms_up_then_decays_to_the_floor():
    lrs = train(scheduled_adamw(total_steps=100), 101)
    assert lrs[0] == 0  # transformers' warm-up starts at 0
    assert lrs[5] == pytest.approx(5e-4) and lrs[10] == pytest.approx(1e-3)  # linear to the peak
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))
    assert lrs[55] == pytest.approx((1e-3 + 1e-5) / 2)  # half-way down the cosine
    assert all(a > b for a, b in zip(lrs[10:100], lrs[11:101]))
    assert lrs[100] == pytest.approx(1e-5)  # the floor, at the last step


def test_a_resumed_schedule_continues_exactly_and_longer_when_asked(tmp_path):
    """Through a checkpoint's state files: the same length trains as if never stopped; more steps continue on
    the cosine over the new length from the step reached."""
    straight = scheduled_adamw(total_steps=100)
    straight_lrs = train(straight, 60)
    stopped = scheduled_adamw(total_steps=100)
    train(stopped, 40)
    save_state(tmp_path, {"optimizer": stopped.state_dict(), "weights": stopped.parameters[0]})

    def resume(total_steps):
        state = load_state(tmp_path)
        optimizer = scheduled_adamw(total_steps, [torch.nn.Parameter(state["weights"])])
        optimizer.load_state_dict(state["optimizer"])
        return optimizer

    resumed = resume(total_steps=100)
    assert train(resumed, 20) == straight_lrs[40:]
    assert torch.equal(resumed.parameters[0], straight.parameters[0])  # the AdamW moments came back too
    assert train(resume(total_steps=200), 20) == pytest.approx(
        train(scheduled_adamw(total_steps=200), 60)[40:]
    )


def test_training_time_adds_up_the_runs_that_resumed_each_other():
    from hybridgen.training.core import training_seconds

    history = [{"seconds": 1.0}, {"seconds": 3.0}, {"seconds": 2.0}, {"seconds": 5.0}, {"stage": "encode"}]
    assert training_seconds(history) == 8.0  # a run of 3 s, then a resumed one of 5 s
    assert training_seconds([]) == 0.0
