"""The web app (`hybridgen ui`): its handlers on tiny models, its API over HTTP with gradio_client, and the page in
a real headless Chromium (typing a prompt, clicking Generate, the chosen clip playing; uploading videos to Score;
bad input shown in the page while the app stays up)."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hybridgen import HybridPipeline
from hybridgen.cli import build_parser, main
from hybridgen.testing import TINY_CALL_KWARGS, tiny_pipeline
from hybridgen.video import write_video

gr = pytest.importorskip("gradio", reason="the web app needs the ui extra: pip install 'hybridgen[ui]'")

from hybridgen.ui import build_app  # noqa: E402
from hybridgen.ui.app import check_generate_request, generate_outputs, score_outputs  # noqa: E402

# .ci/run installs Chromium and sets this, so the browser tests cannot skip there
BROWSER_REQUIRED = os.environ.get("HYBRIDGEN_BROWSER_TESTS") == "required"


@pytest.fixture(scope="module")
def pipe(critic):
    return HybridPipeline(tiny_pipeline("wan"), critic, call_defaults=TINY_CALL_KWARGS["wan"])


@pytest.fixture(scope="module")
def clips(tmp_path_factory, pipe):
    """Two MP4s the critic can score, and a file named .mp4 that is not a video."""
    folder = tmp_path_factory.mktemp("clips")
    out = pipe(
        "a red ball", num_candidates=2, generator=torch.Generator().manual_seed(0), show_progress=False
    )
    good = [write_video(clip, folder / f"clip_{i}.mp4", fps=out.fps) for i, clip in enumerate(out.candidates)]
    broken = folder / "broken.mp4"
    broken.write_bytes(b"this is not a video")
    short = write_video(
        out.candidates[0][:2], folder / "short.mp4", fps=out.fps
    )  # fewer frames than a window
    return good, broken, short


# ------------------------------------------------------------------ the handlers, called directly
def test_build_app_takes_a_hybrid_pipeline(pipe):
    with pytest.raises(TypeError, match="takes a HybridPipeline"):
        build_app(pipe.pipeline)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (("", 4, "rerank", 0), "Type a prompt first"),
        (("   ", 4, "rerank", 0), "Type a prompt first"),
        (("a ball", 0, "rerank", 0), "Candidates must be a whole number from 1 to 16"),
        (("a ball", 2.5, "rerank", 0), "Candidates must be a whole number"),
        (("a ball", 4, "best", 0), "Strategy must be one of rerank, search, guidance"),
        (("a ball", 4, "rerank", -1), "Seed must be a whole number from 0 up"),
        (("a ball", 4, "rerank", None), "Seed must be a whole number"),
    ],
)
def test_bad_generate_requests_get_a_message_that_says_what_to_change(request_, message):
    with pytest.raises(gr.Error, match=message):
        check_generate_request(*request_)


def test_generate_returns_the_pipelines_choice_with_its_pictures(pipe, tmp_path):
    video, rows, sheet, figure, heatmap, download = generate_outputs(
        pipe, tmp_path, " a red ball ", 3, "rerank", 7
    )
    expected = pipe(
        "a red ball", num_candidates=3, generator=torch.Generator().manual_seed(7), show_progress=False
    )
    assert video == download and Path(video).is_file()
    assert [row[2] for row in rows] == [round(s, 5) for s in expected.surprises]
    assert [row[1] for row in rows] == [str(seed) for seed in expected.seeds]  # 63-bit seeds kept whole
    assert [row[3] for row in rows].index("✓") == expected.best_index and sum(
        row[3] == "✓" for row in rows
    ) == 1
    assert sheet.height > heatmap.height > 0
    assert len(figure.axes[0].lines) == 3


def test_generate_turns_a_request_the_generator_cannot_take_into_a_message(pipe, tmp_path):
    # check_inputs' ValueError (an image for a text-to-video generator) reaches the page as a gr.Error
    with pytest.raises(gr.Error, match="needs a generator that takes an image"):
        generate_outputs(pipe, tmp_path, "a ball", 2, "rerank", 0, image=np.zeros((8, 8, 3), np.uint8))


def test_score_reports_each_video_and_why_one_could_not_be_scored(pipe, clips, tmp_path):
    good, broken, short = clips
    rows, figure, heatmaps = score_outputs(
        pipe.critic, tmp_path, [str(good[0]), str(broken), str(good[1]), str(short)]
    )
    expected = [pipe.critic.score_file(path).surprise for path in good]
    assert [row[0] for row in rows] == ["clip_0.mp4", "broken.mp4", "clip_1.mp4", "short.mp4"]
    assert rows[0][1] == pytest.approx(expected[0], abs=1e-5) and rows[2][1] == pytest.approx(
        expected[1], abs=1e-5
    )
    assert rows[1][1] is None and "broken.mp4" in rows[1][4]
    assert rows[3][1] is None and "frames" in rows[3][4]
    assert len(figure.axes[0].lines) == 2 and heatmaps.height > 0


def test_score_with_nothing_scorable_is_one_message(pipe, clips, tmp_path):
    _, broken, _ = clips
    with pytest.raises(gr.Error, match="None of the files could be scored: broken.mp4"):
        score_outputs(pipe.critic, tmp_path, [str(broken)])
    with pytest.raises(gr.Error, match="Upload one or more videos first"):
        score_outputs(pipe.critic, tmp_path, [])


def test_ui_command_line(monkeypatch, capsys):
    args = build_parser().parse_args(["ui"])
    assert (args.generator, args.host, args.port, args.share) == ("toyworld", "127.0.0.1", 7860, False)
    assert main(["ui", "--port", "0"]) == 2
    assert "--port must be from 1 to 65535" in capsys.readouterr().err


# ------------------------------------------------------------------ over HTTP, as an API client calls it
@pytest.fixture(scope="module")
def served(pipe, tmp_path_factory):
    from ui_screenshots import serving

    with serving(build_app(pipe, output_dir=tmp_path_factory.mktemp("ui-outputs"))) as url:
        yield url


@pytest.mark.slow
def test_api_clients_call_generate_with_the_prompt_alone_and_score(pipe, served, clips):
    from gradio_client import Client, handle_file

    client = Client(served, verbose=False)
    video, table, *_ = client.predict("a red ball", api_name="/generate")
    expected = pipe(
        "a red ball", num_candidates=4, generator=torch.Generator().manual_seed(0), show_progress=False
    )
    assert [row[2] for row in table["data"]] == [
        round(s, 5) for s in expected.surprises
    ]  # the page's defaults
    assert Path(video).stat().st_size > 0
    table, *_ = client.predict([handle_file(str(clips[0][0]))], api_name="/score")
    assert table["data"][0][0] == "clip_0.mp4" and table["data"][0][1] > 0


# ------------------------------------------------------------------ in a real browser
def browser_or_skip():
    from ui_screenshots import find_chromium

    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = "Playwright's Python package (pip install playwright)"
    else:
        missing = None if find_chromium() else "a Chromium (apt-get install chromium)"
    if missing and BROWSER_REQUIRED:
        pytest.fail(f"the browser tests need {missing}")
    if missing:
        pytest.skip(f"the browser tests need {missing}")


@pytest.fixture
def page():
    browser_or_skip()
    from ui_screenshots import chromium_page

    with chromium_page() as page:
        yield page


@pytest.mark.slow
def test_in_a_browser_generate_plays_the_chosen_clip(page, served):
    from ui_screenshots import generate_in_page

    generate_in_page(page, served, "a red ball")
    page.get_by_text("✓").filter(visible=True).first.wait_for()  # the candidates table marks the chosen one
    assert page.locator("#chosen-video video").evaluate("video => video.currentTime") > 0


@pytest.mark.slow
def test_in_a_browser_score_shows_each_uploaded_videos_surprise(page, served, clips):
    from ui_screenshots import score_in_page

    good, broken, _ = clips
    score_in_page(page, served, [good[0], broken])
    page.get_by_text("clip_0.mp4", exact=True).last.wait_for()
    assert page.get_by_text(re.compile(r"^0\.\d{3,5}$")).count() >= 1  # the surprise column
    page.get_by_text(re.compile(r"broken\.mp4.*(could not|cannot|not a video|decode)", re.I)).first.wait_for()


@pytest.mark.slow
def test_in_a_browser_bad_input_is_a_message_and_the_app_stays_up(page, served):
    from ui_screenshots import generate_in_page

    page.goto(served)
    page.locator("#generate-button").click()  # no prompt
    page.get_by_text("Type a prompt first").first.wait_for()
    assert not page.get_by_text("Traceback").count()
    generate_in_page(page, served, "a red ball")  # the same server still answers


def test_the_ui_command_serves_locally_unless_shared(pipe, monkeypatch):
    """`hybridgen ui` listens on 127.0.0.1 and opens no public link unless --share (what it asks Gradio for)."""
    from hybridgen import cli

    launched = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda app, **options: launched.append(options))
    monkeypatch.setattr(cli, "load_pipeline", lambda args, device: pipe)
    assert main(["ui", "--device", "cpu"]) == 0
    assert main(["ui", "--device", "cpu", "--share", "--host", "0.0.0.0", "--port", "8000"]) == 0
    assert [(o["server_name"], o["server_port"], o["share"]) for o in launched] == [
        ("127.0.0.1", 7860, False),
        ("0.0.0.0", 8000, True),
    ]
