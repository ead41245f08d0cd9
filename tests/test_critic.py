"""VJEPA2Critic on a tiny random VJEPA2Model: the surprise computation, its invariants and its errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from hybridgen import CriticReport, VJEPA2Critic
from hybridgen.critics import ScoringOptions
from hybridgen.testing import tiny_vjepa2_model


def random_clip(frames=24, height=32, width=32, seed=0):
    return np.random.default_rng(seed).random((frames, height, width, 3), dtype=np.float32)


def test_predictions_never_see_the_future(critic):
    clip = torch.from_numpy(random_clip(16)).permute(0, 3, 1, 2)  # (T, 3, H, W): one 16-frame window
    changed = clip.clone()
    changed[critic.options.context :] = torch.rand_like(changed[critic.options.context :])
    with torch.no_grad():
        before, after = critic.window_outputs([clip, changed])
    assert torch.equal(before.predictions, after.predictions)  # bit-identical: the context is all it saw
    assert not torch.equal(before.targets, after.targets)
    assert not torch.equal(before.token_errors, after.token_errors)


def test_model_forward_would_leak(critic):
    """The reason the critic does not call VJEPA2Model.forward: its context has attended to the future."""
    clip = torch.from_numpy(random_clip(16)).permute(0, 3, 1, 2)
    changed = clip.clone()
    changed[critic.options.context :] = torch.rand_like(changed[critic.options.context :])
    tokens_per_tubelet = critic.grid**2
    num_context = critic.options.context // critic.tubelet * tokens_per_tubelet
    num_tokens = 16 // critic.tubelet * tokens_per_tubelet
    masks = {
        "context_mask": [torch.arange(num_context).unsqueeze(0)],
        "target_mask": [torch.arange(num_context, num_tokens).unsqueeze(0)],
    }
    with torch.no_grad():
        outputs = [critic.model(critic.preprocess(c.unsqueeze(0)), **masks) for c in (clip, changed)]
    assert not torch.equal(
        outputs[0].predictor_output.last_hidden_state, outputs[1].predictor_output.last_hidden_state
    )


def test_later_windows_do_not_change_earlier_predictions(critic):
    clip = torch.from_numpy(random_clip(32)).permute(0, 3, 1, 2)
    changed = clip.clone()
    changed[24:] = 0.5
    with torch.no_grad():
        before, after = critic.window_outputs([clip, changed])
    # windows starting at 0, 8, 16 have contexts [0, 8), [8, 16), [16, 24): untouched
    assert before.window_starts.tolist() == [0, 8, 16]
    assert torch.equal(before.predictions, after.predictions)
    assert torch.equal(before.targets[:2], after.targets[:2])


def test_report_shapes_and_aggregation(critic):
    report = critic.score(random_clip(24))
    assert isinstance(report, CriticReport)
    assert report.window_starts.tolist() == [0, 8]
    assert report.window_surprise.shape == (2,)
    target_tubelets = (critic.options.window - critic.options.context) // critic.tubelet
    assert report.token_errors.shape == (2, target_tubelets, critic.grid, critic.grid)
    assert report.surprise == pytest.approx(float(report.window_surprise.mean()), rel=1e-6)
    assert report.surprise > 0
    assert np.isnan(report.frame_surprise()[: critic.options.context]).all()
    assert np.isfinite(report.frame_surprise()[critic.options.context :]).all()
    maximum = VJEPA2Critic(critic.model, aggregate="max").score(random_clip(24))
    assert maximum.surprise == pytest.approx(float(report.window_surprise.max()), rel=1e-6)


def test_tail_window_covers_the_end(critic):
    report = critic.score(random_clip(21))
    assert report.window_starts.tolist() == [0, 5]  # 21 - 16 = 5: the last window ends on the last frame


def test_batch_equals_one_by_one(critic):
    clips = [random_clip(24, seed=1), random_clip(18, 40, 48, seed=2), random_clip(7, seed=3)]
    batched = critic.score_batch(clips)
    single = [critic.score(clip) for clip in clips]
    for a, b in zip(batched, single):
        assert a.surprise == pytest.approx(b.surprise, rel=1e-5)
        np.testing.assert_allclose(a.token_errors, b.token_errors, rtol=1e-5, atol=1e-6)


def test_same_clip_same_score(critic):
    assert critic.score(random_clip(24)).surprise == critic.score(random_clip(24)).surprise


def test_every_input_format_gives_the_same_score(critic):
    uint8 = (random_clip(16) * 255).round().astype(np.uint8)
    reference = critic.score(uint8).surprise
    as_float = uint8.astype(np.float32) / 255
    as_tensor = torch.from_numpy(as_float).permute(0, 3, 1, 2)
    as_pil = [Image.fromarray(frame) for frame in uint8]
    for video in (as_float, as_tensor, as_pil):
        assert critic.score(video).surprise == pytest.approx(reference, rel=1e-5)


def test_short_clip_uses_a_shrunken_window(critic):
    report = critic.score(random_clip(6))
    assert (report.window, report.context) == (6, 2)
    assert report.window_starts.tolist() == [0]


def test_clip_too_short_is_refused(critic):
    with pytest.raises(ValueError, match="at least 4"):
        critic.score(random_clip(3))


@pytest.mark.parametrize(
    ("video", "message"),
    [
        (np.full((16, 32, 32, 3), np.nan, dtype=np.float32), "NaN"),
        (np.zeros((16, 32, 32), dtype=np.float32), "shape"),
        (np.full((16, 32, 32, 3), 2.0, dtype=np.float32), "range"),
        (np.zeros((16, 32, 32, 3), dtype=np.int64), "dtype"),
    ],
)
def test_bad_clips_get_one_clear_error(critic, video, message):
    with pytest.raises(ValueError, match=message):
        critic.score(video)


def test_non_square_frames_are_resized_and_centre_cropped(critic):
    wide = random_clip(16, 32, 64)
    pixels = critic.preprocess(torch.from_numpy(wide).permute(0, 3, 1, 2).unsqueeze(0))
    assert pixels.shape == (1, 16, 3, critic.crop_size, critic.crop_size)
    # the centre crop of a 32x64 frame at scale 1 is columns 16..48
    centre = torch.from_numpy(wide[:, :, 16:48]).permute(0, 3, 1, 2).unsqueeze(0)
    torch.testing.assert_close(pixels, critic.preprocess(centre))


def test_temporal_resampling_to_the_critics_fps():
    critic = VJEPA2Critic(tiny_vjepa2_model(seed=0), fps=8)
    report = critic.score(random_clip(32), fps=16)
    assert report.frame_indices.tolist() == list(range(0, 32, 2))
    assert critic.score(random_clip(32)).frame_indices.shape == (32,)  # unknown fps: scored as given


def test_differentiable_surprise_matches_score_and_has_gradients(critic):
    clip = random_clip(16)
    video = torch.from_numpy(clip).permute(0, 3, 1, 2).requires_grad_(True)
    surprise = critic.surprise(video)
    surprise.backward()
    assert surprise.item() == pytest.approx(critic.score(clip).surprise, rel=1e-5)
    assert video.grad is not None and video.grad.abs().sum() > 0
    batched = critic.surprise(torch.stack([video.detach(), video.detach()]))
    assert batched.shape == (2,)
    with pytest.raises(ValueError, match="0 frames"):
        critic.surprise(video.detach()[:0])
    with pytest.raises(ValueError, match="divide uint8 by 255"):
        critic.surprise((video.detach() * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"surprise\(\)'s video has float values outside the range \[0, 1\]"):
        critic.surprise(video.detach() * 2)


def test_differentiable_surprise_resamples_to_the_critics_fps_as_score_does():
    critic = VJEPA2Critic(tiny_vjepa2_model(seed=0), fps=8)
    clip = random_clip(32)
    video = torch.from_numpy(clip).permute(0, 3, 1, 2)
    at_16 = critic.score(clip, fps=16).surprise
    assert at_16 != pytest.approx(critic.score(clip).surprise, rel=1e-3)  # resampling changes the clip
    assert critic.surprise(video, fps=16).item() == pytest.approx(at_16, rel=1e-5)
    assert critic.surprise(video[None], fps=16)[0].item() == pytest.approx(at_16, rel=1e-5)


def test_top_fraction_focuses_on_the_worst_tokens(critic):
    focused = VJEPA2Critic(critic.model, top_fraction=0.1)
    clip = random_clip(24)
    assert focused.score(clip).surprise > critic.score(clip).surprise
    assert focused.score(clip).options.token_reduce == "topk:0.1"


def test_top_token_mean_averages_the_largest_fraction_rounded_up():
    from hybridgen.critics.vjepa2 import top_token_mean

    errors = torch.tensor([[1.0, 5.0, 2.0, 4.0, 3.0], [0.0, 0.0, 0.0, 0.0, 10.0]])  # (windows, tokens)
    torch.testing.assert_close(top_token_mean(errors, None), torch.tensor([3.0, 2.0]))
    torch.testing.assert_close(top_token_mean(errors, 0.3), torch.tensor([4.5, 5.0]))  # ceil(1.5) = 2 tokens
    # never fewer than one token
    torch.testing.assert_close(top_token_mean(errors, 0.01), torch.tensor([5.0, 10.0]))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window": 15}, "multiple of the tubelet"),
        ({"window": 8, "context": 8}, "less than window"),
        ({"aggregate": "median"}, "aggregate"),
        ({"top_fraction": 0.0}, "top_fraction"),
        ({"batch_size": 2.5}, "batch_size=2.5 must be an integer"),
    ],
)
def test_bad_critic_options(critic, options, message):
    with pytest.raises(ValueError, match=message):
        VJEPA2Critic(critic.model, **options)


def test_a_clip_frame_rate_must_be_a_number(critic):
    with pytest.raises(TypeError, match="fps must be a number of frames per second"):
        critic.with_options(fps=8.0).score(np.zeros((8, 32, 32, 3), np.float32), fps="8")


def test_critic_needs_a_vjepa2_model():
    with pytest.raises(TypeError, match="VJEPA2Model"):
        VJEPA2Critic(torch.nn.Linear(2, 2))


def test_backward_predictions_never_see_the_past():
    critic = VJEPA2Critic(tiny_vjepa2_model(seed=0), direction="backward")
    clip = torch.from_numpy(random_clip(16)).permute(0, 3, 1, 2)
    changed = clip.clone()
    changed[: 16 - critic.options.context] = torch.rand_like(changed[: 16 - critic.options.context])
    with torch.no_grad():
        before, after = critic.window_outputs([clip, changed])
    assert torch.equal(before.predictions, after.predictions)
    assert not torch.equal(before.token_errors, after.token_errors)
    assert before.target_offsets.tolist() == [0, 2, 4, 6]


def test_both_directions_score_the_union_of_their_tokens(critic):
    both = VJEPA2Critic(critic.model, direction="both")
    backward = VJEPA2Critic(critic.model, direction="backward")
    clip = random_clip(24)
    report = both.score(clip)
    assert report.options.direction == "both"
    assert report.token_errors.shape == (2, 8, critic.grid, critic.grid)
    assert report.target_offsets.tolist() == [8, 10, 12, 14, 0, 2, 4, 6]
    expected = (critic.score(clip).surprise + backward.score(clip).surprise) / 2
    assert report.surprise == pytest.approx(expected, rel=1e-5)
    assert np.isfinite(report.frame_surprise()).all()  # every frame is predicted from one side or the other


def test_with_options_shares_the_model_and_changes_only_what_is_named(critic):
    picky = critic.with_options(top_fraction=0.1, aggregate="max")
    assert picky.model is critic.model and picky.batch_size == critic.batch_size
    assert (picky.options.top_fraction, picky.options.aggregate) == (0.1, "max")
    unchanged = {k: v for k, v in critic.options.to_dict().items() if k not in ("top_fraction", "aggregate")}
    assert {k: picky.options.to_dict()[k] for k in unchanged} == unchanged
    assert (critic.options.top_fraction, critic.options.aggregate) != (
        0.1,
        "max",
    )  # the original is left as it was
    with pytest.raises(TypeError):
        critic.with_options(top_fractoin=0.1)


def test_mirror_averages_the_token_errors_of_both_views_at_the_same_positions(critic):
    both = critic.with_options(direction="both")
    mirrored = both.with_options(mirror=True)
    clip = random_clip(16, seed=3)
    flipped = np.ascontiguousarray(clip[:, :, ::-1])
    plain, report = both.score(clip), mirrored.score(clip)
    # the mirror image's token map, flipped back onto the clip's token positions
    aligned = both.score(flipped).token_errors[..., ::-1]
    assert report.options.mirror and not plain.options.mirror
    np.testing.assert_allclose(report.token_errors, (plain.token_errors + aligned) / 2, rtol=1e-5, atol=1e-6)
    assert mirrored.score(flipped).surprise == pytest.approx(report.surprise, rel=1e-5)  # symmetric by design
    assert mirrored.surprise(torch.from_numpy(clip).permute(0, 3, 1, 2)).item() == pytest.approx(
        report.surprise, rel=1e-5
    )
    with pytest.raises(ValueError, match="mirror"):
        critic.with_options(mirror="yes")


@pytest.mark.slow
def test_shifted_views_average_their_token_errors_with_the_plain_view(critic):
    both = critic.with_options(direction="both")
    shifted = both.with_options(shifts=[(0, 3), (-2, 0)])
    size = critic.crop_size
    clip = random_clip(16, height=size, width=size, seed=4)  # at the crop size: the critic does not resize it
    # the same translations by hand: content moved right 3 / up 2, the uncovered border repeating the edge
    right = np.concatenate([np.repeat(clip[:, :, :1], 3, axis=2), clip[:, :, :-3]], axis=2)
    up = np.concatenate([clip[:, 2:], np.repeat(clip[:, -1:], 2, axis=1)], axis=1)
    report = shifted.score(clip)
    expected = (
        both.score(clip).token_errors + both.score(right).token_errors + both.score(up).token_errors
    ) / 3
    np.testing.assert_allclose(report.token_errors, expected, rtol=1e-5, atol=1e-6)
    assert report.options.shifts == ((0, 3), (-2, 0)) and report.to_dict()["shifts"] == [[0, 3], [-2, 0]]
    assert shifted.surprise(torch.from_numpy(clip).permute(0, 3, 1, 2)).item() == pytest.approx(
        report.surprise, rel=1e-5
    )
    with_mirror = shifted.with_options(mirror=True)  # every view is also scored mirrored: six in all
    flipped = np.ascontiguousarray(clip[:, :, ::-1])
    mirror_views = [
        both.score(flipped),
        both.score(right[:, :, ::-1].copy()),
        both.score(up[:, :, ::-1].copy()),
    ]
    expected_mirrored = (3 * expected + sum(view.token_errors[..., ::-1] for view in mirror_views)) / 6
    np.testing.assert_allclose(with_mirror.score(clip).token_errors, expected_mirrored, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "shifts, message",
    [
        ("4", "list of"),
        ([(0, 0)], "plain view is always scored"),
        ([(0, 4, 1)], "not a \\(dy, dx\\) pair"),
        ([(0, 1.5)], "whole pixels"),
        ([(0, 4), (0, 4)], "twice"),
    ],
)
def test_bad_shifts_get_one_clear_error(critic, shifts, message):
    with pytest.raises(ValueError, match=message):
        critic.with_options(shifts=shifts)
    with pytest.raises(ValueError, match="less than a patch"):  # errors are averaged at the same token
        critic.with_options(shifts=[(0, critic.patch_size)])
    critic.with_options(shifts=[(0, critic.patch_size - 1), (1 - critic.patch_size, 0)])


def test_scoring_options_are_described_once():
    options = ScoringOptions(
        window=8, context=4, direction="both", shifts=[[0, 4]], image_mean=[0.5, 0.5, 0.5]
    )
    assert options.shifts == ((0, 4),) and options.image_mean == (0.5, 0.5, 0.5)
    assert ScoringOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    with pytest.raises(TypeError, match="unknown scoring options \\['windw'\\]"):
        options.replace(windw=4)
    with pytest.raises(ValueError, match="critic_config.json has unknown critic settings \\['windw'\\]"):
        ScoringOptions.from_dict({"windw": 4}, "critic_config.json")
    with pytest.raises(ValueError, match="aggregate='median'"):
        ScoringOptions(aggregate="median")
    # the CLI's flags take their help from the options
    from hybridgen.cli import SCORING_FLAGS, build_parser

    score_help = " ".join(build_parser()._subparsers._group_actions[0].choices["score"].format_help().split())
    for name in SCORING_FLAGS:
        assert " ".join(ScoringOptions.help(name).split()) in score_help


def test_a_critic_fills_in_its_model_defaults(critic):
    assert ScoringOptions().window is None
    assert (critic.options.window, critic.options.context, critic.options.stride) == (16, 8, 8)
    assert critic.options.resize_to == critic.crop_size
    with pytest.raises(ValueError, match="multiple of the tubelet size"):
        critic.with_options(window=7)
    report = critic.score(torch.rand(16, 3, 32, 32))
    assert report.options is critic.options and report.to_dict()["token_reduce"] == "mean"


def test_score_file_decodes_a_frame_at_a_time_and_matches_score(critic, tmp_path):
    from hybridgen.video import read_video, write_video

    clip = np.random.default_rng(4).random((20, 48, 64, 3), dtype=np.float32)
    path = write_video(clip, tmp_path / "clip.mp4", fps=10)
    crops, fps = critic.read_crops(path)
    assert crops.dtype == np.uint8 and crops.shape == (20, 32, 32, 3) and fps == 10
    decoded, _ = read_video(path)
    expected = critic.score(decoded, fps=10)
    streamed = critic.score_file(path)
    assert streamed.surprise == pytest.approx(expected.surprise, rel=1e-3)  # crops rounded to uint8
    np.testing.assert_array_equal(streamed.frame_indices, expected.frame_indices)
    resampled = critic.with_options(fps=5)
    assert resampled.score_file(path).surprise == pytest.approx(
        resampled.score(decoded, fps=10).surprise, rel=1e-3
    )
    with pytest.raises(ValueError, match=r"uint8 \(T, 32, 32, 3\) crops"):
        critic.score_crops(crops.astype(np.float32))
    short = write_video(clip[:3], tmp_path / "short.mp4")
    with pytest.raises(ValueError, match=r"short\.mp4: clip has 3 frames"):
        critic.score_file(short)


def test_read_crops_memory_stays_flat_in_clip_length(critic, tmp_path):
    """Decoded frames are cropped as they come: numpy's peak allocation (tracemalloc) barely grows from a 40- to
    a 160-frame clip of 240x320 frames, where holding the frames would take 4x as much (37 MB as uint8)."""
    import tracemalloc

    from hybridgen.video import write_video

    def moving_square(num_frames):
        frames = np.zeros((num_frames, 240, 320, 3), np.uint8)
        for t in range(num_frames):
            frames[t, 100:140, 2 * t : 2 * t + 40] = 255
        return frames

    peaks = []
    for num_frames in (40, 160):
        path = write_video(moving_square(num_frames), tmp_path / f"{num_frames}.mp4")
        tracemalloc.start()
        crops, _ = critic.read_crops(path)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert len(crops) == num_frames
    clip_bytes = 160 * 240 * 320 * 3
    assert peaks[1] < 1.5 * peaks[0] and peaks[1] < clip_bytes / 2, (peaks, clip_bytes)
