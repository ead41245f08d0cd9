"""ExpectedErrorHead: how large a critic's prediction error usually is at a token, given the prediction.

Some futures are harder to predict than others even when nothing impossible happens: a ball about to bounce
(restitution unknown) or to meet another ball. Raw L1 surprise counts that honest uncertainty as surprise. The
head, fitted on plausible clips only (`hybridgen.training.error_head`), predicts the expected L1 error of each
predicted token from the predicted feature vector itself; `VJEPA2Critic(relative=True)` then scores

    relative token error = |pred - target|.mean(-1) / head(pred)        # 1 = as predictable as usual

so a violation in easy, free flight counts as much as one at a bounce. It is a small MLP saved next to the
critic's weights as `expected_error_head.safetensors`, its sizes in the file's metadata.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

ERROR_HEAD_FILE = "expected_error_head.safetensors"
MIN_EXPECTED_ERROR = 1e-3  # floor of the head's output, in L1 units of layer-normed features


class ExpectedErrorHead(nn.Module):
    """`(B, N, D)` predicted features -> `(B, N)` expected per-token L1 error (> 0).

    Args:
        hidden_size: D, the critic's feature size (`model.config.hidden_size`).
        head_hidden_size: width of the two hidden layers.
    """

    def __init__(self, hidden_size: int, head_hidden_size: int = 256):
        super().__init__()
        self.hidden_size, self.head_hidden_size = int(hidden_size), int(head_hidden_size)
        self.layers = nn.Sequential(
            nn.Linear(self.hidden_size, self.head_hidden_size),
            nn.GELU(),
            nn.Linear(self.head_hidden_size, self.head_hidden_size),
            nn.GELU(),
            nn.Linear(self.head_hidden_size, 1),
        )

    def forward(self, predictions: torch.Tensor) -> torch.Tensor:
        if predictions.shape[-1] != self.hidden_size:
            raise ValueError(
                f"the expected-error head takes {self.hidden_size}-dim predictions, got {predictions.shape[-1]}: "
                "it was fitted for a different critic."
            )
        weight = self.layers[0].weight
        out = self.layers(predictions.to(weight.device, weight.dtype)).squeeze(-1)  # (B, N)
        return F.softplus(out) + MIN_EXPECTED_ERROR

    def save(self, path: str | Path) -> None:
        """Write the weights and sizes to one safetensors file, atomically."""
        from hybridgen.video import atomic_write_path

        metadata = {"hidden_size": str(self.hidden_size), "head_hidden_size": str(self.head_hidden_size)}
        state = {
            name: tensor.detach().float().cpu().contiguous() for name, tensor in self.state_dict().items()
        }
        with atomic_write_path(path) as temporary:
            save_file(state, str(temporary), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> ExpectedErrorHead:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
        if "hidden_size" not in metadata:
            raise ValueError(f"{path} is not an expected-error head: its metadata has no hidden_size.")
        head = cls(int(metadata["hidden_size"]), int(metadata.get("head_hidden_size", 256)))
        head.load_state_dict(load_file(str(path)))
        return head.eval().requires_grad_(False)
