"""Best-of-N on tiny random components, on a CPU, in seconds.

The generator (a tiny WanPipeline) and the critic (a tiny VJEPA2Model) have random weights, so the chosen clip is
noise: this script shows the whole loop and its outputs, not physics. For real checkpoints see
`generate_gpu.py`.

    python examples/tiny_cpu.py --output out/best.mp4
"""

import argparse
from pathlib import Path

import torch

from hybridgen import HybridPipeline, VJEPA2Critic
from hybridgen.pipelines.hybrid import describe_reports
from hybridgen.testing import TINY_CALL_KWARGS, tiny_pipeline, tiny_vjepa2_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("out/best.mp4"), help="MP4 for the chosen clip")
    parser.add_argument("--family", choices=("wan", "ltx", "cogvideox"), default="wan")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # 1. Tiny random components: a real diffusers pipeline and a real transformers VJEPA2Model
    pipe = HybridPipeline(tiny_pipeline(args.family), VJEPA2Critic(tiny_vjepa2_model()))

    # 2. Generate the candidates and let the critic choose
    out = pipe(
        "a red ball bouncing",
        num_candidates=args.candidates,
        generator=torch.Generator().manual_seed(args.seed),
        **TINY_CALL_KWARGS[args.family],
    )

    # 3. Write the chosen clip, a contact sheet of all candidates and their surprise curves
    out.save(args.output, fps=8)
    out.save_contact_sheet(args.output.with_name(args.output.stem + "_candidates.png"))
    out.save_surprise_plot(args.output.with_name(args.output.stem + "_curves.png"))
    print(describe_reports(out))
    print(f"wrote {args.output} and its _candidates.png / _curves.png")


if __name__ == "__main__":
    main()
