"""Hooks into a diffusers pipeline's denoising loop through its scheduler, without forking the loop.

Every diffusers video pipeline calls `scheduler.set_timesteps(...)` once and `scheduler.step(model_output, t,
sample)` once per step, after classifier-free guidance. Overriding these two methods on the scheduler *instance*
for the length of one call (the class is untouched, and the instance gets back what it had) gives:

- `recording_clean_latents`: the model's current estimate of the clean latents x̂0 at every step, derived from the
  scheduler in use (`predict_clean_latents`);
- `timestep_window`: a call that runs only steps `[start, stop)` of the schedule, so denoising can be split into
  segments with pruning between them (`strategy="search"`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

# schedulers whose step depends only on (model_output, t, sample): a trajectory can stop after any step and go on
# in a later pipeline call. Multistep solvers (UniPC, DPM++) keep a history of model outputs and are refused.
STATELESS_SCHEDULERS = ("FlowMatchEulerDiscreteScheduler", "DDIMScheduler", "CogVideoXDDIMScheduler")


def prediction_kind(scheduler) -> str:
    """What the model predicts under `scheduler`: "flow" (velocity, sigma schedule), or "epsilon", "v_prediction",
    "sample" (alphas_cumprod schedule). Raises ValueError for a scheduler x̂0 cannot be derived from."""
    name = type(scheduler).__name__
    prediction = getattr(scheduler.config, "prediction_type", None)
    if name.startswith("FlowMatch") or prediction == "flow_prediction":
        if not hasattr(scheduler, "sigmas"):
            raise ValueError(f"{name} predicts flow but has no sigma schedule to derive x̂0 from.")
        return "flow"
    if prediction in ("epsilon", "v_prediction", "sample") and hasattr(scheduler, "alphas_cumprod"):
        return prediction
    raise ValueError(
        f"cannot derive the clean-video estimate x̂0 under {name} (prediction_type={prediction!r}); supported: "
        "flow-matching schedulers, and DDPM-style schedulers predicting epsilon, v_prediction or sample."
    )


def predict_clean_latents(
    scheduler, model_output: torch.Tensor, timestep, sample: torch.Tensor
) -> torch.Tensor:
    """x̂0 from the scheduler's current step, before `scheduler.step` runs; same layout as `sample`.

    flow matching:  x̂0 = x_t − σ_t·v                 (σ_t = scheduler.sigmas[step index])
    epsilon:        x̂0 = (x_t − √(1−ᾱ_t)·ε) / √ᾱ_t
    v-prediction:   x̂0 = √ᾱ_t·x_t − √(1−ᾱ_t)·v
    """
    kind = prediction_kind(scheduler)
    if kind == "flow":
        if getattr(scheduler, "step_index", None) is None:
            scheduler._init_step_index(timestep)  # what step() itself does first
        sigma = scheduler.sigmas[scheduler.step_index].to(sample.device, sample.dtype)
        return sample - sigma * model_output
    t = int(timestep.item() if isinstance(timestep, torch.Tensor) else timestep)
    alpha = scheduler.alphas_cumprod[t].to(sample.device, sample.dtype)
    if kind == "epsilon":
        return (sample - (1 - alpha).sqrt() * model_output) / alpha.sqrt()
    if kind == "v_prediction":
        return alpha.sqrt() * sample - (1 - alpha).sqrt() * model_output
    return model_output


@dataclass
class CleanLatents:
    """The latest x̂0 seen by `recording_clean_latents`: `(B, ...)` in the pipeline's latent layout, detached."""

    latents: torch.Tensor | None = None
    step: int = -1  # how many scheduler steps the call has taken when it was recorded, minus one


@contextmanager
def overriding(scheduler, name: str, method: Callable) -> Iterator[None]:
    """Within the block, `scheduler.<name>` is `method` on this instance only; afterwards whatever was there
    before (the class's method, or an override of the caller's) is back."""
    previous = vars(scheduler).get(name)
    setattr(scheduler, name, method)
    try:
        yield
    finally:
        if previous is None:
            delattr(scheduler, name)  # the class's method again
        else:
            setattr(scheduler, name, previous)


@contextmanager
def recording_clean_latents(scheduler) -> Iterator[CleanLatents]:
    """Within the block, every `scheduler.step` also stores x̂0 of its input in the yielded `CleanLatents`."""
    prediction_kind(scheduler)  # refuse unsupported schedulers before the call starts
    record = CleanLatents()
    original = scheduler.step
    step_inputs = _step_inputs(original)

    @functools.wraps(original)
    def step(*args, **kwargs):
        x0 = predict_clean_latents(scheduler, *step_inputs(args, kwargs))
        record.latents = x0.detach()
        record.step += 1
        return original(*args, **kwargs)

    with overriding(scheduler, "step", step):
        yield record


def _step_inputs(step: Callable) -> Callable[[tuple, dict], tuple]:
    """A reader of `(model_output, timestep, sample)` from a call of `step`: by parameter name when `step` names
    them (CogVideoXDPMScheduler takes `(model_output, old_pred_original_sample, timestep, timestep_back, sample)`),
    else by position, as every diffusers pipeline passes them to the usual `step(model_output, timestep, sample)`
    (e.g. a caller's own `step(*args, **kwargs)` wrapper)."""
    names = ("model_output", "timestep", "sample")
    signature = inspect.signature(step)
    if set(names) <= set(signature.parameters):
        return lambda args, kwargs: tuple(map(signature.bind(*args, **kwargs).arguments.__getitem__, names))
    return lambda args, kwargs: tuple(
        args[i] if i < len(args) else kwargs[name] for i, name in enumerate(names)
    )


def check_stateless(scheduler, purpose: str) -> None:
    """Refuse schedulers whose trajectories cannot be split into independent segments."""
    name = type(scheduler).__name__
    if name not in STATELESS_SCHEDULERS:
        raise ValueError(
            f"{purpose} needs a scheduler without multistep history, got {name}. Its state cannot follow the "
            "pruned trajectories; use one of " + ", ".join(STATELESS_SCHEDULERS) + ", e.g. "
            "pipe.pipeline.scheduler = FlowMatchEulerDiscreteScheduler(shift=pipe.pipeline.scheduler.config.flow_shift) "
            "for Wan's flow-matching UniPC config."
        )


@contextmanager
def timestep_window(scheduler, start: int, stop: int) -> Iterator[None]:
    """Within the block, `set_timesteps` keeps only steps `[start, stop)` of the schedule it computes.

    The pipeline then runs exactly those steps from the latents it is given. Sigma schedules keep their entry for
    `stop` too (the step from `stop - 1` lands on it); DDIM-style schedulers find the previous timestep from
    `num_inference_steps`, which stays that of the full schedule.
    """
    check_stateless(scheduler, "running denoising in segments")
    original = scheduler.set_timesteps

    @functools.wraps(original)  # retrieve_timesteps inspects the signature for sigmas= / timesteps=
    def set_timesteps(*args, **kwargs):
        original(*args, **kwargs)
        total = len(scheduler.timesteps)
        if not 0 <= start <= stop <= total:
            raise ValueError(f"timestep window [{start}, {stop}) is outside the {total}-step schedule.")
        sigmas = getattr(scheduler, "sigmas", None)
        if isinstance(sigmas, torch.Tensor) and len(sigmas) == total + 1:
            scheduler.sigmas = sigmas[start : stop + 1]
        scheduler.timesteps = scheduler.timesteps[start:stop]

    with overriding(scheduler, "set_timesteps", set_timesteps):
        yield
