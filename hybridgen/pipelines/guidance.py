"""Critic gradient guidance: at chosen steps, push the latents against the gradient of the critic's surprise.

At a guided step i, after the scheduler's step (so after classifier-free guidance), in `callback_on_step_end`:

    x̂0      = the scheduler's clean estimate at step i (recorded by `recording_clean_latents`), detached
    frames  = decode_latents(x̂0)                       # (1, F, 3, H, W), with gradients, one video at a time
    g       = ∂ surprise(frames) / ∂ x̂0                # same layout as the latents; surprise as `objective`
    latents = latents − scale · g / rms(g)              # per video: a step of RMS `scale` in latent units

Predictor-corrector schedulers (UniPC, Wan's Hub default; SA-Solver) would rebuild the pushed latents from the
sample before the step and so undo the push: their corrector is skipped on the step after a push (their
`last_sample` cleared, as at the start of a schedule). The surprise is taken at the critic's frame rate, as
reranking takes it.

A pipeline that keeps a conditioned latent frame out of its steps (LTX image-to-video) gets x̂0 of the whole clip
with that frame put back (`whole_clip_clean_latents`), and no push on it: the gradient there is zeroed and the RMS
taken over the rest. With `scored_frames`, the critic scores only those frames of the decoded x̂0 (the generated
ones, when the given frames are not scored).

x̂0 is treated as moving one-for-one with the latents (the denoiser's Jacobian is not backpropagated through,
which keeps the cost at one decode and one critic pass per guided video). Memory stays bounded by one video's
decoder graph, whatever the batch; that graph is what guidance costs, and it grows with the clip's pixels x frames.
Two options shrink it (measured in BENCHMARKS.md, "Guidance memory"):

    decode_scale            x̂0's latents area-averaged to that fraction of their height and width before the
                            decode (`latents.downscale_latents`): a quarter of the pixels at 0.5, for a critic that
                            sees its own crop (256 for V-JEPA 2) anyway; the push still covers every latent
    gradient_checkpointing  the decoder's blocks recompute their activations in the backward pass (diffusers'
                            `enable_gradient_checkpointing`, for VAEs that support it: LTX, CogVideoX; not Wan's)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from hybridgen.critics.vjepa2 import VJEPA2Critic
from hybridgen.pipelines.denoising import CleanLatents
from hybridgen.pipelines.latents import (
    conditioned_latents_mask,
    decode_latents,
    downscale_latents,
    downscaled_sizes,
    whole_clip_clean_latents,
)

OBJECTIVES = ("mean", "critic")


@dataclass(frozen=True)
class GuidanceOptions:
    """How `strategy="guidance"` steers.

    Args:
        scale: RMS size of each push, in latent units (the initial noise has RMS 1).
        start, end: the guided part of the schedule, as fractions of the steps: step i is guided when
            start <= i / num_steps < end.
        every: guide every k-th step inside that range.
        objective: what the push lowers. "mean": the critic's prediction error averaged over every target token
            and every window, a smooth signal (what a V-JEPA 2 Hub checkpoint and the bundled toy-world critic
            score by default). "critic": the critic's own scoring options, e.g. top tokens and worst window for
            `critic.with_options(top_fraction=0.02, aggregate="max")`.
        decode_scale: decode x̂0 at this fraction (0 < decode_scale <= 1) of the clip's height and width, its
            latents area-averaged first: about decode_scale² of the decoder's memory and time. For critics that
            see frames smaller than the clip (V-JEPA 2: 256 pixels; 0.5 of Wan's 480x832 is 240x416).
        gradient_checkpointing: recompute the VAE decoder's activations in the backward pass instead of keeping
            them (less memory, one more decode's time); needs a VAE that supports it (LTX, CogVideoX).

    The defaults were fixed on the toy world before they were measured there (`BENCHMARKS.md`): with the bundled
    critic, -57% and -58% ground-truth physics error against the same seeds unguided, on two sets of 16 prompt x
    seed groups.
    """

    scale: float = 0.05
    start: float = 0.0
    end: float = 1.0
    every: int = 2
    objective: str = "mean"
    decode_scale: float = 1.0
    gradient_checkpointing: bool = False

    def __post_init__(self):
        if not 0 < self.scale < math.inf:
            raise ValueError(f"scale must be a finite number > 0, got {self.scale!r}.")
        if not 0 <= self.start < self.end <= 1:
            raise ValueError(f"need 0 <= start < end <= 1, got start={self.start!r}, end={self.end!r}.")
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"every must be an integer >= 1, got {self.every!r}.")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}.")
        if not 0 < self.decode_scale <= 1:
            raise ValueError(
                f"decode_scale must be in (0, 1] (a fraction of the clip's height and width), got "
                f"{self.decode_scale!r}."
            )
        if not isinstance(self.gradient_checkpointing, bool):
            raise TypeError(
                f"gradient_checkpointing must be True or False, got {self.gradient_checkpointing!r}."
            )

    def guided(self, step: int, num_steps: int) -> bool:
        """Whether step `step` (0-based) of a `num_steps` schedule is guided."""
        first = math.ceil(self.start * num_steps)
        return first <= step < self.end * num_steps and (step - first) % self.every == 0


def check_guidance(pipeline, options: GuidanceOptions) -> None:
    """Refuse, before any work, gradient checkpointing on a VAE that has none (diffusers: Wan's)."""
    vae = getattr(pipeline, "vae", None)
    if options.gradient_checkpointing and not getattr(vae, "_supports_gradient_checkpointing", False):
        raise ValueError(
            f"gradient_checkpointing=True needs a VAE that supports it, and {type(vae).__name__} does not: "
            "decode_scale=0.5 (GuidanceOptions) cuts the decoder's memory instead."
        )


def warn_if_decoded_below_crop(pipeline, critic: VJEPA2Critic, options: GuidanceOptions, sizes: dict) -> None:
    """Warn when `decode_scale` decodes x̂0 smaller than the critic's crop: the critic then judges an upsampled,
    blurrier clip than the one made (on the toy world, 16-pixel decodes for a 64-pixel crop lost guidance's gain)."""
    if options.decode_scale == 1:
        return
    small = downscaled_sizes(pipeline, options.decode_scale, **sizes)
    if min(small["height"], small["width"]) < critic.crop_size:
        warnings.warn(
            f"decode_scale={options.decode_scale:g} decodes x̂0 at {small['height']}x{small['width']}, smaller than "
            f"the critic's {critic.crop_size}-pixel crop: the critic judges a blurrier clip than the one made, and "
            "guidance may lose its effect (BENCHMARKS.md, 'Guidance memory'). Use a larger decode_scale where memory "
            "allows.",
            stacklevel=5,  # the caller of HybridPipeline.__call__
        )


@contextmanager
def decoder_checkpointing(vae, enabled: bool) -> Iterator[None]:
    """Within the block, the VAE recomputes its activations in the backward pass when `enabled`; afterwards it is
    as it was."""
    if not enabled or vae.is_gradient_checkpointing:
        yield
        return
    vae.enable_gradient_checkpointing()
    try:
        yield
    finally:
        vae.disable_gradient_checkpointing()


class PhysicsGuidance:
    """A `callback_on_step_end` applying `GuidanceOptions` to every video of the call; chains a user callback.

    `surprises` logs, per guided step, each video's x̂0 surprise before the push, as `options.objective` scores it
    (on the `scored_frames` of the decoded x̂0).
    """

    def __init__(
        self,
        pipeline,
        critic: VJEPA2Critic,
        record: CleanLatents,
        options: GuidanceOptions,
        *,
        num_steps: int,
        sizes: dict,
        fps: float | None = None,
        user_callback: Callable | None = None,
        scored_frames: slice = slice(None),
    ):
        if options.objective == "mean":  # the same model, scored by the mean over all tokens and windows
            critic = critic.with_options(top_fraction=None, aggregate="mean")
        self.pipeline, self.critic, self.record, self.options = pipeline, critic, record, options
        self.num_steps, self.sizes, self.fps, self.user_callback = num_steps, sizes, fps, user_callback
        self.scored_frames = scored_frames
        self.surprises: list[dict] = []
        warn_if_decoded_below_crop(pipeline, critic, options, sizes)

    def __call__(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        outputs = {}
        if self.options.guided(step, self.num_steps):
            latents = callback_kwargs["latents"]
            push, surprise = self.push(
                whole_clip_clean_latents(self.pipeline, self.record.latents, latents, **self.sizes)
            )
            outputs["latents"] = latents - push.to(latents)
            if getattr(pipe.scheduler, "last_sample", None) is not None:
                pipe.scheduler.last_sample = None  # no corrector on the next step: it would undo the push
            self.surprises.append({"step": step, "surprise": surprise})
        if self.user_callback is not None:
            user_kwargs = dict(callback_kwargs, **outputs)
            outputs.update(self.user_callback(pipe, step, timestep, user_kwargs) or {})
        return outputs

    def push(self, clean: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
        """The step to subtract from the latents, `scale · g / rms(g)` per video, and each video's surprise; `clean`
        is x̂0 of the whole clip. Entries the pipeline never steps (a conditioned frame) get no push."""
        pushes, surprises = [], []
        conditioned = conditioned_latents_mask(self.pipeline, clean, **self.sizes)
        movable = torch.ones_like(clean[:1]) if conditioned is None else 1 - conditioned.to(clean)
        for k in range(len(clean)):
            x0 = clean[k : k + 1].detach().float().requires_grad_(True)
            with (
                torch.enable_grad(),
                decoder_checkpointing(self.pipeline.vae, self.options.gradient_checkpointing),
            ):
                small, sizes = downscale_latents(self.pipeline, x0, self.options.decode_scale, **self.sizes)
                frames = decode_latents(self.pipeline, small, **sizes)  # (1, F, 3, H, W), H and W scaled
                frames = frames[:, self.scored_frames].to(self.critic.device)  # the critic may sit elsewhere
                surprise = self.critic.surprise(frames, fps=self.fps)[0]
                (gradient,) = torch.autograd.grad(surprise, x0)
            gradient = gradient * movable
            rms = gradient.pow(2).sum().div(movable.sum()).sqrt()
            pushes.append(self.options.scale * gradient / rms if rms > 0 else torch.zeros_like(gradient))
            surprises.append(float(surprise.detach()))
        return torch.cat(pushes), surprises
