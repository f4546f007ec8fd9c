"""Reading images: listing folders, the one safe decoder every reader uses, and seeded per-item
randomness (data order and augmentation are pure functions of the seed and the stream position,
which is what makes resume exact). Datasets return uint8 ``[C, H, W]`` tensors: the trainer
scales them to [-1, 1] on the device (4x less host-to-device traffic than float)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ganforge.errors import GanforgeError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm")
_reported: set[str] = set()


def list_images(folder: str | os.PathLike[str], what: str = "images") -> list[Path]:
    """Image files directly in ``folder`` (sorted); a missing or empty folder is a clear error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GanforgeError(f"{what}: folder {folder.resolve()} not found")
    files = expand_inputs([folder])
    if not files:
        raise GanforgeError(
            f"{what}: no images in {folder.resolve()} (looked for {', '.join(IMAGE_EXTENSIONS)})"
        )
    return files


def expand_inputs(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files and folders given on a command line -> a flat list of candidate files."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS))
        else:
            out.append(p)
    return out


_open_lock = threading.Lock()  # warnings filters are process-wide: one open at a time changes them


def open_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """Decode an image as 8-bit RGB, raising ``GanforgeError`` naming the file if it is not one."""
    try:
        with _open_lock, warnings.catch_warnings():
            # Pillow only warns between the limit and twice it: treat the whole range as too big.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            img.load()
            with contextlib.suppress(Exception):  # a malformed EXIF block is ignored
                img = ImageOps.exif_transpose(img) or img
            return _to_rgb8(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        limit = Image.MAX_IMAGE_PIXELS
        raise GanforgeError(
            f"{path}: not a readable image: {' '.join(str(exc).split())} (the limit of "
            f"{limit:,} pixels protects memory from decompression bombs)"
        ) from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # Pillow raises many types on damaged files: all mean unreadable
        text = " ".join(str(exc).split()) or "unreadable"
        raise GanforgeError(f"{path}: not a readable image ({type(exc).__name__}: {text})") from None


def _to_rgb8(img: Image.Image) -> Image.Image:
    """8-bit RGB. Modes of more than 8 bits are scaled down instead of clipped."""
    if not (img.mode.startswith("I;16") or img.mode in ("I", "F")):
        return img.convert("RGB")
    array = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        scale = 65535.0
    elif img.mode == "I":  # 32-bit ints: 16-bit data (e.g. a 16-bit PNG) unless it is 8-bit
        top = float(array.max()) if array.size else 0.0
        scale = 255.0 if top <= 255 else 65535.0 if top <= 65535 else max(top, 1.0)
    else:  # floats: [0, 1] data, else taken as [0, 255]
        finite = array[np.isfinite(array)]
        scale = 1.0 if finite.size and finite.max() <= 1.0 else 255.0
        array = np.nan_to_num(array, nan=0.0, posinf=scale, neginf=0.0)
    gray = np.clip(np.rint(array * (255.0 / scale)), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode="L").convert("RGB")


def try_open_rgb(path: Path) -> Image.Image | None:
    """Decode an image, or report it once (with its path) and return None."""
    try:
        return open_rgb(path)
    except GanforgeError as exc:
        if str(path) not in _reported:
            _reported.add(str(path))
            print(f"warning: skipping unreadable image: {exc}", file=sys.stderr, flush=True)
        return None


def to_uint8_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> uint8 [3, H, W]."""
    t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    return t.view(img.height, img.width, 3).permute(2, 0, 1).contiguous()


def item_generator(*keys: int | str) -> torch.Generator:
    """A CPU generator seeded by a stable hash of ``keys`` (seed, epoch, position, ...)."""
    digest = hashlib.blake2b("/".join(map(str, keys)).encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & ((1 << 63) - 1))
