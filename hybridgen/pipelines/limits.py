"""What a call may ask of a video pipeline, checked before any work: arguments of the right kind, finite numbers,
sizes the generator's positional embedding covers and the critic can judge, and candidates that fit in memory.

Each check turns what would otherwise fail deep inside the generator (a reshape error in a rotary embedding),
fail silently (`guidance_scale=nan` switches classifier-free guidance off) or fail only after minutes of swapping
(a billion candidates) into one error that says what to ask for instead.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

from hybridgen.pipelines.rerank import call_parameters, call_value
from hybridgen.video import MAX_ASPECT_RATIO

BYTES_PER_PIXEL = 3 * 4  # clips are held as float32 RGB
SCORING_COPIES = 4  # crops' worth of memory the critic holds per clip it scores (see check_candidates_fit)


SIZE_ARGUMENTS = ("num_frames", "height", "width", "num_inference_steps")  # whole numbers >= 1


def check_finite_numbers(kwargs: dict, where: str) -> None:
    """Refuse NaN and infinite numbers among `kwargs`, in nested dicts too, as Python numbers or one-element
    tensors (e.g. `guidance_scale=float("nan")`, which diffusers would take as "no classifier-free guidance"
    without a word)."""
    for name, value in kwargs.items():
        if isinstance(value, dict):
            check_finite_numbers(value, f"{where}: {name}")
        elif (number := _as_number(value)) is not None and not math.isfinite(number):
            raise ValueError(f"{where}: {name}={number!r} is not a finite number.")


def _as_number(value) -> float | None:
    """`value` as a float if it is one number (a Python or numpy number, or a one-element tensor), else None."""
    if isinstance(value, Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
        return float(value)
    return None


def check_call_arguments(pipeline, kwargs: dict, where: str) -> None:
    """Refuse arguments for the pipeline's `__call__` of the wrong kind, before any work: sizes and step counts
    that are not whole numbers >= 1, text where the pipeline's default is a number (`"guidance_scale": "4"` in a
    JSON file), and non-finite numbers."""
    for name in SIZE_ARGUMENTS:
        value = kwargs.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, Integral) or value < 1):
            raise ValueError(f"{where}: {name} must be an integer >= 1, got {value!r}.")
    parameters = call_parameters(pipeline)
    for name, value in kwargs.items():
        default = parameters[name].default if name in parameters else None
        numeric = isinstance(default, Real) and not isinstance(default, bool)
        if numeric and value is not None and _as_number(value) is None:
            raise ValueError(f"{where}: {name} must be a number (default {default!r}), got {value!r}.")
    check_finite_numbers(kwargs, where)


def check_critic_can_judge(sizes: dict[str, int]) -> None:
    """Refuse frames the critic would refuse after all the generating: longer than `MAX_ASPECT_RATIO`:1."""
    height, width = sizes["height"], sizes["width"]
    if max(height, width) > MAX_ASPECT_RATIO * min(height, width):
        raise ValueError(
            f"height={height}, width={width} makes frames of {max(height, width) / min(height, width):.3g}:1; the "
            f"critic judges frames of at most {MAX_ASPECT_RATIO:g}:1: ask for a squarer size (--height, --width)."
        )


def call_sizes(pipeline, call_kwargs: dict) -> dict[str, int] | None:
    """`num_frames`, `height`, `width` of the call (the caller's, else the `__call__` defaults); None where the
    pipeline derives them itself (CogVideoX's defaults are None: its transformer's sample size)."""
    try:
        return {
            name: int(call_value(pipeline, call_kwargs, name)) for name in ("num_frames", "height", "width")
        }
    except (ValueError, TypeError):
        return None


def check_positional_limits(pipeline, sizes: dict[str, int]) -> None:
    """Refuse clip sizes beyond the transformer's positional embedding.

    Wan's rotary embedding is precomputed for `rope_max_seq_len` positions along each axis of the latent grid; a
    longer clip fails inside the transformer with a reshape error. (LTX computes its rotary embedding for any
    size; CogVideoX refuses other sizes itself, with a clear error.)
    """
    transformer = getattr(pipeline, "transformer", None)
    limit = getattr(getattr(transformer, "config", None), "rope_max_seq_len", None)
    if not type(pipeline).__name__.startswith("Wan") or limit is None:
        return
    temporal = int(getattr(pipeline, "vae_scale_factor_temporal", 4))
    spatial = int(getattr(pipeline, "vae_scale_factor_spatial", 8))
    patch_t, patch_h, patch_w = transformer.config.patch_size
    num_frames = sizes["num_frames"]
    if (num_frames - 1) % temporal:  # WanPipeline rounds the frame count to temporal * k + 1
        num_frames = num_frames // temporal * temporal + 1
    positions = {
        "num_frames": ((num_frames - 1) // temporal + 1) // patch_t,
        "height": sizes["height"] // spatial // patch_h,
        "width": sizes["width"] // spatial // patch_w,
    }
    largest = {
        "num_frames": (limit * patch_t - 1) * temporal + 1,
        "height": limit * patch_h * spatial,
        "width": limit * patch_w * spatial,
    }
    for name, count in positions.items():
        if count > limit:
            raise ValueError(
                f"{name}={sizes[name]} is beyond what this {type(pipeline).__name__} can generate: its "
                f"transformer's positional embedding covers {limit} positions per axis, at most {name}="
                f"{largest[name]}. Ask for a smaller {name} (--{'frames' if name == 'num_frames' else name})."
            )


def check_candidates_fit(
    num_candidates: int, sizes: dict[str, int] | None, memory: int | None, crop_size: int
) -> None:
    """Refuse a candidate count whose clips would not fit in half of `memory` bytes (the other half is left to
    the models and one batch's working memory, which `DEFAULT_BATCH_SIZE` bounds).

    Every candidate is held until the critic has chosen: its float32 frames, and while it is scored its frames
    cropped to the critic's `crop_size` with the critic's predictions and targets, about `SCORING_COPIES` crops'
    worth (measured on the toy world: 3.9 MB a candidate for 17 frames at 32x32 and a 64-px critic; this
    estimate says 3.5 MB).
    """
    if sizes is None or memory is None:
        return
    frames, pixels = sizes["num_frames"], sizes["height"] * sizes["width"]
    per_candidate = frames * (pixels + SCORING_COPIES * crop_size**2) * BYTES_PER_PIXEL
    budget = memory // 2
    if num_candidates * per_candidate > budget:
        fits = max(1, budget // per_candidate)
        raise ValueError(
            f"num_candidates={num_candidates} clips of {frames} frames at {sizes['height']}x{sizes['width']} "
            f"would need about {num_candidates * per_candidate / 2**30:.1f} GiB to generate and score, more than "
            f"half the {memory / 2**30:.1f} GiB of memory available: ask for at most {fits} candidates or smaller "
            "clips."
        )
