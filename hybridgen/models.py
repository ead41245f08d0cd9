"""Where models come from: a bundled name, a local directory, or a Hugging Face Hub id.

Loading goes through `transformers.VJEPA2Model.from_pretrained` and `diffusers.DiffusionPipeline.from_pretrained`,
which read the Hub cache and honour `HF_HUB_OFFLINE`. Nothing loaded runs code: weights are read from safetensors
only (pickled `.bin` / `.pt` weights are refused), remote code is never trusted, and a pipeline's components must
be diffusers or transformers classes. Failures become one `ModelNotFoundError` that says what was tried.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from importlib.metadata import version
from pathlib import Path

import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HFValidationError, LocalEntryNotFoundError
from packaging.version import Version
from safetensors import SafetensorError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")  # never pickles: they can run code
# what the libraries raise for a missing, truncated or malformed file (safetensors has an error class of its own;
# transformers raises RuntimeError for some unreadable checkpoints)
LOAD_ERRORS = (OSError, ValueError, RuntimeError, SafetensorError)
# libraries whose classes a pipeline's model_index.json may name; any other module it names would be imported
COMPONENT_LIBRARIES = ("diffusers", "transformers")
# what transformers' AutoVideoProcessor reads (`VJEPA2Critic.save_pretrained` writes the first), newest name first
VIDEO_PROCESSOR_FILE = "video_preprocessor_config.json"
PROCESSOR_FILES = (VIDEO_PROCESSOR_FILE, "preprocessor_config.json")
CRITIC_CONFIG_FILE = "critic_config.json"
# hybridgen's file next to a pipeline's model_index.json: {"fps": clip frame rate, "pipeline_call": {keyword: default}}
CALL_DEFAULTS_FILE = "call_defaults.json"

WEIGHTS_DIR = Path(__file__).parent / "toyworld" / "weights"


def _bundled() -> dict[str, dict[str, Path]]:
    """Names that resolve to weights shipped inside the package: name -> {role: directory}."""
    roles = {role: WEIGHTS_DIR / role for role in ("critic", "generator") if (WEIGHTS_DIR / role).is_dir()}
    return {"toyworld": roles} if roles else {}


BUNDLED: dict[str, dict[str, Path]] = _bundled()


def dtype_keyword(package: str, renamed_in: str) -> str:
    """`"dtype"` where `package` has renamed `from_pretrained(torch_dtype=)` to it, else `"torch_dtype"`."""
    return "dtype" if Version(version(package)) >= Version(renamed_in) else "torch_dtype"


class ModelNotFoundError(OSError):
    """A model id that is neither bundled, a usable local directory, nor loadable from the Hub (or its cache)."""


def hub_offline() -> bool:
    """True when the Hub must not be contacted (`HF_HUB_OFFLINE=1`)."""
    return bool(hub_constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in (
        "1",
        "true",
        "yes",
    )


def resolve(model_id: str | os.PathLike, role: str) -> str:
    """Map a bundled name to its directory; return local paths and Hub ids unchanged.

    Args:
        model_id: a bundled name (see `BUNDLED`), a local directory, or a Hub id like "org/name".
        role: "critic" or "generator", which part of a bundled name to use.
    """
    if not isinstance(model_id, (str, os.PathLike)) or not str(model_id).strip():
        raise ModelNotFoundError(f"a {role} id must be a non-empty string, got {model_id!r}.")
    name = str(model_id)
    if name in BUNDLED:
        if role not in BUNDLED[name]:
            raise ModelNotFoundError(f"the bundled model {name!r} has no {role}.")
        return str(BUNDLED[name][role])
    if _is_path(name) and not Path(name).expanduser().exists():
        raise ModelNotFoundError(
            f"the {role} directory {name!r} does not exist (a Hub id has the form 'org/name', a bundled name is "
            f"one of {sorted(BUNDLED)})."
        )
    return str(Path(name).expanduser()) if name.startswith("~") else name


def _is_path(name: str) -> bool:
    """True for what can only be a filesystem path, never a Hub id ('name' or 'org/name')."""
    return Path(name).is_absolute() or name.startswith((".", "~")) or name.count("/") > 1 or "\\" in name


def _check_local_dir(path: Path, required: tuple[str, ...], what: str) -> None:
    if not path.is_dir():
        raise ModelNotFoundError(f"{what} path {str(path)!r} exists but is not a directory.")
    if not any((path / name).is_file() for name in required):
        pickled = sorted(
            p.name for p in path.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")
        )
        hint = (
            f" It holds pickled weights ({', '.join(pickled)}), which hybridgen never loads since unpickling can "
            "run code: convert them to safetensors (save_pretrained(..., safe_serialization=True)) where you "
            "trust the file."
            if pickled
            else " Save one with save_pretrained(), or pass a Hub id."
        )
        raise ModelNotFoundError(
            f"directory {str(path)!r} is not a saved {what}: none of {', '.join(required)} is in it.{hint}"
        )


def _not_found(model_id: str, what: str, error: Exception, *, local: bool = False) -> ModelNotFoundError:
    detail = " ".join(str(error).split())  # the libraries' messages span lines; one line here
    if local:  # the directory was found: what failed is a file in it
        return ModelNotFoundError(
            f"could not load {what} from the local directory {model_id!r}: a file in it is missing or broken "
            f"({type(error).__name__}: {detail})"
        )
    if hub_offline():
        where = "it is neither a local directory nor in the Hugging Face cache (HF_HUB_OFFLINE=1 is set)"
    else:
        where = "it is not a local directory and could not be loaded from the Hugging Face Hub"
    bundled = f" Bundled names: {', '.join(sorted(BUNDLED))}." if BUNDLED else ""
    return ModelNotFoundError(
        f"could not load {what} {model_id!r}: {where}.{bundled} ({type(error).__name__}: {detail})"
    )


def check_torch_dtype(torch_dtype, name: str = "torch_dtype") -> None:
    """Refuse anything but a `torch.dtype` (or None): a string would be half-applied by the libraries."""
    if torch_dtype is not None and not isinstance(torch_dtype, torch.dtype):
        raise TypeError(f"{name} must be a torch.dtype such as torch.bfloat16, got {torch_dtype!r}.")


def check_device(device: str | torch.device | None) -> torch.device | None:
    """`device` as a `torch.device`, after checking that this torch build can run on it."""
    if device is None:
        return None
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={device!r} is not a torch device; use e.g. 'cpu', 'cuda' or 'cuda:1'."
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r}, but this torch ({torch.__version__}) sees no CUDA GPU: use 'cpu', or a machine "
            "and torch build with CUDA."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r}, but MPS is not available to this torch: use 'cpu'.")
    return resolved


def load_vjepa2(
    model_id: str,
    *,
    torch_dtype: torch.dtype | None = None,
    revision: str | None = None,
    cache_dir: str | None = None,
    local_files_only: bool | None = None,
):
    """Load a `VJEPA2Model` and what is stored with it for scoring.

    Returns:
        `(model, options, head)`: the checkpoint's `ScoringOptions` and its `ExpectedErrorHead` (or None).
    """
    from transformers import VJEPA2Model

    source = resolve(model_id, "critic")
    local = Path(source)
    if local.exists():
        _check_local_dir(local, WEIGHT_FILES, "V-JEPA 2 model")
    offline = hub_offline() if local_files_only is None else local_files_only
    options = {"revision": revision, "cache_dir": cache_dir, "local_files_only": offline}
    try:
        dtype = {dtype_keyword("transformers", "4.56"): torch_dtype}
        model = VJEPA2Model.from_pretrained(source, **dtype, **options, use_safetensors=True)
    except (*LOAD_ERRORS, HFValidationError) as error:
        raise _not_found(str(model_id), "V-JEPA 2 critic", error, local=local.exists()) from error
    return model.eval(), *_critic_settings(source, model.config.crop_size, options)


def _checkpoint_file(source: str, filename: str, options: dict, *, missed: list | None = None) -> Path | None:
    """A file next to the weights (local directory or Hub repo), or None when the checkpoint has none.

    A Hub file the cache lacks while offline (or while the Hub cannot be reached: huggingface_hub reports both
    alike) is None too, and its name is appended to `missed`.
    """
    path = Path(source) / filename
    if not Path(source).exists():
        try:
            path = Path(hf_hub_download(source, filename, **options))
        except LocalEntryNotFoundError:  # before EntryNotFoundError, its base class
            if missed is not None:
                missed.append(filename)
            return None
        except (EntryNotFoundError, HFValidationError):
            return None
    return path if path.is_file() else None


def _read_checkpoint_json(
    source: str, filename: str, options: dict, *, missed: list | None = None
) -> dict | None:
    path = _checkpoint_file(source, filename, options, missed=missed)
    if path is None:
        return None
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}): repair or remove it.") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path} must hold a JSON object, not {type(content).__name__}.")
    return content


def _critic_settings(source: str, crop_size: int, options: dict):
    """`(ScoringOptions, ExpectedErrorHead | None)` stored with the checkpoint.

    The video processor config (resize, mean/std) sets the preprocessing; a `critic_config.json` written by
    `VJEPA2Critic.save_pretrained` sets the scoring options (window, context, direction, ...); an
    `expected_error_head.safetensors` becomes the head.
    """
    from hybridgen.critics.error_head import ERROR_HEAD_FILE, ExpectedErrorHead
    from hybridgen.critics.options import ScoringOptions

    settings, missed = {}, []
    processor = None
    for filename in PROCESSOR_FILES:  # the first one the checkpoint has
        processor = _read_checkpoint_json(source, filename, options, missed=missed)
        if processor is not None:
            break
    if processor is not None:
        shortest_edge = (processor.get("size") or {}).get("shortest_edge")
        if shortest_edge:
            settings["resize_to"] = max(int(shortest_edge), crop_size)
        if processor.get("image_mean"):
            settings["image_mean"] = tuple(processor["image_mean"])
        if processor.get("image_std"):
            settings["image_std"] = tuple(processor["image_std"])
    critic_config = _read_checkpoint_json(source, CRITIC_CONFIG_FILE, options) or {}
    if processor is None and missed and "resize_to" not in critic_config:
        # the weights are cached, their preprocessing is not: scores would silently differ
        warnings.warn(
            f"{source}: no video processor config in the Hugging Face cache ({' / '.join(missed)}); "
            f"resizing to the crop size ({crop_size}) with ImageNet mean and std. If the repo has one, cache "
            f"it while online (`hf download {source} {PROCESSOR_FILES[0]}`) to score as the checkpoint expects.",
            stacklevel=3,
        )
    settings.update(critic_config)
    try:
        scoring = ScoringOptions.from_dict(settings, f"{source}/{CRITIC_CONFIG_FILE}")
    except TypeError as error:  # a setting of the wrong type
        raise ValueError(f"{source}/{CRITIC_CONFIG_FILE}: {error}") from None
    head_file, head = _checkpoint_file(source, ERROR_HEAD_FILE, options), None
    if head_file is not None:
        try:
            head = ExpectedErrorHead.load(head_file)
        except (*LOAD_ERRORS, KeyError) as error:
            reason = " ".join(str(error).split())
            raise ValueError(
                f"{head_file} is broken ({type(error).__name__}: {reason}): refit it or remove it."
            ) from None
    return scoring, head


def load_video_pipeline(
    model_id: str,
    *,
    torch_dtype: torch.dtype | None = None,
    variant: str | None = None,
    revision: str | None = None,
    cache_dir: str | None = None,
    local_files_only: bool | None = None,
):
    """Load any diffusers text-to-video pipeline with `DiffusionPipeline.from_pretrained`."""
    from diffusers import DiffusionPipeline

    source = resolve(model_id, "generator")
    local = Path(source)
    if local.exists():
        _check_local_dir(local, ("model_index.json",), "diffusers pipeline")
    offline = hub_offline() if local_files_only is None else local_files_only
    options = {"revision": revision, "cache_dir": cache_dir, "local_files_only": offline}
    try:
        index = _read_checkpoint_json(source, "model_index.json", options) or {}
    except (OSError, HFValidationError) as error:
        raise _not_found(str(model_id), "video pipeline", error, local=local.exists()) from error
    _check_components(str(model_id), index)
    try:
        return DiffusionPipeline.from_pretrained(
            source,
            **{dtype_keyword("diffusers", "0.40"): torch_dtype},
            variant=variant,
            **options,
            use_safetensors=True,
            trust_remote_code=False,
        )
    except (*LOAD_ERRORS, HFValidationError) as error:
        raise _not_found(str(model_id), "video pipeline", error, local=local.exists()) from error


def _check_components(model_id: str, index: dict) -> None:
    """Refuse a `model_index.json` naming a pipeline or component class outside diffusers and transformers:
    diffusers would import whatever installed module it names (a custom pipeline's code needs
    `trust_remote_code`, which hybridgen never passes)."""
    import diffusers

    pipeline_class = index.get("_class_name")
    if pipeline_class is not None and not hasattr(diffusers, str(pipeline_class)):
        raise ValueError(
            f"{model_id}: model_index.json names the pipeline class {pipeline_class!r}, which diffusers does not "
            "have: custom pipeline code is not loaded."
        )
    for name, entry in index.items():
        if name.startswith("_") or not isinstance(entry, list) or entry[:1] == [None]:
            continue
        if entry[0] not in COMPONENT_LIBRARIES:
            raise ValueError(
                f"{model_id}: model_index.json takes its component {name!r} from {entry[0]!r}; hybridgen loads "
                f"components of {' and '.join(COMPONENT_LIBRARIES)} only, so no other code runs."
            )


def load_call_defaults(
    model_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | None = None,
    local_files_only: bool | None = None,
) -> tuple[dict, float | None]:
    """The call defaults a generator checkpoint ships in `call_defaults.json`, if any.

    Returns:
        `(pipeline_call, fps)`: keyword defaults for the pipeline's `__call__` (e.g. the frame size it was trained
        at) and the frame rate of its clips; `({}, None)` for checkpoints without the file (all Hub pipelines).
    """
    source = resolve(model_id, "generator")
    offline = hub_offline() if local_files_only is None else local_files_only
    options = {"revision": revision, "cache_dir": cache_dir, "local_files_only": offline}
    config = _read_checkpoint_json(source, CALL_DEFAULTS_FILE, options) or {}
    unknown = set(config) - {"fps", "pipeline_call"}
    call, fps = config.get("pipeline_call", {}), config.get("fps")
    if unknown or not isinstance(call, dict) or not (fps is None or _is_positive_number(fps)):
        raise ValueError(
            f'{model_id}: {CALL_DEFAULTS_FILE} must hold {{"fps": a positive number, "pipeline_call": '
            f"{{argument: value}}}}; got {json.dumps(config)[:200]}."
        )
    return dict(call), float(fps) if fps is not None else None


def _is_positive_number(value) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )
