"""The training core that hybridgen's trainers share: schedule, optimiser step, resumable loop.

    ScheduledAdamW      AdamW with transformers' `get_cosine_with_min_lr_schedule_with_warmup`: the learning rate
                        rises linearly from 0 over `warmup_steps`, then follows a cosine down to `min_lr` at
                        `total_steps`. `update(loss)` is one step: backward, gradient clipping, AdamW, schedule
                        (`zero_grad` and `step` around backward passes of one's own, e.g. accumulated ones).
    make_accelerator    the accelerate `Accelerator` the critic trains under: processes (DDP), bf16 autocast,
                        gradient accumulation. Its main process writes logs and checkpoints; the others wait.
    ResumableTrainer    the base of `CriticTrainer` and `GeneratorTrainer`: checkpoints (`save_checkpoint` /
                        `load_checkpoint`), and `open_run`, which resumes a run's checkpoint and restores its log.
    TrainingRun         one `fit` call: the loop (`train`) with per-step log, progress bar and a checkpoint every
                        `checkpoint_every` steps, and an optional wall-clock budget (`max_minutes`): out of time,
                        it stops at a step boundary, and the trainer checkpoints and exports what it has.
    random_mirror       the left-right mirror augmentation of the critic, its error head and the generator's VAE.
    autocast            the forward passes' precision: float32, or bf16 autocast on CUDA (`mixed_precision`).

Checkpoints are written with `save_state` (JSON + safetensors) into a folder swapped in atomically
(`replacing_directory`). accelerate's `Accelerator.save_state` is not used: it writes the RNG states with
`torch.save`, a pickle, and reading a pickle can run code (see `hybridgen.training.state`); the main process
writes this checkpoint instead and every process reads it back.

A resumed run may ask for more steps than its checkpoint was trained for: the schedule is built from the resumed
run's settings and its state (the step reached) restored into it, so the cosine continues over the new length.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_cosine_with_min_lr_schedule_with_warmup

from hybridgen.training.checkpoints import (
    check_output_dir,
    check_same_settings,
    reading_checkpoint_file,
    recover_directory,
    replacing_directory,
    restore_log,
    training_machine,
)
from hybridgen.training.state import STATE_JSON, load_state, save_state, state_exists

LOG_FILE = "training_log.jsonl"
MIXED_PRECISIONS = ("no", "bf16")


# ---------------------------------------------------------------------- optimisation
class ScheduledAdamW:
    """AdamW under a linear warm-up + cosine schedule (transformers'), with gradient-norm clipping.

    `lr` is the learning rate the next `update` uses. `state_dict` holds plain data and tensors only (for
    `save_state`); `load_state_dict` keeps this object's schedule, so a run resumed with a larger `total_steps`
    continues on the longer cosine from the step it reached.
    """

    def __init__(
        self,
        parameters: Iterable[torch.nn.Parameter],
        *,
        lr: float,
        min_lr: float,
        warmup_steps: int,
        total_steps: int,
        weight_decay: float,
        grad_clip: float,
    ):
        self.parameters = list(parameters)
        self.grad_clip = grad_clip
        self.optimizer = torch.optim.AdamW(self.parameters, lr=lr, weight_decay=weight_decay)
        self.scheduler = get_cosine_with_min_lr_schedule_with_warmup(
            self.optimizer,
            num_warmup_steps=warmup_steps,
            num_training_steps=total_steps,
            min_lr_rate=min_lr / lr if lr else 0.0,  # `min_lr=` would divide by a zero peak
        )

    @classmethod
    def from_config(cls, parameters: Iterable[torch.nn.Parameter], config) -> ScheduledAdamW:
        """The optimiser a training config describes with its fields `lr`, `min_lr`, `warmup_steps`, `steps`
        (the schedule's length), `weight_decay` and `grad_clip`."""
        return cls(
            parameters,
            lr=config.lr,
            min_lr=config.min_lr,
            warmup_steps=config.warmup_steps,
            total_steps=config.steps,
            weight_decay=config.weight_decay,
            grad_clip=config.grad_clip,
        )

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def update(self, loss: torch.Tensor) -> float:
        """One optimisation step on `loss`; returns the gradient norm before clipping."""
        self.zero_grad()
        loss.backward()
        return self.step()

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> float:
        """Clip the gradients accumulated since `zero_grad`, step AdamW and the schedule; returns the gradient
        norm before clipping."""
        grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return float(grad_norm)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        # the optimiser comes back with the checkpoint run's learning rate for this step; this run's schedule
        # (longer, when it asks for more steps) decides it instead
        step = self.scheduler.last_epoch
        for group, base_lr, rule in zip(
            self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas
        ):
            group["lr"] = base_lr * rule(step)


def random_mirror(
    clips: torch.Tensor, generator: torch.Generator, part: tuple[int, int] = (0, 1)
) -> torch.Tensor:
    """Mirror about half of a batch of 5-D clips (width last) left-right, one draw from `generator` per clip.

    `clips` may be one process's rows `part[0]::part[1]` of a batch `part[1]` times as large: the whole batch's
    flags are drawn (as every process does) and these rows take theirs.
    """
    flip = torch.rand(len(clips) * part[1], generator=generator)[part[0] :: part[1]] < 0.5
    return torch.where(flip.view(-1, 1, 1, 1, 1), clips.flip(-1), clips)


def make_accelerator(
    device: str | torch.device, mixed_precision: str = "no", gradient_accumulation_steps: int = 1
) -> Accelerator:
    """The `Accelerator` a trainer runs under: on the CPU for `device` "cpu", else on this process's GPU (one per
    process under `accelerate launch` / `torchrun`; choose them with CUDA_VISIBLE_DEVICES)."""
    device = torch.device(device)
    if device.index is not None:
        raise ValueError(
            f"device={device}: each process trains on its own GPU (cuda:LOCAL_RANK); pick GPUs with "
            "CUDA_VISIBLE_DEVICES and pass device='cuda'."
        )
    accelerator = Accelerator(
        cpu=device.type == "cpu",
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=gradient_accumulation_steps,
    )
    if accelerator.device.type != device.type:
        raise ValueError(f"device={device} is not available here; accelerate found {accelerator.device}.")
    return accelerator


def check_mixed_precision(mixed_precision: str, device: torch.device) -> None:
    """Refuse a mixed precision this core does not offer: bf16 autocast is for CUDA devices only."""
    if mixed_precision not in MIXED_PRECISIONS:
        raise ValueError(f"mixed_precision={mixed_precision!r} must be one of {MIXED_PRECISIONS}.")
    if mixed_precision == "bf16" and device.type != "cuda":
        raise ValueError(f"mixed_precision='bf16' needs a CUDA device; this run trains on {device}.")


def autocast(mixed_precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context a forward pass runs in: bf16 autocast (weights and gradients stay float32, so no gradient
    scaler is needed), or nothing for "no"."""
    if mixed_precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ---------------------------------------------------------------------- the resumable trainer
class TrainingStopped(RuntimeError):
    """Raised by a run's `check` to stop training early; the run saves a checkpoint before it propagates."""


class ResumableTrainer(ABC):
    """What hybridgen's trainers share: the CPU random generator, the history, checkpoints and resume.

    A subclass calls `super().__init__` first, then builds its models and `ScheduledAdamW`s, and says what its
    checkpoint holds beyond the generator, history, config and machine this class saves:
        write_weights(folder)      its weight files (safetensors), into the checkpoint folder being written
        read_weights(directory)    read them back, each inside `reading_checkpoint_file`
        state_dict()               the rest of its state: plain data and tensors (`save_state`)
        load_state_dict(state)     restore that state
    `resumable_changes` names the config fields a resume may change (`check_same_settings`); the config (a
    dataclass) must have `seed` and `checkpoint_every`.

    Noise, indices and masks are drawn from `generator`, which stays on the CPU whatever `device` the models
    train on, so the same seed draws the same run on any device.
    """

    resumable_changes: tuple[str, ...] = ()
    # a trainer split across processes (the critic's, under accelerate) says which one writes files and lets the
    # others wait for it; alone, this process does everything
    is_main_process = True

    def wait_for_everyone(self) -> None:
        """Block until every process of the run reaches this point (nothing to wait for alone)."""
        return None

    def any_process(self, flag: bool) -> bool:
        """Whether `flag` holds on any process of the run (alone: `flag`), so that all stop at the same step."""
        return flag

    def __init__(self, config, device: str | torch.device = "cpu"):
        self.config = config
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.history: list[dict] = []

    @abstractmethod
    def write_weights(self, folder: Path) -> None:
        """Write the weight files (safetensors) into `folder`, the checkpoint being written."""

    @abstractmethod
    def read_weights(self, directory: Path) -> None:
        """Load the weight files of the checkpoint in `directory`, each inside `reading_checkpoint_file`."""

    @abstractmethod
    def state_dict(self) -> dict:
        """The trainer's own state beyond the common keys: plain data and tensors only (`save_state`)."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` gave (`state` also holds the common keys)."""

    def machine(self) -> dict:
        """Where this run trains, recorded in each checkpoint for the model card."""
        return training_machine(self.device)

    def training_note(self, recipe: str) -> str:
        """The "Training" lines of a model card: `recipe`, then where and how long it trained (summed over every
        run that continued this one)."""
        machine = ", ".join(f"{key} {value}" for key, value in self.machine().items())
        minutes = training_seconds(self.history) / 60
        return f"- {recipe}.\n- {minutes:.1f} minutes of training ({machine})."

    def save_checkpoint(self, directory: str | Path) -> None:
        """Write everything needed to resume, atomically (a temp folder renamed over the old checkpoint): the
        weights, and the trainer's state with `save_state` (JSON + safetensors, nothing pickled)."""
        with replacing_directory(directory) as folder:
            self.write_weights(folder)
            common = {
                "generator": self.generator.get_state(),
                "history": self.history,
                "config": asdict(self.config),
                "machine": self.machine(),
            }
            save_state(folder, {**self.state_dict(), **common})

    def load_checkpoint(self, directory: str | Path) -> None:
        """Restore the run saved in `directory`. Raises `ValueError` if it was trained with other settings
        (`resumable_changes` aside) and `BrokenCheckpointError` (a `ValueError`) naming a file that is broken."""
        directory = Path(directory)
        state = load_state(directory)
        with reading_checkpoint_file(directory / STATE_JSON):
            check_state_counts(state)
            saved_config = dict(state["config"])
        check_same_settings(directory, saved_config, asdict(self.config), self.resumable_changes)
        self.read_weights(directory)
        with reading_checkpoint_file(directory / STATE_JSON):
            self.generator.set_state(state["generator"])
            self.history = state["history"]
            self.load_state_dict(state)

    def open_run(
        self, output_dir: str | Path, *, resume: bool, show_progress: bool, max_minutes: float | None = None
    ) -> TrainingRun:
        """Start a `fit` into `output_dir`: its checkpoint (`output_dir/checkpoint`, recovered from a cut-off
        swap) is resumed if `resume` and there is one (an old pickled one is refused, never read), and its log is
        rewritten as the history this trainer now holds. With `max_minutes`, the run's loops stop once that much
        wall time has passed since now (`TrainingRun.stopped_early`)."""
        check_max_minutes(max_minutes)
        output_dir = check_output_dir(output_dir)
        checkpoint_dir = recover_directory(output_dir / "checkpoint")
        if resume and state_exists(checkpoint_dir):
            self.load_checkpoint(checkpoint_dir)
        self.resumed_from = len(self.history)  # steps already done when this run opened (0: a fresh start)
        if self.is_main_process:
            output_dir.mkdir(parents=True, exist_ok=True)
            restore_log(output_dir / LOG_FILE, self.history)
        self.wait_for_everyone()
        run = TrainingRun(self, output_dir, checkpoint_dir, show_progress and self.is_main_process)
        if max_minutes is not None:
            run.deadline = run.started + 60 * max_minutes
        return run


def stopped_note(steps_done: int, steps: int) -> str:
    """What a model card's recipe adds when a time budget stopped the run before its steps: nothing otherwise."""
    if steps_done >= steps:
        return ""
    return f"; stopped by its time budget after {steps_done} of the {steps} steps (running it again goes on)"


def check_max_minutes(max_minutes: float | None) -> None:
    """Refuse a wall-clock budget that is not a finite number of minutes > 0."""
    if max_minutes is not None and (
        isinstance(max_minutes, bool)
        or not isinstance(max_minutes, (int, float))
        or not 0 < max_minutes < math.inf
    ):
        raise ValueError(f"max_minutes must be a finite number of minutes > 0, got {max_minutes!r}.")


def training_runs(history: list[dict]) -> list[list[dict]]:
    """A run's history split into the runs that resumed each other: each record's `seconds` count from its own
    run's start, so the clock going back marks a resume (a record without `seconds` stays in the run it is in)."""
    runs: list[list[dict]] = []
    last = 0.0
    for record in history:
        seconds = float(record.get("seconds", last))
        if not runs or seconds < last:
            runs.append([])
        runs[-1].append(record)
        last = seconds
    return runs


def training_seconds(history: list[dict]) -> float:
    """Wall time of a run and of the runs it resumed."""
    return sum(max(float(r.get("seconds", 0.0)) for r in run) for run in training_runs(history))


def check_state_counts(state: dict) -> None:
    """Refuse a trainer state whose counts make no sense (a step that is not a whole number >= 0, more steps
    than logged records, a history that is not a list of records): a hand-edited or foreign file, which would
    otherwise fail somewhere in the loop or silently skip the training."""
    history = state.get("history")
    if not isinstance(history, list) or not all(isinstance(record, dict) for record in history):
        raise ValueError("its history is not a list of records")
    for key, value in state.items():
        if key == "step" or key.endswith(("_step", "_steps")):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= len(history):
                raise ValueError(
                    f"{key}={value!r} is not a step count between 0 and the {len(history)} logged"
                )


@dataclass
class TrainingRun:
    """One `fit` of `trainer` into `output_dir`: logs its steps and checkpoints into `checkpoint_dir`."""

    trainer: ResumableTrainer
    output_dir: Path
    checkpoint_dir: Path
    show_progress: bool
    started: float = field(default_factory=time.perf_counter)
    deadline: float | None = None  # `time.perf_counter()` at which the loops stop (None: no budget)
    stopped_early: bool = False  # a loop stopped at the deadline, before its total

    def time_is_up(self) -> bool:
        """Whether the run's wall-clock budget is spent (on any process: they all stop at the same step)."""
        return self.deadline is not None and self.trainer.any_process(time.perf_counter() >= self.deadline)

    def log(self, record: dict) -> None:
        """Stamp `record` with the seconds since the run started, add it to the history and (main process) the
        log file."""
        record["seconds"] = round(time.perf_counter() - self.started, 2)
        self.trainer.history.append(record)
        if self.trainer.is_main_process:
            with (self.output_dir / LOG_FILE).open("a") as log:
                log.write(json.dumps(record) + "\n")

    def save_checkpoint(self) -> None:
        """The main process writes the checkpoint; the others wait until it is in place."""
        if self.trainer.is_main_process:
            self.trainer.save_checkpoint(self.checkpoint_dir)
        self.trainer.wait_for_everyone()

    def train(
        self,
        train_step: Callable[[], dict],
        steps_done: Callable[[], int],
        total: int,
        desc: str,
        *,
        postfix: tuple[str, ...] = ("loss",),
        check: Callable[[dict], None] | None = None,
    ) -> None:
        """Call `train_step` until `steps_done()` reaches `total`, logging each record and checkpointing every
        `checkpoint_every` steps. `check(record)`, after the log, may raise `TrainingStopped` (or a subclass) to
        end training: the run is checkpointed first. Past the run's deadline it stops before the next step and
        sets `stopped_early`; the caller checkpoints and exports what there is."""
        every = self.trainer.config.checkpoint_every
        with tqdm(total=total, initial=steps_done(), desc=desc, disable=not self.show_progress) as bar:
            while steps_done() < total:
                if self.time_is_up():
                    self.stopped_early = True
                    return
                record = train_step()
                self.log(record)
                bar.update(1)
                bar.set_postfix({name: f"{record[name]:.4f}" for name in postfix})
                if check is not None:
                    self._check(check, record)
                if steps_done() % every == 0:
                    self.save_checkpoint()

    def _check(self, check: Callable[[dict], None], record: dict) -> None:
        try:
            check(record)
        except TrainingStopped:
            self.save_checkpoint()
            raise
