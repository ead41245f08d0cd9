"""A trainer's state as JSON plus safetensors, so that reading a checkpoint can never run code.

`torch.save` pickles, and unpickling a file runs whatever the file asks for: a checkpoint folder from a stranger
would run their code on resume (`torch.load` with `weights_only=True` narrows that, but had a remote-code hole before
torch 2.6, and hybridgen allows torch 2.4). So a trainer state is split in two files that are only ever parsed:

    trainer_state.json         the structure and every plain value (step, history, config, optimiser settings...),
                               each tensor replaced by a reference {"__tensor__": "<name>"}
    trainer_state.safetensors  the tensors by name (optimiser moments and steps, the torch.Generator state...)

JSON has no int keys or tuples, and optimiser state dicts have both (`{0: {...}}`, `betas=(0.9, 0.999)`); they
are written as {"__dict__": [[key, value], ...]} and {"__tuple__": [...]}, so `load_state` gives back exactly what
`save_state` was given. `state_exists` refuses the old pickled `trainer_state.pt` rather than reading it.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from hybridgen.training.checkpoints import reading_checkpoint_file

STATE_JSON = "trainer_state.json"
STATE_TENSORS = "trainer_state.safetensors"
PICKLED_STATE = "trainer_state.pt"  # what earlier versions wrote with torch.save; never read
_MARKERS = {"__tensor__", "__tuple__", "__dict__"}


class PickledCheckpointError(ValueError):
    """A checkpoint holds only the old pickled trainer state, which hybridgen refuses to unpickle."""


def save_state(directory: str | Path, state: dict) -> None:
    """Write `state` (dicts, lists, tuples, strings, numbers, None and tensors) as the two state files."""
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(state, tensors, "state")
    directory = Path(directory)
    (directory / STATE_JSON).write_text(json.dumps(tree, indent=1) + "\n")
    save_file(tensors, str(directory / STATE_TENSORS))


def load_state(directory: str | Path) -> dict:
    """The state `save_state` wrote to `directory`, read with `json.loads` and safetensors alone.

    A missing, truncated or malformed file raises `BrokenCheckpointError` (a `ValueError`) naming it.
    """
    directory = Path(directory)
    with reading_checkpoint_file(directory / STATE_TENSORS):
        tensors = load_file(str(directory / STATE_TENSORS))
    with reading_checkpoint_file(directory / STATE_JSON):
        state = _decode(json.loads((directory / STATE_JSON).read_text()), tensors)
        if not isinstance(state, dict):
            raise TypeError(f"the state is a {type(state).__name__}, not a dict")
    return state


def state_exists(directory: str | Path) -> bool:
    """Whether `directory` holds a trainer state to resume from (either file: `load_state` names a missing one).

    A directory with only the old pickled `trainer_state.pt` raises `PickledCheckpointError`: it is never read.
    """
    directory = Path(directory)
    if (directory / STATE_JSON).is_file() or (directory / STATE_TENSORS).is_file():
        return True
    if (directory / PICKLED_STATE).exists():
        raise PickledCheckpointError(
            f"{directory / PICKLED_STATE} is a checkpoint in the old pickle format, which hybridgen no longer "
            "loads: unpickling a file can run any code in it. Start the training over with --no-resume "
            "(resume=False)."
        )
    return False


def _encode(value: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    """`value` as JSON data; its tensors go into `tensors` under fresh names. `path` names it in errors."""
    if isinstance(value, torch.Tensor):
        name = str(len(tensors))
        tensors[name] = value.detach().to("cpu").contiguous()
        return {"__tensor__": name}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):  # int, numpy integers
        return int(value)
    if isinstance(value, numbers.Real):  # float, numpy floats
        return float(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(item, tensors, f"{path}[{i}]") for i, item in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(item, tensors, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value) and not _MARKERS & value.keys():
            return {key: _encode(item, tensors, f"{path}[{key!r}]") for key, item in value.items()}
        return {
            "__dict__": [
                [_encode(key, tensors, f"{path} key"), _encode(item, tensors, f"{path}[{key!r}]")]
                for key, item in value.items()
            ]
        }
    raise TypeError(f"cannot save {path}: a {type(value).__name__} is not plain data or a tensor")


def _decode(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Undo `_encode`: JSON data back to dicts, lists, tuples, values and the tensors it references."""
    if isinstance(tree, list):
        return [_decode(item, tensors) for item in tree]
    if not isinstance(tree, dict):
        return tree
    if len(tree) == 1 and _MARKERS & tree.keys():  # `_encode` writes a dict with such a key as __dict__
        marker, content = next(iter(tree.items()))
        if marker == "__tensor__":
            return tensors[content]
        if marker == "__tuple__":
            return tuple(_decode(item, tensors) for item in content)
        return {_decode(key, tensors): _decode(item, tensors) for key, item in content}
    return {key: _decode(item, tensors) for key, item in tree.items()}
