"""``example-pairs``: aligned image pairs, ``A/name.ext`` with ``B/name.ext``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
from PIL import Image
from torch.utils.data import Dataset

from ganforge import GanforgeError, Range
from ganforge.data import item_generator, list_images, open_rgb, to_uint8_tensor


class PairedFolders(Dataset):
    """Aligned pairs from two folders matched by file name; the same crop and flip for both."""

    yields = {"A": "uint8 [3, S, S] input image", "B": "uint8 [3, S, S] its paired target"}

    def __init__(
        self,
        root: str = "",
        a: str = "A",
        b: str = "B",
        image_size: Annotated[int, Range(8, 4096, why="memory")] = 256,
        load_size: Annotated[int, Range(8, 4096, why="memory")] = 286,
        flip: bool = True,
        holdout: Annotated[int, Range(0)] = 0,
        seed: int = 0,
    ) -> None:
        folder_a, folder_b = Path(root) / a, Path(root) / b
        files_b = {p.stem: p for p in list_images(folder_b, "[data] b")}
        self.pairs = [(p, files_b[p.stem]) for p in list_images(folder_a, "[data] a") if p.stem in files_b]
        if not self.pairs:
            raise GanforgeError(f"[data]: no file names in {folder_a} match one in {folder_b}")
        self.image_size, self.load_size = image_size, max(load_size, image_size)
        self.flip, self.seed = flip, seed
        self.held = self.pairs[:holdout]
        self.pairs = self.pairs[holdout:] or self.held

    def __len__(self) -> int:
        return len(self.pairs)

    def _pair(self, a: Path, b: Path, g: torch.Generator | None) -> dict[str, torch.Tensor]:
        size, load = self.image_size, self.load_size if g is not None else self.image_size
        top, left = torch.randint(0, load - size + 1, (2,), generator=g).tolist() if g else (0, 0)
        flip = bool(g is not None and self.flip and torch.rand((), generator=g) < 0.5)
        out = {}
        for key, path in (("A", a), ("B", b)):
            img = open_rgb(path).resize((load, load), Image.BICUBIC)
            img = img.crop((left, top, left + size, top + size))
            out[key] = to_uint8_tensor(img.transpose(Image.FLIP_LEFT_RIGHT) if flip else img)
        return out

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        # Order and augmentation are a function of (seed, position): resume stays exact.
        epoch, index = divmod(position, len(self.pairs))
        order = torch.randperm(len(self.pairs), generator=item_generator("order", self.seed, epoch))
        return self._pair(*self.pairs[int(order[index])], item_generator("item", self.seed, position))

    def holdout(self, n: int) -> dict[str, torch.Tensor]:
        items = [self._pair(a, b, None) for a, b in (self.held or self.pairs)[:n]]
        return {k: torch.stack([item[k] for item in items]) for k in ("A", "B")}
