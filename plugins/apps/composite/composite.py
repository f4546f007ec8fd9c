"""The ``mask-paste`` compositor: paste a stylized image back into the photo through a mask.

``composite(original, translate)`` runs the mask provider on the photo, runs ``translate`` (the
model: PIL image in, stylized PIL image out, any size) on the photo or on a face crop, resizes the
result back, feathers the mask and blends ``mask * stylized + (1 - mask) * original`` at the
photo's resolution. Wherever the feathered mask is exactly 0 the output pixel is the original's,
bit for bit. A photo with no person or face comes back unchanged, with a :class:`NoMaskWarning`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge import Range
from ganforge.errors import GanforgeError
from ganforge.safety import png_info

from .masks import resize_mask

Translate = Callable[[Image.Image], Image.Image]
MaskProvider = Callable[[Image.Image], "torch.Tensor | None"]

# Feathered mask values below this are set to exactly 0: they could not change a rounded 8-bit
# pixel anyway (255 * 1e-4 < 0.5), and it keeps convolution round-off out of the background.
_ZERO = 1e-4


class NoMaskWarning(UserWarning):
    """A photo had no person or face; it was returned unchanged."""


def feather_mask(mask: torch.Tensor, px: int) -> torch.Tensor:
    """Gaussian-feather a ``[H, W]`` mask over ``px`` pixels (sigma ``px / 3``, kernel radius ``px``).

    ``px = 0`` returns a copy. The result is float32 in [0, 1], and exactly 0 at every pixel farther
    than ``px`` (in x or y) from a nonzero input pixel, so the background outside the band is exact.
    """
    mask = torch.as_tensor(mask).detach().to("cpu", torch.float32)
    if mask.ndim != 2:
        raise ValueError(f"feather_mask expects a [H, W] mask, got shape {tuple(mask.shape)}")
    if px <= 0 or mask.numel() == 0:
        return mask.clamp(0.0, 1.0).clone()
    sigma = px / 3.0
    offsets = torch.arange(-px, px + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(torch.float32)
    x = mask.clamp(0.0, 1.0)[None, None]
    # Replicate padding: a mask touching the border (a body at the bottom) stays solid there.
    x = F.pad(x, (px, px, px, px), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    out = x[0, 0].clamp(0.0, 1.0)
    out[out < _ZERO] = 0.0
    out[out > 1.0 - _ZERO] = 1.0
    return out.contiguous()


def blend(original: Image.Image, stylized: Image.Image, mask: torch.Tensor) -> Image.Image:
    """``mask * stylized + (1 - mask) * original`` in float, rounded; exact where mask is 0 or 1."""
    orig = np.asarray(original.convert("RGB"), dtype=np.uint8)
    styl = np.asarray(stylized.convert("RGB"), dtype=np.uint8)
    if orig.shape != styl.shape:
        raise ValueError(f"blend: sizes differ ({original.size} vs {stylized.size})")
    m = mask.detach().cpu().numpy().astype(np.float32)
    if m.shape != orig.shape[:2]:
        raise ValueError(f"blend: mask shape {m.shape} does not match image {orig.shape[:2]}")
    o = orig.astype(np.float32)
    mixed = o + m[..., None] * (styl.astype(np.float32) - o)
    out = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    zero = m <= 0.0
    out[zero] = orig[zero]
    one = m >= 1.0
    out[one] = styl[one]
    return Image.fromarray(out, "RGB")


def mask_image(mask: torch.Tensor | None, size: tuple[int, int] | None = None) -> Image.Image:
    """A mask as an 8-bit grayscale image (for ``--save-mask``); None gives a black image of ``size``."""
    if mask is None:
        if size is None:
            raise ValueError("mask_image needs a size when the mask is None")
        return Image.new("L", size, 0)
    m = mask.detach().cpu().numpy().astype(np.float32)
    return Image.fromarray(np.clip(np.rint(m * 255.0), 0, 255).astype(np.uint8), "L")


def mask_bbox(mask: torch.Tensor, threshold: float = 0.5) -> tuple[int, int, int, int] | None:
    """``(left, top, right, bottom)`` (right/bottom exclusive) of the pixels at or above threshold."""
    on = mask >= threshold
    if not bool(on.any()):
        return None
    rows = torch.nonzero(on.any(dim=1)).flatten()
    cols = torch.nonzero(on.any(dim=0)).flatten()
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def square_crop_box(
    box: tuple[int, int, int, int], margin: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """A square around ``box`` enlarged by ``margin`` per side, shifted (then clipped) into the image."""
    left, top, right, bottom = box
    side = max(right - left, bottom - top) * (1.0 + 2.0 * max(0.0, margin))
    side = int(min(math.ceil(side), width, height)) or 1
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    x0 = int(round(cx - side / 2.0))
    y0 = int(round(cy - side / 2.0))
    x0 = min(max(0, x0), width - side)
    y0 = min(max(0, y0), height - side)
    return x0, y0, x0 + side, y0 + side


def _box_window(height: int, width: int, box: tuple[int, int, int, int], px: int) -> torch.Tensor:
    """1 well inside ``box``, easing to exactly 0 at its edges (not at edges on the image border)."""
    left, top, right, bottom = box
    inset = [
        left + px if left > 0 else 0,
        top + px if top > 0 else 0,
        right - px if right < width else width,
        bottom - px if bottom < height else height,
    ]
    window = torch.zeros(height, width)
    if inset[2] > inset[0] and inset[3] > inset[1]:
        window[inset[1] : inset[3], inset[0] : inset[2]] = 1.0
    window = feather_mask(window, px)
    inside = torch.zeros(height, width)
    inside[top:bottom, left:right] = 1.0
    return window * inside


def _image_name(image: Image.Image, name: str | None) -> str:
    if name:
        return name
    filename = getattr(image, "filename", "") or ""
    return f"'{filename}'" if filename else "the image"


def _mask_registry(name: str) -> Any:
    from ganforge.plugins import get_registry

    return get_registry()  # mask providers come from any plugin, like every component


class MaskCompositor:
    """Paste the stylized photo back onto the original through a feathered person or face mask."""

    def __init__(
        self,
        mask: str = "face-box",
        mask_options: dict | None = None,
        feather: Annotated[
            int, Range(0, 4096, why="memory and time: the mask is padded and blurred that far")
        ] = 15,
        threshold: Annotated[float, Range(0.0, 1.0, max_open=True)] = 0.5,
        face_crop: bool = False,
        crop_margin: Annotated[float, Range(0.0)] = 0.4,
    ) -> None:
        if feather < 0:
            raise GanforgeError(f"compositor 'mask-paste': feather must be >= 0 pixels, got {feather}")
        if not 0.0 <= threshold < 1.0:
            raise GanforgeError(f"compositor 'mask-paste': threshold must be in [0, 1), got {threshold}")
        if crop_margin < 0:
            raise GanforgeError(f"compositor 'mask-paste': crop_margin must be >= 0, got {crop_margin}")
        options = dict(mask_options or {})
        if "name" in options:
            raise GanforgeError(
                "compositor 'mask-paste': name the mask provider with 'mask', not mask_options.name"
            )
        self.mask = mask
        self.mask_options = options
        self.feather = feather
        self.threshold = threshold
        self.face_crop = face_crop
        self.crop_margin = crop_margin
        self._table = {"name": mask, **options}
        _mask_registry(mask).validate("mask_provider", self._table, "compositor 'mask-paste' mask")
        self._provider: MaskProvider | None = None

    @property
    def provider(self) -> MaskProvider:
        """The mask provider named by ``mask``, built on first use."""
        if self._provider is None:
            registry = _mask_registry(self.mask)
            self._provider = registry.build("mask_provider", self._table, "compositor 'mask-paste' mask")
        return self._provider

    mask_provider = provider  # the name ganforge translate uses

    def prepare_mask(self, raw: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The provider's soft mask at the photo's size, thresholded (unless threshold is 0)."""
        mask = resize_mask(raw, height, width)
        if self.threshold > 0:
            return (mask >= self.threshold).float()
        mask = mask.clone()
        mask[mask < 1.0 / 255.0] = 0.0
        return mask

    def composite(
        self,
        original: Image.Image,
        translate: Translate,
        mask_provider: MaskProvider | None = None,
        name: str | None = None,
    ) -> tuple[Image.Image, torch.Tensor | None]:
        """Return the composite at the original's resolution and the feathered mask used.

        With no person or face found, the photo (as RGB) and None come back and a
        :class:`NoMaskWarning` names the image.
        """
        rgb = original if original.mode == "RGB" else original.convert("RGB")
        width, height = rgb.size
        provider = mask_provider if mask_provider is not None else self.provider
        raw = provider(rgb)
        hard = None if raw is None else self.prepare_mask(raw, height, width)
        if hard is None or not bool((hard > 0).any()):
            warnings.warn(
                f"no person or face found in {_image_name(original, name)}; returned unchanged",
                NoMaskWarning,
                stacklevel=2,
            )
            return rgb.copy(), None
        if self.face_crop:
            box = mask_bbox(hard, 0.5) or mask_bbox(hard, 1e-6)
            assert box is not None
            crop_box = square_crop_box(box, self.crop_margin, width, height)
            crop = rgb.crop(crop_box)
            styled_crop = _to_size(translate(crop), crop.size)
            stylized = rgb.copy()
            stylized.paste(styled_crop, crop_box[:2])
            mask = feather_mask(hard, self.feather) * _box_window(height, width, crop_box, self.feather)
        else:
            stylized = _to_size(translate(rgb), (width, height))
            mask = feather_mask(hard, self.feather)
        return blend(rgb, stylized, mask), mask

    __call__ = composite


def _to_size(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise TypeError(f"translate must return a PIL image, got {type(image).__name__}")
    image = image if image.mode == "RGB" else image.convert("RGB")
    if image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    return image


def build_compositor(
    mask: str | None = None,
    feather: int | None = None,
    table: dict | None = None,
    registry: Any = None,
) -> Any:
    """The compositor for ``ganforge translate``: a recipe's ``[compositor]`` table with the
    command line's ``--composite MASK`` and ``--feather PX`` on top.

    Returns None when neither the table nor ``mask`` asks for compositing. ``--composite`` with a
    name that is a compositor (not a mask provider) selects that compositor instead.
    """
    if registry is None:
        from ganforge.plugins import get_registry

        registry = get_registry()
    spec: dict[str, Any] = dict(table or {})
    if not spec and mask is None:
        return None
    spec.setdefault("name", "mask-paste")
    if mask is not None:
        if mask in registry.names("compositor"):
            spec = {"name": mask}
        else:
            spec["mask"] = mask
            if table and table.get("mask", "face-box") != mask:
                spec.pop("mask_options", None)  # options of the recipe's provider do not carry over
    if feather is not None:
        spec["feather"] = feather
    where = "[compositor]" if table else "--composite"
    return registry.build("compositor", spec, where)


def composite_files(
    checkpoint: str,
    inputs: list[str],
    out: Path,
    mask: str | None = None,
    feather: int | None = None,
    save_mask: bool = False,
    direction: str | None = None,
    device: str = "auto",
    size: int | None = None,
) -> list[str]:
    """``ganforge composite``: translate each photo and paste the result back through the
    compositor's mask, one image at a time; returns the inputs that failed (each reported)."""
    import sys
    import warnings

    from ganforge.data import open_rgb
    from ganforge.model import Model
    from ganforge.plugins import get_registry
    from ganforge.translate import check_side, model_size, plan_outputs, side_check, translate_image

    registry = get_registry()
    model = Model.load(checkpoint, device, registry=registry)
    direction = model.direction(direction)
    size = check_side(model, direction, size)
    table = recipe_compositor(checkpoint)
    compositor = build_compositor(mask if mask is not None else None, feather, table, registry)
    if compositor is None:
        compositor = build_compositor("face-box", feather, None, registry)
    files, targets = plan_outputs(inputs, out, masks=save_mask)
    check = side_check(model, direction, size)
    failures: list[str] = []

    def stylise(img: Image.Image) -> Image.Image:
        return translate_image(model, img, direction, size)

    for path in files:
        try:
            if not path.exists():
                raise GanforgeError(f"{path}: no such file")
            img = open_rgb(path)
            shape = model_size(img, size, model.size_multiple(direction))
            problem = check and (check(shape[0]) or check(shape[1]))
            if problem:
                raise GanforgeError(f"{path}: {img.width}x{img.height} px cannot be translated: {problem}")
        except GanforgeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures.append(str(path))
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result, found = compositor.composite(img, stylise, compositor.mask_provider, name=str(path))
        for w in caught:  # e.g. no face found: the photo comes back unchanged
            print(f"warning: {' '.join(str(w.message).split())}", file=sys.stderr)
        target = targets[path]
        result.save(target, pnginfo=png_info("composite"))
        if save_mask and found is not None:
            mask_image(found).save(target.with_name(f"{target.stem}.mask.png"), pnginfo=png_info("composite"))
    done = len(files) - len(failures)
    print(
        f"composited {done} image(s) {direction} into {out}"
        + (f"; {len(failures)} failed" if failures else ""),
        file=sys.stderr,
    )
    return failures


def recipe_compositor(checkpoint: str) -> dict[str, Any] | None:
    """The ``[compositor]`` table of the run's recipe, if it has one."""
    from ganforge import checkpoint as ckpt

    try:
        file = ckpt.resolve(checkpoint)
        recipe = ckpt.read_meta(file).get("recipe") or {}
    except GanforgeError:
        return None
    table = recipe.get("compositor") if isinstance(recipe, dict) else None
    return dict(table) if isinstance(table, dict) else None
