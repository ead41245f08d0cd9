"""The web app: a Gradio page over one `HybridPipeline` and its critic.

    Generate:  prompt, candidates, strategy, seed (, image)  ─▶ HybridPipeline.__call__ ─▶ chosen clip, every
               candidate with its surprise, surprise curves, heatmap of the chosen clip, MP4 to download
    Score:     uploaded videos ─▶ VJEPA2Critic.read_crops / score_crops ─▶ surprise, curve and heatmap per video

The page only translates a person's request into those calls; nothing here generates or scores on its own. Both
buttons are API endpoints too (`api_name="generate"` and `"score"`), so `gradio_client` can drive them. Bad input
(an empty prompt, a file that is not a video, too few frames) raises `gr.Error`: the page shows the message and
the app stays up.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from PIL import Image

from hybridgen.pipelines.hybrid import STRATEGIES, HybridOutput, HybridPipeline
from hybridgen.pipelines.rerank import call_parameters
from hybridgen.viz import contact_sheet, heatmap_sheet, plot_surprise_curves

MAX_CANDIDATES = 16
MAX_UPLOADS = 16  # videos scored per click
CANDIDATE_COLUMNS = ["candidate", "seed", "surprise", "chosen"]
SCORE_COLUMNS = ["video", "surprise", "frames", "fps", "error"]
TRACK_PROGRESS = gr.Progress(track_tqdm=True)  # the pipeline's progress bars, shown in the page
EXAMPLE_PROMPTS = ["a red ball bouncing", "two blue balls falling", "three balls bouncing"]


def build_app(
    pipe: HybridPipeline, *, output_dir: str | Path | None = None, title: str = "hybridgen"
) -> gr.Blocks:
    """The Gradio app for `pipe`: a Generate tab (its generator, reranked by its critic) and a Score tab (its
    critic alone). Clips, sheets and heatmaps are written under `output_dir` (default: a new temporary folder),
    one subfolder a request. Launch it with `.launch()`; `hybridgen ui` does."""
    if not isinstance(pipe, HybridPipeline):
        raise TypeError(f"build_app takes a HybridPipeline, got {type(pipe).__name__}.")
    output_dir = (
        Path(output_dir) if output_dir is not None else Path(tempfile.mkdtemp(prefix="hybridgen-ui-"))
    )
    takes_image = "image" in call_parameters(pipe.pipeline)

    def generate(prompt, num_candidates=4, strategy="rerank", seed=0, image=None, progress=TRACK_PROGRESS):
        return generate_outputs(
            pipe, request_folder(output_dir), prompt, num_candidates, strategy, seed, image
        )

    def score(videos):
        return score_outputs(pipe.critic, request_folder(output_dir), videos)

    with gr.Blocks(title=title, delete_cache=(3600, 3600)) as app:
        gr.Markdown(
            f"# {title}\nCandidates from **{type(pipe.pipeline).__name__}**, judged by a V-JEPA 2 critic: the clip "
            "it finds least surprising is the one whose motion it predicts best. Lower surprise = more plausible."
        )
        with gr.Tab("Generate", id="generate"):
            with gr.Row():
                with gr.Column(scale=2):
                    prompt = gr.Textbox(label="Prompt", placeholder="a red ball bouncing", elem_id="prompt")
                    gr.Examples(EXAMPLE_PROMPTS, inputs=prompt)
                with gr.Column(scale=1):
                    num_candidates = gr.Slider(1, MAX_CANDIDATES, value=4, step=1, label="Candidates")
                    strategy = gr.Radio(list(STRATEGIES), value="rerank", label="Strategy")
                    seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
            image = gr.Image(label="Condition on this image (first frame)", type="pil", visible=takes_image)
            run = gr.Button("Generate", variant="primary", elem_id="generate-button")
            with gr.Row():
                chosen = gr.Video(
                    label="Chosen clip", autoplay=True, loop=True, height=320, elem_id="chosen-video", scale=1
                )
                table = gr.Dataframe(
                    headers=CANDIDATE_COLUMNS, label="Candidates (lower surprise = more plausible)", scale=2
                )
            heatmap = gr.Image(label="Where the chosen clip surprised the critic", type="pil")
            sheet = gr.Image(label="Every candidate, the chosen one framed", type="pil")
            curves = gr.Plot(label="Surprise over time")
            download = gr.File(label="Download the chosen clip (MP4)")
            gr.on(
                [run.click, prompt.submit],  # the button, or Enter in the prompt: one event, one API endpoint
                generate,
                inputs=[prompt, num_candidates, strategy, seed, image],
                outputs=[chosen, table, sheet, curves, heatmap, download],
                api_name="generate",
            )
        with gr.Tab("Score", id="score"):
            videos = gr.File(label="Videos", file_count="multiple", file_types=["video"], elem_id="videos")
            score_button = gr.Button("Score", variant="primary", elem_id="score-button")
            scores = gr.Dataframe(headers=SCORE_COLUMNS, label="Surprise (lower = more plausible)")
            score_curves = gr.Plot(label="Surprise over time")
            heatmaps = gr.Image(label="Where each video surprised the critic", type="pil", elem_id="heatmaps")
            score_button.click(
                score, inputs=videos, outputs=[scores, score_curves, heatmaps], api_name="score"
            )
    return app


def request_folder(output_dir: Path) -> Path:
    """A new folder for one request's files, so two requests never overwrite each other's."""
    folder = output_dir / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder


# ---------------------------------------------------------------------------------------------------------
# Generate


def check_generate_request(prompt, num_candidates, strategy, seed) -> tuple[str, int, str, int]:
    """The request as the pipeline takes it, or a `gr.Error` that says what to change."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise gr.Error("Type a prompt first, e.g. “a red ball bouncing”.")
    if (
        num_candidates is None
        or not 1 <= num_candidates <= MAX_CANDIDATES
        or num_candidates != int(num_candidates)
    ):
        raise gr.Error(f"Candidates must be a whole number from 1 to {MAX_CANDIDATES}; got {num_candidates}.")
    if strategy not in STRATEGIES:
        raise gr.Error(f"Strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}.")
    if seed is None or seed < 0 or seed != int(seed):
        raise gr.Error(f"Seed must be a whole number from 0 up; got {seed}.")
    return prompt.strip(), int(num_candidates), strategy, int(seed)


def generate_outputs(pipe: HybridPipeline, folder: Path, prompt, num_candidates, strategy, seed, image=None):
    """One Generate click: the chosen clip's MP4, the candidates table, the contact sheet, the curves, the chosen
    clip's heatmap and the MP4 again for download."""
    prompt, num_candidates, strategy, seed = check_generate_request(prompt, num_candidates, strategy, seed)
    conditioning = {"image": Image.fromarray(np.asarray(image)).convert("RGB")} if image is not None else {}
    try:
        out = pipe(
            prompt,
            num_candidates=num_candidates,
            strategy=strategy,
            generator=torch.Generator().manual_seed(seed),
            **conditioning,
        )
    except (ValueError, TypeError) as error:  # check_inputs: the request does not fit this generator
        raise gr.Error(str(error)) from None
    video = str(out.save(folder / "chosen.mp4"))
    return (
        video,
        candidate_rows(out),
        candidate_sheet(out),
        surprise_figure(out),
        chosen_heatmap(pipe, out),
        video,
    )


def candidate_rows(out: HybridOutput) -> list[list]:
    return [
        [
            index,
            str(seed),
            round(surprise, 5),
            "✓" if index == out.best_index else "",
        ]  # 63-bit: text, not JS numbers
        for index, (seed, surprise) in enumerate(zip(out.seeds, out.surprises))
    ]


def candidate_sheet(out: HybridOutput) -> Image.Image:
    return contact_sheet(out.candidates, labels=out.candidate_labels(), highlight=out.best_index)


def surprise_figure(out: HybridOutput):
    curves = [(report.window_starts, report.window_surprise) for report in out.reports]
    return plot_surprise_curves(
        curves, labels=out.candidate_labels(), highlight=out.best_index, title=out.prompt
    )


def chosen_heatmap(pipe: HybridPipeline, out: HybridOutput) -> Image.Image:
    """The chosen clip's token errors over the frames the critic saw (resampled, resized and cropped as it saw
    them)."""
    report = out.reports[out.best_index]
    frames = torch.from_numpy(out.video[report.frame_indices]).permute(0, 3, 1, 2)  # (T, 3, H, W) in [0, 1]
    crops = pipe.critic.crop_frames(frames).permute(0, 2, 3, 1).cpu().numpy()  # (T, S, S, 3)
    return heatmap_sheet(crops, report, title=f"candidate {out.best_index}")


# ---------------------------------------------------------------------------------------------------------
# Score


def score_outputs(critic, folder: Path, videos):
    """One Score click: a row per uploaded video (its surprise, or why it could not be scored), the curves of
    those scored, and a heatmap of each. All unreadable: a `gr.Error`."""
    paths = [Path(video if isinstance(video, str) else video.name) for video in videos or []]
    if not paths:
        raise gr.Error("Upload one or more videos first (MP4, WebM, MOV, ...).")
    if len(paths) > MAX_UPLOADS:
        raise gr.Error(f"Score at most {MAX_UPLOADS} videos at a time; got {len(paths)}.")
    rows, curves, names, heatmaps = [], [], [], []
    for path in paths:
        name = path.name  # Gradio keeps the uploaded name, in a folder of its own
        try:
            crops, fps = critic.read_crops(path)
            report = critic.score_crops(crops, fps=fps)
        except (ValueError, OSError) as error:
            rows.append([name, None, None, None, str(error)])
            continue
        rows.append([name, round(report.surprise, 5), len(crops), round(fps, 3), ""])
        curves.append((report.window_starts, report.window_surprise))
        names.append(name)
        heatmap = heatmap_sheet(crops[report.frame_indices], report, title=name)
        heatmaps.append(heatmap)
    if not curves:
        raise gr.Error(
            "None of the files could be scored: " + "; ".join(f"{row[0]}: {row[4]}" for row in rows)
        )
    figure = plot_surprise_curves(curves, labels=names, title="surprise per window")
    return rows, figure, stacked(heatmaps)


def stacked(images: list[Image.Image]) -> Image.Image:
    """`images` one above the other on white, left-aligned."""
    canvas = Image.new(
        "RGB", (max(image.width for image in images), sum(image.height for image in images)), "white"
    )
    top = 0
    for image in images:
        canvas.paste(image, (0, top))
        top += image.height
    return canvas
