"""One sub-folder per class (CIFAR-10's layout once unpacked): images and their class indices."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from ganforge.data import item_generator, list_images
from ganforge.errors import GanforgeError

from .folders import (
    Count,
    Preprocess,
    Seed,
    Side,
    _cache_mode,
    _cache_size,
    _dataset_root,
    _stack,
    _StreamDataset,
    _subset,
)
from .images import (
    check_image_side,
    crop_flip_tensor,
    decoded_cache,
    holdout_note,
    resize_crop,
    split_holdout,
)


class ClassFolders(_StreamDataset):
    """Images in one sub-folder per class: each item is an image and its class index (``label``).

    Classes are the sub-folders that hold images, sorted by name (``classes``: the names a model
    trained on it can be asked for, e.g. ``ganforge sample --class cat``). ``split`` is a
    sub-folder of the dataset that holds the class folders (``train`` or ``test`` of the
    ``cifar10`` source). ``holdout`` images are kept out of training per class.
    """

    yields = {"image": "uint8 [3, S, S] image", "label": "int64 class index into the dataset's classes"}

    def __init__(
        self,
        root: str = "",
        source: str = "",
        split: str = "",
        image_size: Side = 32,
        preprocess: Preprocess = "center",
        flip: bool = False,
        holdout: Count = 0,
        max_images: Count = 0,
        split_seed: Seed = 0,
        cache: bool | Literal["disk"] = False,
        seed: int = 0,
    ) -> None:
        check_image_side(image_size)
        folder, hint = _dataset_root(root, source, "cifar10")
        if folder is None:
            raise GanforgeError(
                "[data] needs key 'source' (a dataset in the data root) or 'root' (a folder of class folders)"
            )
        if split:
            parts = Path(split).parts
            if Path(split).is_absolute() or ".." in parts:
                raise GanforgeError(
                    f"[data] split = {split!r}: expected a sub-folder of the dataset, e.g. 'train'"
                )
            folder = folder / split
        if not folder.is_dir():
            raise GanforgeError(f"dataset not found: looked for folder {folder.resolve()} {hint}")
        folders = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
        self.classes: list[str] = []
        self.files: list[Path] = []
        labels: list[int] = []
        self.held: list[tuple[Path, int]] = []
        listed: dict[str, list[Path]] = {}
        for d in folders:
            try:
                listed[d.name] = list_images(d, f"[data] class {d.name}")
            except GanforgeError:
                continue  # a sub-folder without images is not a class
        holdout_note(holdout, {f"class {name}": len(files) for name, files in listed.items()})
        for name, files in listed.items():
            files, held = split_holdout(files, holdout, split_seed)
            index = len(self.classes)
            self.classes.append(name)
            self.files += files
            labels += [index] * len(files)
            self.held += [(f, index) for f in held]
        if not self.classes:
            splits = [d.name for d in folders if any(c.is_dir() for c in d.iterdir())]
            hint = (
                f"; its sub-folders hold folders: set data.split to one of {', '.join(splits)}"
                if splits
                else ""
            )
            raise GanforgeError(
                f"[data] {folder.resolve()} has no class folders with images (class-folders reads one "
                f"sub-folder of images per class){hint}"
            )
        if max_images:
            keep = _subset(list(range(len(self.files))), max_images, split_seed)
            self.files, labels = [self.files[i] for i in keep], [labels[i] for i in keep]
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self.image_size, self.preprocess, self.flip, self.seed = image_size, preprocess, flip, seed
        self.length = len(self.files)
        self.cache = None
        if cache:
            size = _cache_size(preprocess, image_size, image_size)
            self.cache = decoded_cache(self.files, size, _cache_mode(preprocess), "images")

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        g = item_generator("item", self.seed, position)
        index = self._index(position)
        if self.cache is not None:
            crop = self.preprocess == "resize_and_crop"
            image = crop_flip_tensor(self.cache[index], self.image_size, g, self.flip, crop)
        else:
            image = self._load(
                self.files,
                index,
                lambda img: resize_crop(img, self.image_size, self.image_size, self.preprocess, g, self.flip),
            )
        return {"image": image, "label": self.labels[index]}

    def holdout(self, n: int) -> dict[str, torch.Tensor]:
        """``n`` fixed images, the classes in turn (held-out ones first)."""
        pool = self.held or list(zip(self.files, self.labels.tolist()))
        by_class: dict[int, list[Path]] = {}
        for path, label in pool:
            by_class.setdefault(label, []).append(path)
        chosen: list[tuple[Path, int]] = []
        for i in range(max(len(v) for v in by_class.values())):
            chosen += [(files[i], label) for label, files in sorted(by_class.items()) if i < len(files)]
        images, used = _stack([p for p, _ in chosen], n, self.image_size)
        return {"image": images, "label": torch.tensor([chosen[i][1] for i in used], dtype=torch.int64)}
