"""Critic-guided search: start many trajectories, score their clean-video estimates mid-way, finish only the best.

Denoising runs in segments, each one ordinary pipeline call over a window of the schedule (`timestep_window`):

    segment 0    all N trajectories, steps [0, c1)          -> latents x_c1 and x̂0 (recorded at step c1 - 1)
    checkpoint   decode x̂0, critic surprise, keep ceil(keep * alive) (lowest surprise, or resampled)
    segment 1    survivors only, steps [c1, c2) from x_c1    -> ...
    last         survivors, steps [c_last, K), decoded by the pipeline itself; the critic picks the best

With N = 8, checkpoints at 25% and 50% of K steps and keep = 0.5 the budget is 8·K/4 + 4·K/4 + 2·K/2 = 4K
denoising steps, half of best-of-8.

A video-to-video pipeline runs only the last `strength` of its schedule, trimmed after the schedule is set, which
a window could not follow: its segments are windows over the steps the call would run, in calls with
`strength=1` (no trimming). The first segment noises the encoded video to its first timestep, as the pipeline
would; later segments go on from the latents alone (`video` is not passed with them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hybridgen.critics.vjepa2 import VJEPA2Critic
from hybridgen.pipelines.conditioning import clip_length, denoising_steps_run
from hybridgen.pipelines.denoising import check_stateless, recording_clean_latents, timestep_window
from hybridgen.pipelines.latents import decode_latents, pipeline_family, whole_clip_clean_latents
from hybridgen.pipelines.rerank import call_parameters, call_value, generate_candidates, max_batch


@dataclass(frozen=True)
class SearchOptions:
    """How `strategy="search"` spends its budget.

    Args:
        checkpoints: fractions of the schedule (strictly increasing, in (0, 1)) at which trajectories are scored.
        keep: fraction of the live trajectories kept at each checkpoint (at least one survives).
        temperature: None keeps the least surprising; a float λ > 0 instead draws the survivors without
            replacement with weights exp(-λ·z), z = surprise standardised over the live trajectories
            (particle-filter style; larger λ is greedier), from the call's generator.
    """

    checkpoints: tuple[float, ...] = (0.25, 0.5)
    keep: float = 0.5
    temperature: float | None = None

    def __post_init__(self):
        if not isinstance(self.checkpoints, (tuple, list)):
            raise TypeError(
                f"checkpoints must be a tuple of fractions of the schedule, e.g. (0.25, 0.5), "
                f"got {self.checkpoints!r}."
            )
        points = tuple(self.checkpoints)
        if not points or any(not 0 < c < 1 for c in points) or list(points) != sorted(set(points)):
            raise ValueError(
                f"checkpoints must be strictly increasing fractions in (0, 1), got {self.checkpoints!r}."
            )
        if not 0 < self.keep <= 1:
            raise ValueError(f"keep must be in (0, 1], got {self.keep!r}.")
        if self.temperature is not None and not 0 < self.temperature < math.inf:
            raise ValueError(f"temperature must be a finite number > 0, or None, got {self.temperature!r}.")

    def boundaries(self, num_steps: int) -> list[int]:
        """Step indices where segments end: distinct, increasing, the last one `num_steps`."""
        points = sorted({min(num_steps - 1, max(1, round(c * num_steps))) for c in self.checkpoints})
        return [p for p in points if 0 < p < num_steps] + [num_steps]


def pixel_sizes(pipeline, call_kwargs: dict) -> dict[str, int]:
    """`num_frames`, `height`, `width` of the call (caller's or `__call__` defaults; a video-to-video call's
    length is its video's), for `decode_latents`."""
    length = clip_length(pipeline, call_kwargs)
    call_kwargs = call_kwargs if length is None else {**call_kwargs, "num_frames": length}
    return {name: int(call_value(pipeline, call_kwargs, name)) for name in ("num_frames", "height", "width")}


def schedule_in_segments(pipeline, call_kwargs: dict) -> tuple[int, int, dict]:
    """How a search splits the call's schedule: `(K, offset, segment_kwargs)`. It runs K steps, which are steps
    `[offset, offset + K)` of the schedule the pipeline sets; segments are calls with `segment_kwargs`. For a
    pipeline that trims its schedule by `strength` (video-to-video) the segments set `strength=1`, so the window
    alone chooses their steps; for the others offset is 0 and the arguments are the call's."""
    steps = denoising_steps_run(pipeline, call_kwargs)
    if "strength" not in call_parameters(pipeline):
        return steps, 0, call_kwargs
    scheduled = int(call_value(pipeline, call_kwargs, "num_inference_steps"))
    return steps, scheduled - steps, {**call_kwargs, "strength": 1.0}


def select_survivors(
    surprise: np.ndarray, keep: int, temperature: float | None, generator: torch.Generator | None
) -> np.ndarray:
    """Indices of `keep` trajectories, sorted: the least surprising, or a weighted draw without replacement."""
    if temperature is None:
        return np.sort(np.argsort(surprise, kind="stable")[:keep])
    z = (surprise - surprise.mean()) / (surprise.std() + 1e-12)
    weights = torch.from_numpy(np.exp(-temperature * (z - z.min())))
    device = torch.device("cpu") if generator is None else generator.device  # draw where the generator is
    dtype = torch.float32 if device.type == "mps" else weights.dtype  # MPS has no float64
    drawn = torch.multinomial(weights.to(device, dtype), keep, replacement=False, generator=generator)
    return np.sort(drawn.cpu().numpy())


def search_candidates(
    pipeline,
    critic: VJEPA2Critic,
    prompt: str,
    seeds: list[int],
    call_kwargs: dict,
    options: SearchOptions,
    *,
    generator: torch.Generator | None,
    fps: float | None,
    batch_size: int | None,
    show_progress: bool,
    scored_frames: slice = slice(None),
) -> tuple[list[np.ndarray], list[int], int, list[dict]]:
    """Run the search. Returns the finished clips, their seeds, the denoising steps spent and the checkpoint log
    (per checkpoint: step, seeds alive, their surprise, seeds kept). At checkpoints the critic scores the
    `scored_frames` of each decoded x̂0 (all, or those the generator was not given)."""
    pipeline_family(pipeline)  # refuse pipelines whose x̂0 we cannot decode before spending any step
    check_stateless(pipeline.scheduler, "strategy='search'")
    num_steps, offset, segment_kwargs = schedule_in_segments(pipeline, call_kwargs)
    sizes = pixel_sizes(pipeline, call_kwargs)
    alive, latents, steps, history = list(seeds), None, 0, []
    start = 0
    for stop in options.boundaries(num_steps):
        last = stop == num_steps
        if latents is not None:  # go on from the latents: a video-to-video pipeline takes them or a video
            segment_kwargs = {k: v for k, v in segment_kwargs.items() if k != "video"}
        with (
            timestep_window(pipeline.scheduler, offset + start, offset + stop),
            recording_clean_latents(pipeline.scheduler) as record,
        ):
            outputs, spent = _segment(
                pipeline, prompt, alive, segment_kwargs, latents, last, batch_size, show_progress, record
            )
        steps += spent
        if last:
            return outputs, alive, steps, history
        latents = [x for x, _ in outputs]
        clean = [whole_clip_clean_latents(pipeline, x0, x, **sizes) for x, x0 in outputs]
        with torch.no_grad():
            frames = [decode_latents(pipeline, x0, **sizes)[0][scored_frames] for x0 in clean]  # (F, 3, H, W)
        surprise = np.array([report.surprise for report in critic.score_batch(frames, fps=fps)])
        keep = max(1, math.ceil(options.keep * len(alive)))
        chosen = select_survivors(surprise, keep, options.temperature, generator)
        history.append(
            {
                "step": stop,
                "seeds": list(alive),
                "surprise": surprise.tolist(),
                "kept": [alive[i] for i in chosen],
            }
        )
        alive = [alive[i] for i in chosen]
        latents = [latents[i] for i in chosen]
        start = stop
    raise AssertionError("unreachable: the last boundary is num_steps")


def _segment(pipeline, prompt, seeds, call_kwargs, latents, last, batch_size, show_progress, record):
    """One pipeline call per batch over the current timestep window; for a middle segment also pairs each
    trajectory's latents with its x̂0 from the window's final step."""
    if last:
        return generate_candidates(
            pipeline,
            prompt,
            seeds,
            call_kwargs,
            batch_size=batch_size,
            show_progress=show_progress,
            latents=latents,
        )
    limit = max_batch(pipeline)
    size = min(batch_size or len(seeds), limit or len(seeds))
    outputs, steps = [], 0
    for first in range(0, len(seeds), size):
        part = slice(first, first + size)
        out, spent = generate_candidates(  # exactly one pipeline call: x̂0 of its last step is in `record`
            pipeline,
            prompt,
            seeds[part],
            call_kwargs,
            batch_size=size,
            show_progress=show_progress,
            latents=None if latents is None else latents[part],
            output_type="latent",
        )
        outputs += [(x, record.latents[k : k + 1]) for k, x in enumerate(out)]
        steps += spent
    return outputs, steps
