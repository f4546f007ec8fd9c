"""Named evaluation protocols: how images reach the Inception network and how KID is estimated.

A FID or KID value means something only together with its protocol: the resize to 299 px, the
input scaling, the number of images and the KID estimator all move the numbers by more than
most differences between models. ``ganforge eval --protocol NAME`` (and ``protocol = "NAME"`` in
the ``eval`` callback) picks one of the protocols below; the JSON output, the printed tables and
``metrics.jsonl`` name it. Compare two numbers only when they name the same protocol (and, for
FID, the same image counts).

Every protocol uses the same network and weights: TensorFlow's 2015-12-05 FID Inception graph
in NVIDIA's port (``fid_weights.py``). A protocol is data (:class:`Protocol`); the resize methods
it names are the functions in ``RESIZERS``. Third parties add one with :func:`register_protocol`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import GanforgeError

DEFAULT_PROTOCOL = "clean-fid"


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol (all fields are data; see ``PROTOCOLS``)."""

    name: str
    summary: str
    resize: str  # a key of RESIZERS: how an image of any size becomes size x size
    size: int  # the network's input size
    input_range: str  # "tf": (v - 128) / 128 of 8-bit v, in [-1, 0.9921875]; "unit": v / 127.5 - 1
    images: int  # images per set (the first N in file-name order); 0: all
    split: str  # the dataset split it scores ("test": testA/, testB/); "": any
    image_size: int  # the translation size the protocol assumes (0: the model's own)
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per metric name
    reference: str = ""


# -- resize methods: uint8 [3, H, W] -> float [3, size, size] with values in [0, 255] ---------------


def _pil_channels_bicubic(image: Tensor, size: int) -> Tensor:
    """clean-fid's "clean" resize: each channel as a float image, PIL bicubic (antialiased), no rounding."""
    from PIL import Image

    arr = image.permute(1, 2, 0).numpy().astype(np.float32)
    chans = [
        np.asarray(Image.fromarray(np.ascontiguousarray(arr[:, :, c])).resize((size, size), Image.BICUBIC))
        for c in range(3)
    ]
    return torch.from_numpy(np.stack(chans).clip(0, 255).astype(np.float32))


def _pil_rgb_bilinear(image: Tensor, size: int) -> Tensor:
    """``scipy.misc.imresize(x, [size, size])``: an 8-bit RGB image, PIL bilinear (antialiased), 8-bit out."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(image.permute(1, 2, 0).numpy()), "RGB")
    out = np.asarray(img.resize((size, size), Image.BILINEAR))
    return torch.from_numpy(out.copy()).permute(2, 0, 1).float()


def tf1_bilinear(x: Tensor, size: int) -> Tensor:
    """TensorFlow 1's ``resize_bilinear`` (no corner alignment, no half-pixel centres) of ``[N, C, H, W]``.

    Output pixel ``i`` samples input position ``i * in / out``, clamped at the last pixel: the
    resize inside NVIDIA's metric network and torch-fidelity
    (``interpolate_bilinear_2d_like_tensorflow1x``), and the TF FID reference code's.
    """

    def axis(t: Tensor, dim: int, n_in: int) -> Tensor:
        pos = torch.arange(size, dtype=torch.float64) * (n_in / size)
        lo = pos.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        frac = (pos - lo.double()).to(t.dtype)
        shape = [1] * t.dim()
        shape[dim] = size
        a, b = t.index_select(dim, lo.to(t.device)), t.index_select(dim, hi.to(t.device))
        return a + (b - a) * frac.to(t.device).view(shape)

    x = axis(x, 2, x.shape[2])
    return axis(x, 3, x.shape[3])


def _tf1_bilinear_one(image: Tensor, size: int) -> Tensor:
    return tf1_bilinear(image.float()[None], size)[0]


def _torch_bilinear_one(image: Tensor, size: int) -> Tensor:
    return torch_bilinear(image.float()[None], size)[0]


def torch_bilinear(x: Tensor, size: int) -> Tensor:
    """pytorch-fid's resize: ``F.interpolate(bilinear, align_corners=False)``, no antialiasing."""
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


# name -> (resize of one uint8 [3, H, W] image, resize of a float batch in [0, 255] or None: 8-bit only)
RESIZERS: dict[str, tuple[Callable[[Tensor, int], Tensor], Callable[[Tensor, int], Tensor] | None]] = {
    "pil-bicubic": (_pil_channels_bicubic, None),
    "pil-bilinear": (_pil_rgb_bilinear, None),
    "tf1-bilinear": (_tf1_bilinear_one, tf1_bilinear),
    "torch-bilinear": (_torch_bilinear_one, torch_bilinear),
}
INPUT_RANGES = {"tf": (128.0, 128.0), "unit": (127.5, 127.5)}  # (offset, divisor) on [0, 255] values


def resize_image(image: Tensor, method: str, size: int) -> Tensor:
    """One uint8 ``[3, H, W]`` image -> float ``[3, size, size]`` in [0, 255] by ``method``."""
    if image.dtype != torch.uint8:
        raise GanforgeError(f"resize_image expects uint8 [3, H, W], got {image.dtype}")
    if tuple(image.shape[-2:]) == (size, size):
        return image.float()
    return RESIZERS[method][0](image.cpu(), size)


def resize_batch(images255: Tensor, method: str, size: int) -> Tensor:
    """A float ``[N, 3, H, W]`` batch with values in [0, 255] -> ``[N, 3, size, size]`` by ``method``.

    The PIL methods work on 8-bit images: values are rounded first (exact for images that came
    from 8-bit files or were quantised like the evaluation's generated images).
    """
    if tuple(images255.shape[-2:]) == (size, size):
        return images255
    per_image, batched = RESIZERS[method]
    if batched is not None:
        return batched(images255, size)
    as_uint8 = images255.detach().round().clamp(0, 255).to("cpu", torch.uint8)
    out = torch.stack([per_image(img, size) for img in as_uint8])
    return out.to(images255.device)


def to_network_range(images255: Tensor, input_range: str) -> Tensor:
    offset, divisor = INPUT_RANGES[input_range]
    return (images255 - offset) / divisor


# -- the registry -----------------------------------------------------------------------------------

PROTOCOLS: dict[str, Protocol] = {}


def register_protocol(protocol: Protocol) -> Protocol:
    """Add (or replace) a protocol; its resize method and input range must be known."""
    if protocol.resize not in RESIZERS:
        raise GanforgeError(
            f"protocol '{protocol.name}': unknown resize '{protocol.resize}' (known: {', '.join(RESIZERS)})"
        )
    if protocol.input_range not in INPUT_RANGES:
        raise GanforgeError(f"protocol '{protocol.name}': unknown input_range '{protocol.input_range}'")
    PROTOCOLS[protocol.name] = protocol
    return protocol


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; an unknown name is a one-line error listing the known ones."""
    key = (name or DEFAULT_PROTOCOL).strip()
    if key not in PROTOCOLS:
        import difflib

        close = difflib.get_close_matches(key, PROTOCOLS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise GanforgeError(f"unknown protocol '{key}' (known: {', '.join(sorted(PROTOCOLS))}){hint}")
    return PROTOCOLS[key]


_KID_SUBSETS = {"kid": {"estimator": "subsets", "subsets": 100, "subset_size": 1000}}

register_protocol(
    Protocol(
        name="clean-fid",
        summary="clean-fid's 'clean' mode: PIL bicubic (antialiased) to 299 px, all images",
        resize="pil-bicubic",
        size=299,
        input_range="tf",
        images=0,
        split="",
        image_size=0,
        metric_options=_KID_SUBSETS,
        reference=(
            "Parmar et al., On Aliased Resizing and Surprising Subtleties in GAN Evaluation, CVPR 2022; "
            "GaParmar/clean-fid@e88c4d6 cleanfid/resize.py build_resizer('clean'), "
            "cleanfid/inception_torchscript.py, cleanfid/fid.py kernel_distance"
        ),
    )
)
register_protocol(
    Protocol(
        name="torch-fidelity",
        summary="TensorFlow 1 bilinear to 299 px as NVIDIA's metrics and torch-fidelity do, all images",
        resize="tf1-bilinear",
        size=299,
        input_range="tf",
        images=0,
        split="",
        image_size=0,
        metric_options=_KID_SUBSETS,
        reference=(
            "toshas/torch-fidelity (feature_extractor_inceptionv3, KID: 100 subsets of 1000, seed 2020); "
            "NVlabs/stylegan2-ada-pytorch metrics (inception-2015-12-05.pt); the TTUR FID code"
        ),
    )
)
register_protocol(
    Protocol(
        name="pytorch-fid",
        summary="pytorch-fid's preprocessing: torch bilinear (no antialias) to 299 px, [0, 1] -> [-1, 1]",
        resize="torch-bilinear",
        size=299,
        input_range="unit",
        images=0,
        split="",
        image_size=0,
        metric_options=_KID_SUBSETS,
        reference="mseitzer/pytorch-fid src/pytorch_fid/inception.py (resize_input, normalize_input)",
    )
)
register_protocol(
    Protocol(
        name="ugatit",
        summary=(
            "U-GAT-IT's selfie2anime tables: the 100 test images per domain at 256 px, PIL bilinear to "
            "299, KID x100 from blocks of 10 (mean +- standard error)"
        ),
        resize="pil-bilinear",
        size=299,
        input_range="unit",
        images=100,
        split="test",
        image_size=256,
        metric_options={"kid": {"estimator": "blocks", "block_size": 10}},
        reference=(
            "Kim et al., U-GAT-IT, ICLR 2020 (Table 3: KID x100 +- std x100; selfie2anime: 100 test "
            "images per domain, 256 px); reconstructed from the first author's metric code "
            "taki0112/GAN_Metrics-Tensorflow@9ced680 "
            "frechet_kernel_Inception_distance.py: scipy.misc.imresize to 299 (PIL bilinear), "
            "x / 255 * 2 - 1, tf.contrib.gan run_inception pool_3, "
            "kernel_classifier_distance_and_std_from_activations(max_block_size=10)"
        ),
    )
)
