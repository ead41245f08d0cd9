"""Best-of-N: generate every candidate to the end, then let the critic choose.

Candidates are generated through the video pipeline's public call contract only: one `torch.Generator`
per candidate (so candidate i is the same clip whatever the batch size), `num_videos_per_prompt` where the
pipeline batches, `output_type="np"`, and `callback_on_step_end` to count the denoising steps spent.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from tqdm.auto import tqdm

from hybridgen.video import as_frames

# Pipelines whose __call__ overrides num_videos_per_prompt to 1 (CogVideoX does, whatever is passed).
SINGLE_VIDEO_PIPELINES = ("CogVideoX",)


def call_parameters(pipeline) -> dict[str, inspect.Parameter]:
    """The keyword arguments the video pipeline's `__call__` accepts."""
    return dict(inspect.signature(pipeline.__call__).parameters)


def call_value(pipeline, call_kwargs: dict, name: str):
    """An argument of the pipeline call: the caller's value, else the `__call__` default."""
    if name in call_kwargs:
        return call_kwargs[name]
    parameter = call_parameters(pipeline).get(name)
    if parameter is None or parameter.default is None or parameter.default is parameter.empty:
        raise ValueError(f"{type(pipeline).__name__} has no default {name}; pass {name}= explicitly.")
    return parameter.default


def max_batch(pipeline) -> int | None:
    """How many videos one call may make: None if unbounded, 1 if the pipeline forces one per prompt."""
    name = type(pipeline).__name__
    if any(name.startswith(prefix) for prefix in SINGLE_VIDEO_PIPELINES):
        return 1
    if repeats_image_embedding_per_prompt(pipeline):
        return 1
    if "num_videos_per_prompt" not in call_parameters(pipeline):
        return 1
    return None


def repeats_image_embedding_per_prompt(pipeline) -> bool:
    """Wan 2.1 image-to-video (a transformer with `image_dim`: a CLIP image embedding) repeats that embedding once
    per prompt, not per video, so a call making several videos of one prompt fails inside the transformer (diffusers
    0.42): such a pipeline makes one video per call."""
    transformer = getattr(pipeline, "transformer", None)
    image_dim = getattr(getattr(transformer, "config", None), "image_dim", None)
    return type(pipeline).__name__ == "WanImageToVideoPipeline" and image_dim is not None


class StepCounter:
    """A `callback_on_step_end` that counts denoising steps (x videos in the call) and chains a user's callback."""

    def __init__(self, user_callback: Callable | None = None):
        self.user_callback = user_callback
        self.videos_in_call = 1
        self.steps = 0

    def __call__(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        self.steps += self.videos_in_call
        if self.user_callback is not None:
            return self.user_callback(pipe, step, timestep, callback_kwargs)
        return {}


@contextmanager
def progress_bars(pipeline, show: bool) -> Iterator[None]:
    """Hide the pipeline's own per-step progress bar for the block unless `show`; restore its config after."""
    if show or not hasattr(pipeline, "set_progress_bar_config"):
        yield
        return
    previous = dict(getattr(pipeline, "_progress_bar_config", {}))
    pipeline.set_progress_bar_config(**{**previous, "disable": True})
    try:
        yield
    finally:
        pipeline.set_progress_bar_config(**previous)


# conditioning a pipeline indexes per generator (LTX image-to-video encodes `image[i]` with `generator[i]`): one
# input given for every candidate is repeated to one per video of the call
PER_GENERATOR_CONDITIONING = {"LTXImageToVideoPipeline": "image"}


def repeat_conditioning(pipeline, kwargs: dict, videos: int) -> None:
    """Repeat a single conditioning input of `kwargs` once per video, where the pipeline indexes it per
    generator (`PER_GENERATOR_CONDITIONING`); a list (one input per video already) is left as it is."""
    name = PER_GENERATOR_CONDITIONING.get(type(pipeline).__name__)
    if name is not None and kwargs.get(name) is not None and not isinstance(kwargs[name], list):
        kwargs[name] = [kwargs[name]] * videos


def generate_candidates(
    pipeline,
    prompt: str,
    seeds: Sequence[int],
    call_kwargs: dict,
    *,
    batch_size: int | None = None,
    show_progress: bool = True,
    latents: Sequence[torch.Tensor] | None = None,
    output_type: str = "np",
) -> tuple[list, int]:
    """Generate one clip per seed.

    Args:
        pipeline: a diffusers text-to-video pipeline.
        seeds: one seed per candidate; candidate i uses `torch.Generator().manual_seed(seeds[i])`.
        call_kwargs: further arguments for the pipeline call (already validated).
        batch_size: videos per call (capped by what the pipeline allows); default all at once.
        latents: optional starting latents, one `(1, ...)` tensor per candidate in the pipeline's loop layout
            (as `output_type="latent"` returns them); default: the pipeline draws noise from each generator.
        output_type: "np" for clips, "latent" for the final latents.
    Returns:
        `(outputs, denoising_steps)`: float32 `(T, H, W, 3)` clips in [0, 1] (or `(1, ...)` latent tensors); steps
        summed over candidates.
    """
    if latents is not None and len(latents) != len(seeds):
        raise ValueError(f"got {len(latents)} starting latents for {len(seeds)} seeds.")
    limit = max_batch(pipeline)
    size = len(seeds) if batch_size is None else batch_size
    size = size if limit is None else min(size, limit)
    call_kwargs = dict(call_kwargs)
    user_callback = call_kwargs.pop("callback_on_step_end", None)
    counter = StepCounter(user_callback)
    parameters = call_parameters(pipeline)
    has_callback = "callback_on_step_end" in parameters
    # without a callback to count them, steps are the call's step count (0 where the call has none)
    unknown = "num_inference_steps" not in parameters and "num_inference_steps" not in call_kwargs
    steps_per_video = (
        0 if has_callback or unknown else int(call_value(pipeline, call_kwargs, "num_inference_steps"))
    )
    outputs: list = []
    steps_without_callback = 0
    for first in tqdm(range(0, len(seeds), size), desc="candidates", disable=not show_progress):
        chunk = seeds[first : first + size]
        generators = [torch.Generator().manual_seed(int(seed)) for seed in chunk]
        kwargs = dict(call_kwargs, prompt=prompt, generator=generators, output_type=output_type)
        repeat_conditioning(pipeline, kwargs, len(chunk))
        if latents is not None:
            kwargs["latents"] = torch.cat(list(latents[first : first + size]))
        if limit is None:
            kwargs["num_videos_per_prompt"] = len(chunk)
        if has_callback:
            counter.videos_in_call = len(chunk)
            kwargs["callback_on_step_end"] = counter
        else:
            steps_without_callback += len(chunk) * steps_per_video
        with progress_bars(pipeline, show_progress):
            frames = pipeline(**kwargs).frames  # (b, T, H, W, 3) float in [0, 1], or (b, ...) latents
        if len(frames) != len(chunk):
            raise RuntimeError(
                f"{type(pipeline).__name__} returned {len(frames)} videos for {len(chunk)} seeds."
            )
        if output_type == "latent":
            outputs += [frames[k : k + 1] for k in range(len(chunk))]
        else:
            outputs += [
                as_frames(np.asarray(clip), name=f"candidate {first + k}") for k, clip in enumerate(frames)
            ]
    return outputs, counter.steps + steps_without_callback
