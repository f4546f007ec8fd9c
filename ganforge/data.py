"""Image-folder helpers for dataset plugins: listing, safe decoding, seeded augmentation.

Datasets return images as uint8 ``[C, H, W]`` tensors; the trainer moves them to the device
and scales them to [-1, 1] there (4x less host-to-device traffic than float).
"""

from __future__ import annotations

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
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
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
    """Decode an image as 8-bit RGB, raising ``GanforgeError`` naming the file if it is not one.

    The one decoder every reader uses (datasets, translate, eval): EXIF orientation is applied
    (phone photos come upright), 16-bit and 32-bit images are scaled to 8 bits (not clipped to
    white), and an image over Pillow's pixel limit (``PIL.Image.MAX_IMAGE_PIXELS``, which guards
    memory against decompression bombs) is unreadable, as is anything Pillow fails on.
    """
    try:
        with _open_lock, warnings.catch_warnings():
            # Pillow only warns between the limit and twice it: treat the whole range as too big.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            img.load()
            img = _upright(img)
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


def _upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (a malformed EXIF block is ignored)."""
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:
        return img


def _to_rgb8(img: Image.Image) -> Image.Image:
    """8-bit RGB. Modes of more than 8 bits are scaled down instead of clipped."""
    if img.mode in ("RGB", "L", "P", "1", "RGBA", "LA", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return img.convert("RGB")
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
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
    return img.convert("RGB")


def try_open_rgb(path: Path) -> Image.Image | None:
    """Decode an image, or report it once (with its path) and return None."""
    try:
        return open_rgb(path)
    except GanforgeError as exc:
        key = str(path)
        if key not in _reported:
            _reported.add(key)
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


def resize_crop(
    img: Image.Image, image_size: int, load_size: int, mode: str, g: torch.Generator | None, flip: bool
) -> Image.Image:
    """The reference translation code's preprocessing, randomness from ``g`` (None: centre, no flip).

    ``resize_and_crop``: resize to load_size square, random crop image_size. ``scale_width``:
    keep aspect, shorter side to load_size, random crop. ``resize``: straight to image_size.
    ``center``: shorter side to image_size, centre crop (DCGAN style).
    """
    if mode == "resize":
        img = img.resize((image_size, image_size), Image.BICUBIC)
    elif mode == "center":
        img = _short_side(img, image_size)
        img = _crop(img, image_size, None)
    else:
        img = (
            img.resize((load_size, load_size), Image.BICUBIC)
            if mode == "resize_and_crop"
            else _short_side(img, load_size)
        )
        img = _crop(img, image_size, g)
    if flip and g is not None and torch.rand((), generator=g).item() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


def _short_side(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    scale = size / min(w, h)
    return img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)


def _crop(img: Image.Image, size: int, g: torch.Generator | None) -> Image.Image:
    w, h = img.size
    if g is None:
        x, y = (w - size) // 2, (h - size) // 2
    else:
        x = int(torch.randint(0, w - size + 1, (), generator=g))
        y = int(torch.randint(0, h - size + 1, (), generator=g))
    return img.crop((x, y, x + size, y + size))


def split_holdout(files: list[Path], count: int, seed: int) -> tuple[list[Path], list[Path]]:
    """A fixed validation split: ``count`` files chosen by ``seed``; (train, held out)."""
    count = min(count, max(0, len(files) - 1))
    if count == 0:
        return files, files[:0]
    order = torch.randperm(len(files), generator=item_generator("split", seed)).tolist()
    held = set(order[:count])
    return [f for i, f in enumerate(files) if i not in held], [files[i] for i in sorted(held)]


def crop_flip_params(
    height: int, width: int, size: int, g: torch.Generator | None, flip: bool, random_crop: bool = True
) -> tuple[int, int, bool]:
    """(top, left, flipped) of a ``size`` crop, drawn from ``g`` in the same order as
    :func:`resize_crop` (x, y, flip), so cached and decoded paths give identical pixels."""
    if g is None or not random_crop:
        x, y = (width - size) // 2, (height - size) // 2
    else:
        x = int(torch.randint(0, width - size + 1, (), generator=g))
        y = int(torch.randint(0, height - size + 1, (), generator=g))
    flipped = bool(flip and g is not None and torch.rand((), generator=g).item() < 0.5)
    return y, x, flipped


def crop_flip_tensor(
    t: torch.Tensor, size: int, g: torch.Generator | None, flip: bool, random_crop: bool = True
) -> torch.Tensor:
    """Crop and flip a uint8 [C, H, W] tensor with :func:`crop_flip_params`."""
    y, x, flipped = crop_flip_params(t.shape[1], t.shape[2], size, g, flip, random_crop)
    t = t[:, y : y + size, x : x + size]
    return (t.flip(-1) if flipped else t).contiguous()


def crop_spec(
    index: int,
    images: torch.Tensor,
    size: int,
    g: torch.Generator | None,
    flip: bool,
    random_crop: bool = True,
) -> torch.Tensor:
    """The crop of cached image ``index`` as int64 ``[index, top, left, flipped]``: what a
    device-cache item carries instead of pixels (see :func:`gather_crops`)."""
    y, x, flipped = crop_flip_params(images.shape[2], images.shape[3], size, g, flip, random_crop)
    return torch.tensor([index, y, x, int(flipped)], dtype=torch.int64)


def gather_crops(images: torch.Tensor, spec: torch.Tensor, size: int) -> torch.Tensor:
    """Cut a batch of crops out of uint8 ``images [N, C, H, W]`` in one indexing kernel.

    ``spec`` is int64 ``[B, >=4]`` rows of :func:`crop_spec`. The result is uint8
    ``[B, C, size, size]`` on ``images.device``, laid out channels_last (the training layout),
    pixel-identical to :func:`crop_flip_tensor` on each row.
    """
    spec = spec.to(images.device, non_blocking=True)
    index, top, left, flipped = spec[:, 0], spec[:, 1], spec[:, 2], spec[:, 3].bool()
    steps = torch.arange(size, device=images.device)
    rows = top[:, None] + steps
    cols = torch.where(flipped[:, None], left[:, None] + (size - 1) - steps, left[:, None] + steps)
    channels = torch.arange(images.shape[1], device=images.device)
    n, c, y, x = (
        index[:, None, None, None],
        channels[None, None, None, :],
        rows[:, :, None, None],
        cols[:, None, :, None],
    )
    nhwc = images[n, c, y, x]
    return nhwc.permute(0, 3, 1, 2)


def cache_dir() -> Path:
    """Where decoded-image caches live: ``decoded/`` in ganforge's cache (:mod:`ganforge.paths`)."""
    from ganforge.paths import cache_root

    return cache_root() / "decoded"


def decoded_cache(files: list[Path], size: int, mode: str, what: str = "images") -> torch.Tensor:
    """All ``files`` decoded and resized once to ``size`` (``mode``: ``resize`` or ``center``), as a
    uint8 ``[N, 3, size, size]`` tensor stored in a safetensors file keyed by the files (paths,
    sizes, modification times) and the size: built on first use, then loaded in seconds.

    Later epochs then crop and flip tensors instead of decoding JPEGs. An unreadable file is
    reported once and stored as its nearest readable neighbour.
    """
    from safetensors.torch import load_file, save_file

    h = hashlib.blake2b(f"{size}/{mode}".encode(), digest_size=16)
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    path = cache_dir() / f"{h.hexdigest()}.safetensors"
    if path.is_file():
        try:
            return load_file(str(path))["images"]
        except Exception:  # a damaged cache is rebuilt, never trusted
            path.unlink(missing_ok=True)
    print(f"building decoded cache of {len(files)} {what} at {size} px: {path}", file=sys.stderr, flush=True)
    images = torch.empty(len(files), 3, size, size, dtype=torch.uint8)
    good: list[int] = []
    for i, f in enumerate(files):
        img = try_open_rgb(f)
        if img is None:
            continue
        img = (
            img.resize((size, size), Image.BICUBIC)
            if mode == "resize"
            else _crop(_short_side(img, size), size, None)
        )
        images[i] = to_uint8_tensor(img)
        good.append(i)
    if not good:
        raise GanforgeError(f"{what}: no readable images among {len(files)} files in {files[0].parent}")
    for i in range(len(files)):  # unreadable entries borrow the next readable image
        if i not in good:
            images[i] = images[min(good, key=lambda j: (j - i) % len(files))]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({"images": images}, str(tmp))
    os.replace(tmp, path)
    return images
