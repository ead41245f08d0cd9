"""Fit a critic's `ExpectedErrorHead` on plausible clips: how large its prediction error usually is, per token.

The critic itself stays frozen. Each step scores a batch of plausible windows exactly as the critic does
(its window, context and directions; half the batch mirrored left-right) and fits the head to the per-token
L1 errors `e` by the negative log-likelihood of an exponential distribution with mean `b = head(prediction)`:

    loss = mean(e / b + log b)            # minimised by b = E[e | prediction]

The head never sees a violation: like the critic, it only learns what plausible clips look like.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from hybridgen.critics.error_head import ExpectedErrorHead
from hybridgen.critics.vjepa2 import VJEPA2Critic, token_l1
from hybridgen.training.checkpoints import check_output_dir
from hybridgen.training.core import random_mirror
from hybridgen.training.critic import ToyWorldClips
from hybridgen.training.folder_clips import VideoFolderClips

# seeds of the toy-world clips the head is fitted on: apart from the critic's training clips (0 up) and from
# every violation-pair range (500,000 / 1,000,000 / 2,000,000 up)
CALIBRATION_SEED = 10_000_000


def fit_expected_error_head(
    critic: VJEPA2Critic,
    sample_clips: Callable[[torch.Generator, int, int], torch.Tensor],
    *,
    steps: int = 600,
    batch_size: int = 32,
    lr: float = 1e-3,
    head_hidden_size: int = 256,
    seed: int = 0,
    show_progress: bool = True,
) -> tuple[ExpectedErrorHead, list[dict]]:
    """Fit a new `ExpectedErrorHead` to `critic` (left unchanged) on clips from `sample_clips`.

    Args:
        sample_clips: `(generator, batch_size, window) -> (B, W, 3, H, W)` float [0, 1] plausible clips, e.g.
            `hybridgen.training.critic.ToyWorldClips` or `hybridgen.training.folder_clips.VideoFolderClips`
            (whose `cropped` clips are only normalised).
        steps, batch_size: optimiser steps and windows per step (each window of `critic.options.window` frames).
    Returns:
        `(head, history)`: the fitted head (eval mode, no grad) and one `{"step", "loss", "mean_error"}` per step.
    """
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"{name}={value} must be >= 1.")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = ExpectedErrorHead(critic.model.config.hidden_size, head_hidden_size).to(critic.device)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    history = []
    for step in tqdm(range(steps), desc="calibrate-critic", disable=not show_progress):
        # half the windows mirrored, as in training: the mirror option scores both views
        clips = random_mirror(
            sample_clips(generator, batch_size, critic.options.window), generator
        )  # (B, W, 3, H, W)
        with torch.no_grad():
            pixels = critic.preprocess(clips, cropped=getattr(sample_clips, "cropped", False))
            prediction, target = critic.predict(pixels, critic.options.context)  # (B, N, D) each
            errors = token_l1(prediction, target)  # (B, N)
        expected = head(prediction)  # (B, N), float32 whatever the critic's dtype
        loss = (errors / expected + expected.log()).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append({"step": step + 1, "loss": float(loss.detach()), "mean_error": float(errors.mean())})
    return head.eval().requires_grad_(False), history


def calibrate_critic(
    critic_id: str,
    output_dir: str | Path,
    *,
    data: str = "toyworld",
    steps: int = 600,
    batch_size: int = 32,
    seed: int = 0,
    device: str = "cpu",
    workers: int = 2,
    show_progress: bool = True,
) -> dict:
    """Load `critic_id` (bundled name, directory or Hub id), fit its expected-error head on `data` ("toyworld"
    or a folder of videos, streamed by `workers` decoding processes) and save the critic with the head to
    `output_dir`. Returns a summary."""
    check_output_dir(output_dir)
    if data != "toyworld" and not Path(data).is_dir():
        raise FileNotFoundError(f"data must be 'toyworld' or a folder of videos; {data} is neither.")
    critic = VJEPA2Critic.from_pretrained(critic_id, device=device)
    if data == "toyworld":
        sample_clips = ToyWorldClips(size=critic.crop_size, seed=CALIBRATION_SEED + seed)
    else:
        sample_clips = VideoFolderClips(
            data,
            resize_to=critic.options.resize_to,
            crop_size=critic.crop_size,
            fps=critic.options.fps,
            seed=CALIBRATION_SEED + seed,
            workers=workers,
        )
        sample_clips.check_window(critic.options.window)
    started = time.perf_counter()
    try:
        head, history = fit_expected_error_head(
            critic, sample_clips, steps=steps, batch_size=batch_size, seed=seed, show_progress=show_progress
        )
    finally:
        sample_clips.close()
    critic.with_options(expected_error_head=head).save_pretrained(output_dir)
    last = history[-max(1, len(history) // 10) :]
    return {
        "output": str(output_dir),
        "steps": steps,
        "final_loss": round(sum(r["loss"] for r in last) / len(last), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
