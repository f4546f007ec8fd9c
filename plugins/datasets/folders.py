"""Image-folder datasets: unpaired two-domain folders (CycleGAN) and one folder (DCGAN)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import torch
from torch.utils.data import Dataset

from ganforge import Range, Seed
from ganforge.data import item_generator, list_images, open_rgb, to_uint8_tensor, try_open_rgb
from ganforge.errors import GanforgeError
from ganforge.paths import data_root_text, dataset_dir

from .images import (
    RANDOM_CROP,
    check_image_side,
    crop_flip_tensor,
    crop_spec,
    decoded_cache,
    gather_crops,
    holdout_note,
    resize_crop,
    split_holdout,
)

Preprocess = Literal["resize_and_crop", "scale_width", "resize", "center"]
# A decoded 16384 px image is 805 MB, and the networks' activations grow with the square.
Side = Annotated[int, Range(1, 16384, why="memory: images and activations grow with the square of the side")]
LoadSide = Annotated[int, Range(0, 16384, why="memory: images grow with the square of the side")]
Count = Annotated[int, Range(0)]
Probability = Annotated[float, Range(0.0, 1.0)]
# false: decode every epoch; true / "disk": a decoded uint8 file; "device": that file, on the GPU.
CacheMode = bool | Literal["disk", "device"]


def _dataset_root(root: str, source: str, example: str) -> tuple[Path | None, str]:
    """The folder a dataset reads (None: no root, paths as given) and a hint for "not found".

    An explicit ``root`` is used as it is; otherwise ``source`` names a folder in the data root
    (``GANFORGE_DATA_ROOT`` or ``~/.cache/ganforge/datasets``), where ``ganforge data get`` puts it.
    ``example`` is the bundled source the hint suggests for a root without a source.
    """
    if root:
        get = f"ganforge data get {source or example} --to {root}"
        return Path(
            root
        ), f"(data.root = {root!r}); get it with `{get}` (`ganforge data list` names the datasets)"
    if source:
        where = f"(data.source = {source!r} in the data root {data_root_text()})"
        return dataset_dir(source), f"{where}; get it with `ganforge data get {source}`, or set data.root"
    return None, ""


def _two_folders(root: str, source: str, a: str, b: str, example: str) -> tuple[Path, Path]:
    """The domain folders ``a`` and ``b`` of a dataset (:func:`_dataset_root`; without a root or
    source, ``a`` and ``b`` are paths); a missing one is a one-line error saying where to get it."""
    base, hint = _dataset_root(root, source, example)
    folders = (base / a, base / b) if base else (Path(a), Path(b))
    for folder in folders:
        if not folder.is_dir():
            hint = hint or "(data.a and data.b are folders when neither data.source nor data.root is set)"
            raise GanforgeError(f"dataset not found: looked for {folder.resolve()} {hint}")
    return folders


def _load_side(load_size: int, image_size: int, preprocess: str) -> int:
    """The side images are resized to before their crop: ``load_size``, or for 0 the official
    286 -> 256 ratio of ``image_size``; a crop larger than the image it is cut from is refused."""
    if load_size and load_size < image_size and preprocess in RANDOM_CROP:
        raise GanforgeError(
            f"[data] load_size {load_size} is smaller than image_size {image_size}: crops of "
            f"image_size are cut from images of load_size (0: {round(image_size * 286 / 256)})"
        )
    return load_size or round(image_size * 286 / 256)


class _StreamDataset(Dataset):
    """Shared logic: the item at stream position ``p`` is a pure function of (seed, p)."""

    seed: int
    length: int

    def _permutation(self, epoch: int) -> torch.Tensor:
        cached = getattr(self, "_perm_cache", None)
        if cached is None or cached[0] != epoch:
            perm = torch.randperm(self.length, generator=item_generator("order", self.seed, epoch))
            self._perm_cache = cached = (epoch, perm)
        return cached[1]

    def __len__(self) -> int:
        return self.length

    def _index(self, position: int) -> int:
        return int(self._permutation(position // self.length)[position % self.length])

    def _load(self, files: list[Path], index: int, transform) -> torch.Tensor:
        # An unreadable file is reported once and replaced by the next readable one.
        for offset in range(len(files)):
            img = try_open_rgb(files[(index + offset) % len(files)])
            if img is not None:
                return to_uint8_tensor(transform(img))
        raise GanforgeError(f"no readable images among {len(files)} files in {files[0].parent}")


class UnpairedFolders(_StreamDataset):
    """Two unpaired image folders (CycleGAN): trainA/trainB of a source or root, or any two folders.

    Augmentation, in the reference translation codes' order: resize to ``load_size``, an optional
    random rotation within +-``rotation`` degrees, a random ``image_size`` crop, a horizontal
    flip, and optional colour jitter (brightness, contrast and saturation by ``color_jitter``,
    hue by ``hue``: UVCGAN2's pre-training uses 10 degrees and 0.2 for all four).
    """

    yields = {"A": "uint8 [3, S, S] image of domain A", "B": "uint8 [3, S, S] image of domain B"}

    def __init__(
        self,
        root: str = "",
        source: str = "",
        a: str = "trainA",
        b: str = "trainB",
        image_size: Side = 256,
        load_size: LoadSide = 0,
        preprocess: Preprocess = "resize_and_crop",
        flip: bool = True,
        rotation: Annotated[float, Range(0.0, 180.0)] = 0.0,
        color_jitter: Annotated[float, Range(0.0, 1.0)] = 0.0,
        hue: Annotated[float, Range(0.0, 0.5)] = 0.0,
        holdout: Count = 8,
        max_images: Count = 0,
        split_seed: Seed = 0,
        cache: CacheMode = False,
        seed: int = 0,
    ) -> None:
        if cache and (rotation or color_jitter or hue):
            raise GanforgeError(
                "[data] cache keeps decoded images for crops and flips only; rotation, color_jitter "
                "and hue need each image decoded (set cache = false)"
            )
        check_image_side(image_size)
        load_side = _load_side(load_size, image_size, preprocess)
        folder_a, folder_b = _two_folders(root, source, a, b, "selfie2anime")
        files_a = list_images(folder_a, f"[data] domain A ({a})")
        files_b = list_images(folder_b, f"[data] domain B ({b})")
        holdout_note(holdout, {f"domain A ({a})": len(files_a), f"domain B ({b})": len(files_b)})
        files_a, self.held_a = split_holdout(files_a, holdout, split_seed)
        files_b, self.held_b = split_holdout(files_b, holdout, split_seed)
        if max_images:
            files_a, files_b = (
                _subset(files_a, max_images, split_seed),
                _subset(files_b, max_images, split_seed),
            )
        self.files_a, self.files_b = files_a, files_b
        self.image_size = image_size
        self.load_size = load_side
        self.preprocess, self.flip, self.seed = preprocess, flip, seed
        self.rotation, self.color_jitter, self.hue = rotation, color_jitter, hue
        self.length = max(len(files_a), len(files_b))
        self.cache_a = self.cache_b = None
        self.on_device_cache = cache == "device"
        if cache:  # decode every JPEG once; epochs then only crop and flip tensors
            size = _cache_size(preprocess, self.image_size, self.load_size)
            self.cache_a = decoded_cache(files_a, size, _cache_mode(preprocess), "domain A images")
            self.cache_b = decoded_cache(files_b, size, _cache_mode(preprocess), "domain B images")

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        g = item_generator("item", self.seed, position)
        idx_a = self._index(position) % len(self.files_a)
        idx_b = int(torch.randint(0, len(self.files_b), (), generator=g))  # official: B drawn at random

        if self.cache_a is not None:
            crop = self.preprocess == "resize_and_crop"
            if self.on_device_cache:  # pixels stay on the device: see on_device
                return {
                    "A": crop_spec(idx_a, self.cache_a, self.image_size, g, self.flip, crop),
                    "B": crop_spec(idx_b, self.cache_b, self.image_size, g, self.flip, crop),
                }
            return {
                "A": crop_flip_tensor(self.cache_a[idx_a], self.image_size, g, self.flip, crop),
                "B": crop_flip_tensor(self.cache_b[idx_b], self.image_size, g, self.flip, crop),
            }

        def augment(img):
            img = resize_crop(
                img, self.image_size, self.load_size, self.preprocess, g, self.flip, self.rotation
            )
            if self.color_jitter or self.hue:
                img = _jitter_and_blur(img, _photometric_seed(g), self.color_jitter, self.hue)
            return img

        return {"A": self._load(self.files_a, idx_a, augment), "B": self._load(self.files_b, idx_b, augment)}

    def on_device(self, batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
        """With ``cache = "device"``: turn a batch of crop specs into uint8 images on ``device``."""
        if not self.on_device_cache:
            return batch
        self.cache_a, self.cache_b = self.cache_a.to(device), self.cache_b.to(device)  # once
        return {
            "A": gather_crops(self.cache_a, batch["A"], self.image_size),
            "B": gather_crops(self.cache_b, batch["B"], self.image_size),
        }

    def holdout(self, n: int) -> dict[str, torch.Tensor]:
        """``n`` fixed held-out images per domain, resized without augmentation."""
        return {
            "A": _stack(self.held_a or self.files_a, n, self.image_size)[0],
            "B": _stack(self.held_b or self.files_b, n, self.image_size)[0],
        }


class ImageFolder(_StreamDataset):
    """One image folder (DCGAN): resize, centre crop, optional flip, colour jitter and blur."""

    yields = {"image": "uint8 [3, S, S] image"}

    def __init__(
        self,
        root: str = "",
        source: str = "",
        image_size: Side = 64,
        preprocess: Preprocess = "center",
        flip: bool = False,
        color_jitter: Annotated[float, Range(0.0)] = 0.0,
        blur: Probability = 0.0,
        holdout: Count = 0,
        max_images: Count = 0,
        split_seed: Seed = 0,
        cache: CacheMode = False,
        seed: int = 0,
    ) -> None:
        check_image_side(image_size)
        folder, hint = _dataset_root(root, source, "anime_faces_64")
        if folder is None:
            raise GanforgeError(
                "[data] needs key 'source' (a dataset in the data root, see `ganforge data list`) "
                "or 'root' (the image folder)"
            )
        if not folder.is_dir():
            raise GanforgeError(f"dataset not found: looked for folder {folder.resolve()} {hint}")
        files = list_images(folder, "[data] image folder")
        holdout_note(holdout, {str(folder): len(files)})
        files, self.held = split_holdout(files, holdout, split_seed)
        self.files = _subset(files, max_images, split_seed) if max_images else files
        self.image_size, self.preprocess, self.flip, self.seed = image_size, preprocess, flip, seed
        self.color_jitter, self.blur = color_jitter, blur
        self.length = len(self.files)
        self.cache = None
        self.on_device_cache = cache == "device"
        if cache:
            size = _cache_size(preprocess, image_size, image_size)
            self.cache = decoded_cache(self.files, size, _cache_mode(preprocess), "images")

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        g = item_generator("item", self.seed, position)

        index = self._index(position)
        photometric = self.color_jitter > 0 or self.blur > 0
        crop = self.preprocess == "resize_and_crop"
        if self.on_device_cache:  # pixels stay on the device: see on_device
            spec = crop_spec(index, self.cache, self.image_size, g, self.flip, crop)
            if photometric:
                spec = torch.cat([spec, torch.tensor([_photometric_seed(g)])])
            return {"image": spec}
        if self.cache is not None:
            image = crop_flip_tensor(self.cache[index], self.image_size, g, self.flip, crop)
            return {"image": self._photometric(image, _photometric_seed(g)) if photometric else image}

        def augment(img):
            img = resize_crop(img, self.image_size, self.image_size, self.preprocess, g, self.flip)
            return self._photometric(img, _photometric_seed(g)) if photometric else img

        return {"image": self._load(self.files, index, augment)}

    def on_device(self, batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
        """With ``cache = "device"``: turn a batch of crop specs into uint8 images on ``device``."""
        if not self.on_device_cache:
            return batch
        self.cache = self.cache.to(device)  # once
        images = gather_crops(self.cache, batch["image"], self.image_size)
        if batch["image"].shape[1] > 4:  # photometric augmentation: per image, seeded as on the CPU
            seeds = batch["image"][:, 4].tolist()
            images = torch.stack([self._photometric(im, seed) for im, seed in zip(images, seeds)])
        return {"image": images}

    def _photometric(self, img, seed: int):
        return _jitter_and_blur(img, seed, self.color_jitter, min(0.5, self.color_jitter / 4), self.blur)

    def holdout(self, n: int) -> dict[str, torch.Tensor]:
        return {"image": _stack(self.held or self.files, n, self.image_size)[0]}


def _photometric_seed(g: torch.Generator) -> int:
    return int(torch.randint(0, 2**62, (), generator=g))


def _jitter_and_blur(img, seed: int, jitter: float = 0.0, hue: float = 0.0, blur: float = 0.0):
    """torchvision's ``ColorJitter(jitter, jitter, jitter, hue)``, then a 3x3 Gaussian blur with
    probability ``blur``, seeded per item (a PIL image or a uint8 tensor)."""
    from torchvision.transforms import v2

    # torchvision's transforms draw from the global CPU RNG: fork it, seeded per item. Only the
    # CPU generator: torch.manual_seed would also reseed CUDA's (noise, pool draws).
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        if jitter or hue:
            img = v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=hue)(img)
        if blur > 0 and torch.rand(()) < blur:
            img = v2.GaussianBlur(kernel_size=3, sigma=(0.1, 1.5))(img)
    return img


def _cache_size(preprocess: str, image_size: int, load_size: int) -> int:
    if preprocess == "scale_width":
        raise GanforgeError(
            "[data] cache needs preprocess 'resize_and_crop', 'resize' or 'center' "
            "(scale_width keeps each image's own aspect ratio)"
        )
    return load_size if preprocess == "resize_and_crop" else image_size


def _cache_mode(preprocess: str) -> str:
    return "center" if preprocess == "center" else "resize"


def _subset(files: list[Path], n: int, seed: int) -> list[Path]:
    if n <= 0 or n >= len(files):
        return files
    order = torch.randperm(len(files), generator=item_generator("subset", seed)).tolist()[:n]
    return [files[i] for i in sorted(order)]


def _stack(files: list[Path], n: int, size: int) -> tuple[torch.Tensor, list[int]]:
    """The first ``n`` readable ``files`` centre-cropped to ``size`` (uint8 ``[n, 3, size, size]``;
    unreadable ones are skipped) and their indices in ``files``."""
    images, used = [], []
    for i, path in enumerate(files):
        if len(images) == n:
            break
        try:
            img = open_rgb(path)
        except GanforgeError:
            continue
        images.append(to_uint8_tensor(resize_crop(img, size, size, "center", None, False)))
        used.append(i)
    return (torch.stack(images) if images else torch.zeros(0, 3, size, size, dtype=torch.uint8)), used
