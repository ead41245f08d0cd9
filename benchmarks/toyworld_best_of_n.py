"""Does best-of-N by surprise pick physically better clips? The bundled toy-world generator, judged by ground truth.

For each prompt x seed group, `HybridPipeline` generates `--candidates` clips (each from its own seed) and the
critic scores them. Every candidate also gets the toy world's independent, pixels-only physics error and a
prompt-following check (ball count and colour read off the pixels). For N = 1, 2, 4, ... the candidates of a group
are cut into disjoint blocks of N and, over all blocks, we report the physics error of

- best:    the block's least surprising candidate (what `HybridPipeline` returns);
- average: the block's mean candidate (the expected error of an unranked pick);
- random:  one candidate drawn at random from the block (seeded);
- oracle:  the block's lowest physics error (the ceiling any critic could reach);

and p: how often random picks (one per block, 10,000 Monte Carlo draws) do at least as well as best, a one-sided
p-value for "choosing by surprise beats chance".

Timing: the main job (load `toyworld`, best-of-4 for one prompt, write the MP4) and, per candidate, scoring
against generating.

    python benchmarks/toyworld_best_of_n.py --json results.json --plot best_of_n.png
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import diffusers
import numpy as np
import torch
import transformers
from common import benchmark_parser, machine, parse_args, write_results

from hybridgen import HybridPipeline
from hybridgen.toyworld import TERMS, physics_report
from hybridgen.toyworld.evaluation import QUICK_VIOLATION_SCORING
from hybridgen.toyworld.prompts import BENCHMARK_PROMPTS, follows_prompt
from hybridgen.toyworld.selection import best_of_n_table, rank_correlation

PROMPTS = BENCHMARK_PROMPTS
# other scoring options of the same critic, applied to the same candidates: QUICK_VIOLATION_SCORING (the bundled
# critic's default until 2026-12-02, when the mean ranked generated candidates better on seeds 1000 and 3000) and forward
# prediction only (the best option tried on validation seeds 2000)
SCORING_VARIANTS = {
    "top 2% tokens, worst window (violation scoring)": QUICK_VIOLATION_SCORING,
    "forward only, mean over all tokens and windows": {
        "direction": "forward",
        "top_fraction": None,
        "aggregate": "mean",
    },
}


def run_group(pipe: HybridPipeline, prompt: str, seed: int, candidates: int) -> dict:
    """Generate and score one group; per-candidate surprise, physics error, prompt following and timings."""
    started = time.perf_counter()
    out = pipe(
        prompt,
        num_candidates=candidates,
        generator=torch.Generator().manual_seed(seed),
        show_progress=False,
    )
    total = time.perf_counter() - started
    started = time.perf_counter()
    pipe.critic.score_batch(out.candidates, fps=pipe.fps)  # the scoring part of the call, timed alone
    scoring = time.perf_counter() - started
    following = [follows_prompt(clip, prompt) for clip in out.candidates]
    variants = {}
    for name, options in SCORING_VARIANTS.items():
        critic = pipe.critic.with_options(**options)
        variants[name] = [report.surprise for report in critic.score_batch(out.candidates, fps=pipe.fps)]
    reports = [physics_report(clip) for clip in out.candidates]
    return {
        "prompt": prompt,
        "seed": seed,
        "surprise": out.surprises,
        "physics_error": [report.total for report in reports],
        "physics_terms": {term: [report.terms[term] for report in reports] for term in TERMS},
        "count_ok": [row["count"] for row in following],
        "colour_ok": [row["colour"] for row in following],
        "seconds_total": total,
        "seconds_scoring": scoring,
        "variants": variants,
    }


def term_correlation(surprise: list[list[float]], groups: list[dict]) -> dict[str, dict[str, float]]:
    """Within-group Spearman of surprise with each term of the physics checker, and of each term with the total
    error: which kinds of mistake the critic sees, and which ones make up the error."""
    error = [group["physics_error"] for group in groups]
    correlations = {}
    for term in TERMS:
        values = [group["physics_terms"][term] for group in groups]
        correlations[term] = {
            "surprise": rank_correlation(surprise, values),
            "error": rank_correlation(values, error),
            "mean": float(np.mean(values)),
        }
    return correlations


def time_main_job(generator: str, critic: str | None, candidates: int) -> dict:
    """Wall time of the README's main job, in process: load, best-of-N for one prompt, write MP4 + pictures."""
    started = time.perf_counter()
    pipe = HybridPipeline.from_pretrained(generator, critic=critic)
    loaded = time.perf_counter()
    out = pipe(
        "a red ball bouncing",
        num_candidates=candidates,
        generator=torch.Generator().manual_seed(0),
        show_progress=False,
    )
    generated = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        out.save(Path(directory) / "best.mp4")
        out.save_contact_sheet(Path(directory) / "candidates.png")
        out.save_surprise_plot(Path(directory) / "curves.png")
    done = time.perf_counter()
    return {
        "candidates": candidates,
        "seconds_load": loaded - started,
        "seconds_generate_and_score": generated - loaded,
        "seconds_write": done - generated,
        "seconds_total": done - started,
    }


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 (first 16 hex digits) of a model's weights in name order: which checkpoint a bundled name meant."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    from hybridgen.viz import save_figure

    figure = Figure(figsize=(5, 3.5))
    axes = figure.subplots()
    ns = [row["n"] for row in rows]
    for name, style in (("average", "--"), ("random", ":"), ("best", "-o"), ("oracle", "-.")):
        axes.plot(
            ns, [row[name] for row in rows], style, label=name if name != "best" else "best by surprise"
        )
    axes.set_xscale("log", base=2)
    axes.set_xticks(ns, [str(n) for n in ns])
    axes.set_xlabel("candidates N")
    axes.set_ylabel("physics error (toy-world checker)")
    axes.set_title("best-of-N on the toy world")
    axes.legend()
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
    parser.add_argument("--candidates", type=int, default=16, help="candidates per group (default 16)")
    parser.add_argument("--plot", type=Path, help="write the best-of-N plot here (PNG)")
    args = parse_args(parser)
    if not 1 <= args.prompts <= len(PROMPTS):
        parser.error(f"--prompts must be 1..{len(PROMPTS)}")
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    sizes = [n for n in (1, 2, 4, 8, 16) if n <= args.candidates]

    main_job = time_main_job(args.generator, args.critic, candidates=4)
    pipe = HybridPipeline.from_pretrained(args.generator, critic=args.critic)
    groups = [
        run_group(pipe, prompt, args.first_seed + seed, args.candidates)
        for prompt in PROMPTS[: args.prompts]
        for seed in range(args.seeds)
    ]
    surprise = [group["surprise"] for group in groups]
    error = [group["physics_error"] for group in groups]
    rows = best_of_n_table(surprise, error, sizes)
    count_ok = [ok for group in groups for ok in group["count_ok"]]
    colour_ok = [ok for group in groups for ok in group["colour_ok"] if ok is not None]
    scoring = sum(group["seconds_scoring"] for group in groups)
    generating = sum(group["seconds_total"] for group in groups) - scoring
    system = machine()
    results = {
        "generator": args.generator,
        "critic": args.critic or args.generator,
        "critic_weights": weights_fingerprint(pipe.critic.model),  # which weights a name meant at the time
        "scoring": pipe.critic.options.to_dict(),
        "groups": len(groups),
        "first_seed": args.first_seed,
        "max_candidates": args.candidates,
        "best_of_n": rows,
        "rank_correlation": rank_correlation(surprise, error),
        "term_correlation": term_correlation(surprise, groups),
        "variants": {
            name: {
                "best_of_n": best_of_n_table([g["variants"][name] for g in groups], error, sizes),
                "rank_correlation": rank_correlation([g["variants"][name] for g in groups], error),
                "term_correlation": term_correlation([g["variants"][name] for g in groups], groups),
            }
            for name in SCORING_VARIANTS
        },
        "prompt_following": {
            "count": float(np.mean(count_ok)),
            "colour": float(np.mean(colour_ok)) if colour_ok else float("nan"),
            "clips": len(count_ok),
        },
        "timing": {
            "main_job": main_job,
            "seconds_per_candidate_generate": generating / len(count_ok),
            "seconds_per_candidate_score": scoring / len(count_ok),
            "score_over_generate": scoring / generating,
        },
        "environment": {key: system[key] for key in ("machine", "processor", "threads", "torch")},
        "groups_detail": groups,
        "machine": system,
    }

    print(f"{len(groups)} groups x {args.candidates} candidates ({args.generator})")
    print(
        "|   N | blocks | best (surprise) | average | random | oracle | best / average | p (random <= best) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['n']:>3} | {row['blocks']:>6} | {row['best']:.4f} | {row['average']:.4f} | "
            f"{row['random']:.4f} | {row['oracle']:.4f} | {row['best_over_average']:.2f} | {row['p_random']:.4f} |"
        )
    for name, variant in results["variants"].items():
        cells = ", ".join(f"N={row['n']}: {row['best']:.4f}" for row in variant["best_of_n"])
        print(f"scoring variant '{name}': best-of-N {cells}; Spearman {variant['rank_correlation']:.3f}")
    following = results["prompt_following"]
    print(f"prompt following: count {following['count']:.3f}, colour {following['colour']:.3f}")
    print(f"surprise vs physics error, within-group Spearman: {results['rank_correlation']:.3f}")
    print(
        "| checker term | mean | Spearman with error | with surprise | " + " | ".join(SCORING_VARIANTS) + " |"
    )
    print("|---|---:|---:|---:|" + "---:|" * len(SCORING_VARIANTS))
    for term, row in results["term_correlation"].items():
        cells = [f"{v['term_correlation'][term]['surprise']:+.2f}" for v in results["variants"].values()]
        print(
            f"| {term} | {row['mean']:.3f} | {row['error']:+.2f} | {row['surprise']:+.2f} | "
            + " | ".join(cells)
            + " |"
        )
    timing = results["timing"]
    print(
        f"per candidate: generate {timing['seconds_per_candidate_generate']:.2f} s, score "
        f"{timing['seconds_per_candidate_score']:.3f} s ({timing['score_over_generate']:.1%} of generating)"
    )
    print(f"main job (load + best-of-4 + write): {main_job['seconds_total']:.1f} s")
    if args.json:
        write_results(results, args.json)
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
