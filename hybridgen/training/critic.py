"""V-JEPA-style self-supervised training of a transformers `VJEPA2Model` critic.

One step, on a batch of plausible clips `x` of `window` frames:

    target  = layer_norm(ema_encoder(x))                      # (B, N, D), no gradient
    for direction in (forward, backward):                      # the same masks the surprise score uses
        k       = random number of context tubelets in [1, window/tubelet - 1]
        ctx     = encoder(context frames alone)                # (B, k*G*G, D)
        pred    = predictor(ctx, context ids, target ids)      # (B, N_target, D)
        err     = |pred - target[:, target ids]|.mean(-1)      # (B, N_target) per-token L1
        loss   += (1 - w) * mean(err) + w * mean(top 10% of err per clip)
    AdamW step, lr: linear warm-up from 0, then cosine to min_lr  # training core's ScheduledAdamW
    ema_encoder <- m * ema_encoder + (1 - m) * encoder         # m rises linearly from ema_start to ema_end

Processes, precision and accumulation are accelerate's (`Accelerator`): under `accelerate launch` or `torchrun` the
model is wrapped in DDP and each process takes its share of every batch (rows `rank::processes`, split again into
`gradient_accumulation_steps` micro-batches); `mixed_precision="bf16"` runs the forward passes under autocast. Every
process draws the whole batch's random numbers from the same CPU generator, so a batch, its masks and its mirrors
are the same whatever the number of processes or micro-batches.

The target-encoder momentum stays an explicit schedule, as V-JEPA 2's own code keeps it (diffusers' `EMAModel`, which
the generator uses, has its own warm-up rule and no momentum schedule). The trainer never sees a violation: surprise
at impossible events must emerge from learning to predict. A collapse monitor watches the spread of the target
embeddings across samples and tokens and stops training when it vanishes. The loop, checkpoints and resume are the
shared `ResumableTrainer`'s: the model (`save_pretrained`) and the EMA encoder in safetensors, the rest of the trainer's
state (optimiser and schedule included) in JSON + safetensors (`hybridgen.training.state`), so that resuming never
unpickles anything (accelerate's `save_state` pickles its RNG and optimiser files, so the main process writes this
checkpoint instead, and every process reads it back). A resume must ask for the settings the checkpoint was trained
with, except `RESUMABLE_CHANGES`; one that asks for more steps continues on a cosine recomputed over the new length.
"""

from __future__ import annotations

import copy
import math
import multiprocessing
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from itertools import repeat
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from transformers import VJEPA2Config, VJEPA2Model

from hybridgen.critics.vjepa2 import VJEPA2Critic, mask_ids, predict_tokens, token_l1
from hybridgen.pipelines.limits import check_finite_numbers
from hybridgen.training.checkpoints import check_output_dir, reading_checkpoint_file
from hybridgen.training.core import (
    MIXED_PRECISIONS,
    ResumableTrainer,
    ScheduledAdamW,
    TrainingStopped,
    check_max_minutes,
    make_accelerator,
    random_mirror,
    stopped_note,
)
from hybridgen.training.folder_clips import VideoFolderClips


def toyworld_critic_config() -> VJEPA2Config:
    """The architecture of the bundled toy-world critic: a V-JEPA 2 ViT of ~0.95M parameters at 64x64.

    8x8 patches give an 8x8 token grid (a ball of radius 3-8 px covers one to four tokens); 2-frame tubelets.
    """
    return VJEPA2Config(
        crop_size=64,
        patch_size=8,
        tubelet_size=2,
        frames_per_clip=16,
        hidden_size=96,
        num_attention_heads=3,
        num_hidden_layers=4,
        mlp_ratio=4.0,
        pred_hidden_size=96,
        pred_num_attention_heads=3,
        pred_num_hidden_layers=4,
        pred_mlp_ratio=4.0,
    )


@dataclass
class CriticTrainingConfig:
    """Hyper-parameters of `train_critic`. Steps and batch are in clips of `window` frames."""

    steps: int = 2000
    batch_size: int = 16  # clips per optimiser step, over all processes and micro-batches
    gradient_accumulation_steps: int = 1  # micro-batches per step and process (less memory, the same step)
    mixed_precision: str = "no"  # "bf16": forward passes under bf16 autocast (accelerate's)
    window: int = 8
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 150
    weight_decay: float = 0.04
    grad_clip: float = 1.0
    ema_start: float = 0.996
    ema_end: float = 1.0
    directions: tuple[str, ...] = ("forward", "backward")
    hard_token_fraction: float = 0.1
    hard_token_weight: float = 0.5
    collapse_threshold: float = 0.05
    collapse_patience: int = 20
    eval_every: int = 250
    eval_pairs: int = 8
    checkpoint_every: int = 250
    seed: int = 0
    init: str | None = None  # the checkpoint training started from (None: random weights), for the record
    data: str = "toyworld"  # what it trained on: "toyworld" (rendered on the fly) or a folder of videos, for the record
    # how the exported critic scores clips by default (stored in critic_config.json): the mean over all target
    # tokens and windows, which ranks generated candidates better than the top tokens do; the violation-pair
    # watch applies `QUICK_VIOLATION_SCORING` on top (hybridgen.toyworld.evaluation)
    scoring: dict = field(
        default_factory=lambda: {
            "window": 8,
            "context": 4,
            "stride": 2,
            "direction": "both",
            "top_fraction": None,
            "aggregate": "mean",
        }
    )

    def __post_init__(self):
        # a NaN learning rate would train nothing, silently
        check_finite_numbers(asdict(self), "CriticTrainingConfig")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be > 0.")
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(f"mixed_precision={self.mixed_precision!r} must be one of {MIXED_PRECISIONS}.")
        for name in (
            "steps",
            "batch_size",
            "gradient_accumulation_steps",
            "window",
            "eval_every",
            "checkpoint_every",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1.")
        if not 0 < self.ema_start <= self.ema_end <= 1:
            raise ValueError(f"need 0 < ema_start <= ema_end <= 1, got {self.ema_start}, {self.ema_end}.")
        if not set(self.directions) <= {"forward", "backward"} or not self.directions:
            raise ValueError(f"directions={self.directions} must be a non-empty subset of forward/backward.")


# settings a resumed run may change: how long it trains, how often it evaluates and checkpoints, and when the
# collapse monitor gives up; every other one changes what a step computes (`check_same_settings`)
RESUMABLE_CHANGES = (
    "steps",
    "gradient_accumulation_steps",  # the same step, computed in other slices
    "eval_every",
    "eval_pairs",
    "checkpoint_every",
    "collapse_threshold",
    "collapse_patience",
)


def check_batch_split(config: CriticTrainingConfig, accelerator: Accelerator) -> None:
    """Refuse a batch that does not split evenly into processes x micro-batches, or an accelerator that
    accumulates otherwise than the config says: the loss of unequal shares would not be the batch's mean."""
    if accelerator.gradient_accumulation_steps != config.gradient_accumulation_steps:
        raise ValueError(
            f"the accelerator accumulates {accelerator.gradient_accumulation_steps} micro-batches, the config "
            f"{config.gradient_accumulation_steps}: make them agree."
        )
    shares = accelerator.num_processes * config.gradient_accumulation_steps
    if config.batch_size % shares:
        raise ValueError(
            f"batch_size={config.batch_size} must split evenly into {accelerator.num_processes} process(es) x "
            f"{config.gradient_accumulation_steps} micro-batch(es): use a multiple of {shares}."
        )


class CollapseError(TrainingStopped):
    """The embeddings stopped varying across samples and tokens: the JEPA objective collapsed."""


def ema_momentum(step: int, config: CriticTrainingConfig) -> float:
    """The target encoder's momentum at `step`: linear from `ema_start` to `ema_end` over the run's `steps`."""
    return config.ema_start + (config.ema_end - config.ema_start) * min(1.0, step / config.steps)


def hard_token_loss(errors: torch.Tensor, config: CriticTrainingConfig) -> torch.Tensor:
    """Mean per-token L1, blended with the mean over each clip's hardest `hard_token_fraction` of tokens.

    In sparse scenes (a few moving objects on a static background) the plain mean is minimised by predicting
    the background everywhere; the hard-token term keeps the gradient on the tokens where something happens.
    """
    if config.hard_token_weight == 0:
        return errors.mean()
    k = max(1, math.ceil(config.hard_token_fraction * errors.shape[1]))
    hard = errors.topk(k, dim=1).values.mean()
    return (1 - config.hard_token_weight) * errors.mean() + config.hard_token_weight * hard


def embedding_spread(features: torch.Tensor) -> float:
    """Std of `(B, N, D)` features across samples and tokens, averaged over dims (0 = collapsed)."""
    return float(features.reshape(-1, features.shape[-1]).float().std(dim=0).mean())


class JEPAObjective(torch.nn.Module):
    """The trained model and its loss on one micro-batch, as one module: DDP syncs the gradients of what runs in
    a wrapped module's `forward`, and the critic's encoder and predictor are called apart."""

    def __init__(self, model: VJEPA2Model, config: CriticTrainingConfig):
        super().__init__()
        self.model, self.config = model, config

    def forward(
        self, pixels: torch.Tensor, target: torch.Tensor, contexts: list[tuple[str, int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`pixels` `(b, W, 3, S, S)` normalised, `target` `(b, N, D)` layer-normed EMA features, `contexts`
        `(direction, context tubelets)` pairs -> `(loss, the last direction's prediction)`."""
        tubelet = self.model.config.tubelet_size
        grid = self.model.config.crop_size // self.model.config.patch_size
        tubelets = pixels.shape[1] // tubelet
        loss = torch.zeros((), device=pixels.device)
        for direction, k in contexts:
            context_ids, target_ids = mask_ids(
                direction, k * grid * grid, tubelets * grid * grid, pixels.device
            )
            frames = pixels[:, : k * tubelet] if direction == "forward" else pixels[:, -k * tubelet :]
            context = self.model.encoder(pixel_values_videos=frames).last_hidden_state  # (b, N_ctx, D)
            prediction = predict_tokens(self.model.predictor, context, context_ids, target_ids)
            errors = token_l1(prediction, target[:, target_ids])  # (b, N_target)
            loss = loss + hard_token_loss(errors, self.config) / len(contexts)
        return loss, prediction


class CriticTrainer(ResumableTrainer):
    """Trains `model` (encoder + predictor) against an EMA copy of its encoder.

    Args:
        model: a `VJEPA2Model` (random or pretrained); trained in place.
        sample_clips: `(generator, batch_size, window, part) -> (b, W, 3, H, W)` float [0, 1] plausible clips, the
            rows `part[0]::part[1]` of a batch of `batch_size` (`ToyWorldClips`, `VideoFolderClips`); clips
            whose `cropped` attribute is true are the critic's crops already and are only normalised.
        config: hyper-parameters.
        evaluate: optional `(critic) -> dict` called every `eval_every` steps with the exported critic (on the
            main process).
        device: where the model trains when no `accelerator` is given: "cpu", or "cuda" (each process on its
            own GPU). Clips are sampled on the CPU and moved there; masks and seeds stay on the CPU generator
            (same seed, same masks).
        accelerator: the `accelerate.Accelerator` to train with (default: one for `device`, the config's
            mixed precision and gradient accumulation).
    """

    resumable_changes = RESUMABLE_CHANGES

    def __init__(
        self,
        model: VJEPA2Model,
        sample_clips: Callable[..., torch.Tensor],
        config: CriticTrainingConfig,
        evaluate: Callable[[VJEPA2Critic], dict] | None = None,
        device: str | torch.device = "cpu",
        accelerator: Accelerator | None = None,
    ):
        if config.window % model.config.tubelet_size or config.window < 2 * model.config.tubelet_size:
            raise ValueError(
                f"window={config.window} must be a multiple of the tubelet size {model.config.tubelet_size} "
                "and hold at least two tubelets."
            )
        accelerator = accelerator or make_accelerator(
            device, config.mixed_precision, config.gradient_accumulation_steps
        )
        check_batch_split(config, accelerator)
        super().__init__(config, accelerator.device)
        self.accelerator = accelerator
        self.part = (accelerator.process_index, accelerator.num_processes)
        model = model.to(self.device)
        # the critic only preprocesses here (it freezes the model it wraps, so it comes first)
        self.preprocessor = VJEPA2Critic(model, **_preprocessing(config.scoring))
        self.model = model.train().requires_grad_(True)
        self.target_encoder = copy.deepcopy(model.encoder).eval().requires_grad_(False)
        self.objective = accelerator.prepare_model(JEPAObjective(self.model, config))
        self.sample_clips = sample_clips
        self.evaluate = evaluate
        self.optimizer = ScheduledAdamW.from_config(self.model.parameters(), config)
        self.step = 0
        self.low_spread_steps = 0  # consecutive steps with the target spread under the collapse threshold

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process

    def wait_for_everyone(self) -> None:
        self.accelerator.wait_for_everyone()

    def any_process(self, flag: bool) -> bool:
        if self.accelerator.num_processes == 1:
            return flag
        flags = torch.tensor([float(flag)], device=self.accelerator.device)
        return bool(self.accelerator.reduce(flags, reduction="sum").item() > 0)

    def machine(self) -> dict:
        return {
            **super().machine(),
            "processes": self.accelerator.num_processes,
            "mixed_precision": self.config.mixed_precision,
        }

    # ------------------------------------------------------------------ one step
    def train_step(self) -> dict:
        config, tubelet = self.config, self.model.config.tubelet_size
        # 1. this process's share of the batch, and the step's masks: drawn for the whole batch in every process
        clips = self.sample_clips(
            self.generator, config.batch_size, config.window, self.part
        )  # (b, W, 3, H, W)
        clips = random_mirror(clips, self.generator, self.part)
        contexts = [
            (direction, int(torch.randint(1, config.window // tubelet, (1,), generator=self.generator)))
            for direction in config.directions
        ]
        cropped = getattr(self.sample_clips, "cropped", False)
        pixels = self.preprocessor.preprocess(clips, cropped=cropped)  # (b, W, 3, S, S)

        # 2. gradients, micro-batch by micro-batch (accelerate syncs them across processes on the last)
        lr = self.optimizer.lr
        self.optimizer.zero_grad()
        losses, spreads = [], []
        for chunk in pixels.chunk(config.gradient_accumulation_steps):
            with torch.no_grad(), self.accelerator.autocast():
                target = self.target_encoder(pixel_values_videos=chunk).last_hidden_state.float()  # (c, N, D)
            target = F.layer_norm(target, (target.shape[-1],))
            with self.accelerator.accumulate(self.objective):  # the prepared objective runs under autocast
                loss, prediction = self.objective(chunk, target, contexts)
                self.accelerator.backward(loss)  # divided by the micro-batches
            losses.append(loss.detach().float())
            spreads.append(embedding_spread(target))
        self.optimizer.step()

        # 3. the target encoder follows; the logged numbers are the whole batch's (the same in every process, so
        # that the collapse monitor stops them all at once)
        momentum = ema_momentum(self.step, config)
        self.update_target_encoder(momentum)
        self.step += 1
        loss, spread = self.accelerator.reduce(
            torch.stack([torch.stack(losses).mean(), torch.tensor(spreads).mean()]).to(self.device), "mean"
        ).tolist()
        return {
            "step": self.step,
            "loss": loss,
            "spread": spread,
            "prediction_spread": embedding_spread(prediction.detach()),
            "lr": lr,
            "ema": momentum,
        }

    @torch.no_grad()
    def update_target_encoder(self, momentum: float) -> None:
        """`target <- momentum * target + (1 - momentum) * encoder`, parameter by parameter (V-JEPA 2's rule)."""
        for ema, online in zip(self.target_encoder.parameters(), self.model.encoder.parameters()):
            ema.lerp_(online, 1 - momentum)

    def _watched_step(self) -> dict:
        """One training step, counted by the collapse monitor and evaluated when an evaluation is due."""
        record = self.train_step()
        collapsing = record["spread"] < self.config.collapse_threshold
        self.low_spread_steps = self.low_spread_steps + 1 if collapsing else 0
        due = self.step % self.config.eval_every == 0 or self.step == self.config.steps
        if self.evaluate is not None and due and self.is_main_process:
            record["eval"] = self.evaluate(self.export_critic())
        return record

    def _stop_if_collapsed(self, record: dict) -> None:
        if self.low_spread_steps >= self.config.collapse_patience:
            message = (
                f"embeddings collapsed at step {self.step}: spread {record['spread']:.4f} < "
                f"{self.config.collapse_threshold} for {self.config.collapse_patience} steps; "
                "training stopped (checkpoint kept)."
            )
            warnings.warn(message, stacklevel=2)
            raise CollapseError(message)

    # ------------------------------------------------------------------ export, checkpoints
    def export_critic(self) -> VJEPA2Critic:
        """The critic to ship: the EMA encoder (the predictor's target) with the trained predictor."""
        model = VJEPA2Model(self.model.config)
        model.load_state_dict(self.model.state_dict())
        model.encoder.load_state_dict(self.target_encoder.state_dict())
        return VJEPA2Critic(model.to(self.device).eval(), **self.config.scoring)

    def write_weights(self, folder: Path) -> None:
        self.model.save_pretrained(folder / "model")
        save_file(self.target_encoder.state_dict(), str(folder / "target_encoder.safetensors"))

    def read_weights(self, directory: Path) -> None:
        with reading_checkpoint_file(directory / "model" / "model.safetensors"):
            # this trainer's architecture (the settings check compared `init`): only the weights file is read
            model = VJEPA2Model.from_pretrained(
                directory / "model", config=self.model.config, use_safetensors=True
            )
            self.model.load_state_dict(model.state_dict())
        with reading_checkpoint_file(directory / "target_encoder.safetensors"):
            self.target_encoder.load_state_dict(load_file(str(directory / "target_encoder.safetensors")))

    def state_dict(self) -> dict:
        state = {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "low_spread_steps": self.low_spread_steps,
        }
        if hasattr(self.sample_clips, "state_dict"):  # e.g. the toy world's pool of rendered clips
            state["clips"] = self.sample_clips.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]
        self.low_spread_steps = state.get("low_spread_steps", 0)
        if "clips" in state and hasattr(self.sample_clips, "load_state_dict"):
            self.sample_clips.load_state_dict(state["clips"])

    # ------------------------------------------------------------------ the loop
    def fit(
        self,
        output_dir: str | Path,
        *,
        resume: bool = True,
        show_progress: bool = True,
        max_minutes: float | None = None,
    ) -> VJEPA2Critic:
        """Train to `config.steps`, checkpointing into `output_dir/checkpoint`; return the exported critic.

        With `max_minutes`, training stops once that much wall time has passed (at a step boundary): the critic
        of the steps done is checkpointed and exported as at the end, its card saying so; the same call again
        resumes to `config.steps`.

        The exported critic is also written to `output_dir` (`save_pretrained` + `critic_config.json`) and the
        per-step log to `output_dir/training_log.jsonl`. Raises `CollapseError` (after a warning and a final
        checkpoint) if the embeddings collapse. With `resume`, a checkpoint there is resumed (`load_checkpoint`);
        one in the old pickle format is refused (`PickledCheckpointError`), never read.
        """
        # 1. open the run: its checkpoint resumed, its log restored
        run = self.open_run(output_dir, resume=resume, show_progress=show_progress, max_minutes=max_minutes)
        # 2. train to `steps` (or the time budget), evaluating on schedule, stopping if the embeddings collapse
        run.train(
            self._watched_step,
            lambda: self.step,
            self.config.steps,
            "train-critic",
            postfix=("loss", "spread"),
            check=self._stop_if_collapsed,
        )
        # 3. the last checkpoint, then the critic to ship (written by the main process)
        run.save_checkpoint()
        critic = self.export_critic()
        if self.is_main_process:
            c = self.config
            recipe = (
                f"`hybridgen train-critic` on {c.data} from {c.init or 'random weights'}: {c.steps} steps of "
                f"{c.batch_size} {c.window}-frame windows (plausible clips only), AdamW lr {c.lr:g}, EMA target "
                f"encoder {c.ema_start:g} -> {c.ema_end:g}, mixed precision {c.mixed_precision}"
                + stopped_note(self.step, c.steps)
            )
            card = critic.model_card(training=self.training_note(recipe))
            critic.save_pretrained(run.output_dir, model_card=card)
        self.wait_for_everyone()
        return critic


def _preprocessing(scoring: dict) -> dict:
    return {key: scoring[key] for key in ("resize_to", "image_mean", "image_std") if key in scoring}


# ---------------------------------------------------------------------- data
def _render_clip(seed: int, num_frames: int, size: int) -> np.ndarray:
    """The frames (T, H, W, 3) uint8 of the plausible toy-world clip `seed` (module level: workers pickle it)."""
    from hybridgen.toyworld import make_clip

    return make_clip(seed, num_frames=num_frames, size=size)[0]


class ToyWorldClips:
    """An ever-refreshed pool of plausible toy-world clips, sampled as random windows of whole frames.

    Args:
        pool_size: clips held in memory; `refresh` of them are replaced by new renders at every call.
        num_frames, size: of each rendered clip (the world's defaults: 16 frames, 64 px, 8 fps).
        seed: seeds of rendered clips start here and count up, so a run never repeats a clip; `state_dict` /
            `load_state_dict` carry the pool across a resume.
        workers: render in this many background processes (0: in this process). With workers, the initial
            pool is rendered in parallel and each call's refresh is rendered while the model trains, landing
            in the pool at the next call: the same seed gives the same batches with any number of workers, but
            not the batches of `workers=0`. Worth it when the model is fast (a GPU): rendering takes ~8 ms per
            clip on one CPU core.
    """

    cropped = False  # whole frames: the trainer resizes and crops them as the critic does

    def __init__(
        self,
        pool_size: int = 1024,
        refresh: int = 8,
        num_frames: int = 16,
        size: int = 64,
        seed: int = 0,
        workers: int = 0,
    ):
        if workers < 0:
            raise ValueError(f"workers={workers} must be >= 0 (0 renders in this process).")
        self.num_frames, self.size, self.refresh = num_frames, size, refresh
        self._executor = None
        self._pending: list[tuple[int, int, Future]] = []  # (pool index, seed, render in flight)
        if workers:
            self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        self.slot_seeds = np.arange(seed, seed + pool_size)  # (P,) the seed each pool clip was rendered from
        self.next_seed = seed + pool_size
        self.pool = np.stack(self._render_all(self.slot_seeds))  # (P, T, H, W, 3) uint8

    def _render_all(self, seeds) -> list[np.ndarray]:
        args = (seeds, repeat(self.num_frames), repeat(self.size))
        return list(self._executor.map(_render_clip, *args) if self._executor else map(_render_clip, *args))

    def _refresh(self, indices: list[int]) -> None:
        for index, seed, render in self._pending:  # last call's renders land now
            self.pool[index], self.slot_seeds[index] = render.result(), seed
        self._pending = []
        for index in indices:
            seed, self.next_seed = self.next_seed, self.next_seed + 1
            self._fill(index, seed)

    def _fill(self, index: int, seed: int) -> None:
        """Render clip `seed` into slot `index`: now, or with workers in the background, landing at the next call."""
        if self._executor is None:
            self.pool[index], self.slot_seeds[index] = _render_clip(seed, self.num_frames, self.size), seed
        else:
            render = self._executor.submit(_render_clip, seed, self.num_frames, self.size)
            self._pending.append((index, seed, render))

    def state_dict(self) -> dict:
        """What a resumed run needs to draw the batches an uninterrupted one would: which seed fills each slot,
        the next seed, and the renders still in flight."""
        return {
            "slot_seeds": self.slot_seeds.tolist(),
            "next_seed": self.next_seed,
            "pending": [(index, seed) for index, seed, _ in self._pending],
        }

    def load_state_dict(self, state: dict) -> None:
        """Re-render the pool of `state` (the slots whose clip differs from this pool's)."""
        seeds = np.asarray(state["slot_seeds"])
        if seeds.shape != self.slot_seeds.shape:
            raise ValueError(
                f"the checkpoint's clip pool holds {len(seeds)} clips, this one {len(self.slot_seeds)}: resume with "
                "the same pool, or start afresh (--no-resume, resume=False)."
            )
        changed = np.flatnonzero(seeds != self.slot_seeds)
        for index, frames in zip(changed, self._render_all(seeds[changed])):
            self.pool[index] = frames
        self.slot_seeds, self.next_seed = seeds, int(state["next_seed"])
        for render in self._pending:
            render[2].cancel()
        self._pending = []
        for index, seed in state["pending"]:  # without workers here, they land now instead of a call later
            self._fill(index, seed)

    def close(self) -> None:
        """Stop the render processes (if any)."""
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor, self._pending = None, []

    def __call__(
        self,
        generator: torch.Generator,
        batch_size: int,
        window: int,
        part: tuple[int, int] = (0, 1),
    ) -> torch.Tensor:
        """The rows `part[0]::part[1]` (one process's share) of a batch of `batch_size` windows, drawn from
        `generator` (the whole batch's draws, so that every process draws alike)."""
        if window > self.num_frames:
            raise ValueError(f"window={window} is longer than the rendered clips ({self.num_frames} frames).")
        self._refresh(torch.randint(len(self.pool), (self.refresh,), generator=generator).tolist())
        picks = torch.randint(len(self.pool), (batch_size,), generator=generator).tolist()
        starts = torch.randint(self.num_frames - window + 1, (batch_size,), generator=generator).tolist()
        rows = slice(part[0], None, part[1])
        clips = np.stack(
            [self.pool[i, s : s + window] for i, s in zip(picks[rows], starts[rows])]
        )  # (b, W, H, W, 3)
        return torch.from_numpy(clips).permute(0, 1, 4, 2, 3).float() / 255  # (B, W, 3, H, W)


# ---------------------------------------------------------------------- entry point
def train_critic(
    output_dir: str | Path,
    *,
    data: str = "toyworld",
    init: str | None = None,
    steps: int = 2000,
    batch_size: int = 16,
    gradient_accumulation_steps: int = 1,
    mixed_precision: str = "no",
    window: int = 8,
    lr: float = 1e-3,
    eval_every: int = 250,
    eval_pairs: int = 8,
    checkpoint_every: int = 250,
    seed: int = 0,
    device: str = "cpu",
    workers: int = 0,
    pool_size: int = 1024,
    scoring: dict | None = None,
    resume: bool = True,
    show_progress: bool = True,
    max_minutes: float | None = None,
) -> dict:
    """Train a critic on `data` ("toyworld" or a folder of videos) and save it to `output_dir`.

    Starts from `init` (a V-JEPA 2 checkpoint: Hub id, directory or "toyworld") or from random weights of
    `toyworld_critic_config()`. A fine-tuned critic keeps its starting checkpoint's scoring options and
    preprocessing (resize, crop, mean and std, frame rate), trains on what that preprocessing makes of the data, and
    is saved with them; `scoring` changes some (names of `ScoringOptions`). The checkpoint's expected-error head
    fits the old features only, so it is dropped (relative scoring off until `calibrate-critic` fits a new one).

    `data`: the toy world, rendered on the fly (a pool of `pool_size` clips, refreshed as training goes, rendered
    by `workers` processes; every `eval_every` steps the exported
    critic is scored with `QUICK_VIOLATION_SCORING` on `eval_pairs` violation pairs per kind, never trained on), or
    a folder of videos streamed from disk (`VideoFolderClips`, `workers` decoding processes). `device`,
    `mixed_precision` ("no", "bf16") and `gradient_accumulation_steps` set up the accelerate `Accelerator`; run
    under `accelerate launch` or `torchrun` to train on several processes. Settings that cannot work (an
    `output_dir` that is a file, a batch that does not split into processes x micro-batches, a missing folder, a
    window longer than every video) are refused before any step. `max_minutes`: a wall-clock budget for this run,
    after which the critic of the steps done is checkpointed and saved (run again to go on). Returns a summary:
    steps, the step a resumed run started from, whether the budget stopped it, final loss, wall time, last
    evaluation.
    """
    from hybridgen.critics.options import ScoringOptions
    from hybridgen.toyworld.evaluation import QUICK_VIOLATION_SCORING, evaluate_violations, summarize

    # 1. check the settings before any work
    check_output_dir(output_dir)
    check_max_minutes(max_minutes)
    config = CriticTrainingConfig(
        steps=steps,
        batch_size=batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        mixed_precision=mixed_precision,
        window=window,
        lr=lr,
        eval_every=eval_every,
        eval_pairs=eval_pairs,
        checkpoint_every=checkpoint_every,
        seed=seed,
        init=None if init is None else str(init),  # recorded as text (a Path is not JSON)
        data=str(data),
    )
    if data != "toyworld" and not Path(data).is_dir():
        raise FileNotFoundError(f"data must be 'toyworld' or a folder of videos; {data} is neither.")
    if scoring:
        ScoringOptions().replace(**scoring)  # an unknown name fails here, before any work
    accelerator = make_accelerator(device, mixed_precision, gradient_accumulation_steps)
    check_batch_split(config, accelerator)

    # 2. the model, and the scoring options it is trained for and saved with
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if init is None:
            model, options = VJEPA2Model(toyworld_critic_config()), dict(config.scoring)
        else:
            model, options = _init_model(init)
    if scoring:
        options = ScoringOptions.from_dict(options).replace(**scoring).to_dict()
    config = replace(config, scoring=options)
    size = model.config.crop_size

    # 3. the clips
    if data == "toyworld":
        sample_clips = ToyWorldClips(pool_size=pool_size, size=size, seed=seed, workers=workers)
    else:
        sample_clips = VideoFolderClips(
            data,
            resize_to=options.get("resize_to") or size,
            crop_size=size,
            fps=options.get("fps"),
            seed=seed,
            workers=workers,
        )
        sample_clips.check_window(window)

    def evaluate(critic: VJEPA2Critic) -> dict:
        critic = critic.with_options(**QUICK_VIOLATION_SCORING)

        def surprise(clips):
            return [report.surprise for report in critic.score_batch(clips)]

        results = evaluate_violations(surprise, num_pairs=eval_pairs, seed=EVAL_SEED, size=size)
        return {kind: round(row["accuracy"], 3) for kind, row in summarize(results).items()}

    # 4. train
    trainer = CriticTrainer(
        model,
        sample_clips,
        config,
        evaluate if data == "toyworld" else None,
        accelerator=accelerator,
    )
    started = time.perf_counter()
    try:
        trainer.fit(output_dir, resume=resume, show_progress=show_progress, max_minutes=max_minutes)
    finally:
        sample_clips.close()
    last = trainer.history[-1] if trainer.history else {}  # a budget spent before the first step: none
    evaluations = [record["eval"] for record in trainer.history if "eval" in record]
    return {
        "output": str(output_dir),
        "steps": trainer.step,
        "resumed_from": trainer.resumed_from,
        "stopped_early": trainer.step < config.steps,
        "processes": accelerator.num_processes,
        "final_loss": last.get("loss"),
        "final_spread": last.get("spread"),
        "seconds_this_run": round(time.perf_counter() - started, 1),
        "last_evaluation": evaluations[-1] if evaluations else None,
    }


def _init_model(init: str) -> tuple[VJEPA2Model, dict]:
    """The starting checkpoint's model and scoring options (as a dict), its expected-error head dropped."""
    from hybridgen.models import load_vjepa2

    model, options, head = load_vjepa2(init)
    if options.relative:
        warnings.warn(
            f"{init} scores relative to its expected-error head, which does not fit a fine-tuned critic: the "
            "fine-tuned one scores raw errors (relative=False) until `hybridgen calibrate-critic` fits a new head.",
            stacklevel=3,
        )
    return model, options.replace(relative=False).to_dict()


# seeds of the pairs watched during training; benchmarks and tuning use other ranges
EVAL_SEED = 500_000
