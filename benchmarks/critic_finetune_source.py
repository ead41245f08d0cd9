"""Does fine-tuning the critic on a generator's own outputs make it a better judge of that generator?

Two folders of the same size are written as MP4s at the bundled generator's frame size, length and rate: the
clips the bundled toy-world generator makes for training-style captions (one clip per caption, caption and seed
`--first-seed + i`), and the toy world's own renders of the very scenes those captions describe. The bundled
critic is fine-tuned on each folder (`train_critic(data=FOLDER, init="toyworld")`, same steps, learning rate and
seed; one run per `--runs` seed) and every critic, the bundled one included, then judges the same candidates:

- best-of-N groups of the bundled generator (the benchmark prompts x `--seeds` group seeds from
  `--eval-seeds`, `--candidates` each): within-group Spearman of surprise with the toy world's physics checker
  (as in `toyworld_best_of_n.py`), and the checker's error of best-of-N by surprise over the group average;
- violation pairs of every kind (`--pairs` per kind, seeds the trainer never sees): accuracy on the looks and the
  dynamics kinds, to see what a fine-tune costs the critic's judgement of the world itself.

Folders and fine-tuned critics are kept in `--work` (default: a folder under the system's temp dir), so a
rerun resumes where it stopped.

    python benchmarks/critic_finetune_source.py --json results.json
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import diffusers
import numpy as np
import torch
import transformers
from common import benchmark_parser, machine, parse_args, write_results

from hybridgen import HybridPipeline, VJEPA2Critic
from hybridgen.toyworld import MOTIONS, make_clip, physics_report
from hybridgen.toyworld.evaluation import compare_scorers, summarize
from hybridgen.toyworld.prompts import BENCHMARK_PROMPTS
from hybridgen.toyworld.selection import best_of_n_table, rank_correlation
from hybridgen.training.critic import train_critic
from hybridgen.video import write_video

SOURCES = ("rendered", "generated")
PAIR_SEED = 1_000_000  # the violation pairs of toyworld_critic.py; the trainer watches 500_000..


def write_folders(pipe: HybridPipeline, work: Path, clips: int, first_seed: int, batch: int = 16) -> dict:
    """`work/rendered` and `work/generated`: clip i of both comes from seed `first_seed + i` and its caption."""
    call = pipe.call_defaults
    size, num_frames, fps = call["height"], call["num_frames"], pipe.fps
    folders = {source: work / source for source in SOURCES}
    seconds = {}
    for source, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        for first in range(first_seed, first_seed + clips, batch):
            seeds = [s for s in range(first, min(first + batch, first_seed + clips))]
            paths = [folder / f"{seed}.mp4" for seed in seeds]
            if all(path.exists() for path in paths):
                continue
            scenes = [
                make_clip(s, size=size, num_frames=num_frames, fps=fps, motion=MOTIONS[s % 2]) for s in seeds
            ]
            if source == "rendered":
                videos = [frames for frames, _ in scenes]
            else:
                videos = pipe.pipeline(
                    prompt=[info.caption for _, info in scenes],
                    generator=[torch.Generator().manual_seed(s) for s in seeds],
                    output_type="np",
                    **call,
                ).frames
            for video, path in zip(videos, paths, strict=True):
                write_video(video, path, fps=fps)
        seconds[source] = time.perf_counter() - started
    return {"folders": {k: str(v) for k, v in folders.items()}, "seconds": seconds}


def evaluation_groups(pipe: HybridPipeline, eval_seeds: list[int], candidates: int) -> list[dict]:
    """The bundled generator's candidates per benchmark prompt x seed, with the checker's error of each."""
    groups = []
    for prompt in BENCHMARK_PROMPTS:
        for seed in eval_seeds:
            out = pipe(
                prompt,
                num_candidates=candidates,
                generator=torch.Generator().manual_seed(seed),
                show_progress=False,
            )
            errors = [physics_report(clip).total for clip in out.candidates]
            groups.append({"prompt": prompt, "seed": seed, "clips": out.candidates, "physics_error": errors})
    return groups


def judge(critic: VJEPA2Critic, groups: list[dict], fps: float, pairs: int) -> dict:
    """How well `critic` ranks the generator's candidates, and how it does on violation pairs."""
    surprise = [[r.surprise for r in critic.score_batch(g["clips"], fps=fps)] for g in groups]
    error = [g["physics_error"] for g in groups]
    sizes = [n for n in (2, 4, 8, 16) if n <= len(error[0])]
    table = best_of_n_table(surprise, error, sizes)
    violations = compare_scorers(
        {"critic": lambda clips: [r.surprise for r in critic.score_batch(clips)]},
        num_pairs=pairs,
        seed=PAIR_SEED,
    )["critic"]
    summary = summarize(violations)
    return {
        "spearman": rank_correlation(surprise, error),
        "best_over_average": {row["n"]: row["best_over_average"] for row in table},
        "accuracy_looks": summary["mean looks"]["accuracy"],
        "accuracy_dynamics": summary["mean dynamics"]["accuracy"],
        "violations": summary,
        "surprise": surprise,
    }


def main() -> None:
    parser = benchmark_parser(__doc__, threads=2)
    parser.add_argument(
        "--work", type=Path, help="where folders and critics are kept (default: a temp folder)"
    )
    parser.add_argument("--clips", type=int, default=512, help="clips per folder (default 512)")
    parser.add_argument(
        "--first-seed", type=int, default=5000, help="seeds of the folders' clips count up from here"
    )
    parser.add_argument("--steps", type=int, default=400, help="fine-tuning steps (default 400)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4, help="peak learning rate of the fine-tune")
    parser.add_argument("--runs", type=int, default=2, help="fine-tunes per source, with seeds 0, 1, ...")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers decoding the folder")
    parser.add_argument("--eval-seeds", type=int, nargs="+", default=[1000, 1001, 3000, 3001])
    parser.add_argument("--candidates", type=int, default=8, help="candidates per evaluation group")
    parser.add_argument("--pairs", type=int, default=40, help="violation pairs per kind")
    args = parse_args(parser)
    if min(args.clips, args.steps, args.runs, args.candidates, args.pairs) < 1:
        parser.error("--clips, --steps, --runs, --candidates and --pairs must be >= 1.")
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    work = args.work or Path(tempfile.gettempdir()) / "hybridgen-critic-finetune-source"

    pipe = HybridPipeline.from_pretrained("toyworld")
    pipe.pipeline.set_progress_bar_config(disable=True)
    data = write_folders(pipe, work, args.clips, args.first_seed)
    print(f"folders in {work} ({data['seconds']})", flush=True)
    groups = evaluation_groups(pipe, args.eval_seeds, args.candidates)

    critics = {"bundled (no fine-tune)": ("toyworld", None)}
    training = {}
    for source in SOURCES:
        for run in range(args.runs):
            name = f"fine-tuned on {source} (seed {run})"
            output = work / f"critic-{source}-{run}"
            started = time.perf_counter()
            summary = train_critic(
                output,
                data=data["folders"][source],
                init="toyworld",
                steps=args.steps,
                batch_size=args.batch_size,
                lr=args.lr,
                eval_every=10**9,
                checkpoint_every=100,
                seed=run,
                workers=args.workers,
                show_progress=False,
            )
            training[name] = {
                "final_loss": summary.get("final_loss"),
                "seconds": time.perf_counter() - started,
            }
            critics[name] = (str(output), source)
            print(f"{name}: {training[name]}", flush=True)

    results = {}
    for name, (model_id, _) in critics.items():
        results[name] = judge(VJEPA2Critic.from_pretrained(model_id), groups, pipe.fps, args.pairs)
        row = results[name]
        print(
            f"{name}: Spearman {row['spearman']:+.3f}, best-of-8 / average "
            f"{row['best_over_average'].get(8, float('nan')):.2f}, looks {row['accuracy_looks']:.3f}, "
            f"dynamics {row['accuracy_dynamics']:.3f}",
            flush=True,
        )

    def mean_over_runs(source: str, key: str) -> float:
        return float(np.mean([results[n][key] for n, (_, s) in critics.items() if s == source]))

    print("\n| critic | within-group Spearman | best-of-8 / average | violations: looks | dynamics |")
    print("|---|---:|---:|---:|---:|")
    for name, row in results.items():
        ratio = row["best_over_average"].get(8, float("nan"))
        print(
            f"| {name} | {row['spearman']:+.3f} | {ratio:.2f} | {row['accuracy_looks']:.3f} | "
            f"{row['accuracy_dynamics']:.3f} |"
        )
    for source in SOURCES:
        print(
            f"mean over {args.runs} fine-tunes on {source}: Spearman {mean_over_runs(source, 'spearman'):+.3f}, "
            f"dynamics {mean_over_runs(source, 'accuracy_dynamics'):.3f}"
        )
    if args.json:
        report = {
            "settings": {k: v for k, v in vars(args).items() if k not in ("json", "work")},
            "folder_seconds": data["seconds"],
            "groups": [{k: g[k] for k in ("prompt", "seed", "physics_error")} for g in groups],
            "training": training,
            "results": results,
            "mean_over_runs": {
                source: {
                    k: mean_over_runs(source, k) for k in ("spearman", "accuracy_looks", "accuracy_dynamics")
                }
                for source in SOURCES
            },
        }
        write_results({**report, "machine": machine()}, args.json)


if __name__ == "__main__":
    main()
