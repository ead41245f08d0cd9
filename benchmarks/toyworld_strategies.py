"""Quality against budget on the toy world: best-of-N, critic-guided search and gradient guidance, same prompts/seeds.

For every prompt x seed group (the same groups for every method) we record, per returned video, the toy world's
ground-truth physics error, the critic's surprise, the denoising steps spent and the wall time:

- best-of-N, N = 1, 2, 4, 8, 16: one 16-candidate rerank run per group, cut into disjoint blocks of N
  (steps = N x K per video);
- search: `strategy="search"` at several budgets (start N trajectories, checkpoints, keep fraction);
- guidance: `strategy="guidance"` with one candidate: a scale sweep through the critic's own scoring over the first
  half of the steps (`sweep_options`), and `GUIDANCE_VARIANTS` (the library's defaults: mean over all tokens and
  windows, every 2nd step of all); unguided = each group's first seed without guidance.

`--max-candidates 1 --scales` (no scales) runs only plain sampling and the guidance variants; `--decode-scales 0.5`
adds the defaults with x̂0 decoded at half size (guidance's memory option).

    python benchmarks/toyworld_strategies.py --json results.json --plot strategies.png
"""

from __future__ import annotations

import time
from pathlib import Path

import diffusers
import numpy as np
import torch
import transformers
from common import benchmark_parser, machine, parse_args, write_results

from hybridgen import HybridPipeline
from hybridgen.pipelines.guidance import GuidanceOptions
from hybridgen.pipelines.rerank import call_value
from hybridgen.pipelines.search import SearchOptions
from hybridgen.toyworld import physics_error
from hybridgen.toyworld.prompts import BENCHMARK_PROMPTS
from hybridgen.toyworld.selection import best_of_n_table

PROMPTS = BENCHMARK_PROMPTS
SEARCHES = {
    "search 8, keep 1/2 at 25% and 50%": (8, SearchOptions(checkpoints=(0.25, 0.5), keep=0.5)),
    "search 8, keep 1/4 at 30%": (8, SearchOptions(checkpoints=(0.3,), keep=0.25)),
    "search 16, keep 1/4 at 20% and 40%": (16, SearchOptions(checkpoints=(0.2, 0.4), keep=0.25)),
}
GUIDANCE_SCALES = (0.05, 0.1, 0.2, 0.4)
PLAIN_SAME_SEEDS = "plain, guidance's seeds"
# GuidanceOptions() defaults; chosen on seeds 2000 and 2001 (16 groups) before the benchmark runs
GUIDANCE_VARIANTS = {"guidance 0.05, every 2nd step of all, mean scoring": GuidanceOptions()}


def sweep_options(scale: float) -> GuidanceOptions:
    """The scale sweep: the critic's own scoring options, every step of the first half."""
    return GuidanceOptions(scale=scale, end=0.5, every=1, objective="critic")


def generate(pipe: HybridPipeline, prompt: str, seed: int, candidates: int, **options):
    started = time.perf_counter()
    out = pipe(
        prompt,
        num_candidates=candidates,
        generator=torch.Generator().manual_seed(seed),
        show_progress=False,
        **options,
    )
    return out, time.perf_counter() - started


def measure(out, seconds: float) -> dict:
    """The returned video's physics error and surprise, the steps and the wall time."""
    return {
        "physics_error": physics_error(out.video),
        "surprise": out.surprises[out.best_index],
        "steps": out.denoising_steps,
        "seconds": seconds,
    }


def summarise(rows: list[dict]) -> dict:
    return {
        key: float(np.mean([row[key] for row in rows]))
        for key in ("physics_error", "surprise", "steps", "seconds")
    }


def plot(methods: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    from hybridgen.viz import save_figure

    figure = Figure(figsize=(10, 4))
    for axes, key, label in zip(
        figure.subplots(1, 2),
        ("physics_error", "surprise"),
        ("physics error (ground truth)", "critic surprise"),
    ):
        best = [m for name, m in methods.items() if name.startswith("best-of-")]
        axes.plot([m["steps"] for m in best], [m[key] for m in best], "-o", label="best-of-N (1..16)")
        for name, m in methods.items():
            if name.startswith("search"):
                axes.plot(m["steps"], m[key], "s", label=name)
            elif name == PLAIN_SAME_SEEDS:
                axes.plot(m["steps"], m[key], "kx", label=f"{name} (guidance's baseline)")
            elif name.startswith("guidance"):
                axes.plot(m["steps"], m[key], "^", label=name)
        axes.set_xscale("log", base=2)
        axes.set_xlabel("denoising steps per returned video")
        axes.set_ylabel(label)
    figure.axes[0].legend(fontsize=7)
    figure.suptitle("toy world: quality against budget")
    figure.tight_layout()
    save_figure(figure, path)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--generator", default="toyworld", help="generator id (default: the bundled one)")
    parser.add_argument("--critic", help="critic id (default: the generator's bundled critic)")
    parser.add_argument(
        "--prompts", type=int, default=len(PROMPTS), help=f"how many of the {len(PROMPTS)} prompts"
    )
    parser.add_argument("--seeds", type=int, default=2, help="seeds per prompt (default 2)")
    parser.add_argument(
        "--first-seed", type=int, default=1000, help="group seeds count up from here (default 1000)"
    )
    parser.add_argument("--max-candidates", type=int, default=16, help="largest best-of-N (default 16)")
    parser.add_argument("--scales", type=float, nargs="*", default=GUIDANCE_SCALES, help="guidance scales")
    parser.add_argument(
        "--decode-scales",
        type=float,
        nargs="*",
        default=(),
        help="also guide with the defaults and each of these GuidanceOptions.decode_scale (default: none)",
    )
    parser.add_argument("--plot", type=Path, help="write the quality-against-budget plot here (PNG)")
    args = parse_args(parser)
    variants = dict(GUIDANCE_VARIANTS)
    variants.update(
        {
            f"guidance defaults, decode_scale {s:g}": GuidanceOptions(decode_scale=s)
            for s in args.decode_scales
        }
    )
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    pipe = HybridPipeline.from_pretrained(args.generator, critic=args.critic)
    sizes = [n for n in (1, 2, 4, 8, 16) if n <= args.max_candidates]
    searches = {name: spec for name, spec in SEARCHES.items() if spec[0] <= args.max_candidates}

    groups = [
        (prompt, args.first_seed + seed) for prompt in PROMPTS[: args.prompts] for seed in range(args.seeds)
    ]
    rerank, per_method = [], {name: [] for name in searches}
    per_method.update({f"guidance {scale:g}": [] for scale in args.scales})
    per_method.update({name: [] for name in variants})
    for prompt, seed in groups:
        out, seconds = generate(pipe, prompt, seed, args.max_candidates)
        errors = [physics_error(clip) for clip in out.candidates]
        rerank.append(
            {"surprise": out.surprises, "physics_error": errors, "seconds": seconds, "seeds": out.seeds}
        )
        for name, (candidates, options) in searches.items():
            per_method[name].append(
                measure(*generate(pipe, prompt, seed, candidates, strategy="search", search=options))
            )
        for scale in args.scales:
            guided, seconds = generate(
                pipe, prompt, seed, 1, strategy="guidance", guidance=sweep_options(scale)
            )
            if guided.seeds[0] != out.seeds[0]:
                raise RuntimeError("guided and unguided runs must start from the same seed")
            per_method[f"guidance {scale:g}"].append(measure(guided, seconds))
        for name, options in variants.items():
            guided, seconds = generate(pipe, prompt, seed, 1, strategy="guidance", guidance=options)
            per_method[name].append(measure(guided, seconds))

    num_steps = int(call_value(pipe.pipeline, pipe.call_defaults, "num_inference_steps"))
    table = best_of_n_table([r["surprise"] for r in rerank], [r["physics_error"] for r in rerank], sizes)
    seconds_per_candidate = np.mean([r["seconds"] for r in rerank]) / args.max_candidates
    methods = {}
    for row in table:
        surprise_of_best = []
        for r in rerank:
            s = np.array(r["surprise"])
            surprise_of_best += [
                s[start : start + row["n"]].min() for start in range(0, len(s) - row["n"] + 1, row["n"])
            ]
        methods[f"best-of-{row['n']}"] = {
            "physics_error": row["best"],
            "surprise": float(np.mean(surprise_of_best)),
            "steps": float(row["n"] * num_steps),
            "seconds": float(row["n"] * seconds_per_candidate),
            "average_candidate": row["average"],
            "random_pick": row["random"],
            "oracle": row["oracle"],
        }
    # guidance starts from each group's first seed: its baseline is that candidate unguided, not the average one
    methods[PLAIN_SAME_SEEDS] = {
        "physics_error": float(np.mean([r["physics_error"][0] for r in rerank])),
        "surprise": float(np.mean([r["surprise"][0] for r in rerank])),
        "steps": float(num_steps),
        "seconds": float(seconds_per_candidate),
    }
    for name, rows in per_method.items():
        methods[name] = summarise(rows)

    best8 = methods.get("best-of-8")
    print(f"{len(groups)} groups ({args.generator}); {num_steps} steps per trajectory")
    print("| method | steps / video | physics error | surprise | seconds / video | vs its baseline* |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, m in methods.items():
        baseline = methods[PLAIN_SAME_SEEDS if name.startswith("guidance") else "best-of-1"]["physics_error"]
        print(
            f"| {name} | {m['steps']:.0f} | {m['physics_error']:.4f} | {m['surprise']:.4f} | {m['seconds']:.2f} | "
            f"{m['physics_error'] / baseline - 1:+.0%} |"
        )
    print(f"* guidance: vs '{PLAIN_SAME_SEEDS}'; others: vs best-of-1 (the average candidate)")
    if best8:
        for name in searches:
            m = methods[name]
            print(
                f"{name}: {m['steps'] / best8['steps']:.0%} of best-of-8's steps, physics error "
                f"{m['physics_error']:.4f} vs {best8['physics_error']:.4f}"
            )
    system = machine()
    results = {
        "generator": args.generator,
        "critic": args.critic or args.generator,
        "groups": len(groups),
        "num_inference_steps": num_steps,
        "methods": methods,
        "per_group": {"rerank": rerank, **per_method},
        "environment": {key: system[key] for key in ("machine", "threads", "torch")},
        "machine": system,
    }
    if args.json:
        write_results(results, args.json)
    if args.plot:
        plot(methods, args.plot)


if __name__ == "__main__":
    main()
