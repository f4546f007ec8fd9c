"""What the bundled datasets share: the reference code's resize-and-crop, seeded flips, a fixed
validation split, and the decoded-image cache (on disk or on the device)."""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import torch
from PIL import Image

from ganforge.data import item_generator, to_uint8_tensor, try_open_rgb
from ganforge.errors import GanforgeError

RANDOM_CROP = ("resize_and_crop", "scale_width")  # the modes that crop at a random position


def resize_crop(
    img: Image.Image,
    image_size: int,
    load_size: int,
    mode: str,
    g: torch.Generator | None,
    flip: bool,
    rotation: float = 0.0,
) -> Image.Image:
    """The reference translation code's preprocessing, randomness from ``g`` (None: centre, no flip).

    ``resize_and_crop``: resize to load_size square, random crop image_size. ``scale_width``:
    keep aspect, shorter side to load_size, random crop. ``resize``: straight to image_size.
    ``center``: shorter side to image_size, centre crop (DCGAN style). ``rotation`` > 0 turns
    the resized image by an angle drawn uniformly in [-rotation, rotation] degrees before the
    crop (torchvision's ``RandomRotation``: nearest neighbour, same size, black corners).
    """
    img = _rotate(resize_for_crop(img, image_size, load_size, mode), rotation, g)
    top, left, flipped = crop_flip_params(img.height, img.width, image_size, g, flip, mode in RANDOM_CROP)
    img = img.crop((left, top, left + image_size, top + image_size))
    return img.transpose(Image.FLIP_LEFT_RIGHT) if flipped else img


def resize_for_crop(img: Image.Image, image_size: int, load_size: int, mode: str) -> Image.Image:
    """The resize step of :func:`resize_crop` (``mode`` as there): the image its crop is cut from."""
    if mode == "resize":
        return img.resize((image_size, image_size), Image.BICUBIC)
    if mode == "center":
        return _short_side(img, image_size)
    if mode == "resize_and_crop":
        return img.resize((load_size, load_size), Image.BICUBIC)
    return _short_side(img, load_size)  # scale_width: keep the aspect ratio


def _rotate(img: Image.Image, degrees: float, g: torch.Generator | None) -> Image.Image:
    if degrees <= 0 or g is None:
        return img
    angle = float(torch.empty(()).uniform_(-degrees, degrees, generator=g))
    return img.rotate(angle, resample=Image.NEAREST, fillcolor=(0,) * len(img.getbands()))


def _short_side(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    scale = size / min(w, h)
    return img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)


def check_image_side(image_size: int) -> None:
    """Refuse an ``image_size`` whose square is over Pillow's pixel limit (``MAX_IMAGE_PIXELS``,
    which guards memory against decompression bombs): every image is cropped to it, and Pillow
    checks crops against that limit (over twice it, a ``DecompressionBombError`` from the first
    sample grid); ganforge's reader refuses such images too. One line, before training."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and image_size * image_size > limit:
        raise GanforgeError(
            f"[data] image_size {image_size}: a {image_size} x {image_size} image is "
            f"{image_size * image_size:,} pixels, over Pillow's limit of {limit:,} "
            f"(PIL.Image.MAX_IMAGE_PIXELS, which guards memory against decompression bombs); "
            f"image_size can be at most {math.isqrt(limit)}"
        )


def holdout_note(count: int, sizes: dict[str, int]) -> None:
    """Say once (on stderr) where ``holdout`` is more than half of a folder's images: each folder
    holds out at most half (:func:`split_holdout`), so most of the images still train."""
    over = {name: n for name, n in sizes.items() if count > n // 2}
    if not over:
        return
    shown = ", ".join(f"{name} has {n:,}" for name, n in list(over.items())[:3])
    more = f" and {len(over) - 3} more" if len(over) > 3 else ""
    print(
        f"note: [data] holdout {count:,} is more than half the images ({shown}{more}): holding out "
        "half of each instead",
        file=sys.stderr,
        flush=True,
    )


def split_holdout(files: list[Path], count: int, seed: int) -> tuple[list[Path], list[Path]]:
    """A fixed validation split: ``count`` files chosen by ``seed``, at most half of them (a larger
    ``holdout`` would leave a few images, or one, to train on: see :func:`holdout_note`);
    (train, held out)."""
    count = min(count, len(files) // 2)
    if count == 0:
        return files, files[:0]
    order = torch.randperm(len(files), generator=item_generator("split", seed)).tolist()
    held = set(order[:count])
    return [f for i, f in enumerate(files) if i not in held], [files[i] for i in sorted(held)]


def crop_flip_params(
    height: int, width: int, size: int, g: torch.Generator | None, flip: bool, random_crop: bool = True
) -> tuple[int, int, bool]:
    """(top, left, flipped) of a ``size`` crop, drawn from ``g`` (x, y, then the flip): the draws
    of :func:`resize_crop`, so cached and decoded paths give identical pixels."""
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

    from ganforge.model import atomic_write

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
    bad: list[int] = []
    for i, f in enumerate(files):
        img = try_open_rgb(f)
        if img is None:
            bad.append(i)
            continue
        images[i] = to_uint8_tensor(resize_crop(img, size, size, mode, None, False))
        good.append(i)
    if not good:
        raise GanforgeError(f"{what}: no readable images among {len(files)} files in {files[0].parent}")
    for i in bad:  # unreadable entries borrow the next readable image
        images[i] = images[min(good, key=lambda j: (j - i) % len(files))]
    atomic_write(path, lambda tmp: save_file({"images": images}, tmp))
    return images
