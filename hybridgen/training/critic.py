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

The target-encoder momentum stays an explicit schedule, as V-JEPA 2's own code keeps it (diffusers' `EMAModel`, which
the generator uses, has its own warm-up rule and no momentum schedule). The trainer never sees a violation: surprise
at impossible events must emerge from learning to predict. A collapse monitor watches the spread of the target
embeddings across samples and tokens and stops training when it vanishes. The loop, checkpoints and resume are the
shared `ResumableTrainer`'s: the model (`save_pretrained`) and the EMA encoder in safetensors, the rest of the trainer's
state (optimiser and schedule included) in JSON + safetensors (`hybridgen.training.state`), so that resuming never
unpickles anything. A resume must ask for the settings the checkpoint was trained with, except `RESUMABLE_CHANGES`;
one that asks for more steps continues on a cosine recomputed over the new length.
"""

from __future__ import annotations

import copy
import math
import multiprocessing
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import repeat
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import VJEPA2Config, VJEPA2Model

from hybridgen.critics.vjepa2 import VJEPA2Critic, mask_ids, predict_tokens, token_l1
from hybridgen.pipelines.limits import check_finite_numbers
from hybridgen.training.checkpoints import check_output_dir, reading_checkpoint_file
from hybridgen.training.core import ResumableTrainer, ScheduledAdamW, TrainingStopped, random_mirror


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
    batch_size: int = 16
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
        for name in ("steps", "batch_size", "window", "eval_every", "checkpoint_every"):
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
    "eval_every",
    "eval_pairs",
    "checkpoint_every",
    "collapse_threshold",
    "collapse_patience",
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


class CriticTrainer(ResumableTrainer):
    """Trains `model` (encoder + predictor) against an EMA copy of its encoder.

    Args:
        model: a `VJEPA2Model` (random or pretrained); trained in place.
        sample_clips: `(generator, batch_size, window) -> (B, W, 3, H, W)` float [0, 1] plausible clips.
        config: hyper-parameters.
        evaluate: optional `(critic) -> dict` called every `eval_every` steps with the exported critic.
        device: where the model, its EMA target and the batches live ("cpu", "cuda", ...); clips are sampled
            on the CPU and moved there, masks and seeds stay on the CPU generator (same seed, same masks).
    """

    resumable_changes = RESUMABLE_CHANGES

    def __init__(
        self,
        model: VJEPA2Model,
        sample_clips: Callable[[torch.Generator, int, int], torch.Tensor],
        config: CriticTrainingConfig,
        evaluate: Callable[[VJEPA2Critic], dict] | None = None,
        device: str | torch.device = "cpu",
    ):
        if config.window % model.config.tubelet_size or config.window < 2 * model.config.tubelet_size:
            raise ValueError(
                f"window={config.window} must be a multiple of the tubelet size {model.config.tubelet_size} "
                "and hold at least two tubelets."
            )
        super().__init__(config, device)
        model = model.to(self.device)
        # the critic only preprocesses here (it freezes the model it wraps, so it comes first)
        self.preprocessor = VJEPA2Critic(model, **_preprocessing(config.scoring))
        self.model = model.train().requires_grad_(True)
        self.target_encoder = copy.deepcopy(model.encoder).eval().requires_grad_(False)
        self.sample_clips = sample_clips
        self.evaluate = evaluate
        self.optimizer = ScheduledAdamW.from_config(self.model.parameters(), config)
        self.step = 0
        self.low_spread_steps = 0  # consecutive steps with the target spread under the collapse threshold

    # ------------------------------------------------------------------ one step
    def train_step(self) -> dict:
        config, tubelet = self.config, self.model.config.tubelet_size
        grid = self.preprocessor.grid
        tubelets = config.window // tubelet
        clips = self.sample_clips(self.generator, config.batch_size, config.window)  # (B, W, 3, H, W)
        clips = random_mirror(clips, self.generator).to(self.device)
        pixels = self.preprocessor.preprocess(clips)  # (B, W, 3, S, S)

        with torch.no_grad():
            target = self.target_encoder(pixel_values_videos=pixels).last_hidden_state  # (B, N, D)
            target = F.layer_norm(target, (target.shape[-1],))
        loss = torch.zeros((), device=self.device)
        for direction in config.directions:
            k = int(torch.randint(1, tubelets, (1,), generator=self.generator))  # context tubelets
            context_ids, target_ids = mask_ids(
                direction, k * grid * grid, tubelets * grid * grid, self.device
            )
            frames = pixels[:, : k * tubelet] if direction == "forward" else pixels[:, -k * tubelet :]
            context = self.model.encoder(pixel_values_videos=frames).last_hidden_state  # (B, N_ctx, D)
            prediction = predict_tokens(self.model.predictor, context, context_ids, target_ids)
            errors = token_l1(prediction, target[:, target_ids])  # (B, N_target)
            loss = loss + hard_token_loss(errors, config) / len(config.directions)

        lr = self.optimizer.lr
        self.optimizer.update(loss)
        momentum = ema_momentum(self.step, config)
        self.update_target_encoder(momentum)
        self.step += 1
        return {
            "step": self.step,
            "loss": float(loss.detach()),
            "spread": embedding_spread(target),
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
        if self.evaluate is not None and due:
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
    def fit(self, output_dir: str | Path, *, resume: bool = True, show_progress: bool = True) -> VJEPA2Critic:
        """Train to `config.steps`, checkpointing into `output_dir/checkpoint`; return the exported critic.

        The exported critic is also written to `output_dir` (`save_pretrained` + `critic_config.json`) and the
        per-step log to `output_dir/training_log.jsonl`. Raises `CollapseError` (after a warning and a final
        checkpoint) if the embeddings collapse. With `resume`, a checkpoint there is resumed (`load_checkpoint`);
        one in the old pickle format is refused (`PickledCheckpointError`), never read.
        """
        # 1. open the run: its checkpoint resumed, its log restored
        run = self.open_run(output_dir, resume=resume, show_progress=show_progress)
        # 2. train to `steps`, evaluating on schedule, stopping if the embeddings collapse
        run.train(
            self._watched_step,
            lambda: self.step,
            self.config.steps,
            "train-critic",
            postfix=("loss", "spread"),
            check=self._stop_if_collapsed,
        )
        # 3. the last checkpoint, then the critic to ship
        run.save_checkpoint()
        critic = self.export_critic()
        critic.save_pretrained(run.output_dir)
        return critic


def _preprocessing(scoring: dict) -> dict:
    return {key: scoring[key] for key in ("resize_to", "image_mean", "image_std") if key in scoring}


# ---------------------------------------------------------------------- data
def _render_clip(seed: int, num_frames: int, size: int) -> np.ndarray:
    """The frames (T, H, W, 3) uint8 of the plausible toy-world clip `seed` (module level: workers pickle it)."""
    from hybridgen.toyworld import make_clip

    return make_clip(seed, num_frames=num_frames, size=size)[0]


class ToyWorldClips:
    """An ever-refreshed pool of plausible toy-world clips, sampled as random windows.

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

    def __call__(self, generator: torch.Generator, batch_size: int, window: int) -> torch.Tensor:
        if window > self.num_frames:
            raise ValueError(f"window={window} is longer than the rendered clips ({self.num_frames} frames).")
        self._refresh(torch.randint(len(self.pool), (self.refresh,), generator=generator).tolist())
        picks = torch.randint(len(self.pool), (batch_size,), generator=generator).tolist()
        starts = torch.randint(self.num_frames - window + 1, (batch_size,), generator=generator).tolist()
        clips = np.stack([self.pool[i, s : s + window] for i, s in zip(picks, starts)])  # (B, W, H, W, 3)
        return torch.from_numpy(clips).permute(0, 1, 4, 2, 3).float() / 255  # (B, W, 3, H, W)


class VideoFolderClips:
    """Random windows of the videos in a folder (any format `read_video` decodes), resized to `size`."""

    EXTENSIONS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif", ".m4v")

    def __init__(self, folder: str | Path, size: int):
        from hybridgen.video import read_video

        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"training data folder not found: {folder}")
        paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in self.EXTENSIONS)
        if not paths:
            raise ValueError(f"no videos ({', '.join(self.EXTENSIONS)}) in {folder}.")
        self.clips = []
        for path in paths:
            frames = torch.from_numpy(read_video(path)[0]).permute(0, 3, 1, 2)  # (T, 3, H, W)
            self.clips.append(F.interpolate(frames, size=(size, size), mode="bilinear", antialias=True))

    def __call__(self, generator: torch.Generator, batch_size: int, window: int) -> torch.Tensor:
        usable = [clip for clip in self.clips if clip.shape[0] >= window]
        if not usable:
            raise ValueError(f"no video in the folder has {window} frames.")
        picks = torch.randint(len(usable), (batch_size,), generator=generator).tolist()
        batch = []
        for i in picks:
            start = int(torch.randint(usable[i].shape[0] - window + 1, (1,), generator=generator))
            batch.append(usable[i][start : start + window])
        return torch.stack(batch)  # (B, W, 3, H, W)


# ---------------------------------------------------------------------- entry point
def train_critic(
    output_dir: str | Path,
    *,
    data: str = "toyworld",
    init: str | None = None,
    steps: int = 2000,
    batch_size: int = 16,
    window: int = 8,
    lr: float = 1e-3,
    eval_every: int = 250,
    eval_pairs: int = 8,
    checkpoint_every: int = 250,
    seed: int = 0,
    device: str = "cpu",
    workers: int = 0,
    resume: bool = True,
    show_progress: bool = True,
) -> dict:
    """Train a critic on `data` ("toyworld" or a folder of videos) and save it to `output_dir`.

    Starts from `init` (a V-JEPA 2 checkpoint) or from random weights of `toyworld_critic_config()`. On the toy
    world, every `eval_every` steps the exported critic is scored with `QUICK_VIOLATION_SCORING` on `eval_pairs`
    violation pairs per kind (never trained on). `device` is where the model trains; `workers` render toy-world
    clips in background processes (see `ToyWorldClips`). An `output_dir` that is a file is refused before any
    clip is rendered. Returns a summary: steps, final loss, wall time, last evaluation.
    """
    from hybridgen.toyworld.evaluation import QUICK_VIOLATION_SCORING, evaluate_violations, summarize

    check_output_dir(output_dir)

    config = CriticTrainingConfig(
        steps=steps,
        batch_size=batch_size,
        window=window,
        lr=lr,
        eval_every=eval_every,
        eval_pairs=eval_pairs,
        checkpoint_every=checkpoint_every,
        seed=seed,
        init=None if init is None else str(init),  # recorded as text (a Path is not JSON)
        data=str(data),
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if init is None:
            model = VJEPA2Model(toyworld_critic_config())
        else:
            from hybridgen.models import load_vjepa2

            model, *_ = load_vjepa2(init)
    size = model.config.crop_size
    if data == "toyworld":
        sample_clips = ToyWorldClips(size=size, seed=seed, workers=workers)
    elif workers:
        raise ValueError(
            f"workers={workers} render toy-world clips; a video folder ({data}) is read in-process."
        )
    else:
        sample_clips = VideoFolderClips(data, size)

    def evaluate(critic: VJEPA2Critic) -> dict:
        critic = critic.with_options(**QUICK_VIOLATION_SCORING)

        def surprise(clips):
            return [report.surprise for report in critic.score_batch(clips)]

        results = evaluate_violations(surprise, num_pairs=eval_pairs, seed=EVAL_SEED, size=size)
        return {kind: round(row["accuracy"], 3) for kind, row in summarize(results).items()}

    trainer = CriticTrainer(
        model, sample_clips, config, evaluate if data == "toyworld" else None, device=device
    )
    started = time.perf_counter()
    try:
        trainer.fit(output_dir, resume=resume, show_progress=show_progress)
    finally:
        if isinstance(sample_clips, ToyWorldClips):
            sample_clips.close()
    last = trainer.history[-1]
    evaluations = [record["eval"] for record in trainer.history if "eval" in record]
    return {
        "output": str(output_dir),
        "steps": trainer.step,
        "final_loss": last["loss"],
        "final_spread": last["spread"],
        "seconds_this_run": round(time.perf_counter() - started, 1),
        "last_evaluation": evaluations[-1] if evaluations else None,
    }


# seeds of the pairs watched during training; benchmarks and tuning use other ranges
EVAL_SEED = 500_000
