"""Copy a trained toy-world model into the package, with a model card, so the name `toyworld` resolves to it.

    python scripts/bundle_toyworld.py critic runs/toyworld-critic [--results results.json]
    python scripts/bundle_toyworld.py generator runs/toyworld-generator [--results results.json]

The card records the recipe (the training log's config), the training time, and — given the JSON written by
`benchmarks/toyworld_critic.py` or `benchmarks/toyworld_best_of_n.py` — the measured scores.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from hybridgen.critics.error_head import ERROR_HEAD_FILE
from hybridgen.models import WEIGHTS_DIR
from hybridgen.toyworld.evaluation import QUICK_VIOLATION_SCORING, VIOLATION_SCORING
from hybridgen.training.checkpoints import replacing_directory
from hybridgen.training.core import training_runs, training_seconds
from hybridgen.training.critic import EVAL_SEED
from hybridgen.training.error_head import CALIBRATION_SEED
from hybridgen.training.state import load_state, state_exists

# what each role ships: files, and for the generator the diffusers component folders (not checkpoint/ or the log)
FILES = {
    "critic": ("config.json", "model.safetensors", "critic_config.json", ERROR_HEAD_FILE),
    "generator": ("model_index.json", "call_defaults.json"),
}
GENERATOR_COMPONENTS = ("scheduler", "text_encoder", "tokenizer", "transformer", "vae")


def training_time(log: list[dict]) -> str:
    """Wall time of a training log, per resumed segment: the `seconds` of each row count from its run's start."""
    segments = training_runs(log)
    total = training_seconds(log) / 60
    if len(segments) == 1:
        return f"{total:.1f} minutes of wall time"
    parts = [
        f"steps {segment[0]['step']}-{segment[-1]['step']} in {segment[-1]['seconds'] / 60:.1f} min"
        + (f" (resumed; lr restarting at {segment[0]['lr']:.1e})" if "lr" in segment[0] and index else "")
        for index, segment in enumerate(segments)
    ]
    return f"{total:.1f} minutes of wall time in {len(segments)} runs: " + ", ".join(parts)


def training_stages(run_dir: Path, earlier_stages: Sequence[Path] = ()) -> list[tuple[Path, dict]]:
    """The run directories of a staged training with their trainer states, oldest first, ending with `run_dir`.

    Given `earlier_stages` they are taken as they are; otherwise each run's recorded `init` is followed back while it
    names a training run directory (one with a trainer state in `checkpoint/`), as `make toyworld-critic` chains
    them. Each trainer state is read once, with `load_state` (JSON + safetensors): a run whose checkpoint holds only
    the old pickled `trainer_state.pt` is refused, never unpickled.
    """
    if earlier_stages:
        return [(Path(stage), _trainer_state(Path(stage))) for stage in (*earlier_stages, run_dir)]
    stages = [(run_dir, _trainer_state(run_dir))]
    while True:
        init = stages[0][1]["config"].get("init")
        known = [stage for stage, _ in stages]
        if not init or Path(init) in known or not state_exists(Path(init) / "checkpoint"):
            return stages
        stages.insert(0, (Path(init), _trainer_state(Path(init))))


def _trainer_state(run_dir: Path) -> dict:
    """The trainer state of the run in `run_dir` (its config and machine feed the card)."""
    checkpoint = run_dir / "checkpoint"
    if not state_exists(checkpoint):
        raise FileNotFoundError(
            f"{run_dir} has no trainer state in {checkpoint}: is it a training run directory?"
        )
    return load_state(checkpoint)


def _training_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "training_log.jsonl").read_text().splitlines()]


def _machine(state: dict) -> str:
    machine = state.get("machine")  # recorded since 2026-12-03
    if machine is None:
        return ""
    where = f"a {machine['cpu_cores']}-core CPU" if machine["device"] == "cpu" else machine["device"]
    return f", at {machine['threads']} torch threads on {where} (the last run's)"


def stage_recipe(state: dict, log: list[dict], tubelet_size: int) -> list[str]:
    """The recipe lines of one training run (its trainer state and log): data, start, optimisation, masks, time."""
    config = state["config"]
    data = config.get("data", "toyworld")  # runs before 2026-12-03 trained on the toy world only
    source = (
        f"toy-world clips rendered on the fly (seed {config['seed']} onward)"
        if data == "toyworld"
        else f"the videos under `{data}`"
    )
    return [
        f"- Data: {source}, random {config['window']}-frame windows, random left-right mirror. Plausible clips only.",
        *(
            [f"- Initialised from `{config['init']}` (the weights are that critic's, trained further here)."]
            if config.get("init")
            else ["- Initialised from random weights."]
        ),
        f"- {config['steps']} steps of batch {config['batch_size']}; AdamW, lr {config['lr']} (warm-up "
        f"{config['warmup_steps']}, cosine to {config['min_lr']}), weight decay {config['weight_decay']}; EMA target"
        f" encoder, momentum {config['ema_start']} -> {config['ema_end']}.",
        f"- Masks: forward and backward future prediction (context = 1..{config['window'] // tubelet_size - 1} leading or "
        "trailing tubelets, encoded alone); L1 to layer-normed EMA-encoder targets, blended "
        f"{1 - config['hard_token_weight']:.1f}/{config['hard_token_weight']:.1f} with the mean of each clip's "
        f"hardest {config['hard_token_fraction']:.0%} tokens.",
        f"- Training time: {training_time(log)}{_machine(state)}; final loss {log[-1]['loss']:.4f}, embedding spread "
        f"{log[-1]['spread']:.3f}.",
    ]


def critic_card(run_dir: Path, results: dict | None, earlier_stages: Sequence[Path] = ()) -> str:
    """The model card of the critic trained in `run_dir` (and the `training_stages` before it)."""
    runs = [(stage, state, _training_log(stage)) for stage, state in training_stages(run_dir, earlier_stages)]
    scoring = json.loads((run_dir / "critic_config.json").read_text())
    model_config = json.loads((run_dir / "config.json").read_text())
    parameters = (run_dir / "model.safetensors").stat().st_size / 4 / 1e6
    lines = [
        "# toyworld critic",
        "",
        "A V-JEPA 2-architecture world model (transformers `VJEPA2Model`) trained by `hybridgen train-critic` on",
        "plausible clips of hybridgen's toy physics world (balls under gravity in a box, 64x64, 8 fps). It never saw",
        'a physics violation. Load it with `VJEPA2Critic.from_pretrained("toyworld")` or `--critic toyworld`.',
        "",
        "## Model",
        f"- {parameters:.2f}M parameters (float32 safetensors): crop {model_config['crop_size']}, patch "
        f"{model_config['patch_size']}, tubelet {model_config['tubelet_size']}, encoder "
        f"{model_config['hidden_size']} wide x {model_config['num_hidden_layers']} layers, predictor "
        f"{model_config['pred_hidden_size']} wide x {model_config['pred_num_hidden_layers']} layers.",
        f"- Scoring defaults (critic_config.json): {json.dumps(scoring_options(scoring))}.",
        "  Violation pairs are scored with `hybridgen.toyworld.evaluation.VIOLATION_SCORING` instead:"
        f" {json.dumps(VIOLATION_SCORING)}.",
        f"- Expected-error head (`{ERROR_HEAD_FILE}`, for `relative=True`): a small MLP fitted by",
        f"  `hybridgen calibrate-critic` on plausible clips (seeds {CALIBRATION_SEED:,}+), the model frozen; it predicts the",
        "  L1 error each predicted token usually has, so relative surprise is the error in units of that.",
        "",
        "## Recipe",
    ]
    tubelet = model_config["tubelet_size"]
    if len(runs) == 1:
        lines += stage_recipe(*runs[0][1:], tubelet)
    else:
        lines.append(f"{len(runs)} training runs, each started from the one before.")
        for number, (stage, state, log) in enumerate(runs, 1):
            lines += ["", f"### Stage {number}: `{stage}`", *stage_recipe(state, log, tubelet)]
        lines.append("")
    lines.append("- Reproduce: `make toyworld-critic`.")
    watched = [(stage, [row for row in log if "eval" in row]) for stage, _, log in runs]
    if any(evaluations for _, evaluations in watched):
        pairs = sorted({state["config"].get("eval_pairs", 8) for _, state, _ in runs})
        lines += [
            "",
            "## Violation-pair accuracy watched during training",
            "",
            f"Mean over kinds, {' or '.join(map(str, pairs))} pairs per kind (seeds {EVAL_SEED:,}+), scored with the "
            "trainer's violation-pair options"
            f" (`QUICK_VIOLATION_SCORING`: {json.dumps(QUICK_VIOLATION_SCORING)}).",
            "",
        ]
        lines += [
            f"- `{stage}`: "
            + ", ".join(f"step {row['step']} {row['eval']['mean']:.3f}" for row in evaluations)
            for stage, evaluations in watched
            if evaluations
        ]
    if results:
        lines += ["", f"## Measured ({results['pairs']} pairs per kind, `benchmarks/toyworld_critic.py`)", ""]
        names = list(results["results"])
        lines += ["| kind | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for kind in results["results"][names[0]]:
            cells = [f"{results['results'][n][kind]['accuracy']:.3f}" for n in names]
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Pairwise accuracy: P(impossible clip more surprising than its plausible twin); pair seeds "
            f"{results.get('seed', 1_000_000):,}+;",
            f"scoring options {json.dumps(scoring_options(results['scoring']))}, chosen among a few variants on other pairs (seeds",
            "2,000,000+); see BENCHMARKS.md.",
        ]
    return "\n".join(lines) + "\n"


def scoring_options(scoring: dict) -> dict:
    """A critic's scoring config without its image statistics, for a card."""
    return {key: value for key, value in scoring.items() if key not in ("image_mean", "image_std")}


def generator_card(run_dir: Path, results: dict | None) -> str:
    log, state = _training_log(run_dir), _trainer_state(run_dir)
    config = state["config"]
    call = json.loads((run_dir / "call_defaults.json").read_text())
    sizes = {
        name: sum(f.stat().st_size for f in (run_dir / name).glob("*.safetensors")) / 1e6
        for name in ("vae", "transformer", "text_encoder")
    }
    encode = next((row for row in log if row.get("stage") == "encode"), {})
    transformer_losses = [row["loss"] for row in log if row.get("stage") == "transformer"]
    lines = [
        "# toyworld generator",
        "",
        "A tiny text-to-video `WanPipeline` (diffusers) trained by `hybridgen train-generator` on hybridgen's toy",
        "physics world: prompts like 'a red ball bouncing', 'two blue balls falling', 'three balls bouncing'. Every",
        "part is a standard class (`AutoencoderKLWan`, `WanTransformer3DModel`, `UMT5EncoderModel`,",
        "`FlowMatchEulerDiscreteScheduler`), so it loads with `DiffusionPipeline.from_pretrained` and",
        '`HybridPipeline.from_pretrained("toyworld")` drives it through the same code path as any Wan checkpoint.',
        "",
        "## Model",
        f"- Clips: {call['pipeline_call']['num_frames']} frames at {call['pipeline_call']['width']}x"
        f"{call['pipeline_call']['height']}, {call['fps']:g} fps (`call_defaults.json` holds these and the"
        f" sampling defaults: {call['pipeline_call']['num_inference_steps']} steps, guidance scale "
        f"{call['pipeline_call']['guidance_scale']}).",
        f"- Latents: the VAE compresses {config['vae']['scale_factor_spatial']}x in space and"
        f" {config['vae']['scale_factor_temporal']}x in time, with {config['vae']['z_dim']} channels.",
        f"- float32 safetensors: VAE {sizes['vae']:.1f} MB, transformer {sizes['transformer']:.1f} MB (EMA weights),"
        f" text encoder {sizes['text_encoder']:.1f} MB (a tiny random UMT5, frozen; the tokenizer is built"
        " locally).",
        "",
        "## Recipe",
        f"- Data: {config['num_clips']} toy-world clips (seeds {config['seed']} onward), half 'bouncing', half "
        "'falling', 1-3 balls, captions from the world's own describer.",
        f"- Stage 1, VAE: {config['vae_steps']} steps of batch {config['vae_batch_size']} ({config['vae_frames']}"
        f"-frame windows), L1 + MSE with ball pixels weighted x{config['ball_weight']:g}, KL weight "
        f"{config['kl_weight']:g}. Held-out reconstruction: {_format_reconstruction(encode)}.",
        f"- Stage 2, transformer: {config['steps']} steps of batch {config['batch_size']}, flow matching "
        f"(logit-normal timesteps, shift {config['flow_shift']:g}), lr {config['lr']:g} cosine to "
        f"{config['min_lr']:g}, caption dropout {config['caption_dropout']:g}, EMA {config['ema_decay']:g}. Final "
        f"loss (mean of the last 50 steps): {sum(transformer_losses[-50:]) / max(1, len(transformer_losses[-50:])):.4f}.",
        f"- Training time: {training_time(log)}{_machine(state)}.",
        "- Reproduce: `make toyworld-generator`.",
        "",
        "It is imperfect the way real generators are: balls sometimes blur, split, flicker or drift. That spread is",
        "what the bundled critic ranks.",
    ]
    if results:
        lines += ["", "## Measured (`benchmarks/toyworld_best_of_n.py`)", ""] + results_lines(results)
    return "\n".join(lines) + "\n"


def _format_reconstruction(encode: dict) -> str:
    metrics = encode.get("reconstruction")
    if not metrics:
        return "not recorded"
    return ", ".join(f"{name} {value:.3f}" for name, value in metrics.items())


def results_lines(results: dict) -> list[str]:
    """Best-of-N and prompt-following lines from `benchmarks/toyworld_best_of_n.py` JSON."""
    lines = [f"{results['groups']} prompt x seed groups, {results['max_candidates']} candidates each."]
    if "scoring" in results:
        weights = f" (weights sha256 {results['critic_weights']}...)" if "critic_weights" in results else ""
        lines.append(
            f"Best = least surprising, critic `{results['critic']}`{weights} scoring {json.dumps(results['scoring'])}."
        )
    lines += [
        "",
        "| N | best-of-N physics error | average candidate | random pick | oracle (lowest error) | p (random <= best) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["best_of_n"]:
        lines.append(
            f"| {row['n']} | {row['best']:.4f} | {row['average']:.4f} | {row['random']:.4f} | {row['oracle']:.4f} |"
            f" {row['p_random']:.3f} |"
        )
    following = results["prompt_following"]
    lines += [
        "",
        f"Prompt following over all candidates: count accuracy {following['count']:.2f}, colour accuracy "
        f"{following['colour']:.2f} (prompts naming a colour).",
    ]
    return lines


def bundle(role: str, run_dir: Path, results: dict | None, earlier_stages: Sequence[Path] = ()) -> Path:
    if role not in FILES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(FILES)}.")
    if earlier_stages and role != "critic":
        raise ValueError(
            "earlier_stages describe a critic's staged training; the generator trains in one run."
        )
    folders = GENERATOR_COMPONENTS if role == "generator" else ()
    missing = [name for name in FILES[role] if not (run_dir / name).is_file()]
    missing += [name + "/" for name in folders if not (run_dir / name).is_dir()]
    if missing:
        hint = (
            f" (fit it with `hybridgen calibrate-critic {run_dir} -o {run_dir}`)"
            if ERROR_HEAD_FILE in missing
            else ""
        )
        raise FileNotFoundError(f"{run_dir} lacks {', '.join(missing)}{hint}: is it a finished training run?")
    target = WEIGHTS_DIR / role
    with replacing_directory(target) as temporary:
        for name in FILES[role]:
            shutil.copy2(run_dir / name, temporary / name)
        for name in folders:
            shutil.copytree(run_dir / name, temporary / name)
        card = (
            critic_card(run_dir, results, earlier_stages)
            if role == "critic"
            else generator_card(run_dir, results)
        )
        (temporary / "README.md").write_text(card)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("role", choices=sorted(FILES))
    parser.add_argument("run_dir", type=Path, help="output directory of the training command")
    parser.add_argument(
        "--results",
        type=Path,
        help="benchmark JSON for the card (benchmarks/toyworld_critic.py or benchmarks/toyworld_best_of_n.py)",
    )
    parser.add_argument(
        "--earlier-stages",
        nargs="+",
        type=Path,
        default=[],
        help="critic only: the training runs before RUN_DIR, oldest first, when its --init does not name them"
        " (default: follow each run's --init while it is a run directory)",
    )
    args = parser.parse_args()
    results = json.loads(args.results.read_text()) if args.results else None
    print(f"bundled {bundle(args.role, args.run_dir, results, args.earlier_stages)}")


if __name__ == "__main__":
    main()
