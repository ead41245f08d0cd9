"""Batch generation: a file of items (a prompt and its options each) in, one chosen clip and one record per item out.

    items = read_items("prompts.jsonl")                   # .txt, .jsonl or .csv
    summary = run_batch(pipe, items, "out/", num_candidates=4)

For each item `DIR/<id>.mp4` (the chosen clip) and `DIR/<id>.json` (its record: prompt, seed, every candidate's
surprise and seed, the chosen index, the process that made it, wall time), then `DIR/results.jsonl`: one line per
item in item order. Every file is written atomically, the record last, so a record means a finished item:

- **resumable**: a rerun skips items whose record asks for what the item asks now, redoes the rest (an item cut off
  before its record, or one whose prompt, seed or options changed), and removes the temporary files a killed run
  left in DIR;
- **across processes**: under `accelerate launch` or `torchrun`, accelerate's `PartialState` gives each process a
  contiguous share of the items and one process writes `results.jsonl`. An item's seeds come from the item (its
  `seed`, else the batch's first seed plus its position in the file), never from the process, so its clip does not
  depend on how many processes ran;
- **forgiving**: an item that fails (say, options its generator cannot take) is reported with its error in
  `results.jsonl` and the rest go on; it has no record, so a rerun tries it again.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

ITEM_SUFFIXES = (".txt", ".jsonl", ".csv")
RESULTS_FILE = "results.jsonl"
# item fields a .jsonl / .csv row may hold besides `prompt`, `id` and `seed`: each one's HybridPipeline argument
CALL_OPTIONS = {
    "candidates": "num_candidates",
    "strategy": "strategy",
    "frames": "num_frames",
    "height": "height",
    "width": "width",
    "steps": "num_inference_steps",
    "negative_prompt": "negative_prompt",
    "image": "image",  # a path (relative to the items file); the image is read when the item runs
    "video": "video",  # a path too; the clip (its first `frames` frames, if given) is read when the item runs
}
INTEGER_OPTIONS = ("candidates", "frames", "height", "width", "steps")
PATH_OPTIONS = ("image", "video")
ITEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # a file name, never a path


@dataclass(frozen=True)
class BatchItem:
    """One thing to generate: `id` (names its files), `prompt`, `seed`, and `options` (names of `CALL_OPTIONS`)."""

    id: str
    prompt: str
    seed: int
    options: dict = field(default_factory=dict)

    def request(self, defaults: dict) -> dict:
        """What this item asks for: prompt, seed and every call option, the batch's `defaults` filled in."""
        return {"prompt": self.prompt, "seed": self.seed, **defaults, **self.options}


def read_items(path: str | Path, *, first_seed: int = 0) -> list[BatchItem]:
    """The items of a `.txt` (one prompt a line; blank lines and `#` comments skipped), `.jsonl` or `.csv` file (a
    `prompt` field and optional `id`, `seed` and `CALL_OPTIONS`). Items without an `id` are numbered by position
    (`00000`, `00001`, ...); without a `seed`, item i gets `first_seed + i`. Anything wrong (an unknown field, an
    empty prompt, a repeated id, a value of the wrong type) raises one `ValueError` naming the line."""
    path = Path(path)
    if path.suffix.lower() not in ITEM_SUFFIXES:
        raise ValueError(
            f"{path}: items must be a {', '.join(ITEM_SUFFIXES)} file, got {path.suffix or 'no suffix'!r}."
        )
    if not path.is_file():
        raise FileNotFoundError(f"items file not found: {path}")
    rows = list(_rows(path))
    if not rows:
        raise ValueError(f"{path} holds no items.")
    items = [_item(row, line, index, first_seed, path) for index, (line, row) in enumerate(rows)]
    seen: dict[str, int] = {}
    for (line, _), item in zip(rows, items):
        if item.id in seen:
            raise ValueError(
                f"{path}:{line}: id {item.id!r} repeats line {seen[item.id]}; ids name files, so each must be unique."
            )
        seen[item.id] = line
    return items


def _rows(path: Path):
    """`(line number, {field: value})` for each item of the file."""
    with open(path, encoding="utf-8", newline="") as file:
        suffix = path.suffix.lower()
        if suffix == ".csv":
            reader = csv.DictReader(file)
            for row in reader:
                if None in row:
                    raise ValueError(f"{path}:{reader.line_num}: more values than the header has columns.")
                yield reader.line_num, {key: value for key, value in row.items() if value not in ("", None)}
            return
        for line, text in enumerate(file, start=1):
            text = text.strip()
            if not text or (suffix == ".txt" and text.startswith("#")):
                continue
            if suffix == ".txt":
                yield line, {"prompt": text}
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{line}: not JSON ({error.msg}).") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{line}: each line must be a JSON object with a 'prompt'.")
            yield line, row


def _item(row: dict, line: int, index: int, first_seed: int, path: Path) -> BatchItem:
    where = f"{path}:{line}"
    unknown = sorted(set(row) - {"prompt", "id", "seed", *CALL_OPTIONS})
    if unknown:
        allowed = ", ".join(["prompt", "id", "seed", *CALL_OPTIONS])
        raise ValueError(f"{where}: unknown field {unknown[0]!r}; an item may have {allowed}.")
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"{where}: the item has no prompt (a non-empty 'prompt' field).")
    item_id = str(row.get("id", f"{index:05d}"))
    if not ITEM_ID.fullmatch(item_id) or item_id == Path(RESULTS_FILE).stem:
        raise ValueError(
            f"{where}: id {item_id!r} cannot name a file: use letters, digits, '.', '_' and '-' (not first), at "
            f"most 128, and not {Path(RESULTS_FILE).stem!r}."
        )
    seed = _integer(row["seed"], "seed", where, minimum=0) if "seed" in row else first_seed + index
    options = {}
    for name in CALL_OPTIONS:
        if name not in row:
            continue
        value = row[name]
        if name in INTEGER_OPTIONS:
            value = _integer(value, name, where, minimum=1)
        elif not isinstance(value, str):
            raise ValueError(f"{where}: {name} must be text, got {value!r}.")
        elif name in PATH_OPTIONS:
            value = str(
                (path.parent / value).resolve()
            )  # as the items file names it, wherever the batch runs
        options[name] = value
    return BatchItem(item_id, prompt.strip(), seed, options)


def _integer(value, name: str, where: str, *, minimum: int) -> int:
    """`value` (an int, or its text in a CSV) as an int >= minimum, or one error naming the line."""
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}.")
    return value


# ----------------------------------------------------------------------------- running a batch


def finished_record(directory: Path, item: BatchItem, request: dict) -> dict | None:
    """The item's record if it is finished and asked for `request` (its clip present too); else None."""
    record_path, video_path = directory / f"{item.id}.json", directory / f"{item.id}.mp4"
    if not (record_path.is_file() and video_path.is_file()):
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # unreadable: made again
    return record if isinstance(record, dict) and record.get("request") == request else None


def remove_temporary_files(directory: Path, items: list[BatchItem]) -> list[Path]:
    """Delete the temporary files a killed run left behind for these items' outputs (and `results.jsonl`)."""
    from hybridgen.video import TEMPORARY_FILE

    stems = {item.id for item in items} | {Path(RESULTS_FILE).stem}
    removed = []
    for path in directory.iterdir() if directory.is_dir() else ():
        match = TEMPORARY_FILE.fullmatch(path.name)
        if match and match["stem"] in stems and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def run_item(
    pipe, item: BatchItem, directory: Path, defaults: dict, *, process: int, fps: float | None
) -> dict:
    """Generate `item`, write its clip then its record; return the record."""
    import torch

    from hybridgen.pipelines.conditioning import read_conditioning_video
    from hybridgen.pipelines.guidance import GuidanceOptions
    from hybridgen.video import read_image, write_json_atomic

    request = item.request(defaults)
    started = time.perf_counter()
    call = {CALL_OPTIONS[name]: value for name, value in request.items() if name in CALL_OPTIONS}
    if call.get("image") is not None:  # a missing or broken file fails this item alone
        call["image"] = read_image(call["image"])
    if call.get("video") is not None:
        call["video"] = read_conditioning_video(call["video"], call.get("num_frames"))
    passed = {
        name: value for name, value in defaults.items() if name not in CALL_OPTIONS and name != "guidance"
    }
    if defaults.get("guidance") and request.get("strategy") == "guidance":  # GuidanceOptions fields
        passed["guidance"] = GuidanceOptions(**defaults["guidance"])
    out = pipe(
        item.prompt,
        generator=torch.Generator().manual_seed(item.seed),
        show_progress=False,
        **{name: value for name, value in call.items() if value is not None},
        **passed,
    )
    out.save(directory / f"{item.id}.mp4", fps=fps)
    record = {
        "id": item.id,
        "prompt": item.prompt,
        "seed": item.seed,
        "video": f"{item.id}.mp4",
        "surprise": out.surprises[out.best_index],
        "chosen_index": out.best_index,
        "candidates": [
            {"index": i, "seed": seed, "surprise": surprise}
            for i, (seed, surprise) in enumerate(zip(out.seeds, out.surprises))
        ],
        "strategy": out.strategy,
        "denoising_steps": out.denoising_steps,
        "process": process,
        "seconds": round(time.perf_counter() - started, 3),
        "request": request,
    }
    write_json_atomic(record, directory / f"{item.id}.json")  # last: a record means the clip is complete
    return record


def run_batch(
    pipe,
    items: list[BatchItem],
    directory: str | Path,
    *,
    defaults: dict | None = None,
    fps: float | None = None,
    processes=None,
    show_progress: bool = True,
) -> dict:
    """Generate every item not already finished in `directory` with `pipe` (a `HybridPipeline`); return the
    summary (`done`, `skipped`, `failed`, `items`), the same on every process.

    Args:
        defaults: call options for every item, named as `CALL_OPTIONS` (`candidates`, `strategy`, ...) or as
            `HybridPipeline.__call__` takes them (`batch_size`, ...), and `guidance`: `GuidanceOptions` fields
            for the items whose strategy is guidance; an item's own options win. They are part of what an item
            asks for, so changing them redoes the items.
        fps: frame rate of the written MP4s (default: the generator's).
        processes: an accelerate `PartialState` to split the items over (default: this process alone).
    """
    from accelerate.utils import gather_object
    from tqdm.auto import tqdm

    from hybridgen.video import check_directory_path, write_jsonl_atomic

    directory = check_directory_path(directory)
    defaults = dict(defaults or {})
    distributed = processes is not None and processes.use_distributed
    main = processes is None or processes.is_main_process
    if main:
        directory.mkdir(parents=True, exist_ok=True)
        remove_temporary_files(directory, items)
    if distributed:
        processes.wait_for_everyone()

    rows = []
    index = processes.process_index if distributed else 0
    share = processes.split_between_processes(items) if distributed else nullcontext(items)
    with share as my_items:
        for item in tqdm(my_items, desc="items", disable=not (show_progress and main)):
            request = item.request(defaults)
            record = finished_record(directory, item, request)
            if record is not None:
                rows.append({**_result(record), "status": "skipped"})
                continue
            try:
                record = run_item(pipe, item, directory, defaults, process=index, fps=fps)
            except Exception as error:  # noqa: BLE001 - one item's failure is recorded; the batch goes on
                message = f"{type(error).__name__}: {error}"
                print(f"hybridgen batch: item {item.id} failed: {message}", file=sys.stderr)
                rows.append(
                    {
                        "id": item.id,
                        "prompt": item.prompt,
                        "seed": item.seed,
                        "error": message,
                        "status": "failed",
                    }
                )
                continue
            rows.append({**_result(record), "status": "done"})
    rows = gather_object(rows) if distributed else rows  # every process's, in item order

    if main:
        write_jsonl_atomic(
            [{k: v for k, v in row.items() if k != "status"} for row in rows], directory / RESULTS_FILE
        )
    if distributed:
        processes.wait_for_everyone()
    statuses = [row["status"] for row in rows]
    return {status: statuses.count(status) for status in ("done", "skipped", "failed")} | {"items": len(rows)}


def _result(record: dict) -> dict:
    """An item's line in `results.jsonl`."""
    keys = ("id", "prompt", "seed", "video", "surprise", "chosen_index", "process", "seconds")
    return {key: record.get(key) for key in keys}
