"""The `hybridgen` command line: generate physically plausible clips, or score existing ones.

hybridgen generate "a red ball bouncing" -o best.mp4 --candidates 4      # the bundled toy world, offline
hybridgen generate "a ball rolls off a table" -o best.mp4 --generator ID --critic ID
hybridgen batch prompts.txt -o out/ --candidates 4                      # one clip per prompt, resumable
hybridgen score clip1.mp4 clip2.mp4 --json --plot curves.png           # the bundled critic
hybridgen score clip1.mp4 clip2.mp4 --critic ID
hybridgen train-critic out/critic --steps 12000                         # and calibrate-critic, train-generator

Each sub-command is an `add_<command>_parser` and a `run_<command>` below, listed in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hybridgen.arguments import Parser, count, default_device, finite, natural, positive
from hybridgen.critics.options import AGGREGATES, ScoringOptions
from hybridgen.signals import Terminated, terminate_as_interrupt

DTYPES = ("bfloat16", "float16", "float32")  # names of torch dtypes: torch is imported once a command runs
# hybridgen.training.core.MIXED_PRECISIONS, spelled out so that the CLI starts without importing transformers
MIXED_PRECISIONS = ("no", "bf16")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="hybridgen", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for add_parser, _ in COMMANDS.values():
        add_parser(commands)
    return parser


def _pixel_offset(text: str) -> tuple[int, int]:
    """'DY,DX' -> (dy, dx) whole pixels, for --shift."""
    try:
        dy, dx = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not DY,DX in whole pixels, e.g. 0,4") from None
    return dy, dx


# the scoring options `score` can change, with their argparse settings; the help comes from ScoringOptions
SCORING_FLAGS = {
    "aggregate": {"choices": AGGREGATES},
    "top_fraction": {"type": finite, "metavar": "F"},
    "mirror": {"action": argparse.BooleanOptionalAction},
    "shifts": {"flag": "--shift", "action": "append", "type": _pixel_offset, "metavar": "DY,DX"},
    "relative": {"action": argparse.BooleanOptionalAction},
}
SHIFT_EXAMPLE = " (repeatable; a negative DY as --shift=-4,0)"


def _add_scoring_options(
    parser: argparse.ArgumentParser,
    default: str = "(default: the critic's own)",
    names: tuple[str, ...] = tuple(SCORING_FLAGS),
) -> None:
    for name in names:
        settings = dict(SCORING_FLAGS[name])
        flag = settings.pop("flag", "--" + name.replace("_", "-"))
        example = SHIFT_EXAMPLE if name == "shifts" else ""
        help = f"{ScoringOptions.help(name)}{example} {default}"
        parser.add_argument(flag, dest=name, help=help, **settings)


def _add_device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="where the models run (default: cuda if available, else cpu)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="model weights dtype")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """Which generator and critic `generate`, `batch` and `ui` load."""
    parser.add_argument(
        "--generator",
        default="toyworld",
        help="diffusers pipeline: Hub id, local directory or 'toyworld' (default: the bundled toy-world model)",
    )
    parser.add_argument(
        "--critic",
        help="V-JEPA 2 model: Hub id, local directory or 'toyworld' (default: the generator's bundled critic)",
    )


def _add_generation_options(parser: argparse.ArgumentParser) -> None:
    """The options `generate` and `batch` share: which models, how many candidates, how they are made."""
    _add_model_options(parser)
    parser.add_argument("--candidates", type=int, default=4, help="number of candidates (default 4)")
    parser.add_argument(
        "--strategy",
        choices=("rerank", "search", "guidance"),
        default="rerank",
        help="rerank: best-of-N; search: prune trajectories mid-denoising by surprise; guidance: push latents "
        "against the surprise gradient, then rerank (default rerank)",
    )
    parser.add_argument(
        "--score-given-frames",
        action=argparse.BooleanOptionalAction,
        help="with an image to start from: whether the critic scores the given first frame with the generated ones "
        "(default: yes, the seam between them is judged too; --no-score-given-frames scores the generated frames "
        "alone)",
    )
    parser.add_argument(
        "--frames",
        type=int,
        help="frames per clip (pipeline default if unset); with --video, the clip's first FRAMES frames",
    )
    parser.add_argument("--height", type=int, help="frame height in pixels")
    parser.add_argument("--width", type=int, help="frame width in pixels")
    parser.add_argument("--steps", type=int, help="denoising steps per candidate")
    parser.add_argument("--batch-size", type=int, help="videos per pipeline call (default: up to 16)")
    parser.add_argument(
        "--fps", type=float, help="frame rate of the written MP4s (default: the generator's, else 16)"
    )
    _add_memory_options(parser)
    _add_guidance_options(parser)


def _add_guidance_options(parser: argparse.ArgumentParser) -> None:
    guidance = parser.add_argument_group("guidance memory (--strategy guidance)")
    guidance.add_argument(
        "--guidance-decode-scale",
        type=float,
        metavar="S",
        help="decode the clean-video estimate at S (0 < S <= 1) of the clip's height and width for the critic's "
        "gradient: about S squared of the decoder's memory and time (default 1)",
    )
    guidance.add_argument(
        "--guidance-checkpointing",
        action="store_true",
        help="recompute the VAE decoder's activations in the backward pass: less memory, one more decode's time "
        "(VAEs that support it: LTX, CogVideoX)",
    )


def guidance_fields(args: argparse.Namespace) -> dict:
    """The `GuidanceOptions` fields the command line sets (none unless asked), checked before the models load."""
    from hybridgen.pipelines.guidance import GuidanceOptions

    fields = {}
    if args.guidance_decode_scale is not None:
        fields["decode_scale"] = args.guidance_decode_scale
    if args.guidance_checkpointing:
        fields["gradient_checkpointing"] = True
    GuidanceOptions(**fields)  # a bad value is refused here
    return fields


def _add_memory_options(parser: argparse.ArgumentParser) -> None:
    memory = parser.add_argument_group("memory")
    memory.add_argument(
        "--offload",
        choices=("model", "sequential"),
        help="keep the generator's models on the CPU, each moved to --device while it runs (model), or each layer "
        "(sequential: least memory, slowest)",
    )
    memory.add_argument("--vae-tiling", action="store_true", help="decode through the VAE in tiles")
    memory.add_argument("--vae-slicing", action="store_true", help="decode one video at a time")
    memory.add_argument("--critic-device", help="where the critic runs (default: --device), e.g. cuda:1")


def load_pipeline(args: argparse.Namespace, device: str):
    """The `HybridPipeline` of `generate` / `batch`, on `device` or offloaded to it, with the memory options."""
    import torch

    from hybridgen import HybridPipeline

    pipe = HybridPipeline.from_pretrained(
        args.generator,
        critic=args.critic,
        torch_dtype=getattr(torch, args.dtype),
        device=None if args.offload else device,
        critic_device=args.critic_device or (device if args.offload else None),
    )
    if args.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif args.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    if args.vae_tiling:
        pipe.enable_vae_tiling()
    if args.vae_slicing:
        pipe.enable_vae_slicing()
    return pipe


def add_generate_parser(commands) -> None:
    """`hybridgen generate PROMPT -o OUT.mp4`: N candidates, the least surprising kept."""
    generate = commands.add_parser("generate", help="generate N candidates and keep the least surprising")
    generate.add_argument("prompt", help="what the video should show")
    generate.add_argument("-o", "--output", required=True, type=Path, help="MP4 file for the chosen clip")
    _add_generation_options(generate)
    generate.add_argument(
        "--image",
        type=Path,
        metavar="PNG",
        help="condition every candidate on this image (an image-to-video generator's `image`)",
    )
    generate.add_argument(
        "--video",
        type=Path,
        metavar="MP4",
        help="condition every candidate on this clip, its first --frames frames if given (a video-to-video "
        "generator's `video`)",
    )
    generate.add_argument("--seed", type=int, default=0, help="seed for the candidates' seeds (default 0)")
    generate.add_argument(
        "--save-candidates", type=Path, metavar="DIR", help="also write every candidate here"
    )
    generate.add_argument(
        "--overwrite",
        action="store_true",
        help="let --save-candidates replace the candidates of an earlier run in DIR (and remove the rest of them)",
    )
    generate.add_argument("--report", type=Path, metavar="JSON", help="write seeds and scores as JSON")
    generate.add_argument(
        "--sheet",
        type=Path,
        metavar="PNG",
        help="write a contact sheet of the finished candidates with their scores (search: the survivors)",
    )
    generate.add_argument(
        "--plot", type=Path, metavar="PNG", help="plot the finished candidates' surprise curves"
    )
    _add_device_options(generate)


def run_generate(args: argparse.Namespace) -> int:
    import torch

    from hybridgen.pipelines.guidance import GuidanceOptions
    from hybridgen.pipelines.hybrid import describe_reports
    from hybridgen.video import check_fps

    check_generate_outputs(args)  # every output, before minutes of generation, not after
    if args.fps is not None:
        check_fps(args.fps, "--fps")
    conditioning = read_conditioning(args)  # a missing, unreadable or short file: before loading
    guidance = guidance_fields(args)
    if guidance and args.strategy != "guidance":
        raise ValueError("--guidance-decode-scale and --guidance-checkpointing need --strategy guidance.")
    pipe = load_pipeline(args, args.device or default_device())
    check_conditioning(pipe, conditioning)
    out = pipe(
        args.prompt,
        num_candidates=args.candidates,
        strategy=args.strategy,
        **({"guidance": GuidanceOptions(**guidance)} if guidance else {}),
        generator=torch.Generator().manual_seed(args.seed),
        num_frames=args.frames,
        height=args.height,
        width=args.width,
        num_inference_steps=args.steps,
        batch_size=args.batch_size,
        show_progress=not args.quiet,
        **conditioning,
        **({} if args.score_given_frames is None else {"score_given_frames": args.score_given_frames}),
    )
    written = [out.save(args.output, fps=args.fps)]
    if args.save_candidates:
        written += out.save_candidates(args.save_candidates, fps=args.fps, overwrite=args.overwrite)
    if args.report:
        written.append(out.save_report(args.report))
    if args.sheet:
        written.append(out.save_contact_sheet(args.sheet))
    if args.plot:
        written.append(out.save_surprise_plot(args.plot))
    print(describe_reports(out))
    print(f"chose candidate {out.best_index} ({out.denoising_steps} denoising steps)")
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


def read_conditioning(args: argparse.Namespace) -> dict:
    """`--image` and `--video` (its first `--frames` frames), read before any model loads."""
    from hybridgen.pipelines.conditioning import read_conditioning_video
    from hybridgen.video import read_image

    conditioning = {}
    if args.image is not None:
        conditioning["image"] = read_image(args.image)
    if args.video is not None:
        conditioning["video"] = read_conditioning_video(args.video, args.frames)
    return conditioning


def check_conditioning(pipe, conditioning: dict) -> None:
    """Refuse conditioning the generator does not take (`--image` for a text-to-video pipeline)."""
    from hybridgen.pipelines.conditioning import untaken_conditioning_message
    from hybridgen.pipelines.rerank import call_parameters

    for name in conditioning:
        if name not in call_parameters(pipe.pipeline):
            raise ValueError(untaken_conditioning_message(pipe.pipeline, name, f"--{name}"))


def check_generate_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, outputs that cannot be written or that get in each other's way (`-o a.mp4
    --report a.mp4` would leave JSON in the video; `-o d/candidate_0.mp4 --save-candidates d`, the best clip
    replaced by candidate 0; `--report out -o out/best.mp4`, a file where a folder must be), and a candidates
    folder holding an earlier run's candidates (unless --overwrite)."""
    from hybridgen.pipelines.hybrid import check_candidate_directory, is_candidate_file
    from hybridgen.video import PNG_SUFFIXES, VIDEO_SUFFIXES, check_output_path

    files = [("-o", check_output_path(args.output, VIDEO_SUFFIXES))]
    for option, path in (("--sheet", args.sheet), ("--plot", args.plot)):
        if path is not None:
            files.append((option, check_output_path(path, PNG_SUFFIXES)))
    if args.report is not None:
        files.append(("--report", check_output_path(args.report)))
    outputs = list(files)
    if args.save_candidates is not None:
        check_candidate_directory(args.save_candidates, overwrite=args.overwrite)
        outputs.append(("--save-candidates", args.save_candidates))
        for option, path in files:
            if path.resolve().parent == args.save_candidates.resolve() and is_candidate_file(path):
                raise ValueError(
                    f"{option} {path} has a candidate's name in the --save-candidates folder: a candidate would "
                    "replace it, or it would pass for one; give it another name or folder."
                )
    check_outputs_apart(outputs)


# options whose path is a folder written into; every other output is one file
FOLDER_OUTPUTS = ("--save-candidates", "--heatmap", "--overlay")


def check_outputs_apart(outputs: list[tuple[str, Path]]) -> None:
    """Refuse two `(option, path)` outputs that are one file (once resolved: symbolic links, `..`, relative and
    absolute spellings; or two names of one existing file: hard links), or an output inside a file output (all
    but FOLDER_OUTPUTS are files)."""
    resolved = [(option, path, path.resolve()) for option, path in outputs]
    for index, (option, path, real) in enumerate(resolved):
        for other_option, other, other_real in resolved[index + 1 :]:
            if real == other_real or (path.exists() and other.exists() and path.samefile(other)):
                raise ValueError(
                    f"{option} {path} and {other_option} {other} are the same file: one would overwrite the "
                    "other; give each output its own file."
                )
        for file_option, file, file_real in resolved:
            if file_option not in FOLDER_OUTPUTS and file_real in real.parents:
                raise ValueError(
                    f"{option} {path} would be inside {file_option} {file}, which is written as a file: give "
                    "each output its own place."
                )


def add_batch_parser(commands) -> None:
    """`hybridgen batch ITEMS -o DIR`: generate every item of a file, models loaded once, resumable."""
    batch = commands.add_parser(
        "batch",
        help="generate every prompt of a file (resumable; split across processes under accelerate launch)",
        description="Generate one chosen clip per item of ITEMS into DIR: DIR/<id>.mp4, DIR/<id>.json (prompt, seed, "
        "every candidate's surprise, the chosen one) and DIR/results.jsonl (one line per item, in order). Run it "
        "again to finish an interrupted batch: finished items are skipped. A failing item is reported and the rest "
        "go on; the exit status is then 1.",
    )
    batch.add_argument(
        "items",
        type=Path,
        help=".txt (one prompt a line; blank lines and # comments skipped), or .jsonl / .csv with a 'prompt' "
        "field and optional id, seed, image or video (a path, relative to the items file), candidates, strategy, "
        "frames, height, width, steps, negative_prompt",
    )
    batch.add_argument(
        "-o", "--output", required=True, type=Path, metavar="DIR", help="folder for the results"
    )
    _add_generation_options(batch)
    batch.add_argument(
        "--seed", type=int, default=0, help="item i without a seed of its own gets SEED + i (default 0)"
    )
    _add_device_options(batch)


def run_batch(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from hybridgen import jobs
    from hybridgen.video import check_directory_path, check_fps

    # 1. Check the items and every option before the models load
    items = jobs.read_items(args.items, first_seed=args.seed)
    check_directory_path(args.output)
    if args.fps is not None:
        check_fps(args.fps, "--fps")
    for name in ("candidates", "frames", "height", "width", "steps", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value}.")

    # 2. Load the models once; under `accelerate launch` or `torchrun`, each process on its own device
    on_cpu = (args.device or default_device()).startswith("cpu")
    processes = PartialState(cpu=on_cpu)
    pipe = load_pipeline(
        args, args.device or str(processes.device if processes.use_distributed else default_device())
    )

    # 3. Generate this process's share of the items; one process writes results.jsonl
    defaults = {name: getattr(args, name) for name in ("candidates", "strategy", "frames", "height", "width")}
    defaults |= {"steps": args.steps, "batch_size": args.batch_size}
    if args.score_given_frames is not None:  # HybridPipeline's default otherwise, as earlier runs asked
        defaults["score_given_frames"] = args.score_given_frames
    guidance = guidance_fields(args)
    if guidance:  # for the items whose strategy is guidance
        defaults["guidance"] = guidance
    summary = jobs.run_batch(
        pipe,
        items,
        args.output,
        defaults=defaults,
        fps=args.fps,
        processes=processes,
        show_progress=not args.quiet,
    )
    if processes.is_main_process:
        print(
            f"{summary['items']} items: {summary['done']} done, {summary['skipped']} already finished, "
            f"{summary['failed']} failed; results in {args.output / 'results.jsonl'}",
            file=sys.stderr,
        )
    return 1 if summary["failed"] else 0


def add_ui_parser(commands) -> None:
    """`hybridgen ui`: the Gradio web app over the generator and its critic."""
    ui = commands.add_parser(
        "ui",
        help="open the web app: generate and score in a browser (needs: pip install 'hybridgen[ui]')",
        description="Serve the Gradio app on http://HOST:PORT: a Generate tab (prompt, candidates, strategy, seed; "
        "the chosen clip, every candidate's surprise, curves and heatmap) and a Score tab (upload videos). Local "
        "only unless --share.",
    )
    _add_model_options(ui)
    ui.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    ui.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    ui.add_argument(
        "--share", action="store_true", help="also open a public gradio.live link (off unless asked)"
    )
    _add_memory_options(ui)
    _add_device_options(ui)


def run_ui(args: argparse.Namespace) -> int:
    try:
        from hybridgen.ui import build_app
    except ImportError as error:
        raise ValueError(f"the web app needs Gradio: pip install 'hybridgen[ui]' ({error})") from None
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be from 1 to 65535, got {args.port}.")
    pipe = load_pipeline(args, args.device or default_device())
    app = build_app(pipe)
    app.queue().launch(server_name=args.host, server_port=args.port, share=args.share, quiet=args.quiet)
    return 0


def add_score_parser(commands) -> None:
    """`hybridgen score PATH...`: rank existing videos (files, or folders searched recursively) by surprise."""
    score = commands.add_parser(
        "score",
        help="rank existing videos by how plausible their dynamics are",
        description="Score video files, or every video in folders (searched recursively). Files that cannot be "
        "read are reported with the reason, and the rest are scored; the exit status is 1 when some could not be.",
    )
    score.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="video files or folders of videos")
    score.add_argument(
        "--critic",
        default="toyworld",
        help="V-JEPA 2 model: Hub id, local directory or 'toyworld' (default: the bundled toy-world critic)",
    )
    score.add_argument("--json", action="store_true", help="print the reports as JSON")
    score.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="write one row per video: .jsonl (path, surprise, frames, fps, the window curve, or the error) or "
        ".csv (path, surprise, frames, fps, error)",
    )
    score.add_argument("--plot", type=Path, metavar="PNG", help="plot the per-window surprise curves")
    score.add_argument(
        "--heatmap",
        type=Path,
        metavar="DIR",
        help="write one PNG per video: the predicted frames as the critic saw them, under their token errors",
    )
    score.add_argument(
        "--overlay",
        type=Path,
        metavar="DIR",
        help="write one MP4 per video: the frames the critic saw with their token errors over them",
    )
    _add_scoring_options(score)
    _add_device_options(score)


SCORE_OUTPUT_SUFFIXES = (".jsonl", ".csv")


def run_score(args: argparse.Namespace) -> int:
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object
    from tqdm.auto import tqdm

    from hybridgen import VJEPA2Critic
    from hybridgen.video import find_videos

    # 1. Check every input and output before the critic loads
    videos = find_videos(args.paths)
    check_score_outputs(args, [name for _, name in videos])

    # 2. Load the critic; under `accelerate launch` or `torchrun`, each process on its own device
    on_cpu = (args.device or default_device()).startswith("cpu")
    processes = PartialState(cpu=on_cpu)  # on the CPU, accelerate splits over gloo processes
    device = args.device or (processes.device if processes.use_distributed else default_device())
    critic = VJEPA2Critic.from_pretrained(
        args.critic,
        torch_dtype=getattr(torch, args.dtype),
        device=device,
        **{name: getattr(args, name) for name in SCORING_FLAGS if getattr(args, name) is not None},
    )

    # 3. Score this process's share of the videos, each as it is decoded; an unreadable one is recorded
    rows = []
    with processes.split_between_processes(videos) as share:
        quiet = args.quiet or len(videos) == 1 or not processes.is_main_process
        for path, name in tqdm(share, desc="scoring", disable=quiet):
            rows.append(score_one_video(critic, path, name, args))
    rows = gather_object(rows) if processes.use_distributed else rows  # every process's, in the videos' order

    # 4. One process ranks, prints and writes
    scored = [row for row in rows if "error" not in row]
    if processes.is_main_process:
        write_score_results(rows, scored, args)
    failed = len(rows) - len(scored)
    return 1 if failed else 0


def score_one_video(critic, path: Path, name: Path, args: argparse.Namespace) -> dict:
    """One row of `score`'s results: path, surprise, frames, fps and the window curve (or the error that stopped
    it); the video's heatmap and overlay are written here, if asked for."""
    try:
        crops, fps = critic.read_crops(path)
        report = critic.score_crops(crops, fps=fps)
    except (ValueError, OSError) as error:
        print(f"hybridgen score: cannot score {path}: {error}", file=sys.stderr)
        return {"path": str(path), "error": str(error)}
    write_pictures(args, name, crops[report.frame_indices], report, critic.options.fps or fps)
    curve = {
        "window_starts": report.window_starts.tolist(),
        "window_surprise": report.window_surprise.tolist(),
    }
    row = {"path": str(path), "surprise": report.surprise, "frames": len(crops), "fps": fps, **curve}
    return {**row, "report": report.to_dict()} if args.json else row


def write_score_results(rows: list[dict], scored: list[dict], args: argparse.Namespace) -> None:
    """The ranking (or JSON) on stdout, `--output`, `--plot`, and a summary line on stderr."""
    ranking = sorted(scored, key=lambda row: row["surprise"])
    if args.json:
        print(
            json.dumps(
                [{"path": row["path"], "rank": rank, **row["report"]} for rank, row in enumerate(ranking)],
                indent=2,
            )
        )
    else:
        print(f"{'rank':>4} {'surprise':>10}  video   (lower surprise = more plausible dynamics)")
        for rank, row in enumerate(ranking):
            print(f"{rank:>4} {row['surprise']:>10.5f}  {row['path']}")
    if args.output:
        write_score_rows([{k: v for k, v in row.items() if k != "report"} for row in rows], args.output)
    if args.plot and scored:
        from hybridgen.viz import plot_surprise_curves, save_figure

        curves = [(row["window_starts"], row["window_surprise"]) for row in scored]
        names = [Path(row["path"]).name for row in scored]
        labels = names if len(set(names)) == len(names) else [row["path"] for row in scored]  # distinct
        save_figure(plot_surprise_curves(curves, labels=labels, title="surprise per window"), args.plot)
    failed = len(rows) - len(scored)
    summary = f"scored {len(scored)} of {len(rows)} videos" + (
        f"; {failed} could not be read" if failed else ""
    )
    print(summary, file=sys.stderr)  # stdout holds only the ranking (or JSON)


def check_score_outputs(args: argparse.Namespace, names: list[Path]) -> None:
    """Refuse, before the critic loads, outputs that cannot be written or that collide (two videos whose
    pictures would share a name, an output file inside a picture folder, one file named twice)."""
    from hybridgen.video import PNG_SUFFIXES, check_directory_path, check_output_path

    files = []
    if args.output is not None:
        files.append(("--output", check_output_path(args.output, SCORE_OUTPUT_SUFFIXES)))
    if args.plot is not None:
        files.append(("--plot", check_output_path(args.plot, PNG_SUFFIXES)))
    folders = [
        (option, path) for option, path in (("--heatmap", args.heatmap), ("--overlay", args.overlay)) if path
    ]
    stems = [name.with_suffix("") for name in names]  # each video's pictures are named after it
    clashes = sorted({str(stem) for stem in stems if stems.count(stem) > 1})
    for option, folder in folders:
        check_directory_path(folder)
        if clashes:
            raise ValueError(
                f"{option}: several videos would write {folder / clashes[0]} (videos named alike in different "
                "folders or with different suffixes); score them in separate runs, or give one folder that holds "
                "them."
            )
    check_outputs_apart(files + folders)


def write_pictures(args: argparse.Namespace, name: Path, frames, report, fps: float) -> None:
    """The heatmap and overlay of one video (if asked for), named after its `name` under their folders; `frames`
    are those the critic saw, at `fps`."""
    if args.heatmap:
        from hybridgen.viz import heatmap_sheet, save_image

        save_image(heatmap_sheet(frames, report, title=str(name)), args.heatmap / name.with_suffix(".png"))
    if args.overlay:
        from hybridgen.video import write_video
        from hybridgen.viz import overlay_frames

        write_video(overlay_frames(frames, report), args.overlay / name.with_suffix(".mp4"), fps=fps)


def write_score_rows(rows: list[dict], path: Path) -> None:
    """`rows` as JSON lines or CSV (by `path`'s suffix), written atomically."""
    import csv

    from hybridgen.video import atomic_write_path, write_jsonl_atomic

    if path.suffix.lower() == ".jsonl":
        write_jsonl_atomic(rows, path)
        return
    with atomic_write_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as file:
        columns = ("path", "surprise", "frames", "fps", "error")
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


MAX_MINUTES_HELP = (
    "wall-clock budget of this run: past it, training stops at the next step, checkpoints and saves what it has; "
    "the same command again goes on (default: none)"
)


def add_train_critic_parser(commands) -> None:
    """`hybridgen train-critic OUT`: V-JEPA-style training on plausible clips."""
    train = commands.add_parser("train-critic", help="V-JEPA-style training of a critic on plausible clips")
    train.add_argument("output", type=Path, help="directory for the trained critic and its checkpoints")
    train.add_argument(
        "--data", default="toyworld", help="'toyworld' (rendered on the fly) or a folder of videos"
    )
    train.add_argument(
        "--init",
        help="start from this V-JEPA 2 checkpoint (Hub id, directory or 'toyworld'); default: random",
    )
    train.add_argument("--steps", type=count, default=2000, help="training steps (default 2000)")
    train.add_argument(
        "--batch-size", type=count, default=16, help="clips per step, over all processes (default 16)"
    )
    train.add_argument(
        "--gradient-accumulation-steps",
        type=count,
        default=1,
        help="micro-batches per step and process: the same step in less memory (default 1)",
    )
    train.add_argument(
        "--mixed-precision",
        choices=MIXED_PRECISIONS,
        default="no",
        help="bf16: forward passes under bf16 autocast (accelerate's; default: no, float32)",
    )
    train.add_argument("--window", type=count, default=8, help="frames per training clip (default 8)")
    train.add_argument("--lr", type=positive, default=1e-3, help="peak learning rate (default 1e-3)")
    train.add_argument(
        "--eval-every", type=count, default=250, help="steps between violation-pair evaluations"
    )
    train.add_argument(
        "--eval-pairs", type=count, default=8, help="pairs per violation kind at each evaluation"
    )
    train.add_argument("--checkpoint-every", type=count, default=250, help="steps between checkpoints")
    train.add_argument("--seed", type=int, default=0, help="seed of weights, data and masks (default 0)")
    train.add_argument("--threads", type=count, help="torch CPU threads (default: torch's choice)")
    train.add_argument("--device", help="where the model trains (default: cuda if available, else cpu)")
    train.add_argument(
        "--workers",
        type=natural,
        default=0,
        help="processes rendering toy-world clips, or decoding a folder's videos (default 0: in-process)",
    )
    train.add_argument(
        "--pool-size",
        type=count,
        default=1024,
        help="toy-world clips held in memory, a few re-rendered at every step (default 1024); a resumed run "
        "needs its own",
    )
    train.add_argument(
        "--resize-to",
        type=count,
        metavar="PX",
        help="shorter-side size before the centre crop, in training and in the saved critic's scoring "
        "(default: the --init checkpoint's, or the crop size)",
    )
    # how the trained critic scores by default; relative scoring waits for `calibrate-critic`
    training_scoring = tuple(name for name in SCORING_FLAGS if name != "relative")
    _add_scoring_options(train, "(default: the --init checkpoint's)", training_scoring)
    train.add_argument("--max-minutes", type=positive, metavar="M", help=MAX_MINUTES_HELP)
    train.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in OUTPUT")
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def run_train_critic(args: argparse.Namespace) -> int:
    import torch

    from hybridgen.training.critic import train_critic

    if args.threads:
        torch.set_num_threads(args.threads)
    summary = train_critic(
        args.output,
        data=args.data,
        init=args.init,
        steps=args.steps,
        batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        window=args.window,
        lr=args.lr,
        eval_every=args.eval_every,
        eval_pairs=args.eval_pairs,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        device=args.device or default_device(),
        workers=args.workers,
        pool_size=args.pool_size,
        scoring={
            name: getattr(args, name)
            for name in (*SCORING_FLAGS, "resize_to")
            if getattr(args, name, None) is not None
        },
        resume=not args.no_resume,
        show_progress=not args.quiet,
        max_minutes=args.max_minutes,
    )
    from accelerate import PartialState

    if PartialState().is_main_process:  # once, under accelerate launch / torchrun
        print(json.dumps(summary, indent=2))
        report_stopped_early(summary, args)
    return 0


def report_stopped_early(summary: dict, args: argparse.Namespace) -> None:
    """Say on stderr, after the summary, that the time budget stopped the run and how to go on."""
    if summary["stopped_early"]:
        print(
            f"stopped by --max-minutes {args.max_minutes:g} before the last step; the checkpoint is in "
            f"{args.output / 'checkpoint'}: run the same command again to go on",
            file=sys.stderr,
        )


def add_calibrate_critic_parser(commands) -> None:
    """`hybridgen calibrate-critic CRITIC -o OUT`: fit the expected-error head."""
    calibrate = commands.add_parser(
        "calibrate-critic",
        help="fit a critic's expected-error head on plausible clips (for relative surprise)",
    )
    calibrate.add_argument("critic", help="the critic: a bundled name, a local directory or a Hub id")
    calibrate.add_argument(
        "-o", "--output", type=Path, required=True, help="directory to save the critic with its head to"
    )
    calibrate.add_argument(
        "--data", default="toyworld", help="'toyworld' (rendered on the fly) or a folder of plausible videos"
    )
    calibrate.add_argument("--steps", type=count, default=600, help="optimiser steps (default 600)")
    calibrate.add_argument("--batch-size", type=count, default=32, help="windows per step (default 32)")
    calibrate.add_argument("--seed", type=int, default=0, help="seed of the head and the data (default 0)")
    calibrate.add_argument("--threads", type=count, help="torch CPU threads (default: torch's choice)")
    calibrate.add_argument("--device", help="where the head trains (default: cuda if available, else cpu)")
    calibrate.add_argument(
        "--workers", type=natural, default=2, help="processes decoding a folder's videos (default 2)"
    )
    calibrate.add_argument("--quiet", action="store_true", help="no progress bar")


def run_calibrate_critic(args: argparse.Namespace) -> int:
    import torch

    from hybridgen.training.error_head import calibrate_critic

    if args.threads:
        torch.set_num_threads(args.threads)
    summary = calibrate_critic(
        args.critic,
        args.output,
        data=args.data,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device or default_device(),
        workers=args.workers,
        show_progress=not args.quiet,
    )
    print(json.dumps(summary, indent=2))
    return 0


def add_train_generator_parser(commands) -> None:
    """`hybridgen train-generator OUT`: train the toy-world text-to-video WanPipeline (VAE, then transformer)."""
    train = commands.add_parser(
        "train-generator",
        help="train a tiny text-to-video WanPipeline on the toy world (VAE, then transformer)",
    )
    train.add_argument(
        "output", type=Path, help="directory for the pipeline, its checkpoint and training log"
    )
    train.add_argument(
        "--num-clips", type=count, default=3000, help="toy-world training clips (default 3000)"
    )
    train.add_argument("--vae-steps", type=natural, default=2000, help="stage 1: VAE steps (default 2000)")
    train.add_argument(
        "--steps", type=natural, default=2400, help="stage 2: transformer steps (default 2400)"
    )
    train.add_argument("--batch-size", type=count, default=16, help="stage 2: clips per step (default 16)")
    train.add_argument("--lr", type=positive, default=5e-4, help="stage 2: peak learning rate (default 5e-4)")
    train.add_argument("--checkpoint-every", type=count, default=250, help="steps between checkpoints")
    train.add_argument("--seed", type=int, default=0, help="seed of weights, data and noise (default 0)")
    train.add_argument(
        "--device",
        help="where the models train (default: cuda if available, else cpu)",
    )
    train.add_argument(
        "--mixed-precision",
        choices=MIXED_PRECISIONS,
        default="no",
        help="bf16: forward passes under bf16 autocast, CUDA only (default: no, float32)",
    )
    train.add_argument("--threads", type=count, help="torch CPU threads (default: torch's choice)")
    train.add_argument("--max-minutes", type=positive, metavar="M", help=MAX_MINUTES_HELP)
    train.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in OUTPUT")
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def run_train_generator(args: argparse.Namespace) -> int:
    import torch

    from hybridgen.training.generator import train_generator

    if args.threads:
        torch.set_num_threads(args.threads)
    summary = train_generator(
        args.output,
        num_clips=args.num_clips,
        vae_steps=args.vae_steps,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        device=args.device or default_device(),
        mixed_precision=args.mixed_precision,
        resume=not args.no_resume,
        show_progress=not args.quiet,
        max_minutes=args.max_minutes,
    )
    print(json.dumps(summary, indent=2))
    report_stopped_early(summary, args)
    return 0


# each sub-command: how its parser is added, and what runs it
COMMANDS = {
    "generate": (add_generate_parser, run_generate),
    "batch": (add_batch_parser, run_batch),
    "score": (add_score_parser, run_score),
    "ui": (add_ui_parser, run_ui),
    "train-critic": (add_train_critic_parser, run_train_critic),
    "calibrate-critic": (add_calibrate_critic_parser, run_calibrate_critic),
    "train-generator": (add_train_generator_parser, run_train_generator),
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with terminate_as_interrupt():  # SIGTERM and SIGHUP clean up on the way out, as Ctrl-C does
        try:
            if args.quiet:
                _hide_library_progress_bars()
            _, run = COMMANDS[args.command]
            return run(args)
        except (ValueError, OSError) as error:  # OSError: missing files and models, directories, permissions
            print(f"hybridgen {args.command}: error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as stop:  # Ctrl-C, or Terminated: what was being written has been removed
            word = "terminated" if isinstance(stop, Terminated) else "interrupted"
            print(f"\nhybridgen {args.command}: {word}; nothing half-written was left", file=sys.stderr)
            return stop.exit_status if isinstance(stop, Terminated) else 130


def _hide_library_progress_bars() -> None:
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


if __name__ == "__main__":
    sys.exit(main())
