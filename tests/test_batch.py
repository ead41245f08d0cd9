"""`hybridgen batch`: items files, one clip and record per item, resume after a crash, and two processes."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from hybridgen.cli import main
from hybridgen.jobs import read_items

TINY = ["--frames", "17", "--height", "32", "--width", "32", "--steps", "2", "--candidates", "2"]
TINY += ["--quiet", "--device", "cpu"]
ITEMS = [
    {"prompt": "a red ball bouncing", "id": "red"},
    {"prompt": "two blue balls falling", "seed": 7},
    {"prompt": "a green ball", "candidates": 3},
    {"prompt": "a yellow ball", "id": "short", "frames": 3},  # too short for the critic: this item fails
    {"prompt": "three red balls bouncing"},
]


def write_items(path, items=ITEMS):
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def batch_argv(saved_models, items, output, *extra):
    models = ["--generator", str(saved_models / "generator"), "--critic", str(saved_models / "critic")]
    return ["batch", str(items), "-o", str(output), *models, *TINY, *extra]


def results(output):
    return [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]


def outcome(output):
    """What must not depend on how the batch ran: per item id, its seed and surprise (to float32 rounding, which
    torch's thread count moves), or its error."""
    return [
        (
            row["id"],
            row["seed"],
            None if "error" in row else pytest.approx(row["surprise"], rel=1e-5),
            row.get("error"),
        )
        for row in results(output)
    ]


# ----------------------------------------------------------------------------- items files


def test_items_come_from_txt_jsonl_and_csv(tmp_path):
    text = tmp_path / "prompts.txt"
    text.write_text("# a comment\na red ball\n\n  two blue balls  \n")
    items = read_items(text, first_seed=10)
    assert [(i.id, i.prompt, i.seed, i.options) for i in items] == [
        ("00000", "a red ball", 10, {}),
        ("00001", "two blue balls", 11, {}),
    ]
    lines = write_items(tmp_path / "items.jsonl")
    items = read_items(lines)
    assert [i.id for i in items] == ["red", "00001", "00002", "short", "00004"]
    assert [i.seed for i in items] == [0, 7, 2, 3, 4]
    assert items[2].options == {"candidates": 3}
    table = tmp_path / "items.csv"
    table.write_text("prompt,id,seed,candidates,strategy\na red ball,a,5,3,search\nblue,,,,\n")
    items = read_items(table)
    assert [(i.id, i.seed, i.options) for i in items] == [
        ("a", 5, {"candidates": 3, "strategy": "search"}),
        ("00001", 1, {}),
    ]


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("a.jsonl", '{"prompt": "x", "colour": "red"}\n', "a.jsonl:1: unknown field 'colour'"),
        ("a.jsonl", '{"prompt": "x"}\n{"seed": 1}\n', "a.jsonl:2: the item has no prompt"),
        ("a.jsonl", '{"prompt": "x", "id": "a"}\n{"prompt": "y", "id": "a"}\n', "id 'a' repeats line 1"),
        ("a.jsonl", '{"prompt": "x", "id": "../up"}\n', "id '../up' cannot name a file"),
        ("a.jsonl", '{"prompt": "x", "id": "results"}\n', "id 'results' cannot name a file"),
        ("a.jsonl", '{"prompt": "x", "candidates": 0}\n', "candidates must be an integer >= 1, got 0"),
        ("a.jsonl", '{"prompt": "x", "seed": -1}\n', "seed must be an integer >= 0"),
        ("a.jsonl", '{"prompt": "x", "video": 3}\n', "a.jsonl:1: video must be text, got 3"),
        ("a.jsonl", '["x"]\n', "must be a JSON object"),
        ("a.jsonl", "{prompt\n", "a.jsonl:1: not JSON"),
        ("a.csv", "prompt,candidates\nx,two\n", "a.csv:2: candidates must be an integer >= 1, got 'two'"),
        ("a.csv", "prompt\nx,y\n", "more values than the header"),
        ("a.txt", "# only a comment\n\n", "holds no items"),
        ("a.yaml", "prompt: x\n", "must be a .txt, .jsonl, .csv file"),
    ],
)
def test_bad_items_are_refused_naming_the_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        read_items(path)


def test_bad_items_or_options_are_refused_before_the_models_load(tmp_path, capsys):
    bad, good = tmp_path / "bad.jsonl", write_items(tmp_path / "good.jsonl")
    bad.write_text('{"prompt": "x", "colour": "red"}\n')
    output = tmp_path / "out"
    for items, options, message in (
        (bad, [], "unknown field 'colour'"),
        (good, ["--candidates", "0"], "--candidates must be an integer >= 1, got 0"),
        (good, ["--fps", "0"], "--fps must be a positive"),
    ):
        argv = ["batch", str(items), "-o", str(output), "--generator", "/no/such/model", "--quiet", *options]
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    assert not output.exists()


# ----------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def reference(saved_models, tmp_path_factory):
    """One uninterrupted run of ITEMS in this process."""
    folder = tmp_path_factory.mktemp("reference")
    assert main(batch_argv(saved_models, write_items(folder / "items.jsonl"), folder / "out")) == 1
    return folder / "out"


def test_each_item_gets_a_clip_and_a_record_and_a_failure_does_not_stop_the_batch(reference, capsys):
    rows = results(reference)
    assert [row["id"] for row in rows] == ["red", "00001", "00002", "short", "00004"]  # item order
    assert "num_frames=3 is too short for the critic" in rows[3]["error"]
    assert not (reference / "short.json").exists()  # no record: a rerun tries it again
    for row in rows[:3] + rows[4:]:
        record = json.loads((reference / f"{row['id']}.json").read_text())
        assert (reference / record["video"]).stat().st_size > 0
        assert record["surprise"] == row["surprise"] == min(c["surprise"] for c in record["candidates"])
        assert record["process"] == 0 and record["seconds"] > 0
    assert len(json.loads((reference / "00002.json").read_text())["candidates"]) == 3  # the item's own option


def test_a_rerun_skips_finished_items_and_redoes_changed_ones(saved_models, reference, tmp_path, capsys):
    import shutil

    output = shutil.copytree(reference, tmp_path / "out")
    items = write_items(tmp_path / "items.jsonl")
    before = {path.name: path.stat().st_mtime_ns for path in output.iterdir()}
    assert main(batch_argv(saved_models, items, output)) == 1
    assert "5 items: 0 done, 4 already finished, 1 failed" in capsys.readouterr().err
    assert all(
        output.joinpath(name).stat().st_mtime_ns == when
        for name, when in before.items()
        if name != "results.jsonl"
    )
    assert outcome(output) == outcome(reference)

    changed = [dict(ITEMS[0], prompt="a purple ball bouncing"), *ITEMS[1:]]
    assert main(batch_argv(saved_models, write_items(items, changed), output)) == 1
    assert "5 items: 1 done, 3 already finished, 1 failed" in capsys.readouterr().err
    assert json.loads((output / "red.json").read_text())["prompt"] == "a purple ball bouncing"


def test_a_killed_batch_resumes_to_the_same_results_and_leaves_no_temporary_files(
    saved_models, reference, tmp_path
):
    items = write_items(tmp_path / "items.jsonl")
    output = tmp_path / "out"
    command = [sys.executable, "-m", "hybridgen.cli", *batch_argv(saved_models, items, output)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (output / "red.json").exists():  # killed once the first item is finished
            assert process.poll() is None and time.monotonic() < deadline, (
                "the batch ended before it was killed"
            )
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    # what a kill in the middle of writing leaves: a clip without its record, and a writer's temporary file
    (output / "00001.mp4").write_bytes(b"half a video")
    (output / "00001.json").unlink(missing_ok=True)
    (output / ".00002.0123456789ab.tmp.mp4").write_bytes(b"half a video")
    (output / ".results.0123456789ab.tmp.jsonl").write_text("{")

    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-2000:]  # the failing item, again
    assert outcome(output) == outcome(reference)
    assert not [path.name for path in output.iterdir() if ".tmp" in path.name]
    assert json.loads((output / "00001.json").read_text())["surprise"] == results(reference)[1]["surprise"]


@pytest.mark.slow
def test_two_processes_split_the_items_and_merge_one_results_file(saved_models, reference, tmp_path):
    items = write_items(tmp_path / "items.jsonl")
    output = tmp_path / "out"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", "-m"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*torchrun, "hybridgen.cli", *batch_argv(saved_models, items, output)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert (
        done.stderr.count("5 items: 4 done, 0 already finished, 1 failed") == 1
    )  # one summary, by one process
    assert outcome(output) == outcome(reference)  # the same clips, whatever the number of processes
    assert {row["process"] for row in results(output) if "error" not in row} == {0, 1}
