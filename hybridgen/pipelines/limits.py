"""What a call may ask of a video pipeline, checked before any work: finite numbers, sizes the generator's
positional embedding covers, and candidates that fit in memory.

Each check turns what would otherwise fail deep inside the generator (a reshape error in a rotary embedding),
fail silently (`guidance_scale=nan` switches classifier-free guidance off) or fail only after minutes of swapping
(a billion candidates) into one error that says what to ask for instead.
"""

from __future__ import annotations

import math
from numbers import Real

from hybridgen.pipelines.rerank import call_value

BYTES_PER_PIXEL = 3 * 4  # a finished candidate is held as float32 RGB


def check_finite_numbers(kwargs: dict, where: str) -> None:
    """Refuse NaN and infinite numbers among `kwargs` (e.g. `guidance_scale=float("nan")`, which diffusers would
    take as "no classifier-free guidance" without a word)."""
    for name, value in kwargs.items():
        if isinstance(value, Real) and not isinstance(value, bool) and not math.isfinite(value):
            raise ValueError(f"{where}: {name}={value!r} is not a finite number.")


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


def check_candidates_fit(num_candidates: int, sizes: dict[str, int] | None, memory: int | None) -> None:
    """Refuse a candidate count whose finished clips alone (float32, all held until the critic has chosen) would
    not fit in `memory` bytes."""
    if sizes is None or memory is None:
        return
    per_candidate = sizes["num_frames"] * sizes["height"] * sizes["width"] * BYTES_PER_PIXEL
    if num_candidates * per_candidate > memory:
        fits = max(1, memory // per_candidate)
        raise ValueError(
            f"num_candidates={num_candidates} clips of {sizes['num_frames']} frames at {sizes['height']}x"
            f"{sizes['width']} would need {num_candidates * per_candidate / 2**30:.1f} GiB to hold, more than the "
            f"{memory / 2**30:.1f} GiB of memory available: ask for at most {fits} candidates or smaller clips."
        )
