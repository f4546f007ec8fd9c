"""``ganforge translate``: files or folders of any size through a translation :class:`ganforge.Model`."""

from __future__ import annotations

import functools
import os
import sys
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from ganforge.data import expand_inputs, open_rgb, to_uint8_tensor
from ganforge.errors import GanforgeError
from ganforge.safety import ensure_writable_dir, guard_out_folder, guard_targets, png_info

if TYPE_CHECKING:  # ganforge.model imports this module: a run-time import back would be a cycle
    from ganforge.model import Model

_MARK = png_info("translate")  # outputs are marked: a later run may replace them, nothing else
MAX_SIZE = 16384  # a network's activations at this side already take tens of GB


def to_pil(t: torch.Tensor) -> Image.Image:
    """``[3, H, W]`` in [-1, 1] -> an 8-bit RGB image."""
    array = t.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


def model_size(img: Image.Image, size: int, multiple: int = 1) -> tuple[int, int]:
    """The model's input size: ``size`` square, or (0) the image's own, rounded to ``multiple``."""
    if size > 0:
        return size, size
    m = max(1, multiple)
    return max(m, img.width // m * m), max(m, img.height // m * m)


def translate_image(
    model: Model, img: Image.Image, direction: str, size: int, domain: str | int | None = None
) -> Image.Image:
    """One RGB image through ``direction`` at the model's input size (``size`` square, or 0: the
    image's own, rounded to the network's size multiple); the result has that size."""
    shape = model_size(img, size, model.size_multiple(direction))
    x = to_uint8_tensor(img if img.size == shape else img.resize(shape, Image.BICUBIC)).unsqueeze(0)
    with torch.inference_mode():
        return to_pil(model.translate(model.runtime.to_input(x), direction, domain=domain)[0])


def output_names(files: list[Path], out: Path, masks: bool = False) -> dict[Path, Path]:
    """Each input's output file, in input order: ``STEM.png``, then ``STEM-1.png``... for stems
    seen before; with ``masks`` the name ``STEM.mask.png`` is kept free too."""
    used: set[str] = set()
    names: dict[Path, Path] = {}
    for path in files:
        name, i = path.stem, 1
        while name in used or (masks and f"{name}.mask" in used):
            name, i = f"{path.stem}-{i}", i + 1
        used.update([name, f"{name}.mask"] if masks else [name])
        names[path] = out / f"{name}.png"
    return names


def check_side(model: Model, direction: str, size: int | None) -> int:
    """The side the model sees (None: its training size; 0: each image's own), checked against
    the network of ``direction``; a one-line error."""
    size = model.image_size if size is None else size
    if not 0 <= size <= MAX_SIZE:
        raise GanforgeError(
            f"--size must be in [0, {MAX_SIZE}] (0: each image's own size; larger sides need more "
            f"memory than a device has), got {size}"
        )
    problem = model.size_problem(direction, size) if size > 0 else None
    if problem:
        raise GanforgeError(f"--size {size}: {problem}")
    return size


def plan_outputs(inputs: list[str], out: Path, masks: bool = False) -> tuple[list[Path], dict[Path, Path]]:
    """(input files, their output files) once nothing a user has can be overwritten: not an input,
    not a file these commands did not write; ``out`` is writable."""
    files = list(dict.fromkeys(expand_inputs(inputs)))  # a file named twice is translated once
    if not files:
        raise GanforgeError(f"no images found in {', '.join(inputs)}")
    guard_out_folder(out, [Path(i) for i in inputs])
    targets = output_names(files, out, masks)
    mask_files = [t.with_name(f"{t.stem}.mask.png") for t in targets.values()] if masks else []
    guard_targets([*targets.values(), *mask_files], files)
    ensure_writable_dir(out, "--out")
    return files, targets


_Item = tuple[Path, tuple[int, int], np.ndarray]  # (file, original size, decoded uint8 [H, W, 3])


@dataclass
class _Launched:
    """A batch queued on the device: its uint8 NHWC outputs are in ``host`` once ``done`` completed."""

    targets: list[tuple[Path, tuple[int, int]]]  # (file, original size) per output row
    host: torch.Tensor
    done: torch.cuda.Event | None  # None on CPU: ``host`` is ready when the launch returns


def translate_files(
    model: Model,
    inputs: list[str],
    out: Path,
    direction: str | None = None,
    batch_size: int | None = None,
    size: int | None = None,
    compile: bool = False,
    on_batch: Callable[[int], None] | None = None,
    domain: str | int | None = None,
) -> list[str]:
    """Translate every image: decoded and saved in threads, translated in batches of one size on
    the device; returns the inputs that failed (each reported on one line).

    ``batch_size`` unset means 64 on CUDA; on a CPU, 8 images of 64 px down to one of 256 px.
    ``compile`` compiles the generator (a one-off cost of tens of seconds that pays off on large
    folders). ``on_batch(images handed to the writers so far)`` runs after each batch.
    """
    direction = model.direction(direction)
    size = check_side(model, direction, size)
    if domain is not None:
        model.labels(domain, 1, "domain")  # checked before any work
    on_cuda = model.device.type == "cuda"
    if on_cuda:
        torch.backends.cudnn.benchmark = True  # batches repeat a few shapes: autotune once per shape
    model.compile = compile
    if batch_size is None:
        # On a CPU a batch pays only while it fits the caches: one 256 px image at a time is
        # faster than four at once, eight 64 px ones are faster than one by one.
        batch_size = 64 if on_cuda else max(1, min(8, 65536 // (size or model.image_size) ** 2))
    if batch_size < 1:
        raise GanforgeError(f"--batch-size must be >= 1, got {batch_size}")
    files, targets = plan_outputs(inputs, out)
    # Pillow releases the GIL while it decodes, resizes and encodes, so threads keep a GPU busy. On
    # CUDA, batch k+1 is queued on the device (pinned H2D, model, uint8, pinned D2H, an event) before
    # the host waits for batch k and hands it to the writers: at most two batches are in flight.
    runtime = model.runtime
    multiple = model.size_multiple(direction)
    check = side_check(model, direction, size)
    failures: list[str] = []
    buckets: dict[tuple[int, ...], list[_Item]] = {}
    saving: deque[Future[None]] = deque()
    in_flight: deque[_Launched] = deque()
    full_shapes: set[tuple[int, ...]] = set()
    decoding: deque[tuple[Path, Future[Any]]] = deque()  # in input order
    handed = 0

    def launch(items: list[_Item]) -> _Launched:
        """Queue one batch on the device and return without waiting for it."""
        shape = items[0][2].shape
        n = len(items)
        if n == batch_size:
            full_shapes.add(shape)
        # Compiled, a new batch size means another compile (dynamo's guard on the batch size
        # fails): a short batch of a shape that already ran at full size is padded to it instead.
        rows = batch_size if model.compile and shape in full_shapes else n
        # Fresh pinned tensors come from torch's caching host allocator, which reuses a block only
        # once the copies recorded on it have completed and nothing refers to it any more.
        staged = torch.empty((rows, *shape), dtype=torch.uint8, pin_memory=on_cuda)
        np.stack([a for _, _, a in items], out=staged.numpy()[:n])
        staged.numpy()[n:] = 0
        # NHWC uint8 travels as is; NCHW is a (channels_last) view made on the device.
        x = staged.to(runtime.device, non_blocking=True).permute(0, 3, 1, 2)
        y = model.translate(runtime.to_input(x), direction, domain=domain)[:n]
        y = y.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        sources = [(path, original) for path, original, _ in items]
        if not on_cuda:
            return _Launched(sources, y, None)
        host = torch.empty(y.shape, dtype=torch.uint8, pin_memory=True)
        host.copy_(y, non_blocking=True)
        done = torch.cuda.Event(blocking=True)  # waiting on it sleeps instead of spinning a core
        done.record(torch.cuda.current_stream(runtime.device))
        return _Launched(sources, host, done)

    def finish(batch: _Launched) -> None:
        """Wait for a launched batch and hand its images to the writers, in launch order."""
        nonlocal handed
        if batch.done is not None:
            batch.done.synchronize()  # releases the GIL: the I/O threads keep going
        # The arrays are views of ``batch.host``; each keeps that tensor (and so its pinned block) alive
        # until its save has dropped it, so no buffer is overwritten under a writer and no copy is needed.
        for (path, original), array in zip(batch.targets, batch.host.numpy()):
            saving.append(pool.submit(_save, array, original, targets[path]))
        while len(saving) > 4 * batch_size:  # bounds the outputs held in memory
            saving.popleft().result()
        handed += len(batch.targets)
        if on_batch is not None:
            on_batch(handed)

    def run(items: list[_Item]) -> None:
        in_flight.append(launch(items))
        while len(in_flight) > 1:
            finish(in_flight.popleft())

    def collect() -> None:
        """Take the oldest decode: a failed file is reported, an image joins its shape's batch."""
        path, future = decoding.popleft()
        try:
            original, array = future.result()
        except GanforgeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures.append(str(path))
            return
        bucket = buckets.setdefault(array.shape, [])
        bucket.append((path, original, array))
        if len(bucket) >= batch_size:
            run(bucket[:])
            bucket.clear()

    with ThreadPoolExecutor(max(2, min(16, os.cpu_count() or 2)), thread_name_prefix="ganforge-io") as pool:
        try:
            for path in files:
                decoding.append((path, pool.submit(_decode, path, size, multiple, check)))
                if len(decoding) >= 4 * batch_size:  # bounds the decodes in flight
                    collect()
            while decoding:
                collect()
            for items in [b for b in buckets.values() if b]:  # the last, part-full batches
                run(items)
        finally:  # on an error or Ctrl-C too: what was already translated is written
            while in_flight:
                finish(in_flight.popleft())
        while saving:
            saving.popleft().result()
    failed = f"; {len(failures)} failed" if failures else ""
    print(f"translated {len(files) - len(failures)} image(s) {direction} into {out}{failed}", file=sys.stderr)
    return failures


def _decode(
    path: Path, size: int, multiple: int = 1, check: Callable[[int], str | None] | None = None
) -> tuple[tuple[int, int], np.ndarray]:
    """(original size, uint8 [H, W, 3] at the model's input size) for one file; ``check(side)``
    says why the model cannot take a side (native sizes), which skips the file. Numpy and Pillow
    only: torch CPU ops in many threads would each start their own thread pool."""
    if not path.exists():
        raise GanforgeError(f"{path}: no such file")
    img = open_rgb(path)
    shape = model_size(img, size, multiple)
    if check is not None:
        problem = check(shape[0]) or check(shape[1])
        if problem:
            raise GanforgeError(f"{path}: {img.width}x{img.height} px cannot be translated: {problem}")
    return img.size, np.asarray(img if img.size == shape else img.resize(shape, Image.BICUBIC))


def _save(array: np.ndarray, original: tuple[int, int], target: Path) -> None:
    img = Image.fromarray(array)
    img = img if img.size == original else img.resize(original, Image.BICUBIC)
    # lossless either way; level 1 encodes several times faster
    img.save(target, compress_level=1, pnginfo=_MARK)


def side_check(model: Model, direction: str, size: int) -> Callable[[int], str | None] | None:
    """For native sizes (``size`` 0): a cached check of each side against the network."""
    return None if size > 0 else functools.cache(functools.partial(model.size_problem, direction))
