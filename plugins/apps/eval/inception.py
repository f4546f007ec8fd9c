"""The FID Inception-v3 feature extractor (the network pytorch-fid, torch-fidelity and clean-fid use).

The architecture is torchvision's Inception-v3 (1008 classes, no aux head) with the blocks
patched as in pytorch-fid: TensorFlow's average pooling ignores padding
(``count_include_pad=False``) in the A, C and first E blocks, and the last E block uses max
pooling. The weights are TensorFlow's 2015-12-05 Inception ported to PyTorch, file
``pt_inception-2015-12-05-6726825d.pth``.

Preprocessing follows pytorch-fid: images in [0, 1] are resized to 299x299 with bilinear
interpolation (``align_corners=False``), then scaled to [-1, 1]. The features are the 2048
values of the final average pool.

Weights are looked up in this order: the ``weights`` option (recipe or ``--weights``; ``.pth``
read with ``torch.load(weights_only=True)``, or ``.safetensors``), then torch's hub cache
(``$TORCH_HOME/hub/checkpoints``, see ``torch.hub.get_dir()``), then a download into that cache
(unless ``download = false`` or ``GANFORGE_NO_DOWNLOAD=1``). Without any of them the error names
the file and the folder to put it in.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import GanforgeError

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_FILE}"
NO_DOWNLOAD_ENV = "GANFORGE_NO_DOWNLOAD"
DOWNLOAD_TIMEOUT_S = 30.0


_BLOCKS = ("FIDInceptionA", "FIDInceptionC", "FIDInceptionE_1", "FIDInceptionE_2")


def __getattr__(name: str) -> Any:
    # The blocks subclass torchvision's, and importing torchvision costs over a second: it is
    # imported when an Inception network is built, not whenever the plugins load.
    if name in _BLOCKS:
        from . import _fid_blocks

        return getattr(_fid_blocks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def fid_inception_v3() -> nn.Module:
    """The FID Inception-v3 architecture, randomly initialised (load the weights after)."""
    import torchvision

    from ._fid_blocks import (
        FIDInceptionA,
        FIDInceptionC,
        FIDInceptionE_1,
        FIDInceptionE_2,
    )

    net = torchvision.models.inception_v3(
        weights=None, aux_logits=False, init_weights=False, num_classes=1008
    )
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


def hub_weights_path() -> Path:
    """Where torch's hub cache keeps the FID weights: ``$TORCH_HOME/hub/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def missing_weights_message(reason: str = "") -> str:
    target = hub_weights_path()
    return (
        f"FID Inception weights not found: put {FID_WEIGHTS_FILE} in {target.parent}/ "
        f"(download it from {FID_WEIGHTS_URL}), or pass its path with --weights PATH "
        f'(recipe: weights = "PATH")' + (f"; {reason}" if reason else "")
    )


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
    if not isinstance(state, dict):
        raise GanforgeError(f"inception weights {path}: expected a state dict, got {type(state).__name__}")
    return state


def load_fid_weights(weights: str = "", download: bool = True) -> tuple[dict[str, Tensor], Path]:
    """The FID Inception state dict and the file it came from (path, cache, then download)."""
    if weights:
        path = Path(weights).expanduser()
        return read_state_dict(path), path
    cached = hub_weights_path()
    if cached.is_file():
        return read_state_dict(cached), cached
    if not download or os.environ.get(NO_DOWNLOAD_ENV, "").strip() not in ("", "0"):
        raise GanforgeError(missing_weights_message())
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        state = torch.hub.load_state_dict_from_url(
            FID_WEIGHTS_URL,
            model_dir=str(cached.parent),
            map_location="cpu",
            progress=True,
            check_hash=True,
            file_name=FID_WEIGHTS_FILE,
            weights_only=True,
        )
    except Exception as exc:  # offline (URLError), a proxy, a bad hash: the same advice
        text = str(exc).strip().splitlines()
        raise GanforgeError(
            missing_weights_message(
                f"download failed: {type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
            )
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return state, cached


class InceptionFeatures(nn.Module):
    """FID Inception-v3 pool features (2048-d) with pytorch-fid's preprocessing; the standard FID/KID network.

    Call it on images in [0, 1], ``[N, 3, H, W]``: returns ``[N, 2048]`` float32. ``pretrained =
    false`` keeps the random initialisation (for tests of the plumbing only: such features are
    not comparable with anyone's FID).
    """

    dim = 2048

    def __init__(
        self, weights: str = "", pretrained: bool = True, download: bool = True, resize: bool = True
    ) -> None:
        super().__init__()
        self.net = fid_inception_v3()
        self.resize = resize
        self.source: str = "random"
        if pretrained:
            state, path = load_fid_weights(weights, download)
            try:
                self.net.load_state_dict(state)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                raise GanforgeError(f"{path} does not hold the FID Inception weights ({first})") from None
            self.source = str(path)
        self.net.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> InceptionFeatures:  # always in eval mode (batch norm statistics)
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = images.float()
        if self.resize:
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        n = self.net
        x = n.Conv2d_1a_3x3(x)
        x = n.Conv2d_2a_3x3(x)
        x = n.Conv2d_2b_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = n.Conv2d_3b_1x1(x)
        x = n.Conv2d_4a_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (
            n.Mixed_5b,
            n.Mixed_5c,
            n.Mixed_5d,
            n.Mixed_6a,
            n.Mixed_6b,
            n.Mixed_6c,
            n.Mixed_6d,
            n.Mixed_6e,
            n.Mixed_7a,
            n.Mixed_7b,
            n.Mixed_7c,
        ):
            x = block(x)
        return F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)
