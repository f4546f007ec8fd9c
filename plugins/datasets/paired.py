"""Paired datasets (pix2pix): ``aligned`` (one image holding A|B side by side) and
``paired-folders`` (two folders of images with matching names).

Both yield ``A`` and ``B`` as an aligned pair (``aligned = ("A", "B")``, which an objective that
declares ``paired`` keys needs) and give both images of a pair the same random resize-crop and
flip, as the official pix2pix does: junyanz/pytorch-CycleGAN-and-pix2pix, ``data/base_dataset.py``
at commit ba80e925b2b181bfeb83f4913a632bf9742a1eb4 (``get_params`` draws one crop position and
one flip per pair from the size of A, ``get_transform`` applies them: resize to ``load_size``,
crop ``crop_size``, flip) and ``data/aligned_dataset.py`` (the AB image split at ``w // 2``, the
same transform for both halves; ``--direction BtoA`` swaps them in ``models/pix2pix_model.py``
at 48ced5e8e3af621acca066a70203a196ba571bed). The random numbers come from ``(seed, position)``
as in the other bundled datasets, so resume is exact with any number of workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from PIL import Image

from ganforge.data import item_generator, list_images, to_uint8_tensor, try_open_rgb
from ganforge.errors import GanforgeError

from .folders import (
    Count,
    LoadSide,
    Preprocess,
    Seed,
    Side,
    _dataset_root,
    _load_side,
    _StreamDataset,
    _subset,
    _two_folders,
)
from .images import RANDOM_CROP, crop_flip_params, resize_for_crop, split_holdout

Direction = Literal["AtoB", "BtoA"]


def paired_resize_crop(
    a: Image.Image,
    b: Image.Image,
    image_size: int,
    load_size: int,
    mode: str,
    g: torch.Generator | None,
    flip: bool,
) -> tuple[Image.Image, Image.Image]:
    """One resize, crop and flip for both images of a pair (randomness from ``g``; None: centre).

    ``mode`` as the bundled datasets' ``preprocess`` (``resize_and_crop``: resize to
    ``load_size`` square, random ``image_size`` crop; ``scale_width``: shorter side to
    ``load_size``, random crop; ``resize``: straight to ``image_size``; ``center``: shorter side
    to ``image_size``, centre crop). The resize and the crop and flip draws are those of
    :func:`ganforge_plugins.datasets.images.resize_crop`, from A's size, so A comes out exactly as
    that function makes it; B, first resized to A's size if it differs, gets the same box and flip.
    """
    if b.size != a.size:  # the pixels of a pair must line up
        b = b.resize(a.size, Image.BICUBIC)
    a, b = resize_for_crop(a, image_size, load_size, mode), resize_for_crop(b, image_size, load_size, mode)
    top, left, flipped = crop_flip_params(a.height, a.width, image_size, g, flip, mode in RANDOM_CROP)
    box = (left, top, left + image_size, top + image_size)
    a, b = a.crop(box), b.crop(box)
    if flipped:
        a, b = a.transpose(Image.FLIP_LEFT_RIGHT), b.transpose(Image.FLIP_LEFT_RIGHT)
    return a, b


class _PairedDataset(_StreamDataset):
    """Shared logic: items are pairs, each read as two images and transformed together."""

    yields = {"A": "uint8 [3, S, S] input image", "B": "uint8 [3, S, S] its aligned target"}
    aligned = ("A", "B")

    def _setup(
        self,
        items: list,
        image_size: int,
        load_size: int,
        preprocess: str,
        flip: bool,
        holdout: int,
        max_images: int,
        split_seed: int,
        direction: str,
        seed: int,
    ) -> None:
        self.load_size = _load_side(load_size, image_size, preprocess)
        items, self.held = split_holdout(items, holdout, split_seed)
        self.pairs = _subset(items, max_images, split_seed) if max_images else items
        self.image_size = image_size
        self.preprocess, self.flip, self.direction, self.seed = preprocess, flip, direction, seed
        self.length = len(self.pairs)

    def _read(self, item) -> tuple[Image.Image, Image.Image] | None:
        """The A and B images of one item, or None if a file is unreadable (reported once)."""
        raise NotImplementedError

    def _name(self, item) -> str:
        raise NotImplementedError

    def _oriented(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"A": b, "B": a} if self.direction == "BtoA" else {"A": a, "B": b}

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        g = item_generator("item", self.seed, position)
        index = self._index(position)
        # An unreadable pair is reported once and replaced by the next readable one.
        for offset in range(self.length):
            pair = self._read(self.pairs[(index + offset) % self.length])
            if pair is not None:
                break
        else:
            raise GanforgeError(
                f"[data] no readable pairs among {self.length} ({self._name(self.pairs[0])}, ...)"
            )
        a, b = paired_resize_crop(*pair, self.image_size, self.load_size, self.preprocess, g, self.flip)
        return self._oriented(to_uint8_tensor(a), to_uint8_tensor(b))

    def holdout(self, n: int) -> dict[str, torch.Tensor]:
        """``n`` fixed held-out pairs (training pairs when none are held out), centre-cropped,
        with no random crop or flip."""
        a_images, b_images = [], []
        for item in self.held or self.pairs:
            if len(a_images) == n:
                break
            pair = self._read(item)
            if pair is None:
                continue
            a, b = paired_resize_crop(*pair, self.image_size, self.image_size, "center", None, False)
            a_images.append(to_uint8_tensor(a))
            b_images.append(to_uint8_tensor(b))
        if not a_images:
            empty = torch.zeros(0, 3, self.image_size, self.image_size, dtype=torch.uint8)
            return {"A": empty, "B": empty.clone()}
        return self._oriented(torch.stack(a_images), torch.stack(b_images))


class AlignedImages(_PairedDataset):
    """pix2pix's aligned format: each image holds A (left half) and B (right half) side by side."""

    def __init__(
        self,
        root: str = "",
        source: str = "",
        folder: str = "train",
        direction: Direction = "AtoB",
        image_size: Side = 256,
        load_size: LoadSide = 0,
        preprocess: Preprocess = "resize_and_crop",
        flip: bool = True,
        holdout: Count = 8,
        max_images: Count = 0,
        split_seed: Seed = 0,
        seed: int = 0,
    ) -> None:
        base, hint = _dataset_root(root, source, "facades")
        path = (base / folder if folder else base) if base else Path(folder or ".")
        if not path.is_dir():
            hint = hint or "(data.folder is a folder when neither data.source nor data.root is set)"
            raise GanforgeError(f"dataset not found: looked for {path.resolve()} {hint}")
        files = list_images(path, f"[data] aligned A|B images ({folder or path})")
        self._setup(
            files, image_size, load_size, preprocess, flip, holdout, max_images, split_seed, direction, seed
        )

    def _read(self, item: Path) -> tuple[Image.Image, Image.Image] | None:
        img = try_open_rgb(item)
        if img is None:
            return None
        w, h = img.size
        half = w // 2  # the official split: A = [0, w // 2), B = [w // 2, w)
        if half < 1:
            raise GanforgeError(f"{item}: {w} px wide; an aligned image holds A and B side by side")
        return img.crop((0, 0, half, h)), img.crop((half, 0, w, h))

    def _name(self, item: Path) -> str:
        return str(item)


class PairedFolders(_PairedDataset):
    """Two folders of aligned pairs matched by file name (trainA/1.jpg with trainB/1.jpg)."""

    def __init__(
        self,
        root: str = "",
        source: str = "",
        a: str = "trainA",
        b: str = "trainB",
        direction: Direction = "AtoB",
        image_size: Side = 256,
        load_size: LoadSide = 0,
        preprocess: Preprocess = "resize_and_crop",
        flip: bool = True,
        holdout: Count = 8,
        max_images: Count = 0,
        split_seed: Seed = 0,
        seed: int = 0,
    ) -> None:
        folder_a, folder_b = _two_folders(root, source, a, b, "facades")
        pairs = pair_files(
            list_images(folder_a, f"[data] domain A ({a})"), list_images(folder_b, f"[data] domain B ({b})")
        )
        self._setup(
            pairs, image_size, load_size, preprocess, flip, holdout, max_images, split_seed, direction, seed
        )

    def _read(self, item: tuple[Path, Path]) -> tuple[Image.Image, Image.Image] | None:
        a, b = try_open_rgb(item[0]), try_open_rgb(item[1])
        return None if a is None or b is None else (a, b)

    def _name(self, item: tuple[Path, Path]) -> str:
        return f"{item[0]} | {item[1]}"


def _stem_key(stem: str, side: str) -> str:
    """``stem`` without a trailing ``_A`` / ``_B`` of its side (``1_A`` -> ``1`` in folder A)."""
    return stem[:-2] if stem[-2:] in (f"_{side}", f"_{side.lower()}") else stem


def pair_files(files_a: list[Path], files_b: list[Path]) -> list[tuple[Path, Path]]:
    """A and B files paired by name: the same stem (the extension may differ), or the same stem
    once a trailing ``_A`` / ``_B`` is dropped (CycleGAN's copy of facades names a pair
    ``1_A.jpg`` and ``1_B.jpg``). A file without a partner is an error: a pair is never guessed.
    """
    for strip in (False, True):  # exact stems first, then without the side suffix
        by_a = _by_key(files_a, "A", strip)
        by_b = _by_key(files_b, "B", strip)
        if by_a.keys() == by_b.keys():
            return [(by_a[k], by_b[k]) for k in sorted(by_a)]
    only_a, only_b = sorted(by_a.keys() - by_b.keys()), sorted(by_b.keys() - by_a.keys())
    folder_a, folder_b = files_a[0].parent, files_b[0].parent
    missing = [
        f"{len(keys)} in {here} have no partner in {there} (e.g. {names[keys[0]].name})"
        for keys, names, here, there in (
            (only_a, by_a, folder_a, folder_b),
            (only_b, by_b, folder_b, folder_a),
        )
        if keys
    ]
    raise GanforgeError(
        f"[data] paired-folders: {'; '.join(missing)}; the two images of a pair share a file name"
    )


def _by_key(files: list[Path], side: str, strip: bool) -> dict[str, Path]:
    names: dict[str, Path] = {}
    for f in files:
        key = _stem_key(f.stem, side) if strip else f.stem
        if key in names:
            raise GanforgeError(
                f"[data] {f.parent}: {names[key].name} and {f.name} would both be pair {key!r}"
            )
        names[key] = f
    return names
