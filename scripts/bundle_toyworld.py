"""Copy a trained toy-world model into the package, with its model card, so the name `toyworld` resolves to it; and
regenerate what the bundled folders derive from their own files.

    python scripts/bundle_toyworld.py critic runs/toyworld-critic --results benchmarks/results/toyworld_critic.json
    python scripts/bundle_toyworld.py generator runs/toyworld-generator --results benchmarks/results/toyworld_best_of_n.json
    python scripts/bundle_toyworld.py regenerate [--check]

Bundling writes `bundle_record.json` next to the weights: the training record read from the run directories (per
run: the trainer's settings, where it ran, the wall time of each resumed run, the final loss, the violation-pair
watch) and the benchmark result files (under the repository, with the commands that wrote them) that the card's
measured numbers come from. The card (README.md) is rendered from the folder, that record and those files by
`hybridgen.hub`'s card functions, as `train-critic` and `train-generator` write theirs; the critic's
`video_preprocessor_config.json` is what `VJEPA2Critic.save_pretrained` writes. Hand-written notes (`note` keys of
the record, its stages and its measurements) go into the card too: edit the record, then run `regenerate`.
`regenerate --check` (and tests/test_hub.py) fail when a committed file differs from its regeneration.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from huggingface_hub import ModelCard

from hybridgen import VJEPA2Critic, hub
from hybridgen.critics.error_head import ERROR_HEAD_FILE
from hybridgen.models import CALL_DEFAULTS_FILE, VIDEO_PROCESSOR_FILE, WEIGHTS_DIR, load_video_pipeline
from hybridgen.toyworld.evaluation import QUICK_VIOLATION_SCORING, VIOLATION_SCORING
from hybridgen.toyworld.prompts import COLOUR_SHARE
from hybridgen.toyworld.violations import KIND_CATEGORY
from hybridgen.training.checkpoints import replacing_directory
from hybridgen.training.core import training_runs
from hybridgen.training.critic import EVAL_SEED
from hybridgen.training.error_head import CALIBRATION_SEED
from hybridgen.training.state import load_state, state_exists
from hybridgen.video import atomic_write_path, write_json_atomic

REPOSITORY = Path(__file__).resolve().parents[1]
NAME = "toyworld"  # the bundled name: what the cards tell users to load
LICENSE = "apache-2.0"  # the package's (pyproject.toml: Apache-2.0), as a Hub license id
RECORD_FILE, RECORD_FORMAT = "bundle_record.json", 1
ROLES = ("critic", "generator")
# what each role ships from its run: files, and for the generator the diffusers component folders (not checkpoint/
# or the log)
FILES = {
    "critic": ("config.json", "model.safetensors", "critic_config.json", ERROR_HEAD_FILE),
    "generator": ("model_index.json", CALL_DEFAULTS_FILE),
}
GENERATOR_COMPONENTS = ("scheduler", "text_encoder", "tokenizer", "transformer", "vae")
# the trainer settings a card states, kept in the record
CRITIC_SETTINGS = (
    "data", "seed", "window", "init", "steps", "batch_size", "lr", "warmup_steps", "min_lr", "weight_decay",
    "ema_start", "ema_end", "hard_token_weight", "hard_token_fraction", "eval_pairs",
)  # fmt: skip
GENERATOR_SETTINGS = (
    "num_clips", "seed", "vae_steps", "vae_batch_size", "vae_frames", "ball_weight", "kl_weight", "steps",
    "batch_size", "flow_shift", "lr", "min_lr", "caption_dropout", "ema_decay",
)  # fmt: skip


# ----------------------------------------------------------------------------- training records, read from runs


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


def time_segments(log: list[dict]) -> list[dict]:
    """The runs of a training log that resumed each other (`training_runs`): for each, its first and last step,
    its wall seconds and the learning rate it started at, where logged."""
    segments = []
    for run in training_runs(log):
        steps = [row["step"] for row in run if "step" in row]
        segment = {"steps": [steps[0], steps[-1]] if steps else None}
        segment["seconds"] = max(float(row.get("seconds", 0.0)) for row in run)
        if "lr" in run[0]:
            segment["lr"] = run[0]["lr"]
        segments.append(segment)
    return segments


def critic_stage_record(run_dir: Path, state: dict) -> dict:
    """What a critic card states about one training run: its settings, machine, time, final loss and watch."""
    log = _training_log(run_dir)
    config = state["config"]
    return {
        "run": str(run_dir),
        "config": {key: config[key] for key in CRITIC_SETTINGS if key in config},
        "machine": state.get("machine"),  # recorded since 2026-12-03
        "segments": time_segments(log),
        "final": {"loss": log[-1]["loss"], "spread": log[-1]["spread"]},
        "evaluations": [[row["step"], row["eval"]["mean"]] for row in log if "eval" in row],
    }


def critic_record(run_dir: Path, earlier_stages: Sequence[Path] = ()) -> dict:
    """The training record of the critic trained in `run_dir` and the `training_stages` before it."""
    stages = training_stages(run_dir, earlier_stages)
    return {"stages": [critic_stage_record(stage, state) for stage, state in stages]}


def generator_record(run_dir: Path) -> dict:
    """The training record of the generator trained in `run_dir`: settings, machine, time, reconstruction, loss."""
    log, state = _training_log(run_dir), _trainer_state(run_dir)
    encode = next((row for row in log if row.get("stage") == "encode"), {})
    losses = [row["loss"] for row in log if row.get("stage") == "transformer"][-50:]
    return {
        "config": {key: state["config"][key] for key in GENERATOR_SETTINGS if key in state["config"]},
        "machine": state.get("machine"),
        "segments": time_segments(log),
        "reconstruction": encode.get("reconstruction"),
        "final_loss": sum(losses) / len(losses) if losses else None,
    }


# ----------------------------------------------------------------------------- measurements, read from result files


def measurement_entry(files: Sequence[Path], root: Path = REPOSITORY) -> dict:
    """The record of one measured table: its result files (benchmark JSON) relative to `root`, the repository, and
    the commands that wrote them (the `command` each file records, where it does)."""
    relative = []
    for file in files:
        try:
            relative.append(Path(file).resolve().relative_to(root.resolve()).as_posix())
        except ValueError:
            raise ValueError(
                f"{file} is outside the repository: write or copy it under benchmarks/results/ so the card can be "
                "regenerated from it."
            ) from None
    commands = [json.loads((root / name).read_text()).get("command") for name in relative]
    return {"files": relative, "commands": [command for command in commands if command]}


def read_measurement(entry: dict, root: Path = REPOSITORY) -> dict:
    """The results of one measured table: its files' JSON as one (the first file's, with the other files' columns
    appended; they must share pairs, seeds and scoring), with the entry's files, commands and note."""
    contents = [json.loads((root / name).read_text()) for name in entry["files"]]
    merged = dict(contents[0])
    for name, other in zip(entry["files"][1:], contents[1:]):
        for key in ("pairs", "seed", "scoring"):
            if other.get(key) != merged.get(key):
                raise ValueError(
                    f"{name}: its {key} differs from {entry['files'][0]}'s; they make one table."
                )
        new = {column: rows for column, rows in other["results"].items() if column not in merged["results"]}
        merged["results"] = {**merged["results"], **new}
    return {**merged, **{key: entry[key] for key in ("files", "commands", "note") if entry.get(key)}}


# ----------------------------------------------------------------------------- card text


def describe_time(segments: list[dict]) -> str:
    """Wall time of a training, per resumed run."""
    total = sum(segment["seconds"] for segment in segments) / 60
    if len(segments) == 1:
        return f"{total:.1f} minutes of wall time"
    parts = [
        f"steps {segment['steps'][0]}-{segment['steps'][1]} in {segment['seconds'] / 60:.1f} min"
        + (f" (resumed; lr restarting at {segment['lr']:.1e})" if "lr" in segment and index else "")
        for index, segment in enumerate(segments)
    ]
    return f"{total:.1f} minutes of wall time in {len(segments)} runs: " + ", ".join(parts)


def training_time(log: list[dict]) -> str:
    """Wall time of a training log, per resumed segment: the `seconds` of each row count from its run's start."""
    return describe_time(time_segments(log))


def _machine(machine: dict | None) -> str:
    if machine is None:
        return ""
    where = f"a {machine['cpu_cores']}-core CPU" if machine["device"] == "cpu" else machine["device"]
    return f", at {machine['threads']} torch threads on {where} (the last run's)"


def _note(item: dict) -> list[str]:
    return [f"- {item['note']}"] if item.get("note") else []


def stage_recipe(stage: dict, tubelet_size: int) -> list[str]:
    """The recipe lines of one critic training run (`critic_stage_record`): data, start, optimisation, masks, time."""
    config = stage["config"]
    data = config.get("data", "toyworld")  # runs before 2026-12-03 trained on the toy world only
    source = (
        f"toy-world clips rendered on the fly (seed {config['seed']} onward)"
        if data == "toyworld"
        else f"the videos under `{data}`"
    )
    final = stage["final"]
    spread = f", embedding spread {final['spread']:.3f}" if final.get("spread") is not None else ""
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
        f"- Training time: {describe_time(stage['segments'])}{_machine(stage.get('machine'))}; final loss "
        f"{final['loss']:.4f}{spread}.",
        *_note(stage),
    ]


def critic_training(record: dict, tubelet_size: int) -> str:
    """The card's "Training" section: every stage's recipe, then the violation-pair accuracy watched meanwhile."""
    stages, note = record["stages"], record.get("note", "")
    if len(stages) == 1:
        lines = ([note, ""] if note else []) + stage_recipe(stages[0], tubelet_size)
    else:
        lines = [f"{len(stages)} training runs, each started from the one before. {note}".strip()]
        for number, stage in enumerate(stages, 1):
            lines += ["", f"### Stage {number}: `{stage['run']}`", *stage_recipe(stage, tubelet_size)]
        lines.append("")
    lines.append("- Reproduce: `make toyworld-critic`.")
    return "\n".join(lines + watch_lines(record))


def watch_lines(record: dict) -> list[str]:
    """The violation-pair accuracy each stage's trainer watched, if any did."""
    watched = [(stage["run"], stage.get("evaluations") or []) for stage in record["stages"]]
    if not any(evaluations for _, evaluations in watched):
        return []
    pairs = sorted({stage["config"].get("eval_pairs", 8) for stage in record["stages"]})
    watch_note = f" {record['watch_note']}" if record.get("watch_note") else ""
    lines = [
        "",
        "### Violation-pair accuracy watched during training",
        "",
        f"Mean over kinds, {' or '.join(map(str, pairs))} pairs per kind (seeds {EVAL_SEED:,}+), scored with the "
        f"trainer's violation-pair options (`QUICK_VIOLATION_SCORING`: {json.dumps(QUICK_VIOLATION_SCORING)})."
        + watch_note,
        "",
    ]
    return lines + [
        f"- `{run}`: " + ", ".join(f"step {step} {mean:.3f}" for step, mean in evaluations)
        for run, evaluations in watched
        if evaluations
    ]


def critic_details(critic: VJEPA2Critic, folder: Path) -> str:
    """The card's "Model" section: architecture, scoring defaults, the violation-pair scoring, the head."""
    config = critic.model.config
    scoring = json.loads((folder / "critic_config.json").read_text())
    lines = [
        f"- Architecture: crop {config.crop_size}, patch {config.patch_size}, tubelet {config.tubelet_size}, "
        f"encoder {config.hidden_size} wide x {config.num_hidden_layers} layers, predictor "
        f"{config.pred_hidden_size} wide x {config.pred_num_hidden_layers} layers; float32 safetensors.",
        f"- Scoring defaults (`critic_config.json`): {json.dumps(scoring_options(scoring))}.",
        "  Violation pairs are scored with `hybridgen.toyworld.evaluation.VIOLATION_SCORING` instead:"
        f" {json.dumps(VIOLATION_SCORING)}.",
    ]
    if critic.expected_error_head is not None:
        lines += [
            f"- Expected-error head (`{ERROR_HEAD_FILE}`, for `relative=True`): a small MLP fitted by",
            f"  `hybridgen calibrate-critic` on plausible clips (seeds {CALIBRATION_SEED:,}+), the model frozen; it "
            "predicts the",
            "  L1 error each predicted token usually has, so relative surprise is the error in units of that.",
        ]
    return "\n".join(lines)


def scoring_options(scoring: dict) -> dict:
    """A critic's scoring config without its image statistics, for a card."""
    return {key: value for key, value in scoring.items() if key not in ("image_mean", "image_std")}


def violation_table(results: dict) -> list[str]:
    """One measured table of `benchmarks/toyworld_critic.py` results (`read_measurement`): pairwise accuracy (and
    AUROC where recorded) per kind and scorer, with its pairs, seeds, scoring, commands and raw files."""
    names = list(results["results"])
    kinds = list(results["results"][names[0]])
    families = {KIND_CATEGORY[kind] for kind in kinds if kind in KIND_CATEGORY}
    family = f"{families.pop()} kinds" if len(families) == 1 else "kinds"
    with_auroc = all("auroc" in results["results"][name][kind] for name in names for kind in kinds)
    lines = [
        f"### Violation pairs, {family}: {results['pairs']} per kind",
        "",
        "| kind | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for kind in kinds:
        cells = [_violation_cell(results["results"][name][kind], with_auroc) for name in names]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Pairwise accuracy: P(impossible clip more surprising than its plausible twin)"
        + (", then AUROC" if with_auroc else "")
        + f"; pair seeds {results.get('seed', 1_000_000):,}+;",
        f"scoring options {json.dumps(scoring_options(results['scoring']))}, chosen among a few variants on other pairs (seeds",
        "2,000,000+); see BENCHMARKS.md.",
    ]
    return lines + provenance_lines(results)


def _violation_cell(row: dict, with_auroc: bool) -> str:
    return f"{row['accuracy']:.3f} / {row['auroc']:.3f}" if with_auroc else f"{row['accuracy']:.3f}"


def provenance_lines(results: dict) -> list[str]:
    """Where a measured table comes from: the commands that wrote its files, the files, and a note."""
    lines = [
        _listing("Command", [f"`{command}`" for command in results.get("commands") or []], "; "),
        _listing("Raw file", [f"`{file}`" for file in results.get("files") or []], ", "),
        results.get("note") or "",
    ]
    lines = [line for line in lines if line]
    return [""] + lines if lines else []


def _listing(label: str, items: list[str], separator: str) -> str:
    return f"{label}{'s' if len(items) > 1 else ''}: {separator.join(items)}." if items else ""


def generator_details(folder: Path) -> str:
    """The card's "Model" section for a generator folder: parts, clips, latents, sizes, and what it gets wrong."""
    index = json.loads((folder / "model_index.json").read_text())
    call = json.loads((folder / CALL_DEFAULTS_FILE).read_text())
    defaults, vae = call["pipeline_call"], json.loads((folder / "vae" / "config.json").read_text())
    parts = [
        spec[1]
        for name, spec in index.items()
        if not name.startswith("_") and isinstance(spec, list) and spec[1]
    ]
    sizes = {
        name: sum(f.stat().st_size for f in (folder / name).glob("*.safetensors")) / 1e6
        for name in ("vae", "transformer", "text_encoder")
    }
    lines = [
        f"- Parts: {', '.join(f'`{part}`' for part in parts)} in a `{index['_class_name']}`.",
        f"- Clips: {defaults['num_frames']} frames at {defaults['width']}x{defaults['height']}, {call['fps']:g} fps "
        f"(`{CALL_DEFAULTS_FILE}` holds these and the sampling defaults: {defaults['num_inference_steps']} steps, "
        f"guidance scale {defaults['guidance_scale']}).",
        f"- Latents: the VAE compresses {vae['scale_factor_spatial']}x in space and {vae['scale_factor_temporal']}x "
        f"in time, with {vae['z_dim']} channels.",
        f"- float32 safetensors: VAE {sizes['vae']:.1f} MB, transformer {sizes['transformer']:.1f} MB (EMA weights),"
        f" text encoder {sizes['text_encoder']:.1f} MB (a tiny random UMT5, frozen; the tokenizer is built"
        " locally).",
        "",
        "It is imperfect the way real generators are: balls sometimes blur, split, flicker or drift. That spread is",
        "what the bundled critic ranks.",
    ]
    return "\n".join(lines)


def generator_training(record: dict) -> str:
    """The card's "Training" section for a generator (`generator_record`)."""
    config = record["config"]
    loss = record.get("final_loss")
    return "\n".join(
        [
            f"- Data: {config['num_clips']} toy-world clips (seeds {config['seed']} onward), half 'bouncing', half "
            "'falling', 1-3 balls, captions from the world's own describer.",
            f"- Stage 1, VAE: {config['vae_steps']} steps of batch {config['vae_batch_size']} ({config['vae_frames']}"
            f"-frame windows), L1 + MSE with ball pixels weighted x{config['ball_weight']:g}, KL weight "
            f"{config['kl_weight']:g}. Held-out reconstruction: {_format_reconstruction(record.get('reconstruction'))}.",
            f"- Stage 2, transformer: {config['steps']} steps of batch {config['batch_size']}, flow matching "
            f"(logit-normal timesteps, shift {config['flow_shift']:g}), lr {config['lr']:g} cosine to "
            f"{config['min_lr']:g}, caption dropout {config['caption_dropout']:g}, EMA {config['ema_decay']:g}. Final "
            f"loss (mean of the last 50 steps): {'not recorded' if loss is None else f'{loss:.4f}'}.",
            f"- Training time: {describe_time(record['segments'])}{_machine(record.get('machine'))}.",
            *_note(record),
            "- Reproduce: `make toyworld-generator`.",
        ]
    )


def _format_reconstruction(metrics: dict | None) -> str:
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
        f"{following['colour']:.2f} (prompts naming a colour; a colour is followed when it covers at least "
        f"{COLOUR_SHARE:.0%} of the clip's tracked ball-frames).",
    ]
    return lines + provenance_lines(results)


# ----------------------------------------------------------------------------- cards


def render_critic_card(folder: Path, record: dict, measurements: Sequence[dict] = ()) -> ModelCard:
    """The card of the critic in `folder`, trained as `record` says and measured as `measurements` (results dicts
    of `benchmarks/toyworld_critic.py`, e.g. from `read_measurement`): `hybridgen.hub.critic_card`."""
    critic = VJEPA2Critic.from_pretrained(str(folder))
    return hub.critic_card(
        critic,
        repo_id=NAME,
        license=LICENSE,
        details=critic_details(critic, folder),
        training=critic_training(record, critic.tubelet),
        metrics="\n\n".join("\n".join(violation_table(results)) for results in measurements),
    )


def render_generator_card(folder: Path, record: dict, measurements: Sequence[dict] = ()) -> ModelCard:
    """The card of the generator in `folder`, trained as `record` says and measured as `measurements` (results
    dicts of `benchmarks/toyworld_best_of_n.py`): `hybridgen.hub.generator_card`."""
    call = json.loads((folder / CALL_DEFAULTS_FILE).read_text())
    return hub.generator_card(
        load_video_pipeline(str(folder)),
        call_defaults=call["pipeline_call"],
        fps=call.get("fps"),
        repo_id=NAME,
        license=LICENSE,
        details=generator_details(folder),
        training=generator_training(record),
        metrics="\n\n".join("\n".join(results_lines(results)) for results in measurements),
    )


def run_critic_card(run_dir: Path, measurements: Sequence[dict] = (), earlier_stages=()) -> ModelCard:
    """The card of the critic trained in `run_dir` (and the `training_stages` before it), as bundling writes it."""
    return render_critic_card(run_dir, critic_record(run_dir, earlier_stages), measurements)


def run_generator_card(run_dir: Path, measurements: Sequence[dict] = ()) -> ModelCard:
    """The card of the generator trained in `run_dir`, as bundling writes it."""
    return render_generator_card(run_dir, generator_record(run_dir), measurements)


def read_record(folder: Path) -> dict:
    record = json.loads((folder / RECORD_FILE).read_text())
    if record.get("format") != RECORD_FORMAT:
        raise ValueError(f"{folder / RECORD_FILE} is not a bundle record of format {RECORD_FORMAT}.")
    return record


def derived_files(role: str, folder: Path | None = None, root: Path = REPOSITORY) -> dict[str, str]:
    """What a bundled folder derives from its own files, its record and the result files under `root`, by name:
    its card and, for the critic, its video processor config (`VJEPA2Critic.video_processor_config`)."""
    folder = WEIGHTS_DIR / role if folder is None else folder
    record = read_record(folder)
    measurements = [read_measurement(entry, root) for entry in record.get("measured", [])]
    if role == "generator":
        return {hub.CARD_FILE: str(render_generator_card(folder, record, measurements))}
    processor = VJEPA2Critic.from_pretrained(str(folder)).video_processor_config()
    return {
        VIDEO_PROCESSOR_FILE: json.dumps(processor, indent=2) + "\n",
        hub.CARD_FILE: str(render_critic_card(folder, record, measurements)),
    }


def regenerate(roles: Sequence[str] = ROLES, *, check: bool = False, root: Path = REPOSITORY) -> list[Path]:
    """Rewrite the derived files of the bundled folders (atomically, only those that changed); with `check`, write
    nothing. Returns the files that differed."""
    changed = []
    for role in roles:
        for name, text in derived_files(role, root=root).items():
            path = WEIGHTS_DIR / role / name
            if path.is_file() and path.read_text(encoding="utf-8") == text:
                continue
            changed.append(path)
            if not check:
                with atomic_write_path(path) as temporary:
                    temporary.write_text(text, encoding="utf-8")
    return changed


# ----------------------------------------------------------------------------- bundling


def bundle(
    role: str,
    run_dir: Path,
    results: Sequence[Sequence[Path]] = (),
    earlier_stages: Sequence[Path] = (),
    *,
    root: Path = REPOSITORY,
    target: Path | None = None,
) -> Path:
    """Copy the model trained in `run_dir` to `target` (the bundled folder of `role`), with its record (`results`:
    one list of result files per measured table, under `root`), card and, for a critic, video processor config."""
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
    training = critic_record(run_dir, earlier_stages) if role == "critic" else generator_record(run_dir)
    measured = [measurement_entry(files, root) for files in results]
    target = WEIGHTS_DIR / role if target is None else target
    with replacing_directory(target) as temporary:
        for name in FILES[role]:
            shutil.copy2(run_dir / name, temporary / name)
        for name in folders:
            shutil.copytree(run_dir / name, temporary / name)
        write_json_atomic(
            {"format": RECORD_FORMAT, **training, "measured": measured}, temporary / RECORD_FILE
        )
        for name, text in derived_files(role, temporary, root).items():
            (temporary / name).write_text(text, encoding="utf-8")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    commands = parser.add_subparsers(dest="command", required=True)
    for role in ROLES:
        command = commands.add_parser(role, help=f"bundle a trained {role}")
        command.add_argument("run_dir", type=Path, help="output directory of the training command")
        command.add_argument(
            "--results",
            nargs="+",
            type=Path,
            action="append",
            default=[],
            metavar="FILE",
            help="benchmark JSON under the repository for the card, one table per --results (its files side by side: "
            "benchmarks/toyworld_critic.py or benchmarks/toyworld_best_of_n.py)",
        )
        if role == "critic":
            command.add_argument(
                "--earlier-stages",
                nargs="+",
                type=Path,
                default=[],
                help="the training runs before RUN_DIR, oldest first, when its --init does not name them"
                " (default: follow each run's --init while it is a run directory)",
            )
    check = commands.add_parser("regenerate", help="rewrite the bundled cards and critic processor config")
    check.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    args = parser.parse_args(argv)
    if args.command == "regenerate":
        changed = regenerate(check=args.check)
        for path in changed:
            print(f"{'differs' if args.check else 'rewrote'}: {path}")
        return 1 if args.check and changed else 0
    stages = getattr(args, "earlier_stages", [])
    print(f"bundled {bundle(args.command, args.run_dir, args.results, stages)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
