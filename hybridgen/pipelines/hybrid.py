"""HybridPipeline: a diffusers video pipeline proposes, a world-model critic judges.

pipe = HybridPipeline.from_pretrained("toyworld")  # the bundled toy-world generator and critic, offline
pipe = HybridPipeline.from_pretrained("Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
                                      critic="facebook/vjepa2-vitl-fpc64-256", torch_dtype=torch.bfloat16)
out = pipe("a red ball bouncing", num_candidates=4, generator=torch.Generator().manual_seed(0))
out.save("best.mp4")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from numbers import Integral
from pathlib import Path

import numpy as np
import torch

from hybridgen.critics.report import CriticReport
from hybridgen.critics.vjepa2 import VJEPA2Critic
from hybridgen.hub import PushToHubMixin
from hybridgen.models import (
    BUNDLED,
    CALL_DEFAULTS_FILE,
    check_device,
    check_torch_dtype,
    load_call_defaults,
    load_video_pipeline,
)
from hybridgen.pipelines.conditioning import (
    as_video_frames,
    check_conditioning,
    clip_length,
    denoising_steps_run,
    scored_frames,
)
from hybridgen.pipelines.denoising import recording_clean_latents
from hybridgen.pipelines.guidance import GuidanceOptions, PhysicsGuidance, check_guidance
from hybridgen.pipelines.latents import pipeline_family
from hybridgen.pipelines.limits import (
    call_sizes,
    check_call_arguments,
    check_candidates_fit,
    check_critic_can_judge,
    check_positional_limits,
)
from hybridgen.pipelines.rerank import call_parameters, generate_candidates
from hybridgen.pipelines.search import SearchOptions, pixel_sizes, search_candidates
from hybridgen.video import available_memory, check_directory_path, write_json_atomic, write_video
from hybridgen.viz import contact_sheet, plot_surprise_curves, save_figure, save_image

STRATEGIES = ("rerank", "search", "guidance")
CANDIDATE_FILE = re.compile(r"candidate_\d+\.mp4")  # how save_candidates names candidate i
DEFAULT_FPS = 16.0  # frame rate assumed for clips of generators that do not state theirs
# videos per pipeline call unless the caller says: a pipeline's working memory grows with its batch, so a call
# for hundreds of candidates runs in calls of this many
DEFAULT_BATCH_SIZE = 16
# A denoiser this large is a released model (Wan 1.3B, LTX 2B, CogVideoX 2B/5B): one video a pipeline call by default,
# so 8 candidates need the memory of one; the toy world's and the tests' tiny models batch up to DEFAULT_BATCH_SIZE.
LARGE_DENOISER_PARAMETERS = 100_000_000
# Arguments HybridPipeline sets itself on every call of the video pipeline.
RESERVED_ARGUMENTS = ("prompt", "generator", "num_videos_per_prompt", "output_type", "return_dict", "latents")
# The common text-to-video call contract every supported pipeline must accept.
REQUIRED_ARGUMENTS = ("prompt", "generator", "output_type")


def default_batch_size(pipeline) -> int:
    """Videos per pipeline call when the caller does not say: 1 for a released-size denoiser (more than
    `LARGE_DENOISER_PARAMETERS` parameters), else `DEFAULT_BATCH_SIZE`."""
    denoiser = getattr(pipeline, "transformer", None) or getattr(pipeline, "unet", None)
    if denoiser is None:
        return DEFAULT_BATCH_SIZE
    parameters = sum(parameter.numel() for parameter in denoiser.parameters())
    return 1 if parameters > LARGE_DENOISER_PARAMETERS else DEFAULT_BATCH_SIZE


@dataclass
class HybridOutput:
    """The result of one `HybridPipeline` call.

    Attributes:
        video: the chosen clip, float32 `(T, H, W, 3)` in [0, 1].
        candidates: every finished clip (search: the survivors), same layout; `reports`: the critic's report for
            each.
        best_index: index of the chosen candidate (argmin surprise).
        seeds: the seed each candidate was generated from (rerun one with `torch.Generator().manual_seed(seed)`).
        denoising_steps: total denoising steps spent over all candidates.
        strategy, prompt: what was asked.
        fps: frame rate of the clips (the generator's, when its checkpoint states it; else 16).
        search_history: for strategy="search", one entry per checkpoint: the step, the seeds alive, their
            x̂0 surprise and the seeds kept. `candidates` then holds the finished survivors only.
        guidance_history: for strategy="guidance", one entry per guided step and call: the step and the x̂0
            surprise of each video before its push.
    """

    video: np.ndarray
    candidates: list[np.ndarray]
    reports: list[CriticReport]
    best_index: int
    seeds: list[int]
    denoising_steps: int
    strategy: str
    prompt: str
    fps: float = DEFAULT_FPS
    search_history: list[dict] = field(default_factory=list)
    guidance_history: list[dict] = field(default_factory=list)

    @property
    def surprises(self) -> list[float]:
        return [report.surprise for report in self.reports]

    def save(self, path: str | Path, fps: float | None = None) -> Path:
        """Write the chosen clip as H.264 MP4 (atomically), at `fps` or the clips' own frame rate."""
        return write_video(self.video, path, fps=self.fps if fps is None else fps)

    def save_candidates(
        self, directory: str | Path, fps: float | None = None, *, overwrite: bool = False
    ) -> list[Path]:
        """Write every candidate as `candidate_<i>.mp4` in `directory`.

        A folder already holding candidates of an earlier run is refused unless `overwrite`, which then also
        removes the earlier candidates this run does not replace: the folder never mixes two runs.
        """
        directory = Path(directory)
        stale = check_candidate_directory(directory, overwrite=overwrite)
        paths = candidate_paths(directory, len(self.candidates))
        written = [
            write_video(clip, path, fps=self.fps if fps is None else fps)
            for path, clip in zip(paths, self.candidates)
        ]
        for path in set(stale) - set(paths):
            path.unlink(missing_ok=True)
        return written

    def candidate_labels(self) -> list[str]:
        return [f"#{i}  surprise {s:.4f}" for i, s in enumerate(self.surprises)]

    def save_contact_sheet(self, path: str | Path, frames_per_row: int = 8) -> Path:
        """Write a PNG with one row of frames per candidate, labelled with its surprise; the best is framed."""
        sheet = contact_sheet(
            self.candidates,
            labels=self.candidate_labels(),
            highlight=self.best_index,
            frames_per_row=frames_per_row,
        )
        return save_image(sheet, path)

    def save_surprise_plot(self, path: str | Path) -> Path:
        """Write a PNG plot of every candidate's surprise per window; the best is highlighted."""
        curves = [(report.window_starts, report.window_surprise) for report in self.reports]
        figure = plot_surprise_curves(
            curves, labels=self.candidate_labels(), highlight=self.best_index, title=self.prompt
        )
        return save_figure(figure, path)

    def to_dict(self) -> dict:
        return {
            "prompt": self.prompt,
            "strategy": self.strategy,
            "best_index": self.best_index,
            "denoising_steps": self.denoising_steps,
            "search_history": self.search_history,
            "guidance_history": self.guidance_history,
            "candidates": [
                {"index": i, "seed": seed, **report.to_dict()}
                for i, (seed, report) in enumerate(zip(self.seeds, self.reports))
            ],
        }

    def save_report(self, path: str | Path) -> Path:
        """Write `to_dict()` as JSON (atomically)."""
        return write_json_atomic(self.to_dict(), path)

    def __repr__(self) -> str:
        scores = ", ".join(f"{s:.4f}" for s in self.surprises)
        return (
            f"HybridOutput(best_index={self.best_index}, surprises=[{scores}], "
            f"video={tuple(self.video.shape)}, denoising_steps={self.denoising_steps})"
        )


class HybridPipeline(PushToHubMixin):
    """Generate several candidate clips with a diffusers video pipeline and keep the one the critic finds least
    surprising.

    Args:
        pipeline: any diffusers text-to-video pipeline taking `prompt, num_frames, height, width,
            num_inference_steps, generator, output_type` (tested: WanPipeline, LTXPipeline, CogVideoXPipeline), or
            an image- or video-to-video one, conditioned through the call's `image=` / `video=` (tested:
            WanImageToVideoPipeline, LTXImageToVideoPipeline, CogVideoXImageToVideoPipeline,
            CogVideoXVideoToVideoPipeline; `pipelines.conditioning` says which strategies follow each).
        critic: a `VJEPA2Critic`.
        call_defaults: keyword defaults for the pipeline's `__call__` (e.g. the frame size a small model was
            trained at); explicit arguments of a `HybridPipeline` call override them.
        fps: frame rate of the pipeline's clips, used to write MP4s and passed to the critic (default 16).
    """

    def __init__(
        self, pipeline, critic: VJEPA2Critic, *, call_defaults: dict | None = None, fps: float | None = None
    ):
        if not isinstance(critic, VJEPA2Critic):
            raise TypeError(f"critic must be a VJEPA2Critic, got {type(critic).__name__}.")
        if not callable(pipeline):
            raise TypeError(f"pipeline must be a diffusers pipeline, got {type(pipeline).__name__}.")
        missing = [name for name in REQUIRED_ARGUMENTS if name not in call_parameters(pipeline)]
        if missing:
            raise TypeError(
                f"{type(pipeline).__name__} is not a text-to-video pipeline HybridPipeline can drive: its __call__ "
                f"lacks {', '.join(missing)}."
            )
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}.")
        self.pipeline = pipeline
        self.critic = critic
        self.call_defaults = dict(call_defaults or {})
        self._check_pipeline_kwargs(self.call_defaults, "call_defaults")
        check_call_arguments(pipeline, self.call_defaults, "call_defaults")
        self.fps = float(fps) if fps is not None else None
        self.offload = None  # "model" or "sequential" once the generator's models are offloaded to the CPU
        # where the two models came from (Hub ids become a saved card's base_model)
        self.sources = {
            "generator": getattr(pipeline, "name_or_path", None),
            "critic": getattr(critic.model.config, "_name_or_path", None) or None,
        }

    @classmethod
    def from_pretrained(
        cls,
        generator_id: str,
        *,
        critic: str | VJEPA2Critic | None = None,
        torch_dtype: torch.dtype | None = None,
        critic_torch_dtype: torch.dtype | None = None,
        variant: str | None = None,
        revision: str | None = None,
        cache_dir: str | None = None,
        local_files_only: bool | None = None,
        device: str | torch.device | None = None,
        critic_device: str | torch.device | None = None,
    ) -> HybridPipeline:
        """Load the video pipeline (`DiffusionPipeline.from_pretrained`) and the critic (a Hub id, directory
        or `VJEPA2Critic`), or both from a folder or Hub repo written by `save_pretrained` / `push_to_hub`.

        `generator_id` is a Hub id, a local directory or a bundled name: `"toyworld"` loads the bundled toy-world
        generator and, unless `critic` says otherwise, the bundled critic, with no network. A generator
        checkpoint's `call_defaults.json` (frame size, steps, frame rate), if it has one, becomes the call
        defaults. `torch_dtype` applies to both models unless `critic_torch_dtype` is given; `revision` and
        `variant` apply to the video pipeline only. `device` places both models, unless `critic_device` puts the
        critic elsewhere (say a second GPU).
        """
        from hybridgen import hub

        check_torch_dtype(torch_dtype)
        check_torch_dtype(critic_torch_dtype, "critic_torch_dtype")
        device = check_device(device)
        critic_device = check_device(critic_device)
        hub_options = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only}
        saved = hub.find_saved_pipeline(generator_id, **hub_options)
        saved_sources = {}  # where a saved pipeline's parts came from first
        if saved is not None:  # one folder with both parts: load each from its subfolder
            layout = hub.read_pipeline_file(saved)
            saved_sources = {"generator": layout["sources"].get("generator")}
            if critic is None:
                critic = str(saved / layout[hub.CRITIC_DIR])
                saved_sources["critic"] = layout["sources"].get("critic")
            generator_id = str(saved / layout[hub.GENERATOR_DIR])
            hub_options = {"revision": None, "cache_dir": cache_dir, "local_files_only": local_files_only}
        if critic is None:
            if str(generator_id) not in BUNDLED:
                raise ValueError(
                    f"no critic given for {generator_id!r}: pass critic= a V-JEPA 2 Hub id (e.g. "
                    "'facebook/vjepa2-vitl-fpc64-256'), a directory, a VJEPA2Critic, or 'toyworld'."
                )
            critic = str(generator_id)
        critic_id = None if isinstance(critic, VJEPA2Critic) else str(critic)
        pipeline = load_video_pipeline(generator_id, torch_dtype=torch_dtype, variant=variant, **hub_options)
        call_defaults, fps = load_call_defaults(generator_id, **hub_options)
        if not isinstance(critic, VJEPA2Critic):
            critic = VJEPA2Critic.from_pretrained(
                critic,
                torch_dtype=critic_torch_dtype or torch_dtype,
                cache_dir=cache_dir,
                local_files_only=local_files_only,
            )
        try:
            hybrid = cls(pipeline, critic, call_defaults=call_defaults, fps=fps)
        except TypeError as error:  # an argument the pipeline does not take: the checkpoint's file is wrong
            raise ValueError(
                f"{generator_id}: {CALL_DEFAULTS_FILE} does not suit its pipeline: {error}"
            ) from None
        hybrid.sources = {"generator": str(generator_id), "critic": critic_id or hybrid.sources["critic"]}
        hybrid.sources.update(saved_sources)
        if device is not None:
            hybrid.to(device)
        if critic_device is not None:
            hybrid.critic.to(critic_device)
        return hybrid

    def model_card(self, *, repo_id: str | None = None, license: str | None = None, metrics: str = ""):
        """This pipeline's `huggingface_hub.ModelCard` (`hybridgen.hub.pipeline_card`)."""
        from hybridgen import hub

        return hub.pipeline_card(self, repo_id=repo_id, license=license, metrics=metrics)

    def save_pretrained(self, directory: str | Path, *, model_card=None) -> Path:
        """Write the generator (diffusers layout, with its call defaults), the critic and a model card into one
        folder that `from_pretrained(directory)` loads back to the same outputs for the same seed. The folder is
        replaced whole (never left half-written). `model_card`: a `huggingface_hub.ModelCard` to write instead
        of the generated one (`hybridgen.hub.pipeline_card`)."""
        from hybridgen import hub

        return hub.save_pipeline(self, directory, model_card=model_card)

    def to(self, device: str | torch.device) -> HybridPipeline:
        """Move the generator and the critic to `device` (`pipe.critic.to(...)` moves the critic alone). Refused
        once the generator is offloaded: moving it would undo the offload."""
        device = check_device(device)
        if self.offload is not None:
            raise RuntimeError(
                f"the generator is offloaded ({self.offload} CPU offload), which places its models itself: .to() "
                "would undo that. Move the critic alone with pipe.critic.to(device), or load the pipeline again "
                "without offload."
            )
        self.pipeline.to(device)
        self.critic.to(device)
        return self

    # ------------------------------------------------------------------ memory
    def enable_model_cpu_offload(self, gpu_id: int | None = None, device: str | torch.device | None = None):
        """Keep the generator's models on the CPU and move each to the accelerator only while it runs (diffusers'
        `enable_model_cpu_offload`): the peak is the largest model, not all of them. The critic stays where it
        is (`pipe.critic.to(...)`, or `critic_device=` when loading)."""
        self.pipeline.enable_model_cpu_offload(gpu_id=gpu_id, device=device)
        self.offload = "model"
        return self

    def enable_sequential_cpu_offload(
        self, gpu_id: int | None = None, device: str | torch.device | None = None
    ):
        """Keep the generator's weights on the CPU and stream each layer to the accelerator as it runs (diffusers'
        `enable_sequential_cpu_offload`): the least memory, and much slower than model offload. Needs an
        accelerator to stream to."""
        if device is not None and torch.device(device).type == "cpu":
            raise ValueError(
                "sequential offload streams each layer from the CPU to an accelerator as it runs; with device='cpu' "
                "there is nothing to offload to (and accelerate fails there on tied text-encoder weights). Offload "
                "to a GPU, or run on the CPU without offload."
            )
        self.pipeline.enable_sequential_cpu_offload(gpu_id=gpu_id, device=device)
        self.offload = "sequential"
        return self

    def enable_vae_tiling(self):
        """Decode (and encode) through the VAE in overlapping tiles: large frames in bounded memory."""
        self._vae_method("enable_tiling")()
        return self

    def enable_vae_slicing(self):
        """Decode a batch of videos through the VAE one video at a time."""
        self._vae_method("enable_slicing")()
        return self

    def _vae_method(self, name: str):
        vae = getattr(self.pipeline, "vae", None)
        method = getattr(vae, name, None)
        if method is None:
            what = type(vae).__name__ if vae is not None else f"{type(self.pipeline).__name__} (no vae)"
            raise ValueError(f"{what} has no {name}(): this generator's VAE cannot do that.")
        return method

    def check_inputs(
        self,
        prompt,
        num_candidates,
        strategy,
        generator,
        batch_size,
        search,
        guidance,
        sizes,
        pipeline_kwargs,
        call_kwargs,
        conditioning=None,
        score_given_frames=True,
    ) -> None:
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {type(prompt).__name__}.")
        if not prompt.strip():
            raise ValueError("prompt is empty: describe the video to generate, e.g. 'a red ball bouncing'.")
        for name, value in {"num_candidates": num_candidates, "batch_size": batch_size, **sizes}.items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, Integral) or value < 1
            ):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        if not isinstance(score_given_frames, bool):
            raise TypeError(f"score_given_frames must be True or False, got {score_given_frames!r}.")
        length = clip_length(self.pipeline, call_kwargs)  # a video-to-video clip is as long as its input
        num_frames = sizes["num_frames"] or self.call_defaults.get("num_frames") or length
        if num_frames is not None:
            self._check_critic_can_score(num_frames, call_kwargs, score_given_frames)
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; available: {', '.join(STRATEGIES)}.")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be one torch.Generator (hybridgen derives one per candidate), "
                f"got {type(generator).__name__}."
            )
        for name, options, kind in (
            ("search", search, SearchOptions),
            ("guidance", guidance, GuidanceOptions),
        ):
            if options is None:
                continue
            if not isinstance(options, kind):
                raise TypeError(f"{name}= takes a {kind.__name__}, got {type(options).__name__}.")
            if strategy != name:
                raise ValueError(
                    f"{name}= options were given but strategy is {strategy!r}; pass strategy={name!r}."
                )
        if strategy == "guidance":
            check_guidance(self.pipeline, guidance or GuidanceOptions())
        check_conditioning(self.pipeline, strategy, conditioning or {}, call_kwargs)
        self._check_pipeline_kwargs(pipeline_kwargs, "HybridPipeline call")
        check_call_arguments(self.pipeline, pipeline_kwargs, "HybridPipeline call")
        # what the generator can make, what the critic can judge, and what fits in memory, before the first step
        clip_sizes = call_sizes(
            self.pipeline, call_kwargs if length is None else {**call_kwargs, "num_frames": length}
        )
        if clip_sizes is not None:
            check_positional_limits(self.pipeline, clip_sizes)
            check_critic_can_judge(clip_sizes)
        check_candidates_fit(num_candidates, clip_sizes, available_memory(), self.critic.crop_size)

    def _check_critic_can_score(self, num_frames: int, call_kwargs: dict, score_given_frames: bool) -> None:
        """Refuse clips whose scored frames (all, or without the given ones) are too few for the critic."""
        scored = len(range(num_frames)[scored_frames(self.pipeline, call_kwargs, score_given_frames)])
        if scored >= self.critic.min_frames:
            return
        if scored < num_frames:
            raise ValueError(
                f"num_frames={num_frames} leaves {scored} generated frames to score (score_given_frames=False), too "
                f"few for the critic, which needs at least {self.critic.min_frames}: ask for more frames, or score "
                "the given ones too (score_given_frames=True)."
            )
        clip = (
            f"video= of {num_frames} frames"
            if clip_length(self.pipeline, call_kwargs)
            else f"num_frames={num_frames}"
        )
        raise ValueError(
            f"{clip} is too short for the critic, which needs clips of at least {self.critic.min_frames} frames: "
            "ask for more (num_frames=, or --frames on the command line)."
        )

    def _check_pipeline_kwargs(self, kwargs: dict, where: str) -> None:
        accepted = call_parameters(self.pipeline)
        for name in kwargs:
            if name in RESERVED_ARGUMENTS:
                raise TypeError(f"{where}: {name!r} is set by HybridPipeline itself; do not pass it.")
            if name not in accepted:
                valid = ", ".join(sorted(n for n in accepted if n not in RESERVED_ARGUMENTS and n != "self"))
                raise TypeError(
                    f"{where}: {type(self.pipeline).__name__} has no argument {name!r}. Valid: {valid}."
                )

    def __call__(
        self,
        prompt: str,
        *,
        num_candidates: int = 4,
        strategy: str = "rerank",
        generator: torch.Generator | None = None,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        batch_size: int | None = None,
        search: SearchOptions | None = None,
        guidance: GuidanceOptions | None = None,
        image=None,
        video=None,
        score_given_frames: bool = True,
        show_progress: bool = True,
        **pipeline_kwargs,
    ) -> HybridOutput:
        """Generate `num_candidates` clips for `prompt` and return the least surprising one.

        Strategies:
            "rerank": best-of-N; every candidate is denoised to the end, then scored.
            "search": start `num_candidates` trajectories, score their clean-video estimates at the `search`
                checkpoints and finish only the survivors (`SearchOptions`; needs a stateless scheduler). Each
                segment is its own pipeline call, so a `callback_on_step_end` sees step indices per segment.
            "guidance": push every candidate's latents against the critic's surprise gradient during
                denoising (`GuidanceOptions`), then rerank.

        Args:
            generator: seeds the per-candidate seeds; the same generator state gives the same candidates.
            num_frames, height, width, num_inference_steps: passed to the video pipeline when given (else the
                call defaults, else the pipeline's own defaults).
            batch_size: videos per pipeline call (default `default_batch_size`: one for a released-size model, so
                N candidates fit where one does; else up to `DEFAULT_BATCH_SIZE` at once where the pipeline allows;
                candidate i is the same clip whatever the batch size).
            search, guidance: options of those strategies (defaults when None).
            image: for an image-to-video pipeline, the first frame (a PIL image); every candidate gets it.
            video: for a video-to-video pipeline, the clip to start from ((T, H, W, 3) array, (T, 3, H, W)
                tensor or PIL frames; passed on as PIL frames); every candidate gets it, and the clips are as long.
            score_given_frames: whether the critic scores the frames the generator was given (an image-to-video
                clip's first frame) with the generated ones (default True: the seam between the given frame and
                the motion is judged too; the given frames are the same in every candidate). False scores the
                generated frames alone, at checkpoints and in guidance too.
            pipeline_kwargs: further arguments of the video pipeline's `__call__` (e.g. `guidance_scale`);
                a name it does not accept is an error.
        """
        # 1. Check inputs
        sizes = {"num_frames": num_frames, "height": height, "width": width}
        sizes["num_inference_steps"] = num_inference_steps
        conditioning = {"image": image, "video": None if video is None else as_video_frames(video)}
        conditioning = {name: value for name, value in conditioning.items() if value is not None}
        call_kwargs = dict(self.call_defaults)
        call_kwargs.update({name: value for name, value in sizes.items() if value is not None})
        call_kwargs.update(pipeline_kwargs)
        call_kwargs.update(conditioning)
        self.check_inputs(
            prompt,
            num_candidates,
            strategy,
            generator,
            batch_size,
            search,
            guidance,
            sizes,
            pipeline_kwargs,
            call_kwargs,
            conditioning,
            score_given_frames,
        )
        if clip_length(self.pipeline, call_kwargs) is not None:
            call_kwargs.pop("num_frames", None)  # the pipeline takes the length from video= (checked equal)
        scored = scored_frames(self.pipeline, call_kwargs, score_given_frames)
        num_candidates = int(num_candidates)
        batch_size = default_batch_size(self.pipeline) if batch_size is None else batch_size

        # 2. One seed per candidate, drawn from the caller's generator
        seeds = candidate_seeds(num_candidates, generator)

        # 3. Generate the candidates
        search_history, guidance_history = [], []
        if strategy == "search":
            candidates, seeds, denoising_steps, search_history = search_candidates(
                self.pipeline,
                self.critic,
                prompt,
                seeds,
                call_kwargs,
                search or SearchOptions(),
                generator=generator,
                fps=self.fps,
                batch_size=batch_size,
                show_progress=show_progress,
                scored_frames=scored,
            )
        elif strategy == "guidance":
            candidates, denoising_steps, guidance_history = self._guided_candidates(
                prompt, seeds, call_kwargs, guidance or GuidanceOptions(), batch_size, show_progress, scored
            )
        else:
            candidates, denoising_steps = generate_candidates(
                self.pipeline, prompt, seeds, call_kwargs, batch_size=batch_size, show_progress=show_progress
            )
        if len(candidates[0][scored]) < self.critic.min_frames:
            raise ValueError(
                f"the video pipeline made {candidates[0].shape[0]}-frame clips ({len(candidates[0][scored])} "
                f"scored); the critic needs at least {self.critic.min_frames}: ask for more frames (num_frames=, "
                "or --frames on the command line)."
            )

        # 4. Score them (without the given frames, if asked)
        reports = self._score(candidates, scored)

        # 5. Keep the least surprising
        best_index = int(np.argmin([report.surprise for report in reports]))
        return HybridOutput(
            video=candidates[best_index],
            candidates=candidates,
            reports=reports,
            best_index=best_index,
            seeds=seeds,
            denoising_steps=denoising_steps,
            strategy=strategy,
            prompt=prompt,
            fps=self.fps or DEFAULT_FPS,
            search_history=search_history,
            guidance_history=guidance_history,
        )

    def _score(self, candidates: list[np.ndarray], scored: slice) -> list[CriticReport]:
        """The critic's reports on the `scored` frames of each candidate; their `frame_indices` index the whole
        candidate."""
        reports = self.critic.score_batch([clip[scored] for clip in candidates], fps=self.fps)
        first = range(len(candidates[0]))[scored].start
        if first == 0:
            return reports
        return [replace(report, frame_indices=report.frame_indices + first) for report in reports]

    def _guided_candidates(self, prompt, seeds, call_kwargs, options, batch_size, show_progress, scored):
        """Best-of-N generation with `PhysicsGuidance` as the step callback (chaining the caller's)."""
        pipeline_family(self.pipeline)  # refuse pipelines whose latents cannot be decoded, before any step
        call_kwargs = dict(call_kwargs)
        sizes = pixel_sizes(self.pipeline, call_kwargs)
        num_steps = denoising_steps_run(self.pipeline, call_kwargs)  # video-to-video runs the last `strength`
        tensor_inputs = call_kwargs.get("callback_on_step_end_tensor_inputs")
        if tensor_inputs is not None and "latents" not in tensor_inputs:  # guidance pushes the latents
            call_kwargs["callback_on_step_end_tensor_inputs"] = [*tensor_inputs, "latents"]
        with recording_clean_latents(self.pipeline.scheduler) as record:
            guide = PhysicsGuidance(
                self.pipeline,
                self.critic,
                record,
                options,
                num_steps=num_steps,
                sizes=sizes,
                fps=self.fps,
                user_callback=call_kwargs.pop("callback_on_step_end", None),
                scored_frames=scored,
            )
            call_kwargs["callback_on_step_end"] = guide
            candidates, steps = generate_candidates(
                self.pipeline, prompt, seeds, call_kwargs, batch_size=batch_size, show_progress=show_progress
            )
        return candidates, steps, guide.surprises


def candidate_paths(directory: str | Path, num_candidates: int) -> list[Path]:
    """Where `HybridOutput.save_candidates` writes candidate i: `directory/candidate_<i>.mp4`."""
    return [Path(directory) / f"candidate_{i}.mp4" for i in range(num_candidates)]


def is_candidate_file(path: str | Path) -> bool:
    """Whether `path` is named as `save_candidates` names a candidate (`candidate_<i>.mp4`)."""
    return CANDIDATE_FILE.fullmatch(Path(path).name) is not None


def check_candidate_directory(directory: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Check that candidates can be written to `directory` (a folder, or a path to create as one) without mixing
    runs; return the candidate files of an earlier run it holds (only when `overwrite`, else they are an error).
    Other files in the folder are left alone.
    """
    directory = check_directory_path(directory, "write candidates to")
    stale = (
        sorted(path for path in directory.iterdir() if is_candidate_file(path)) if directory.is_dir() else []
    )
    if stale and not overwrite:
        raise FileExistsError(
            f"{directory} already holds {len(stale)} candidate clip(s) of an earlier run ({stale[0].name}, ...): "
            "choose an empty folder, or overwrite them (overwrite=True, --overwrite on the command line)."
        )
    folders = [path.name for path in stale if path.is_dir()]
    if folders:
        raise IsADirectoryError(f"cannot write candidates to {directory}: {folders[0]} in it is a folder.")
    return stale


def candidate_seeds(num_candidates: int, generator: torch.Generator | None) -> list[int]:
    """Draw one 63-bit seed per candidate from `generator` (or torch's global RNG when None)."""
    device = generator.device if generator is not None else "cpu"
    seeds = torch.randint(0, 2**63 - 1, (num_candidates,), generator=generator, device=device)
    return [int(seed) for seed in seeds.cpu()]


def describe_reports(output: HybridOutput) -> str:
    """A short table of candidates, for logs and the CLI."""
    lines = [f"{'#':>3} {'seed':>20} {'surprise':>10}"]
    for i, (seed, report) in enumerate(zip(output.seeds, output.reports)):
        mark = "  <- best" if i == output.best_index else ""
        lines.append(f"{i:>3} {seed:>20} {report.surprise:>10.5f}{mark}")
    return "\n".join(lines)
