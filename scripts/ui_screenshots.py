"""Screenshots of the web app's two tabs for the docs, taken in headless Chromium.

    python scripts/ui_screenshots.py docs/    # writes docs/ui-generate.png and docs/ui-score.png

Serves `hybridgen ui`'s app on the bundled toy world, asks it for a clip in the Generate tab, scores that clip
and a second one in the Score tab, and photographs each tab. Needs the `ui` extra, Playwright's Python package
and a Chromium (Debian: `apt-get install chromium`). The browser helpers here are the ones the browser tests use.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

# Flags for a headless Chromium on a machine with no network beyond localhost: without the background-networking
# ones it keeps trying to reach Google's services.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
PROMPT = "two blue balls falling"
TIMEOUT_MS = 120_000  # one Generate click on a 2-core CPU takes seconds; leave room for a loaded machine


def find_chromium() -> str | None:
    """The Chromium executable on PATH (Debian's `chromium`, or `chromium-browser` / `google-chrome`)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@contextlib.contextmanager
def chromium_page(width: int = 1280, height: int = 1400) -> Iterator:
    """A Playwright page in a headless Chromium found on PATH (Playwright's own browser download is not used)."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise FileNotFoundError("no Chromium on PATH; install one, e.g. apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Serve a Gradio app on a free local port for the length of the block; yields its URL."""
    app.queue().launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    try:
        yield app.local_url
    finally:
        app.close()


def generate_in_page(page, url: str, prompt: str = PROMPT) -> None:
    """Open the app, type `prompt`, click Generate and wait until the chosen clip plays."""
    page.goto(url)
    page.locator("#prompt textarea").fill(prompt)
    page.locator("#generate-button").click()
    wait_until_playing(page, "#chosen-video video")


def wait_until_playing(page, selector: str) -> None:
    """Wait for the video element at `selector` to have a source, then for its playback clock to move."""
    video = page.locator(selector)
    video.wait_for(state="attached")
    page.wait_for_function(
        """(selector) => {
            const video = document.querySelector(selector);
            if (!video || !video.currentSrc) return false;
            if (video.paused) video.play().catch(() => {});
            return video.readyState >= 2 && video.currentTime > 0;
        }""",
        arg=selector,
    )


def score_in_page(page, url: str, videos: list[Path]) -> None:
    """Open the Score tab, upload `videos`, click Score and wait for their heatmaps."""
    page.goto(url)
    page.get_by_role("tab", name="Score").click()
    page.locator("#videos input[type=file]").set_input_files([str(path) for path in videos])
    for path in videos:  # each listed as uploaded
        page.locator("#videos").get_by_label(path.name).wait_for()
    page.locator("#score-button").click()
    page.locator("#heatmaps img").wait_for()


def save_screenshot(page, path: Path) -> None:
    """The whole page as a PNG of 256 colours (a third of the size; the app's flat colours survive it)."""
    from PIL import Image

    page.screenshot(path=path, full_page=True)
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    import torch

    from hybridgen import HybridPipeline
    from hybridgen.ui import build_app

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="where ui-generate.png and ui-score.png go")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    pipe = HybridPipeline.from_pretrained("toyworld")
    with tempfile.TemporaryDirectory() as work:
        clips = []
        for seed, prompt in enumerate(("a red ball bouncing", "three balls bouncing")):
            out = pipe(
                prompt, num_candidates=1, generator=torch.Generator().manual_seed(seed), show_progress=False
            )
            clips.append(out.save(Path(work) / f"{prompt.replace(' ', '_')}.mp4"))
        with serving(build_app(pipe, output_dir=work)) as url, chromium_page() as page:
            generate_in_page(page, url)
            save_screenshot(page, args.folder / "ui-generate.png")
            score_in_page(page, url, clips)
            save_screenshot(page, args.folder / "ui-score.png")
    print(f"wrote {args.folder / 'ui-generate.png'} and {args.folder / 'ui-score.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
