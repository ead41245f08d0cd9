"""What the benchmark scripts share: their common options, a description of the machine, and writing results.

Every script here takes `--threads N` (torch CPU threads) and `--json PATH` (write the results there as JSON), and
those that can run on an accelerator `--device`. Each result file ends with the command that wrote it ("command",
which the bundled models' cards quote) and a "machine" block saying where it ran.

    parser = benchmark_parser(__doc__, threads=1)
    parser.add_argument(...)  # the script's own options
    args = parse_args(parser)  # sets the threads; a --json or --plot path that cannot be written fails here
    ...
    if args.json:
        write_results(results, args.json)

`python benchmarks/NAME.py` puts this folder first on `sys.path`, so the scripts import this module as `common`;
the tests, which also load scripts with importlib, have the folder on their path through pyproject's `pythonpath`.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
from importlib import metadata
from pathlib import Path

import torch

from hybridgen.video import PNG_SUFFIXES, check_output_path, write_json_atomic

# the output options parse_args checks up front, when a script has them, and the file names each must have
OUTPUT_SUFFIXES = {"json": (".json",), "plot": PNG_SUFFIXES}


def benchmark_parser(
    doc: str, *, threads: int | None = None, device: str | None = None
) -> argparse.ArgumentParser:
    """A parser described by the first line of `doc` (the script's docstring), with the shared options:

    - `--threads N`: torch CPU threads; default `threads` (None: leave torch's default, one per core);
    - `--json PATH`: write the results there;
    - `--device NAME`: only when `device` is given, which is then its default.
    """
    parser = argparse.ArgumentParser(description=doc.strip().split("\n")[0])
    shared = parser.add_argument_group("options every benchmark has")
    shown = "torch's own, one per core" if threads is None else threads
    shared.add_argument(
        "--threads", type=int, default=threads, metavar="N", help=f"torch CPU threads (default: {shown})"
    )
    if device is not None:
        shared.add_argument(
            "--device",
            default=device,
            metavar="NAME",
            help=f"torch device: cpu, cuda, cuda:1, ... (default: {device})",
        )
    shared.add_argument("--json", type=Path, metavar="PATH", help="write the results here as JSON")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """`parser.parse_args(argv)`, then what every benchmark does before its work: refuse a `--threads` below 1 and
    output paths (`--json`, and `--plot` where a script has one) that cannot be written, then set torch's threads."""
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    for option, suffixes in OUTPUT_SUFFIXES.items():
        path = getattr(args, option, None)
        if path is not None:
            try:
                check_output_path(path, suffixes)
            except (ValueError, OSError) as error:  # not a .json / .png name, a directory, below a file
                parser.error(f"--{option}: {error}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return args


def machine(device: str | torch.device | None = None) -> dict:
    """Where a benchmark runs: package versions, the CPU, torch's threads now, and `device` with the accelerator's
    name (None on the CPU)."""
    device = None if device is None else str(device)
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": _version("diffusers"),
        "transformers": _version("transformers"),
        "hybridgen": _version("hybridgen"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": device,
        "accelerator": accelerator_name(device),
    }


def write_results(results: dict, path: str | os.PathLike[str], *, device: str | None = None) -> Path:
    """Write `results` to `path` as JSON, atomically, with the command that ran ("command": `python` and this
    process's arguments) and a "machine" block (`machine(device)`) at the end unless they have them; say where.
    Returns `path` as a Path."""
    if "command" not in results:
        results = {**results, "command": shlex.join(["python", *sys.argv])}
    if "machine" not in results:
        results = {**results, "machine": machine(device)}
    path = write_json_atomic(results, path)
    print(f"wrote {path}")
    return path


def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC 7763 64-Core Processor"), from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def accelerator_name(device: str | None) -> str | None:
    """The GPU's name for a CUDA `device` ("cuda", "cuda:1") that is there; None otherwise. Never raises: results
    are written after the work, and describing the machine must not lose them."""
    if device is None or device.split(":")[0] != "cuda" or not torch.cuda.is_available():
        return None
    try:
        return torch.cuda.get_device_name(torch.device(device))
    except (AssertionError, RuntimeError, ValueError):  # no such GPU ("cuda:9"), or a malformed name
        return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
