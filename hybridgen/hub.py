"""Saving, sharing and loading back: a `HybridPipeline` as one folder, model cards, and uploads to the Hub.

A saved pipeline is one folder (local, or a Hub repo holding the same files):

    hybridgen_pipeline.json   marks the folder and names its parts
    generator/                the video pipeline in diffusers' layout (`save_pretrained`), with call_defaults.json
    critic/                   the critic in its layout (`VJEPA2Critic.save_pretrained`: weights, config, scoring
                              options, expected-error head)
    README.md                 the model card

`HybridPipeline.from_pretrained(folder or repo id)` finds the marker file and loads both parts from the folder
(for a repo id, a snapshot in the Hugging Face cache). Cards are `huggingface_hub.ModelCard`s with YAML metadata
(`library_name`, `tags`, `pipeline_tag`, `base_model` when the parts came from Hub repos). Uploads go through
`huggingface_hub.HfApi` (`create_repo`, `upload_folder`) only, after the folder is written in full locally.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, ModelCardData, snapshot_download

from hybridgen.models import (
    BUNDLED,
    CALL_DEFAULTS_FILE,
    _is_path,
    _read_checkpoint_json,
    hub_offline,
)
from hybridgen.video import atomic_write_path, check_directory_path, write_json_atomic

PIPELINE_FILE = "hybridgen_pipeline.json"
PIPELINE_FORMAT = 1
GENERATOR_DIR, CRITIC_DIR = "generator", "critic"
CARD_FILE = "README.md"
TAGS = ["hybridgen", "physics", "world-model", "v-jepa-2"]


# ----------------------------------------------------------------------------- finding a saved pipeline


def find_saved_pipeline(
    model_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | None = None,
    local_files_only: bool | None = None,
) -> Path | None:
    """The local folder of a saved `HybridPipeline` named by `model_id` (a folder, or a Hub repo id, fetched into
    the Hugging Face cache), or None when `model_id` is something else (a bundled name, a diffusers pipeline)."""
    name = str(model_id)
    if name in BUNDLED:
        return None
    if Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
        return folder if (folder / PIPELINE_FILE).is_file() else None
    if _is_path(name):
        return None  # a path that does not exist: the generator loader says so
    offline = hub_offline() if local_files_only is None else local_files_only
    options = {"revision": revision, "cache_dir": cache_dir, "local_files_only": offline}
    try:
        marker = _read_checkpoint_json(name, PIPELINE_FILE, options)
    except (OSError, ValueError):
        return None  # not reachable or not a repo: the generator loader reports why
    if marker is None:
        return None
    return Path(snapshot_download(name, **options))


def read_pipeline_file(folder: Path) -> dict:
    """The marker file of a saved pipeline, checked: which subfolders hold the generator and the critic."""
    try:
        content = json.loads((folder / PIPELINE_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{folder / PIPELINE_FILE} cannot be read ({error}): save the pipeline again."
        ) from None
    if not isinstance(content, dict) or content.get("format") != PIPELINE_FORMAT:
        raise ValueError(
            f"{folder / PIPELINE_FILE} is not a hybridgen pipeline file of format {PIPELINE_FORMAT}."
        )
    if not isinstance(content.get("sources", {}), dict):
        raise ValueError(f"{folder / PIPELINE_FILE}: 'sources' must be an object.")
    content.setdefault("sources", {})
    for part in (GENERATOR_DIR, CRITIC_DIR):
        subfolder = content.get(part)
        if (
            not isinstance(subfolder, str)
            or _is_path(subfolder)
            or "/" in subfolder
            or subfolder in ("", "..")
        ):
            raise ValueError(f"{folder / PIPELINE_FILE}: {part!r} must name a subfolder, got {subfolder!r}.")
    return content


# ----------------------------------------------------------------------------- saving


def save_pipeline(pipe, directory: str | Path, *, model_card: ModelCard | None = None) -> Path:
    """Write `pipe` (a `HybridPipeline`) as one folder (see the module doc), replacing `directory` whole: a reader
    sees the old folder or the new one, never half of either."""
    from hybridgen.training.checkpoints import replacing_directory

    directory = check_directory_path(directory, "save the pipeline into")
    with replacing_directory(directory) as folder:
        pipe.pipeline.save_pretrained(folder / GENERATOR_DIR, safe_serialization=True)
        call_defaults = {"pipeline_call": pipe.call_defaults}
        if pipe.fps is not None:
            call_defaults["fps"] = pipe.fps
        write_json_atomic(call_defaults, folder / GENERATOR_DIR / CALL_DEFAULTS_FILE)
        pipe.critic.save_pretrained(folder / CRITIC_DIR)
        marker = {"format": PIPELINE_FORMAT, GENERATOR_DIR: GENERATOR_DIR, CRITIC_DIR: CRITIC_DIR}
        write_json_atomic({**marker, "sources": pipe.sources}, folder / PIPELINE_FILE)
        (model_card or pipe.model_card()).save(folder / CARD_FILE)
    return directory


def hub_ids(sources: dict) -> list[str]:
    """The sources that are Hub repo ids (not bundled names, not local folders): a card's `base_model`."""
    ids = []
    for source in sources.values():
        name = str(source) if source is not None else ""
        if name and name not in BUNDLED and not _is_path(name) and not Path(name).exists() and "/" in name:
            ids.append(name)
    return ids


# ----------------------------------------------------------------------------- model cards


def pipeline_card(
    pipe, *, repo_id: str | None = None, license: str | None = None, metrics: str = ""
) -> ModelCard:
    """A model card for a saved `HybridPipeline`: metadata, what it holds, how to load and use it, and `metrics`
    (Markdown: measured numbers with the command that measured them), if any."""
    generator = type(pipe.pipeline).__name__
    name = repo_id or "PATH_OR_REPO_ID"
    data = ModelCardData(
        library_name="hybridgen",
        tags=[*TAGS, "text-to-video", "diffusers"],
        pipeline_tag="text-to-video",
        base_model=hub_ids(pipe.sources) or None,
        license=license,
    )
    defaults = ", ".join(f"{k}={v!r}" for k, v in pipe.call_defaults.items()) or "the pipeline's own"
    text = f"""
# {repo_id or "A hybridgen pipeline"}

A video generator that prefers physically plausible motion: a diffusers `{generator}` proposes candidate clips and a
V-JEPA 2 world model (the critic) keeps the one whose future it finds least surprising given its past.

- `{GENERATOR_DIR}/`: the `{generator}` in diffusers' layout; call defaults: {defaults}; frame rate:
  {pipe.fps or "not stated"}.
- `{CRITIC_DIR}/`: the critic ({pipe.critic.describe()}).

## Use

```python
from hybridgen import HybridPipeline

pipe = HybridPipeline.from_pretrained("{name}")
out = pipe("a red ball bouncing", num_candidates=4)
out.save("best.mp4")
```

or `hybridgen generate "a red ball bouncing" -o best.mp4 --generator {name}`.

## Measured

{metrics.strip() or "No measurements were recorded with this pipeline."}
"""
    return _card(data, text)


def critic_card(
    critic,
    *,
    repo_id: str | None = None,
    license: str | None = None,
    metrics: str = "",
    training: str = "",
    details: str = "",
) -> ModelCard:
    """A model card for a `VJEPA2Critic` folder: metadata, how to score with it (in hybridgen and in plain
    transformers), `details` on the model (Markdown), how it was trained (`training`, Markdown, from
    `train-critic`) and `metrics` (Markdown), if any."""
    name = repo_id or "PATH_OR_REPO_ID"
    data = ModelCardData(
        library_name="hybridgen",
        tags=[*TAGS, "video", "transformers"],
        base_model=hub_ids({"critic": getattr(critic.model.config, "_name_or_path", None)}) or None,
        license=license,
    )
    text = f"""
# {repo_id or "A hybridgen critic"}

A V-JEPA 2 world model used as a critic of motion: it predicts each clip's future from its past in latent space,
and its surprise (the prediction error) is low for plausible dynamics. It is {critic.describe()}.

## Use

```python
from hybridgen import VJEPA2Critic

critic = VJEPA2Critic.from_pretrained("{name}")
report = critic.score(frames)  # (T, H, W, 3) frames; lower surprise = more plausible
```

or `hybridgen score clips/ --critic {name}`. The weights load in plain transformers too
(`VJEPA2Model.from_pretrained`); the scoring options are in `critic_config.json`. {transformers_preprocessing(critic)}
{_section("Model", details)}{_section("Training", training)}
## Measured

{metrics.strip() or "No measurements were recorded with this critic."}
"""
    return _card(data, text)


def generator_card(
    pipeline,
    *,
    call_defaults: dict,
    fps: float | None,
    training: str = "",
    repo_id: str | None = None,
    license: str | None = None,
    details: str = "",
    metrics: str = "",
) -> ModelCard:
    """A model card for a diffusers video pipeline trained by `hybridgen train-generator`: metadata, its call
    defaults, how to load it, `details` on the model, how it was trained (`training`) and `metrics` (all
    Markdown), each section only if given."""
    name = type(pipeline).__name__
    data = ModelCardData(
        library_name="diffusers",
        tags=["hybridgen", "text-to-video", "toy-world"],
        pipeline_tag="text-to-video",
        license=license,
    )
    defaults = ", ".join(f"{k}={v!r}" for k, v in call_defaults.items()) or "none"
    text = f"""
# {repo_id or f"A toy-world `{name}`"}

A small text-to-video `{name}` trained by `hybridgen train-generator` on hybridgen's toy physics world (balls
under gravity). Every part is a standard diffusers / transformers class, so its folder loads with
`DiffusionPipeline.from_pretrained`, and `HybridPipeline.from_pretrained("{repo_id or "PATH"}", critic=...)` drives it
with its call defaults (`{CALL_DEFAULTS_FILE}`: {defaults}; {fps or "unstated"} fps).
{_section("Model", details)}{_section("Training", training)}{_section("Measured", metrics)}"""
    return _card(data, text)


def transformers_preprocessing(critic) -> str:
    """How plain transformers prepares frames for `critic`, for its card: `AutoVideoProcessor` reads the
    `video_preprocessor_config.json` that `save_pretrained` writes, but resizes to crop x 256 / 224 whatever it
    says (`transformers_resize`)."""
    from hybridgen.critics.vjepa2 import transformers_resize

    resize, theirs = critic.options.resize_to, transformers_resize(critic.crop_size)
    reads = "`AutoVideoProcessor.from_pretrained` (transformers, with torchvision) reads `video_preprocessor_config.json`"
    if resize == theirs:
        return f"{reads} and prepares frames as the critic does."
    return (
        f"{reads}, but transformers' `VJEPA2VideoProcessor` resizes the shorter side to crop x 256 / 224 = {theirs} "
        f"px whatever the file says, where this critic resizes it to {resize} px: call the processor with "
        f'`size={{"shortest_edge": {resize}}}` to prepare frames as the critic does.'
    )


def save_card(card: ModelCard, path: str | Path) -> Path:
    """Write `card` to `path` atomically: a reader sees the old card or the new one."""
    with atomic_write_path(path) as temporary:
        card.save(temporary)
    return Path(path)


def _card(data: ModelCardData, text: str) -> ModelCard:
    """A model card: `data` as its YAML header, then the Markdown `text`."""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{text}")


def _section(title: str, body: str) -> str:
    return f"\n## {title}\n\n{body.strip()}\n" if body.strip() else ""


# ----------------------------------------------------------------------------- uploading


def check_can_upload() -> None:
    """Refuse an upload while `HF_HUB_OFFLINE` is set, before anything is written."""
    if hub_offline():
        raise OSError(
            "push_to_hub needs the Hugging Face Hub, but HF_HUB_OFFLINE=1 is set: unset it to upload, or use "
            "save_pretrained(DIR) to keep a local copy."
        )


def push_folder(
    save,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
):
    """`save(folder)` into a temporary folder, then upload it whole to `repo_id` (created if needed). Returns
    huggingface_hub's `CommitInfo`."""
    with tempfile.TemporaryDirectory(prefix="hybridgen-upload-") as temporary:
        folder = Path(temporary) / "upload"
        save(folder)
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            commit_message=commit_message or "Upload with hybridgen",
            repo_type="model",
        )


class PushToHubMixin:
    """`push_to_hub` for a class with `save_pretrained(directory, *, model_card=None)` and `model_card(*, repo_id,
    license, metrics)` (`HybridPipeline`, `VJEPA2Critic`)."""

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | None = None,
        commit_message: str | None = None,
        license: str | None = None,
        metrics: str = "",
    ):
        """Save this object (`save_pretrained`, with a card naming `repo_id`, `license` and the Markdown
        `metrics`: measured numbers with their command) and upload the folder to the Hub repo `repo_id`, created
        if needed. Refused while `HF_HUB_OFFLINE` is set, before anything is written. Returns huggingface_hub's
        `CommitInfo`."""
        check_can_upload()
        card = self.model_card(repo_id=repo_id, license=license, metrics=metrics)
        return push_folder(
            lambda folder: self.save_pretrained(folder, model_card=card),
            repo_id,
            private=private,
            token=token,
            commit_message=commit_message,
        )
