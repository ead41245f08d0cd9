"""Conditioned generation: what an image- or video-conditioned pipeline is given, which frames of its clips were
given rather than generated, and which strategies can follow its denoising.

Every candidate is conditioned on the same input, passed as the pipeline names it (`image=`, `video=`):

    image-to-video   Wan, LTX, CogVideoX: `image` is the clip's first frame (Wan's `last_image`, the last)
    video-to-video   CogVideoX: `video` is noised to `strength` and denoised again; the clip has its frames

Search and guidance score the clean-video estimate x̂0 mid-denoising, so they can follow a conditioned pipeline
only where that estimate is the whole clip (`strategy_refusal` says why not elsewhere):

    Wan, CogVideoX image-to-video   the conditioning is concatenated to the latents on channels, outside what the
                                    scheduler steps: x̂0 of the stepped latents is the whole clip
    LTX image-to-video              the first latent frame is the image and is never stepped: x̂0 covers the
                                    frames after it, and `latents.whole_clip_clean_latents` puts it back
    CogVideoX video-to-video        x̂0 is the whole clip; it runs the last `strength` of its schedule, which
                                    a search's segments follow as windows over those steps (`search`)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image

from hybridgen.pipelines.rerank import call_parameters, call_value
from hybridgen.video import as_frames, read_video

CONDITIONING_ARGUMENTS = (
    "image",
    "video",
)  # what HybridPipeline.__call__ takes and passes on to the pipeline
ALL_STRATEGIES = ("rerank", "search", "guidance")

# frames of an image-to-video clip its arguments give rather than leave to the generator
GIVEN_FRAMES = {"image": 0, "last_image": -1}

# conditioned pipelines whose denoising hybridgen follows (module docstring), with the strategies that can follow it
FOLLOWED_PIPELINES = {
    "WanImageToVideoPipeline": ALL_STRATEGIES,
    "CogVideoXImageToVideoPipeline": ALL_STRATEGIES,
    "LTXImageToVideoPipeline": ALL_STRATEGIES,
    "CogVideoXVideoToVideoPipeline": ALL_STRATEGIES,
}
# what each conditioning is, and the pipelines that take it, for error messages
CONDITIONING_NOUNS = {"image": "an image", "video": "a video"}
EXAMPLE_PIPELINES = {
    "image": "an image-to-video pipeline, e.g. WanImageToVideoPipeline, LTXImageToVideoPipeline or "
    "CogVideoXImageToVideoPipeline",
    "video": "a video-to-video pipeline, e.g. CogVideoXVideoToVideoPipeline",
}


def conditioning_arguments(pipeline) -> tuple[str, ...]:
    """The conditioning arguments (`CONDITIONING_ARGUMENTS`) the pipeline's `__call__` takes."""
    parameters = call_parameters(pipeline)
    return tuple(name for name in CONDITIONING_ARGUMENTS if name in parameters)


def untaken_conditioning_message(pipeline, argument: str, given_as: str) -> str:
    """The error for conditioning `argument` (given as `given_as`: `image=`, `--image`) the pipeline does not take."""
    return (
        f"{given_as} needs a generator that takes {CONDITIONING_NOUNS[argument]}; {type(pipeline).__name__} does "
        f"not (use {EXAMPLE_PIPELINES[argument]})."
    )


def as_video_frames(video) -> list[PIL.Image.Image]:
    """A conditioning clip in any form `as_frames` reads ((T, H, W, 3) array, (T, 3, H, W) tensor, PIL frames) as
    the list of RGB PIL frames diffusers' video-to-video pipelines document."""
    frames = as_frames(video, name="video")
    return [PIL.Image.fromarray(frame) for frame in np.rint(frames * 255).astype(np.uint8)]


def read_conditioning_video(path: str | Path, num_frames: int | None = None) -> np.ndarray:
    """The frames of a conditioning clip (`read_video`: float32 (T, H, W, 3)), its first `num_frames` when given;
    a clip with fewer frames than that is an error that says so."""
    frames, _ = read_video(path)
    if num_frames is not None:
        if len(frames) < num_frames:
            raise ValueError(
                f"video {path} has {len(frames)} frames, fewer than the {num_frames} asked for: give a longer clip "
                f"or ask for at most {len(frames)} frames (--frames)."
            )
        frames = frames[:num_frames]
    return frames


def given_frames(pipeline, call_kwargs: dict) -> list[int]:
    """Indices (0 first, -1 last) of the clip's frames the call gives rather than generates: an image-to-video
    pipeline's `image` (and Wan's `last_image`). A video-to-video pipeline re-generates every frame: none."""
    if not type(pipeline).__name__.endswith("ImageToVideoPipeline"):
        return []
    return [index for name, index in GIVEN_FRAMES.items() if call_kwargs.get(name) is not None]


def scored_frames(pipeline, call_kwargs: dict, score_given_frames: bool) -> slice:
    """The frames of each candidate the critic scores: all of them, or (`score_given_frames=False`) those the
    generator made, without the given ones (`given_frames`)."""
    given = [] if score_given_frames else given_frames(pipeline, call_kwargs)
    return slice(1 if 0 in given else None, -1 if -1 in given else None)


def clip_length(pipeline, call_kwargs: dict) -> int | None:
    """Frames of the clips the call makes, where the pipeline takes them from `video=` (it has no `num_frames`:
    CogVideoX video-to-video); else None."""
    video = call_kwargs.get("video")
    if video is None or "num_frames" in call_parameters(pipeline):
        return None
    return len(video)


def denoising_steps_run(pipeline, call_kwargs: dict) -> int:
    """Denoising steps one call runs: `num_inference_steps`, or for a pipeline that starts from its input noised to
    `strength` (video-to-video), the last `min(int(steps * strength), steps)` of them, as diffusers' get_timesteps
    keeps them."""
    steps = int(call_value(pipeline, call_kwargs, "num_inference_steps"))
    if "strength" not in call_parameters(pipeline):
        return steps
    return min(int(steps * float(call_value(pipeline, call_kwargs, "strength"))), steps)


def blends_conditioning_in_loop(pipeline) -> bool:
    """Whether the pipeline blends its conditioned first latent frame into the latents only inside its loop (Wan
    2.2 TI2V: `expand_timesteps`), so the latents the scheduler steps, and their x̂0, lack it."""
    return type(pipeline).__name__ == "WanImageToVideoPipeline" and bool(
        pipeline.config.get("expand_timesteps", False)
    )


def followable_strategies(pipeline) -> tuple[str, ...]:
    """The strategies that can follow the pipeline's denoising: all for a pipeline without conditioning (its own
    checks apply), those of `FOLLOWED_PIPELINES` for the conditioned ones hybridgen knows, else rerank alone."""
    if not conditioning_arguments(pipeline):
        return ALL_STRATEGIES
    if blends_conditioning_in_loop(pipeline):
        return ("rerank",)
    return FOLLOWED_PIPELINES.get(type(pipeline).__name__, ("rerank",))


def strategy_refusal(pipeline, strategy: str) -> str | None:
    """Why `strategy` cannot follow this pipeline's conditioned denoising, or None where it can."""
    if strategy in followable_strategies(pipeline):
        return None
    if blends_conditioning_in_loop(pipeline):
        return (
            "with expand_timesteps (Wan 2.2 TI2V) it blends the conditioned first latent frame into the latents "
            "only inside its loop, so the clean-video estimate lacks that frame"
        )
    return (
        "hybridgen does not know how it keeps its conditioning while denoising, so it cannot tell whether the "
        f"clean-video estimate is the whole clip (followed: {', '.join(FOLLOWED_PIPELINES)})"
    )


def check_conditioning(pipeline, strategy: str, conditioning: dict, call_kwargs: dict) -> None:
    """Refuse, before any work, conditioning the pipeline does not take, a `num_frames` that contradicts the
    length of `video=`, and a strategy that cannot follow the conditioned denoising."""
    name = type(pipeline).__name__
    for argument, value in conditioning.items():
        if value is not None and argument not in call_parameters(pipeline):
            raise TypeError(untaken_conditioning_message(pipeline, argument, f"{argument}="))
    length = clip_length(pipeline, call_kwargs)
    asked = call_kwargs.get("num_frames")
    if length is not None and asked is not None and asked != length:
        raise ValueError(
            f"num_frames={asked}, but {name} makes as many frames as video= holds ({length}): pass the frames "
            f"you want (video[:{asked}]), or leave num_frames out."
        )
    reason = strategy_refusal(pipeline, strategy)
    if reason is not None:
        instead = " or ".join(f"strategy={s!r}" for s in followable_strategies(pipeline))
        raise ValueError(
            f"strategy={strategy!r} cannot follow {name}'s conditioned denoising: {reason}. Use {instead} (every "
            "candidate conditioned on the same input)."
        )
