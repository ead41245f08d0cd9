"""strategy="search" and strategy="guidance" on tiny random Wan, LTX and CogVideoX pipelines."""

import numpy as np
import pytest
import torch
from diffusers import CogVideoXDPMScheduler, DDIMScheduler, FlowMatchEulerDiscreteScheduler

from hybridgen import HybridPipeline, VJEPA2Critic
from hybridgen.pipelines.denoising import predict_clean_latents, recording_clean_latents, timestep_window
from hybridgen.pipelines.guidance import GuidanceOptions, PhysicsGuidance
from hybridgen.pipelines.latents import decode_latents
from hybridgen.pipelines.search import SearchOptions
from hybridgen.testing import (
    TINY_CALL_KWARGS,
    tiny_cogvideox_pipeline,
    tiny_pipeline,
    tiny_vjepa2_model,
    tiny_wan_pipeline,
)

FAMILIES = ("wan", "ltx", "cogvideox")
STEPS = 8


@pytest.fixture(scope="module")
def pipes(critic):
    return {family: HybridPipeline(tiny_pipeline(family), critic) for family in FAMILIES}


def kwargs(family):
    return dict(TINY_CALL_KWARGS[family], num_inference_steps=STEPS)


def run(pipe, family, seed=0, **options):
    options.setdefault("num_candidates", 4)
    generator = torch.Generator().manual_seed(seed)
    return pipe("a red ball", generator=generator, show_progress=False, **kwargs(family), **options)


# ----------------------------------------------------------------------------------------- x̂0 from the scheduler
def test_clean_estimate_flow_matching():
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(10)
    x0, noise = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    for index in (0, 4, 9):
        scheduler._step_index = index
        sigma = scheduler.sigmas[index]
        x_t = (1 - sigma) * x0 + sigma * noise
        velocity = noise - x0  # what a perfect flow model predicts
        estimate = predict_clean_latents(scheduler, velocity, scheduler.timesteps[index], x_t)
        torch.testing.assert_close(estimate, x0)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction", "sample"])
def test_clean_estimate_ddpm_style(prediction):
    scheduler = DDIMScheduler(prediction_type=prediction)
    x0, noise = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    for t in (999, 500, 20):
        alpha = scheduler.alphas_cumprod[t]
        x_t = alpha.sqrt() * x0 + (1 - alpha).sqrt() * noise
        output = {
            "epsilon": noise,
            "v_prediction": alpha.sqrt() * noise - (1 - alpha).sqrt() * x0,
            "sample": x0,
        }
        estimate = predict_clean_latents(scheduler, output[prediction], torch.tensor(t), x_t)
        torch.testing.assert_close(estimate, x0, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------- hooks on a real pipeline
@pytest.mark.parametrize("family", FAMILIES)
def test_segments_continue_the_trajectory_exactly(pipes, family):
    """Steps [0, 3) then [3, 8) from the returned latents give the uninterrupted clip; x̂0 decodes like the
    pipeline decodes."""
    pipeline = pipes[family].pipeline
    call = dict(kwargs(family), prompt="a red ball")
    whole = pipeline(**call, generator=torch.Generator().manual_seed(5), output_type="np").frames[0]
    with timestep_window(pipeline.scheduler, 0, 3), recording_clean_latents(pipeline.scheduler) as record:
        latents = pipeline(**call, generator=torch.Generator().manual_seed(5), output_type="latent").frames
    assert record.step == 2  # three scheduler steps seen
    with timestep_window(pipeline.scheduler, 3, STEPS):
        rest = pipeline(**call, latents=latents, generator=torch.Generator().manual_seed(5), output_type="np")
    np.testing.assert_allclose(rest.frames[0], whole, atol=1e-5)
    assert not hasattr(pipeline.scheduler, "__dict__") or "step" not in vars(pipeline.scheduler)  # unhooked

    # decode_latents of final latents == the pipeline's own decode
    final = pipeline(**call, generator=torch.Generator().manual_seed(5), output_type="latent").frames
    sizes = {name: call[name] for name in ("num_frames", "height", "width")}
    frames = decode_latents(pipeline, final, **sizes)[0].permute(0, 2, 3, 1).detach().numpy()  # (F, H, W, 3)
    np.testing.assert_allclose(frames, whole, atol=1e-4)


# ----------------------------------------------------------------------------------------------------- search
@pytest.mark.parametrize("family", FAMILIES)
def test_search_prunes_and_counts_every_step(pipes, family):
    pipe = pipes[family]
    out = run(pipe, family, strategy="search")
    # 4 trajectories for 2 steps, 2 for 2 steps, 1 for the last 4: checkpoints at 25% and 50% of 8 steps
    assert out.denoising_steps == 4 * 2 + 2 * 2 + 1 * 4
    assert [entry["step"] for entry in out.search_history] == [2, 4]
    assert [len(entry["seeds"]) for entry in out.search_history] == [4, 2]
    for entry in out.search_history:  # the least surprising x̂0 survive
        order = np.argsort(entry["surprise"], kind="stable")[: len(entry["kept"])]
        assert sorted(entry["kept"]) == sorted(entry["seeds"][i] for i in order)
    assert out.seeds == out.search_history[-1]["kept"] and len(out.candidates) == 1
    assert out.candidates[0].shape == (17, 32, 32, 3)
    # a survivor is exactly the clip best-of-N would have made from its seed
    reference = run(pipe, family)
    index = reference.seeds.index(out.seeds[0])
    np.testing.assert_allclose(out.candidates[0], reference.candidates[index], atol=1e-5)


def test_search_is_deterministic_and_resampling_uses_the_generator(pipes):
    first, second = run(pipes["wan"], "wan", strategy="search"), run(pipes["wan"], "wan", strategy="search")
    assert first.search_history == second.search_history
    np.testing.assert_array_equal(first.video, second.video)
    options = SearchOptions(checkpoints=(0.5,), keep=0.5, temperature=1.0)
    draws = {
        tuple(run(pipes["wan"], "wan", seed=0, strategy="search", search=options).seeds) for _ in range(2)
    }
    assert len(draws) == 1  # same generator, same resampling draw
    out = run(pipes["wan"], "wan", strategy="search", search=options, num_candidates=6)
    assert out.denoising_steps == 6 * 4 + 3 * 4 and len(out.candidates) == 3


def test_search_refuses_a_multistep_scheduler(critic):
    pipe = HybridPipeline(tiny_wan_pipeline(scheduler="unipc"), critic)
    with pytest.raises(ValueError, match="without multistep history, got UniPCMultistepScheduler"):
        run(pipe, "wan", strategy="search")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"checkpoints": ()}, "strictly increasing"),
        ({"checkpoints": (0.5, 0.25)}, "strictly increasing"),
        ({"checkpoints": (1.0,)}, "strictly increasing"),
        ({"keep": 0}, "keep must be"),
        ({"temperature": -1.0}, "temperature must be"),
    ],
)
def test_search_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        SearchOptions(**options)
    with pytest.raises(TypeError, match="checkpoints must be a tuple of fractions"):
        SearchOptions(checkpoints=0.5)


def test_strategy_options_must_match_the_strategy(pipes):
    with pytest.raises(ValueError, match="strategy is 'rerank'; pass strategy='search'"):
        run(pipes["wan"], "wan", search=SearchOptions())
    with pytest.raises(TypeError, match="guidance= takes a GuidanceOptions"):
        run(pipes["wan"], "wan", strategy="guidance", guidance={"scale": 1.0})


# --------------------------------------------------------------------------------------------------- guidance
@pytest.mark.parametrize("family", FAMILIES)
def test_guidance_changes_the_latents_and_keeps_the_step_count(pipes, family):
    pipe = pipes[family]
    plain = run(pipe, family, num_candidates=2)
    guided = run(pipe, family, num_candidates=2, strategy="guidance", guidance=GuidanceOptions(scale=0.5))
    assert guided.denoising_steps == plain.denoising_steps == 2 * STEPS
    assert guided.seeds == plain.seeds
    assert all(np.abs(g - p).max() > 1e-3 for g, p in zip(guided.candidates, plain.candidates))
    guided_steps = sorted({entry["step"] for entry in guided.guidance_history})
    assert guided_steps == [0, 2, 4, 6]  # the defaults: every 2nd step of all 8
    assert guided.best_index == int(np.argmin(guided.surprises))
    again = run(pipe, family, num_candidates=2, strategy="guidance", guidance=GuidanceOptions(scale=0.5))
    np.testing.assert_array_equal(again.video, guided.video)


def test_the_push_lowers_surprise(pipes, critic):
    """One push along -g/rms(g), small enough to be in the linear regime, lowers the critic's surprise of x̂0."""
    pipeline = pipes["wan"].pipeline
    sizes = {"num_frames": 17, "height": 32, "width": 32}
    clean = pipeline(
        "a red ball", **kwargs("wan"), generator=torch.Generator().manual_seed(1), output_type="latent"
    ).frames
    guide = PhysicsGuidance(pipeline, critic, None, GuidanceOptions(scale=1e-2), num_steps=STEPS, sizes=sizes)
    push, before = guide.push(clean)
    with torch.no_grad():
        after = critic.surprise(decode_latents(pipeline, clean - push, **sizes))
    assert push.pow(2).mean().sqrt() == pytest.approx(1e-2, rel=1e-3)
    assert float(after[0]) < before[0]


def test_guidance_objective_mean_rescores_with_the_same_model(pipes):
    """objective="mean" pushes against the mean over all tokens and windows, whatever the critic's own options;
    objective="critic" uses them as they are."""
    pipeline = pipes["wan"].pipeline
    sizes = {"num_frames": 17, "height": 32, "width": 32}
    picky = VJEPA2Critic(tiny_vjepa2_model(seed=0), top_fraction=0.1, aggregate="max", batch_size=3)
    mean = PhysicsGuidance(pipeline, picky, None, GuidanceOptions(), num_steps=STEPS, sizes=sizes)
    assert mean.critic.model is picky.model and mean.critic.batch_size == 3
    assert (mean.critic.options.top_fraction, mean.critic.options.aggregate) == (None, "mean")
    assert (picky.options.top_fraction, picky.options.aggregate) == (
        0.1,
        "max",
    )  # the pipeline's critic is left as it was
    own = PhysicsGuidance(
        pipeline, picky, None, GuidanceOptions(objective="critic"), num_steps=STEPS, sizes=sizes
    )
    assert own.critic is picky


def test_guidance_with_a_multistep_scheduler_and_a_user_callback(critic):
    pipe = HybridPipeline(tiny_wan_pipeline(scheduler="unipc"), critic)
    seen, corrector_state = [], {}

    def callback(pipeline, step, timestep, callback_kwargs):
        seen.append(step)
        corrector_state[step] = pipeline.scheduler.last_sample is None
        assert {"prompt_embeds", "latents"} <= set(callback_kwargs)  # the caller's inputs, and guidance's
        return {}

    out = run(
        pipe,
        "wan",
        num_candidates=1,
        strategy="guidance",
        guidance=GuidanceOptions(scale=0.5, start=0.25, end=1.0, every=2),
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["prompt_embeds"],
    )
    assert seen == list(range(STEPS))
    assert [entry["step"] for entry in out.guidance_history] == [2, 4, 6]
    # after a push UniPC's corrector is switched off for one step (it would rebuild the unpushed sample)
    assert [step for step, cleared in corrector_state.items() if cleared] == [2, 4, 6]


def test_a_push_survives_a_predictor_corrector_step_only_without_its_corrector():
    """Why guidance clears `last_sample`: UniPC's corrector recomputes the current sample from the previous one, so
    a push made between steps mostly vanishes; with the corrector skipped for that step it stays."""
    scheduler = tiny_wan_pipeline(scheduler="unipc").scheduler
    push = 0.5

    def sample_after_three_steps(pushed: bool, clear: bool) -> torch.Tensor:
        scheduler.set_timesteps(8)
        sample = torch.ones(1, 4)
        for step, timestep in enumerate(scheduler.timesteps[:3]):
            model_output = -0.3 * torch.ones_like(sample)  # the same model output with or without the push
            sample = scheduler.step(model_output, timestep, sample).prev_sample
            if step == 1 and pushed:
                sample = sample - push
                if clear:
                    scheduler.last_sample = None
        return sample

    plain = sample_after_three_steps(pushed=False, clear=False)
    for clear, low, high in ((True, 0.9, 1.1), (False, -0.5, 0.5)):
        kept = float((plain - sample_after_three_steps(pushed=True, clear=clear)).mean()) / push
        assert low < kept < high, (clear, kept)


def test_recording_reads_a_callers_own_positional_step_override():
    """A caller's `step(*args, **kwargs)` wrapper names no parameters: x̂0 is read from the usual positions."""
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(4)
    class_step = scheduler.step

    def own_step(*args, **kwargs):
        return class_step(*args, **kwargs)

    scheduler.step = own_step
    sample, velocity = torch.ones(1, 4), torch.full((1, 4), 0.5)
    with recording_clean_latents(scheduler) as record:
        scheduler.step(velocity, scheduler.timesteps[0], sample)
    torch.testing.assert_close(record.latents, sample - scheduler.sigmas[0] * velocity)
    assert scheduler.step is own_step


def test_guidance_with_cogvideox_dpm_scheduler(critic):
    """CogVideoX-5b's scheduler steps as (model_output, old_pred_original_sample, t, t_back, sample): x̂0 is
    recorded from the right arguments and guidance runs; the hooks leave the scheduler as they found it."""
    pipeline = tiny_cogvideox_pipeline()
    pipeline.scheduler = CogVideoXDPMScheduler.from_config(pipeline.scheduler.config)
    own_step = pipeline.scheduler.step  # a caller's override on the instance, kept
    pipeline.scheduler.step = own_step
    out = run(HybridPipeline(pipeline, critic), "cogvideox", num_candidates=1, strategy="guidance")
    assert [entry["step"] for entry in out.guidance_history] == [0, 2, 4, 6]
    assert np.isfinite(out.video).all()
    assert vars(pipeline.scheduler)["step"] is own_step


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scale": 0}, "scale must be"),
        ({"start": 0.5, "end": 0.5}, "start < end"),
        ({"every": 0}, "every must be"),
        ({"objective": "max"}, "objective must be one of"),
    ],
)
def test_guidance_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        GuidanceOptions(**options)
