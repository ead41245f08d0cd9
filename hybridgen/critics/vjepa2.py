"""VJEPA2Critic: how badly a V-JEPA 2 world model predicts a clip's future from its past.

For every sliding window of `window` frames, the first `context` frames are encoded *alone* and the
predictor guesses the encoder features of the remaining frames; the surprise is the L1 distance between
that guess and the layer-normed features of the whole window:

    ctx    = encoder(x[:context])                                  # (B, N_ctx, D)  never sees the future
    pred   = predictor(ctx, context_mask=[0..N_ctx), target_mask=[N_ctx..N))   # (B, N - N_ctx, D)
    target = layer_norm(encoder(x[:window]))[:, N_ctx:]            # (B, N - N_ctx, D)
    window surprise = mean |pred - target|;  clip surprise = mean (or max) over windows

`VJEPA2Model.forward(video, context_mask, target_mask)` is deliberately not used: it encodes the whole clip
before masking, so its "context" has already attended to the future.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import VJEPA2Model

from hybridgen.critics.error_head import ERROR_HEAD_FILE, ExpectedErrorHead
from hybridgen.critics.options import ScoringOptions
from hybridgen.critics.report import CriticReport
from hybridgen.hub import PushToHubMixin
from hybridgen.video import as_frames, check_aspect_ratio, check_fps, check_unit_range, resample_frames

# Scoring warns when the centre crop keeps less than this share of a frame's area: the critic judges only the
# middle of such frames. 16:9 video keeps 56% (resize_to == crop_size) or 43% (V-JEPA 2 ViT-L's 292 -> 256)
# and does not warn, nor does 21:9 (43%, or 33% at 292 -> 256); 32:9 keeps 28% (22% at 292 -> 256) and does.
MIN_CROP_SHARE = 0.3
# preprocess resizes a few frames at a time, at most this many pixels (source plus resized) per call unless
# one frame alone is more: its working memory stays near 50 MB of float32 RGB however long the clip and
# however large its frames (1080p: one frame a call; 256x256 at 292 -> 256: 27 frames a call).
PREPROCESS_CHUNK_PIXELS = 1 << 22
# how transformers' video processor configs name the critic's resampling: PIL's code for bilinear
BILINEAR = 2


@dataclass(frozen=True)
class WindowOutputs:
    """Raw tensors of one scoring pass, for inspection and tests.

    predictions, targets: `(n_windows, N_target, D)`; token_errors: `(n_windows, N_target)`;
    window_starts: `(n_windows,)`; window/context in frames; target_offsets: `(T_target,)` first frame of each
    predicted tubelet within its window. With `mirror` or `shifts`, predictions and targets are the plain view's
    and token_errors the mean of all views' (at the same token indices).
    """

    predictions: torch.Tensor
    targets: torch.Tensor
    token_errors: torch.Tensor
    window_starts: np.ndarray
    window: int
    context: int
    target_offsets: np.ndarray


class VJEPA2Critic(PushToHubMixin):
    """Scores clips by the surprise of a transformers `VJEPA2Model` (V-JEPA 2 architecture).

    Args:
        model: a `transformers.VJEPA2Model`; `critic.model` is this object.
        options: how to score (`ScoringOptions`: windows, token and window reduction, views, units,
            preprocessing); keyword arguments named like its fields change single options, e.g.
            `VJEPA2Critic(model, window=8, direction="both")`. `critic.options` holds them with the model's
            defaults filled in.
        expected_error_head: an `ExpectedErrorHead` fitted to this model (`hybridgen calibrate-critic`);
            `from_pretrained` loads it when the checkpoint has one. Needed for `relative=True`.
        batch_size: windows per forward pass.
    """

    def __init__(
        self,
        model: VJEPA2Model,
        options: ScoringOptions | None = None,
        *,
        expected_error_head: ExpectedErrorHead | None = None,
        batch_size: int = 8,
        **option_changes,
    ):
        if not isinstance(model, VJEPA2Model):
            raise TypeError(
                f"VJEPA2Critic needs a transformers.VJEPA2Model, got {type(model).__name__}. "
                "Load one with VJEPA2Critic.from_pretrained(model_id)."
            )
        if options is not None and not isinstance(options, ScoringOptions):
            raise TypeError(f"options must be ScoringOptions, got {type(options).__name__}.")
        config = model.config
        self.model = model.eval().requires_grad_(False)
        self.tubelet = int(config.tubelet_size)
        self.crop_size = int(config.crop_size)
        self.patch_size = int(config.patch_size)
        self.grid = self.crop_size // self.patch_size
        options = (options or ScoringOptions()).replace(**option_changes)
        self.options = options.for_model(
            self.tubelet, self.patch_size, self.crop_size, int(config.frames_per_clip)
        )
        if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be an integer >= 1 (windows per forward pass).")
        if expected_error_head is not None:
            if not isinstance(expected_error_head, ExpectedErrorHead):
                raise TypeError(
                    f"expected_error_head must be an ExpectedErrorHead, got {type(expected_error_head).__name__}."
                )
            if expected_error_head.hidden_size != config.hidden_size:
                raise ValueError(
                    f"the expected-error head takes {expected_error_head.hidden_size}-dim features but the model "
                    f"predicts {config.hidden_size}: it was fitted for a different critic."
                )
            expected_error_head = expected_error_head.to(self.device).eval().requires_grad_(False)
        if self.options.relative and expected_error_head is None:
            raise ValueError(
                "relative=True needs an expected-error head, and this critic has none: fit one on plausible "
                "clips with `hybridgen calibrate-critic CRITIC -o OUTPUT` (or "
                "hybridgen.training.error_head.fit_expected_error_head)."
            )
        self.expected_error_head = expected_error_head
        self.image_mean = torch.tensor(self.options.image_mean, dtype=torch.float32).view(1, 1, 3, 1, 1)
        self.image_std = torch.tensor(self.options.image_std, dtype=torch.float32).view(1, 1, 3, 1, 1)
        self.batch_size = batch_size

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        model_id: str,
        *,
        torch_dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
        revision: str | None = None,
        cache_dir: str | None = None,
        local_files_only: bool | None = None,
        batch_size: int = 8,
        **option_changes,
    ) -> VJEPA2Critic:
        """Load a critic from a Hub id (e.g. "facebook/vjepa2-vitl-fpc64-256"), a local directory or "toyworld".

        The scoring options come from the checkpoint: its video processor config (resize, mean/std) and, if
        present, the `critic_config.json` that `save_pretrained` writes (window, context, direction, ...); keyword
        arguments named like `ScoringOptions` fields override them (`top_fraction=None` scores all tokens). An
        `expected_error_head.safetensors` next to the weights is loaded too. Honours `HF_HUB_OFFLINE`; never runs
        remote code.
        """
        from hybridgen.models import check_device, check_torch_dtype, load_vjepa2

        ScoringOptions().replace(**option_changes)  # an unknown option fails before anything loads
        check_torch_dtype(torch_dtype)
        device = check_device(device)
        model, options, head = load_vjepa2(
            model_id,
            torch_dtype=torch_dtype,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
        )
        if device is not None:
            model = model.to(device)
        return cls(model, options.replace(**option_changes), expected_error_head=head, batch_size=batch_size)

    def with_options(self, **changes) -> VJEPA2Critic:
        """A critic over the same model (shared, not copied) with some scoring options changed, e.g.
        `critic.with_options(top_fraction=None, aggregate="mean")`, or another `expected_error_head` or
        `batch_size`; an unknown option is a TypeError."""
        shared = {"batch_size": self.batch_size, "expected_error_head": self.expected_error_head}
        shared.update({name: changes.pop(name) for name in list(changes) if name in shared})
        return VJEPA2Critic(self.model, self.options.replace(**changes), **shared)

    def save_pretrained(self, directory: str | Path, *, model_card=None) -> Path:
        """Write the model (`save_pretrained`, safetensors), `critic_config.json`, the video processor config that
        transformers' `AutoVideoProcessor` reads (`video_processor_config`) and the expected-error head (if any);
        `from_pretrained` reads them all. A model card (`README.md`) is written too: `model_card` (a
        `huggingface_hub.ModelCard`) if given, else a generated one (`hybridgen.hub.critic_card`) unless the folder
        already has a card."""
        from hybridgen.hub import CARD_FILE, save_card
        from hybridgen.models import CRITIC_CONFIG_FILE, VIDEO_PROCESSOR_FILE
        from hybridgen.video import write_json_atomic

        directory = Path(directory)
        self.model.save_pretrained(directory)
        if model_card is not None or not (directory / CARD_FILE).exists():
            save_card(model_card or self.model_card(), directory / CARD_FILE)
        write_json_atomic(self.options.to_dict(), directory / CRITIC_CONFIG_FILE)
        write_json_atomic(self.video_processor_config(), directory / VIDEO_PROCESSOR_FILE)
        if self.expected_error_head is not None:
            self.expected_error_head.save(directory / ERROR_HEAD_FILE)
        else:  # a head left by an earlier save would be loaded with this model
            (directory / ERROR_HEAD_FILE).unlink(missing_ok=True)
        return directory

    def video_processor_config(self) -> dict:
        """This critic's preprocessing as transformers' `VJEPA2VideoProcessor` config (what `save_pretrained`
        writes as `video_preprocessor_config.json`, in the layout of the released V-JEPA 2 repos' own): the shorter
        side resized to `resize_to` (bilinear), the centre `crop_size` square, then x 1/255 and mean / std.
        `from_pretrained` reads its resize, mean and std back.

        transformers' processor ignores the stored `size` and resizes to `transformers_resize(crop_size)` (crop x
        256 / 224): it prepares frames as this critic does only when `resize_to` equals that, as for the released
        checkpoints (256 -> 292); otherwise call it with `size={"shortest_edge": resize_to}`.
        """
        crop = {"height": self.crop_size, "width": self.crop_size}
        return {
            "video_processor_type": "VJEPA2VideoProcessor",
            "do_resize": True,
            "size": {"shortest_edge": self.options.resize_to},
            "resample": BILINEAR,
            "do_center_crop": True,
            "crop_size": crop,
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": list(self.options.image_mean),
            "image_std": list(self.options.image_std),
        }

    def model_card(
        self,
        *,
        repo_id: str | None = None,
        license: str | None = None,
        metrics: str = "",
        training: str = "",
    ):
        """This critic's `huggingface_hub.ModelCard` (`hybridgen.hub.critic_card`)."""
        from hybridgen.hub import critic_card

        return critic_card(self, repo_id=repo_id, license=license, metrics=metrics, training=training)

    def describe(self) -> str:
        """One line on the model and how it scores, for cards and logs."""
        o = self.options
        parameters = sum(p.numel() for p in self.model.parameters()) / 1e6
        return (
            f"a {parameters:.2f}M-parameter VJEPA2Model; frames resized to {o.resize_to} px (shorter side) and "
            f"centre-cropped to {self.crop_size}; windows of {o.window} frames, {o.context} of context, "
            f"{o.direction} prediction; {o.aggregate} over windows"
            + (", errors relative to its expected-error head" if o.relative else "")
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> VJEPA2Critic:
        from hybridgen.models import check_device, check_torch_dtype

        check_torch_dtype(dtype, "dtype")
        device = check_device(device)
        self.model.to(device=device, dtype=dtype)
        if self.expected_error_head is not None:
            self.expected_error_head.to(device=device)  # float32 whatever the model's dtype
        return self

    @property
    def min_frames(self) -> int:
        """Fewest frames a clip may have: one tubelet of context and one of target."""
        return 2 * self.tubelet

    # ------------------------------------------------------------------ scoring
    def score(self, video, *, fps: float | None = None) -> CriticReport:
        """Score one clip.

        Args:
            video: `(T, H, W, 3)` uint8 or float [0, 1] array, `(T, 3, H, W)` float tensor in [0, 1], or a
                list of PIL images.
            fps: the clip's frame rate; used only when the critic was given a target `fps`.
        """
        return self.score_batch([video], fps=fps)[0]

    def score_batch(self, videos: Sequence, *, fps: float | None = None) -> list[CriticReport]:
        """Score several clips (of any lengths and sizes); equal to scoring them one by one."""
        if isinstance(videos, (np.ndarray, torch.Tensor)) or not isinstance(videos, Sequence):
            raise TypeError("score_batch takes a list of clips; use score() for a single clip.")
        if len(videos) == 0:
            raise ValueError("score_batch got an empty list of clips.")
        clips, frame_indices = [], []
        for i, video in enumerate(videos):
            frames = as_frames(video, name=f"clip {i}" if len(videos) > 1 else "video")  # (T, H, W, 3)
            indices = self._frame_indices(frames.shape[0], fps)
            if not np.array_equal(indices, np.arange(len(frames))):
                frames = frames[indices]  # a copy: made only when resampling, large frames are large
            clips.append(torch.from_numpy(frames).permute(0, 3, 1, 2))  # (T, 3, H, W)
            frame_indices.append(indices)
        with torch.no_grad():
            outputs = self.window_outputs(clips)
        return [self._report(out, idx) for out, idx in zip(outputs, frame_indices)]

    def score_file(self, path: str | Path) -> CriticReport:
        """Score a video file, decoding it a frame at a time: `score_crops(*read_crops(path))`.

        Memory grows by `crop_size`^2 x 3 bytes a frame whatever the video's resolution, and time linearly with
        its length. The report equals `score(read_video(path)[0], fps=...)` up to the rounding of the crops to
        uint8. Unreadable files, absurd frame sizes and too few frames are a ValueError naming the file.
        """
        crops, fps = self.read_crops(path)
        try:
            return self.score_crops(crops, fps=fps)
        except ValueError as error:  # too few frames
            raise ValueError(f"{path}: {error}") from None

    def read_crops(self, path: str | Path) -> tuple[np.ndarray, float]:
        """What the critic sees of a video file: uint8 `(T, S, S, 3)` crops of its frames (shorter side resized
        to `resize_to`, centre `crop_size` square), each made as its frame is decoded
        (`hybridgen.video.open_video`), and the file's frame rate."""
        from hybridgen.video import open_video

        crops, pending = [], []
        with open_video(path) as video:
            for frame in video.frames():  # uint8 (H, W, 3)
                if not crops and not pending:  # the first frame: check its size once
                    self._check_frame_sizes([frame.shape[:2]])
                    per_call = max(1, PREPROCESS_CHUNK_PIXELS // frame[..., 0].size)
                pending.append(frame)
                if len(pending) == per_call:
                    crops.append(self._crop_uint8(pending))
                    pending = []
            if pending:
                crops.append(self._crop_uint8(pending))
            fps = video.fps
        if not crops:
            raise ValueError(f"could not decode video {path}: it contains 0 frames")
        return np.concatenate(crops), fps

    def score_crops(self, crops: np.ndarray, *, fps: float | None = None) -> CriticReport:
        """Score uint8 `(T, S, S, 3)` crops as `read_crops` makes them; `fps` as in `score`."""
        if (
            not isinstance(crops, np.ndarray)
            or crops.dtype != np.uint8
            or crops.shape[1:]
            != (
                self.crop_size,
                self.crop_size,
                3,
            )
        ):
            shape = getattr(crops, "shape", type(crops).__name__)
            raise ValueError(
                f"score_crops takes uint8 (T, {self.crop_size}, {self.crop_size}, 3) crops as read_crops makes "
                f"them, got {shape}; score() takes clips of any size."
            )
        indices = self._frame_indices(len(crops), fps)
        clip = torch.from_numpy(crops[indices]).permute(0, 3, 1, 2)  # (T, 3, S, S) uint8
        with torch.no_grad():
            outputs = self.window_outputs([clip], cropped=True)
        return self._report(outputs[0], indices)

    def _crop_uint8(self, frames: list[np.ndarray]) -> np.ndarray:
        """uint8 `(n, H, W, 3)` frames -> their crops, uint8 `(n, S, S, 3)`."""
        return uint8_crops(frames, self.options.resize_to, self.crop_size, device=self.device)

    def surprise(self, video: torch.Tensor, *, fps: float | None = None) -> torch.Tensor:
        """Differentiable clip surprise, for guidance; the same number `score` gives the clip.

        Args:
            video: `(T, 3, H, W)` or `(B, T, 3, H, W)` float tensor in [0, 1], may require grad.
            fps: the clip's frame rate; used only when the critic was given a target `fps` (frames are then
                picked as `score` picks them).
        Returns:
            a scalar tensor, or `(B,)` for a batch, with gradients flowing to `video`.
        """
        if not isinstance(video, torch.Tensor) or video.ndim not in (4, 5) or video.shape[-3] != 3:
            shape = tuple(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__
            raise ValueError(f"surprise() needs a (T, 3, H, W) or (B, T, 3, H, W) float tensor, got {shape}.")
        if video.shape[-4] == 0:
            raise ValueError("surprise() got a clip with 0 frames.")
        if not video.is_floating_point():
            raise ValueError(
                f"surprise() needs float frames in [0, 1], got {video.dtype} (divide uint8 by 255)."
            )
        check_unit_range(float(video.detach().min()), float(video.detach().max()), name="surprise()'s video")
        batched = video.ndim == 5
        indices = torch.from_numpy(self._frame_indices(video.shape[-4], fps)).to(video.device)
        video = video.index_select(-4, indices)  # the frames `score` would keep; differentiable
        outputs = self.window_outputs(list(video if batched else video.unsqueeze(0)))
        scores = torch.stack([self._reduce_windows(out.token_errors) for out in outputs])
        return scores if batched else scores[0]

    def window_outputs(self, clips: Sequence[torch.Tensor], *, cropped: bool = False) -> list[WindowOutputs]:
        """Predictions, targets and per-token errors of every window of each `(T, 3, H, W)` clip in [0, 1].

        Windows of all clips that share a (window, context) plan are batched together, `batch_size` at a time.
        Every clip's frame size is checked before any is preprocessed: frames longer than
        `hybridgen.video.MAX_ASPECT_RATIO`:1 are a ValueError, a crop keeping little of them a UserWarning.
        With `cropped`, the clips are `crop_frames` output already, as uint8 `(T, 3, S, S)` in [0, 255].
        """
        plans = [self.window_plan(clip.shape[0]) for clip in clips]
        starts = [self.window_starts(clip.shape[0], window) for clip, (window, _) in zip(clips, plans)]
        if cropped:
            pixels = [self.normalize(clip.to(self.device).float() / 255) for clip in clips]
        else:
            self._check_frame_sizes([tuple(clip.shape[-2:]) for clip in clips])
            pixels = [self.preprocess(clip.unsqueeze(0))[0] for clip in clips]  # each (T, 3, S, S)
        items = [(i, s) for i in range(len(clips)) for s in starts[i]]  # (clip index, window start)
        results: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        for plan in dict.fromkeys(plans):
            group = [(i, s) for i, s in items if plans[i] == plan]
            window, context = plan
            for chunk in range(0, len(group), self.batch_size):
                part = group[chunk : chunk + self.batch_size]
                batch = torch.stack([pixels[i][s : s + window] for i, s in part])  # (b, W, 3, S, S)
                prediction, target = self.predict(batch, context)  # (b, N_target, D) each
                errors = self.token_errors(prediction, target)  # (b, N_target)
                if self.options.mirror or self.options.shifts:
                    errors = self._mean_over_views(batch, context, errors)
                for k, key in enumerate(part):
                    results[key] = (prediction[k], target[k], errors[k])
        outputs = []
        for i, (window, context) in enumerate(plans):
            predictions = torch.stack([results[(i, s)][0] for s in starts[i]])  # (n_windows, N_target, D)
            targets = torch.stack([results[(i, s)][1] for s in starts[i]])
            token_errors = torch.stack([results[(i, s)][2] for s in starts[i]])  # (n_windows, N_target)
            offsets = self.target_offsets(window, context)
            outputs.append(
                WindowOutputs(
                    predictions, targets, token_errors, np.asarray(starts[i]), window, context, offsets
                )
            )
        return outputs

    def predict(self, windows: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict the tokens of preprocessed windows that the predictor does not see from those it does.

        "forward" predicts the last `W - context` frames from the first `context`; "backward" the first
        `W - context` from the last `context`; with direction "both", forward tokens come first.

        Args:
            windows: `(B, W, 3, S, S)` normalised pixels; `context`: frames the predictor may see.
        Returns:
            `(prediction, target)`, each `(B, N_target, D)`; target is layer-normed encoder features.
        """
        batch, window = windows.shape[:2]
        tokens_per_tubelet = self.grid * self.grid
        num_context = context // self.tubelet * tokens_per_tubelet
        num_tokens = window // self.tubelet * tokens_per_tubelet
        windows = windows.to(self.device, self.dtype)
        features = self.model.encoder(pixel_values_videos=windows).last_hidden_state  # (B, N, D)
        predictions, targets = [], []
        for direction in self.options.directions:
            context_ids, target_ids = mask_ids(direction, num_context, num_tokens, self.device)
            context_frames = (
                windows[:, :context] if direction == "forward" else windows[:, window - context :]
            )
            # the context frames are encoded alone: they never attend to the frames to be predicted
            context_features = self.model.encoder(pixel_values_videos=context_frames).last_hidden_state
            predictions.append(
                predict_tokens(self.model.predictor, context_features, context_ids, target_ids)
            )
            targets.append(F.layer_norm(features[:, target_ids], (features.shape[-1],)))  # (B, N_target, D)
        return torch.cat(predictions, dim=1), torch.cat(targets, dim=1)

    def _mean_over_views(self, windows: torch.Tensor, context: int, errors: torch.Tensor) -> torch.Tensor:
        """Per-token errors `(B, N_target)` averaged over the views `mirror` and `shifts` ask for; `errors` are
        the plain view's."""
        translated = [windows] + [translate(windows, dy, dx) for dy, dx in self.options.shifts]
        views = [errors] + [self.token_errors(*self.predict(view, context)) for view in translated[1:]]
        if self.options.mirror:
            for view in translated:
                mirrored = self.token_errors(*self.predict(view.flip(-1), context))
                # token (row, col) of the mirrored view sits at (row, grid - 1 - col) of the clip
                views.append(mirrored.unflatten(-1, (-1, self.grid, self.grid)).flip(-1).flatten(1))
        return torch.stack(views).mean(dim=0)

    def token_errors(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """`(B, N, D)` twice -> `(B, N)` per-token L1, divided by the expected error when `relative`."""
        errors = token_l1(prediction, target)
        return errors / self.expected_error_head(prediction) if self.options.relative else errors

    # ------------------------------------------------------------------ helpers
    def _check_frame_sizes(self, sizes: Sequence[tuple[int, int]]) -> None:
        """Check the `(H, W)` frame size of each clip of one call before any of them is preprocessed.

        A frame longer than `hybridgen.video.MAX_ASPECT_RATIO`:1 is a ValueError (`check_aspect_ratio`). If
        the centre crop keeps less than `MIN_CROP_SHARE` of some clip's frames, one UserWarning names the share
        kept: the critic judges the middle of such frames and never sees their sides.
        """
        for index, (height, width) in enumerate(sizes):
            check_aspect_ratio(height, width, name=f"clip {index}" if len(sizes) > 1 else "video")
        kept = []
        for height, width in dict.fromkeys(sizes):
            resized_height, resized_width = self._resized_size(height, width)
            share = self.crop_size**2 / (resized_height * resized_width)
            if share < MIN_CROP_SHARE:
                side = round(self.crop_size / self.options.resize_to * min(height, width))  # in source pixels
                kept.append(f"{share:.0%} of each {width}x{height} frame (its central {side}x{side} pixels)")
        if kept:
            warnings.warn(
                f"the critic sees only {' and '.join(kept)}: it scales the shorter side to {self.options.resize_to} "
                f"pixels and keeps the central {self.crop_size}x{self.crop_size}. Crop or pad the video to a "
                "squarer shape to judge all of it.",
                UserWarning,
                stacklevel=_outside_this_module(),
            )

    def preprocess(self, clips: torch.Tensor, *, cropped: bool = False) -> torch.Tensor:
        """`(B, T, 3, H, W)` in [0, 1] -> `(B, T, 3, S, S)` normalised on the critic's device: resize shorter
        side, centre crop (`crop_frames`), then mean / std (`normalize`). With `cropped`, the clips are
        `crop_frames` output already (`(B, T, 3, S, S)` in [0, 1]) and are only moved and normalised.

        Frames longer than `hybridgen.video.MAX_ASPECT_RATIO`:1 are refused (ValueError) before any work.
        """
        if cropped:
            return self.normalize(clips.to(self.device, torch.float32))
        batch, frames, _, height, width = clips.shape
        check_aspect_ratio(height, width, name="video")
        crops = self.crop_frames(clips.reshape(batch * frames, 3, height, width))
        return self.normalize(crops).reshape(batch, frames, 3, self.crop_size, self.crop_size)

    def crop_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """`(N, 3, H, W)` in [0, 1] -> `(N, 3, S, S)` float32 in [0, 1] on the critic's device: the shorter side
        resized to `resize_to`, then the centre `crop_size` square (`resize_and_crop`)."""
        return resize_and_crop(frames, self.options.resize_to, self.crop_size, device=self.device)

    def normalize(self, crops: torch.Tensor) -> torch.Tensor:
        """`(..., 3, S, S)` in [0, 1] -> the model's input: `(crops - image_mean) / image_std`."""
        mean, std = self.image_mean.view(3, 1, 1), self.image_std.view(3, 1, 1)
        return (crops - mean.to(crops.device)) / std.to(crops.device)

    def _resized_size(self, height: int, width: int) -> tuple[int, int]:
        return resized_size(height, width, self.options.resize_to)

    def window_plan(self, num_frames: int) -> tuple[int, int]:
        """`(window, context)` for a clip of `num_frames`; shrinks both for clips shorter than a window."""
        if num_frames >= self.options.window:
            return self.options.window, self.options.context
        if num_frames < self.min_frames:
            raise ValueError(
                f"clip has {num_frames} frames; the critic needs at least {self.min_frames} "
                f"(one tubelet of {self.tubelet} frames as context and one to predict)."
            )
        window = _round_down(num_frames, self.tubelet)
        context = _round_down(round(window * self.options.context / self.options.window), self.tubelet)
        context = min(max(context, self.tubelet), window - self.tubelet)
        return window, context

    def window_starts(self, num_frames: int, window: int) -> list[int]:
        """First frame of each window; the last window is aligned to the clip's end so no frame is skipped."""
        starts = list(range(0, num_frames - window + 1, self.options.stride))
        if starts[-1] != num_frames - window:
            starts.append(num_frames - window)
        return starts

    def target_offsets(self, window: int, context: int) -> np.ndarray:
        """First frame (within a window) of each predicted tubelet, in the order of the token errors."""
        forward = np.arange(context, window, self.tubelet)
        backward = np.arange(0, window - context, self.tubelet)
        return np.concatenate([forward if d == "forward" else backward for d in self.options.directions])

    def _frame_indices(self, num_frames: int, fps: float | None) -> np.ndarray:
        if fps is not None:
            check_fps(fps, "fps")
        if self.options.fps is None or fps is None or math.isclose(fps, self.options.fps):
            return np.arange(num_frames)
        return resample_frames(np.arange(num_frames), fps, self.options.fps)

    def _reduce_tokens(self, token_errors: torch.Tensor) -> torch.Tensor:
        """`(n_windows, N_target)` -> `(n_windows,)`."""
        return top_token_mean(token_errors, self.options.top_fraction)

    def _reduce_windows(self, token_errors: torch.Tensor) -> torch.Tensor:
        per_window = self._reduce_tokens(token_errors)
        return per_window.mean() if self.options.aggregate == "mean" else per_window.max()

    def _report(self, outputs: WindowOutputs, frame_indices: np.ndarray) -> CriticReport:
        errors = outputs.token_errors.float()
        token_map = errors.reshape(-1, len(outputs.target_offsets), self.grid, self.grid).cpu().numpy()
        return CriticReport(
            surprise=float(self._reduce_windows(errors)),
            window_surprise=self._reduce_tokens(errors).cpu().numpy(),
            window_starts=outputs.window_starts,
            token_errors=token_map,
            window=outputs.window,
            context=outputs.context,
            tubelet=self.tubelet,
            target_offsets=outputs.target_offsets,
            frame_indices=frame_indices,
            options=self.options,
        )

    def __repr__(self) -> str:
        name = getattr(self.model.config, "_name_or_path", "") or "in-memory VJEPA2Model"
        return (
            f"VJEPA2Critic({name!r}, window={self.options.window}, context={self.options.context}, stride={self.options.stride}, "
            f"crop={self.crop_size}, aggregate={self.options.aggregate!r})"
        )


def transformers_resize(crop_size: int) -> int:
    """The shorter side transformers' `VJEPA2VideoProcessor` resizes frames to before its `crop_size` crop, whatever
    its config's `size` says (transformers/models/vjepa2/video_processing_vjepa2.py): int(crop x 256 / 224), 292
    for the released 256-px checkpoints."""
    return int(crop_size * 256 / 224)


def resized_size(height: int, width: int, resize_to: int) -> tuple[int, int]:
    """`(H, W)` after scaling the shorter side to `resize_to` (never below it on either side)."""
    scale = resize_to / min(height, width)
    return max(resize_to, round(height * scale)), max(resize_to, round(width * scale))


def uint8_crops(
    frames: Sequence[np.ndarray], resize_to: int, crop: int, *, device: torch.device | str = "cpu"
) -> np.ndarray:
    """uint8 `(n, H, W, 3)` frames -> their crops as the critic makes them (`resize_and_crop`), uint8
    `(n, crop, crop, 3)`: what `read_crops` keeps of a video and the folder trainer of its windows."""
    pixels = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255  # (n, 3, H, W)
    crops = resize_and_crop(pixels, resize_to, crop, device=device)
    return (crops * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def resize_and_crop(
    frames: torch.Tensor, resize_to: int, crop: int, *, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The critic's preprocessing before normalisation: `(N, 3, H, W)` in [0, 1] -> `(N, 3, crop, crop)` float32
    on `device`, the shorter side resized to `resize_to` (bilinear, antialiased), then the centre square.

    Frames are moved to the device and resized a few at a time (`PREPROCESS_CHUNK_PIXELS`), so the working
    memory does not grow with the clip: all at once, a long clip of large frames would be copied to the device
    whole and resized whole.
    """
    height, width = frames.shape[-2:]
    size = resized_size(height, width, resize_to)
    top, left = (size[0] - crop) // 2, (size[1] - crop) // 2
    step = max(1, PREPROCESS_CHUNK_PIXELS // (height * width + size[0] * size[1]))
    crops = []
    for first in range(0, max(len(frames), 1), step):  # no frames give an empty result
        chunk = frames[first : first + step].to(device).float()
        if size != (height, width):
            chunk = F.interpolate(chunk, size=size, mode="bilinear", align_corners=False, antialias=True)
        crops.append(chunk[:, :, top : top + crop, left : left + crop].clone())
    return torch.cat(crops) if len(crops) > 1 else crops[0]


def mask_ids(
    direction: str, num_context: int, num_tokens: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token positions `(context_ids, target_ids)` of a window of `num_tokens` (frame-major) tokens.

    "forward": the first `num_context` tokens predict the rest; "backward": the last `num_context` predict the rest.
    """
    if direction == "forward":
        return torch.arange(num_context, device=device), torch.arange(num_context, num_tokens, device=device)
    if direction == "backward":
        first = num_tokens - num_context
        return torch.arange(first, num_tokens, device=device), torch.arange(first, device=device)
    raise ValueError(f"direction={direction!r} must be 'forward' or 'backward'.")


def top_token_mean(token_errors: torch.Tensor, top_fraction: float | None) -> torch.Tensor:
    """Mean of the `top_fraction` largest errors along the last axis (all of them for None): `(..., N)` -> `(...)`."""
    if top_fraction is None:
        return token_errors.mean(dim=-1)
    k = max(1, math.ceil(top_fraction * token_errors.shape[-1]))
    return token_errors.topk(k, dim=-1).values.mean(dim=-1)


def token_l1(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-token L1 error, mean over features: `(B, N, D)` twice -> `(B, N)` float32."""
    return (predictions.float() - targets.float()).abs().mean(dim=-1)


def predict_tokens(
    predictor, context_features: torch.Tensor, context_ids: torch.Tensor, target_ids: torch.Tensor
) -> torch.Tensor:
    """Run a `VJEPA2Predictor` on context features encoded alone.

    Args:
        context_features: `(B, N_ctx, D)` encoder output of the context frames only.
        context_ids, target_ids: `(N_ctx,)` and `(N_target,)` token positions in the window.
    Returns:
        `(B, N_target, D)` predicted target features.
    """
    batch, _, dim = context_features.shape
    num_tokens = int(max(context_ids.max(), target_ids.max())) + 1
    # the predictor gathers its context from a full-length sequence by position: place it there
    sequence = context_features.new_zeros(batch, num_tokens, dim)  # (B, N, D)
    sequence[:, context_ids] = context_features
    return predictor(
        sequence,
        context_mask=[context_ids.expand(batch, -1)],  # (B, N_ctx)
        target_mask=[target_ids.expand(batch, -1)],  # (B, N_target)
    ).last_hidden_state


def translate(windows: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """`(B, W, 3, S, S)` frames with their content moved `dy` pixels down and `dx` right, the same size; the
    uncovered border repeats the edge pixels."""
    if dy == 0 and dx == 0:
        return windows
    size = windows.shape[-2:]
    flat = windows.flatten(0, 1)  # (B * W, 3, S, S)
    padded = F.pad(flat, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)), mode="replicate")
    top, left = max(-dy, 0), max(-dx, 0)
    moved = padded[..., top : top + size[0], left : left + size[1]]
    return moved.unflatten(0, windows.shape[:2])


def _outside_this_module() -> int:
    """The `stacklevel` that attributes a warning raised in this module to the code that called into it (the
    caller of `score`, `score_batch` or `surprise`), where the user can act on it."""
    frame, level = sys._getframe(1), 1  # level 1: the function that calls warnings.warn
    while frame.f_back is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def _round_down(value: int, multiple: int) -> int:
    return value // multiple * multiple
