"""``ganforge demo``: a local web page (Gradio) to try a trained checkpoint.

Translation checkpoints: upload a photo (or take one with the webcam), see the translation
beside it at the photo's resolution, switch direction and compositing, download the result.
Generator checkpoints: a seed and a count give a grid. The model is loaded once and requests run
one at a time (a queue), so a second visitor waits instead of doubling the memory.

:class:`DemoModel` holds everything except the page, so it works (and is tested) without
Gradio; :func:`build_demo` adds the page. Gradio is imported only there.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import time
import uuid
import warnings
import weakref
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.utils import make_grid

from ganforge import __version__
from ganforge.data import IMAGE_EXTENSIONS, open_rgb
from ganforge.errors import GanforgeError
from ganforge.model import Model
from ganforge.registry import Registry
from ganforge.safety import describe_os_error
from ganforge.translate import translate_image
from ganforge_plugins.apps.composite.composite import build_compositor, recipe_compositor

MAX_UPLOAD = "200mb"  # Gradio refuses larger uploads before they reach the model
NO_COMPOSITE = "none"
ALL_CLASSES = "every class"  # the class picker's first choice: the classes in turn
MAX_EXAMPLES = 4
MAX_GRID = 64
# Result files (offered for download) are kept by age, within a total size. Gradio copies each
# into its cache as the request finishes and serves that copy for CACHE_AGE_S (delete_cache
# below); ours is never needed longer, and is never deleted younger than RESULT_MIN_AGE_S, so
# a finished request's file is always there to be copied and fetched.
CACHE_AGE_S = 3600
RESULT_MIN_AGE_S = 600.0
RESULT_MAX_BYTES = 1 << 30  # past it the oldest results over RESULT_MIN_AGE_S go; if none, requests wait


def decoder_limit() -> int | None:
    """The pixel limit of ganforge's decoder (:func:`ganforge.data.open_rgb`, which ``translate``,
    datasets and eval use): Pillow's ``MAX_IMAGE_PIXELS``, read when called; None if disabled."""
    limit = Image.MAX_IMAGE_PIXELS
    return int(limit) if limit else None


def pixel_limit(max_pixels: int | None = None) -> int:
    """The demo's limit: the decoder's, or ``max_pixels`` below it (it can only lower the limit)."""
    limit = decoder_limit()
    if max_pixels is None:
        if limit is None:
            raise GanforgeError("PIL.Image.MAX_IMAGE_PIXELS is disabled: give the demo --max-pixels")
        return limit
    if max_pixels < 1:
        raise GanforgeError(f"--max-pixels must be >= 1, got {max_pixels}")
    if limit is not None and max_pixels > limit:
        raise GanforgeError(
            f"--max-pixels {max_pixels:,} is above the limit of ganforge's decoder ({limit:,} pixels, "
            "PIL.Image.MAX_IMAGE_PIXELS, which `ganforge translate` uses too); it can only lower it"
        )
    return max_pixels


def _megapixels(n: int) -> str:
    if n < 100_000:
        return f"{n} pixels"
    return f"{n / 1e6:.0f} megapixels" if n >= 1e7 else f"{n / 1e6:.1f} megapixels"


def open_upload(path: str | os.PathLike[str], max_pixels: int | None = None) -> Image.Image:
    """Decode an uploaded file as ``translate`` does, or raise a one-line GanforgeError.

    The size is checked from the header, before any pixel is decoded, against the decoder's
    limit (``max_pixels`` may lower it): an image over it (a decompression bomb included) is
    refused without using its memory. The pixels are then decoded by
    :func:`ganforge.data.open_rgb` (EXIF rotation, 16-bit scaling), the decoder of ``translate``.
    """
    name = Path(path).name
    limit = pixel_limit(max_pixels)
    try:
        with Image.open(path) as img:  # the header only
            width, height = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # the warning, if made an error
        raise GanforgeError(
            f"{name} declares more than {_megapixels(limit)} (a decompression bomb?); refused"
        ) from None
    except UnidentifiedImageError:
        raise GanforgeError(f"{name} is not an image Pillow can read (JPEG, PNG, WebP, ...)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or corrupt data
        raise GanforgeError(f"{name} is truncated or damaged ({' '.join(str(exc).split())})") from None
    if width * height > limit:
        raise GanforgeError(
            f"{name} is {width} x {height} = {_megapixels(width * height)}; this demo takes at most "
            f"{_megapixels(limit)} (as `ganforge translate` does; ganforge demo --max-pixels lowers it)"
        )
    try:
        return open_rgb(path)
    except GanforgeError as exc:  # "PATH: not a readable image (...)": the server's path is no use here
        detail = str(exc).removeprefix(f"{path}: ").removeprefix("not a readable image ")
        raise GanforgeError(f"{name} is truncated or damaged {detail}") from None


class DemoModel:
    """A checkpoint loaded once, with the operations the demo page calls."""

    def __init__(
        self,
        checkpoint: str | os.PathLike[str],
        registry: Registry,
        device: str = "auto",
        max_pixels: int | None = None,
    ) -> None:
        self.max_pixels = pixel_limit(max_pixels)  # the decoder's limit, or lower: checked first
        self.model = Model.load(checkpoint, device, registry=registry)
        self.file = self.model.file
        self.registry = registry
        self.compositor_table = recipe_compositor(str(checkpoint))
        self.size = self.model.image_size
        self.directions: tuple[str, ...] = tuple(self.model.directions)
        self.translates, self.generates = bool(self.directions), self.model.generates
        self.classes = list(self.model.classes)
        if not (self.translates or self.generates):
            raise GanforgeError(f"{self.file}: model '{self.model.name}' neither translates nor generates")
        self.composites = (NO_COMPOSITE, *registry.names("mask_provider"))
        self._providers: dict[str, Any] = {}  # mask providers may load a network: once each
        self._out = Path(tempfile.mkdtemp(prefix="ganforge-demo-"))  # results offered for download
        self._results_lock = threading.Lock()  # two events (click, change) may finish at once
        weakref.finalize(self, shutil.rmtree, self._out, True)

    @property
    def title(self) -> str:
        """What the model does, from its card (not the recipe's description, which may not say
        what this run did): ``cyclegan: A -> B, B -> A at 32 px``."""
        m = self.model
        if self.translates:
            what = ", ".join(f"{d.source} -> {d.target}" for d in m.directions.values())
        else:
            what = f"samples of {len(self.classes)} classes" if self.classes else "samples from noise"
        return f"{m.name}: {what} at {self.size} px ({self.file.name})"

    def direction_label(self, direction: str) -> str:
        """A direction as a person reads it: ``A -> B`` (the domains), not ``a2b``."""
        d = self.model.directions[direction]
        return f"{d.source} -> {d.target}"

    def _result_file(self, image: Image.Image, stem: str) -> Path:
        """The full-resolution PNG offered for download, in a folder of its own (a clean name).

        Results go by age (see RESULT_MIN_AGE_S), never by count: under many concurrent
        requests a finished request's file stays until it has been copied and fetched.
        """
        with self._results_lock:
            self._prune_results(time.time())
            path = self._out / "results" / uuid.uuid4().hex[:8] / f"{stem}.png"
            path.parent.mkdir(parents=True)
            image.save(path, compress_level=1)
        return path

    def _prune_results(self, now: float) -> None:
        """Delete results older than CACHE_AGE_S, then the oldest over RESULT_MIN_AGE_S while the
        total passes RESULT_MAX_BYTES; if it still does, refuse the request (one line)."""
        entries = []
        for folder in (self._out / "results").glob("*"):
            files = [f.stat() for f in folder.iterdir()]
            newest = max((st.st_mtime for st in files), default=folder.stat().st_mtime)
            entries.append((newest, sum(st.st_size for st in files), folder))
        total = sum(size for _, size, _ in entries)
        for newest, size, folder in sorted(entries):
            age = now - newest
            if age > CACHE_AGE_S or (total > RESULT_MAX_BYTES and age > RESULT_MIN_AGE_S):
                shutil.rmtree(folder, ignore_errors=True)
                total -= size
        if total > RESULT_MAX_BYTES:
            raise GanforgeError(
                f"the demo holds {total / 1e6:,.0f} MB of results from the last {RESULT_MIN_AGE_S / 60:.0f} "
                f"minutes (at most {RESULT_MAX_BYTES / 1e6:,.0f} MB): try again in a few minutes"
            )

    def _model(self, direction: str) -> Any:
        return lambda img: translate_image(self.model, img, direction, self.size)

    def translate(
        self, path: str | os.PathLike[str], direction: str, composite: str = NO_COMPOSITE, feather: int = 15
    ) -> tuple[Image.Image, Path, list[str]]:
        """(result at the photo's size, its PNG file, warnings such as 'no face found')."""
        if not self.translates:
            raise GanforgeError(f"model '{self.model.name}' does not translate images")
        if direction not in self.directions:
            raise GanforgeError(f"direction must be one of {', '.join(self.directions)}, got {direction!r}")
        img = open_upload(path, self.max_pixels)
        model = self._model(direction)
        notes: list[str] = []
        if composite == NO_COMPOSITE:
            result = model(img)
            if result.size != img.size:
                result = result.resize(img.size, Image.BICUBIC)
        else:
            if composite not in self.composites:
                raise GanforgeError(
                    f"unknown compositing {composite!r} (one of {', '.join(self.composites)})"
                )
            compositor = build_compositor(composite, int(feather), self.compositor_table, self.registry)
            if composite not in self._providers:
                self._providers[composite] = compositor.mask_provider  # builds it: may need an extra
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result, _ = compositor.composite(img, model, self._providers[composite], name="the photo")
            notes = [" ".join(str(w.message).split()) for w in caught]
        return result, self._result_file(result, f"{Path(path).stem}-{direction}"), notes

    def generate(self, seed: int, count: int, cls: str | int | None = None) -> tuple[Image.Image, Path]:
        """A grid of ``count`` samples from noise seeded by ``seed`` (as ``ganforge sample --seed``),
        of class ``cls`` for a class-conditional model."""
        if not self.generates:
            raise GanforgeError(f"model '{self.model.name}' does not generate from noise")
        count = max(1, min(MAX_GRID, int(count)))
        g = torch.Generator().manual_seed(int(seed))
        with torch.inference_mode():
            z = self.model.noise(count, g)
            labels = self.model.labels(cls, count)
            images = self.model.generate(z, labels).clamp(-1, 1).add(1).div(2)
        grid = make_grid(images.cpu(), nrow=max(1, math.ceil(math.sqrt(count))), padding=2, pad_value=1.0)
        array = grid.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        image = Image.fromarray(array)
        return image, self._result_file(image, f"samples-seed{int(seed)}")

    def sample_examples(self) -> list[Path]:
        """Held-out inputs cut from the run's newest sample grid (the samples callback's layout).

        Each row holds, per declared direction, the source image, its translation and (with an
        inverse direction) the reconstruction, as tiles of the training size with 2 px padding;
        any other layout gives no examples.
        """
        grid_file = self.file.parent.parent / "samples" / "latest.png"
        if not self.translates or not grid_file.is_file():
            return []
        s = self.size + 2
        starts, x = [], 2
        for d in self.model.directions.values():
            starts.append((d.source, x))
            x += (3 if d.inverse else 2) * s
        with Image.open(grid_file) as grid:
            grid.load()
            if grid.width != x or (grid.height - 2) % s:
                return []
            rows = min((grid.height - 2) // s, MAX_EXAMPLES // max(1, len(starts)))
            tiles = {
                f"{domain}-{r}": grid.crop((x0, 2 + r * s, x0 + self.size, 2 + r * s + self.size)).convert(
                    "RGB"
                )
                for domain, x0 in starts
                for r in range(rows)
            }
        folder = self._out / "examples"
        folder.mkdir(exist_ok=True)
        for name, tile in tiles.items():
            tile.save(folder / f"{name}.png")
        return [folder / f"{name}.png" for name in tiles]


def example_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The first few images of an ``--examples`` folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GanforgeError(f"--examples: folder {folder} not found")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise GanforgeError(f"--examples: no images in {folder}")
    return files[:MAX_EXAMPLES]


def _gradio() -> Any:
    """Import Gradio with its usage analytics off (set before the import: it is read then)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import gradio
    except ImportError:
        raise GanforgeError("ganforge demo needs Gradio: pip install 'ganforge[demo]'") from None
    return gradio


def _upload_path(payload: Any) -> str | None:
    """The server-side file of an image input (the handlers take raw payloads: ``preprocess=False``)."""
    if payload is None:
        return None
    path = payload.get("path") if isinstance(payload, dict) else getattr(payload, "path", payload)
    return str(path) if path else None


def build_demo(model: DemoModel, examples: list[Path] | None = None) -> Any:
    """The page (a ``gradio.Blocks``) for a loaded model; call ``launch`` to serve it."""
    gr = _gradio()

    # Both outputs are the result's PNG file, never a PIL image: Gradio writes a PIL output into
    # its cache under a content hash, in place, so two requests with the same result (the same
    # photo twice, or every visitor's first grid) rewrite a file another client is fetching
    # (RemoteProtocolError). A file is copied in atomically, and an existing copy is reused.
    def run_translate(photo: Any, direction: str, composite: str, feather: float) -> Any:
        path = _upload_path(photo)
        if path is None:
            return None, gr.update(value=None, visible=False)
        try:
            _, file, notes = model.translate(path, direction, composite, int(feather))
        except GanforgeError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        for note in notes:
            gr.Warning(note)
        return str(file), gr.update(value=str(file), visible=True)

    def run_generate(seed: float, count: float, cls: str | None = None) -> Any:
        chosen = None if cls in (None, ALL_CLASSES) else cls
        try:
            _, file = model.generate(int(seed), int(count), chosen)
        except GanforgeError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        return str(file), gr.update(value=str(file), visible=True)

    with gr.Blocks(
        title=f"ganforge demo: {model.title}",
        analytics_enabled=False,
        delete_cache=(CACHE_AGE_S, CACHE_AGE_S),
    ) as demo:
        gr.Markdown(f"## {model.title}\n`{model.file.name}`, ganforge {__version__}")
        if model.translates:
            with gr.Row():
                photo = gr.Image(
                    label="Photo", type="filepath", sources=["upload", "webcam", "clipboard"], elem_id="photo"
                )
                output = gr.Image(
                    label="Result",
                    type="filepath",
                    format="png",
                    interactive=False,
                    buttons=["download", "fullscreen"],  # no "share" (to a hub)
                    elem_id="result",
                )
            with gr.Row():
                direction = gr.Radio(
                    [(model.direction_label(d), d) for d in model.directions],  # the domains, not a2b
                    value=model.directions[0],
                    label="Direction",
                    visible=len(model.directions) > 1,
                )
                composite = gr.Dropdown(
                    list(model.composites),
                    value=NO_COMPOSITE,
                    label="Compositing (paste the result into the photo through a mask)",
                )
                feather = gr.Slider(0, 100, value=15, step=1, label="Feather (px)")
            with gr.Row():
                button = gr.Button("Translate", variant="primary")
                download = gr.DownloadButton("Download full resolution", visible=False, elem_id="download")
            inputs, outputs = [photo, direction, composite, feather], [output, download]
            # preprocess=False: the handler decodes the upload itself, with the pixel limit, so
            # a bad file gets its own message instead of failing inside the component.
            button.click(run_translate, inputs, outputs, api_name="translate", preprocess=False)
            gr.on(  # a new photo (upload, webcam, example) or setting runs it again at once
                [photo.change, direction.change, composite.change, feather.release],
                run_translate,
                inputs,
                outputs,
                api_name=False,
                preprocess=False,
            )
            if examples:
                gr.Examples([[str(p)] for p in examples], inputs=[photo], label="Examples")
            gr.Markdown(
                f"Photos up to {_megapixels(model.max_pixels)}. The model sees {model.size} px; the "
                "result is resized back to the photo's size."
            )
        if model.generates:
            with gr.Row():
                seed = gr.Slider(0, 10_000, value=0, step=1, label="Seed")
                count = gr.Slider(1, MAX_GRID, value=16, step=1, label="Images")
                picker = gr.Dropdown(
                    [ALL_CLASSES, *model.classes],
                    value=ALL_CLASSES,
                    label="Class",
                    visible=bool(model.classes),
                    elem_id="class",
                )
            generate = gr.Button("Generate", variant="primary")
            grid = gr.Image(
                label="Samples",
                type="filepath",
                format="png",
                interactive=False,
                buttons=["fullscreen"],
                elem_id="grid",
            )
            grid_download = gr.DownloadButton("Download grid", visible=False)
            generate.click(run_generate, [seed, count, picker], [grid, grid_download], api_name="generate")
            demo.load(run_generate, [seed, count, picker], [grid, grid_download], api_name=False)
    demo.queue(default_concurrency_limit=1, max_size=32)  # one request at a time, on one model
    return demo


def launch(demo: Any, host: str | None = "127.0.0.1", port: int | None = 7860, block: bool = True) -> Any:
    """Serve the page locally: no share link, no analytics; ``host=None`` lets GRADIO_SERVER_NAME decide."""
    gr = _gradio()
    try:
        return demo.launch(
            server_name=host,
            server_port=port,
            share=False,
            inbrowser=False,
            show_error=True,
            quiet=True,
            ssr_mode=False,  # the plain page: no Node.js server
            max_file_size=MAX_UPLOAD,
            prevent_thread_lock=not block,
            theme=gr.themes.Default(),
        )
    except OSError as exc:  # the port is taken
        raise GanforgeError(f"cannot serve on {host}:{port}: {' '.join(str(exc).split())}") from None


SPACE_APP = '''"""A Hugging Face Space for a ganforge model (written by `ganforge demo --export-space`)."""

from pathlib import Path

from ganforge_plugins.apps.demo.demo import DemoModel, build_demo, example_files, launch
from ganforge.plugins import get_registry

HERE = Path(__file__).parent
model = DemoModel(HERE / "{model}", get_registry(), device="auto", max_pixels={max_pixels})
examples = example_files(HERE / "examples") if (HERE / "examples").is_dir() else None
demo = build_demo(model, examples)

if __name__ == "__main__":
    launch(demo, host=None, port=None)  # a Space sets GRADIO_SERVER_NAME and the port
'''

SPACE_README = """---
title: {title}
sdk: gradio
sdk_version: {gradio}
app_file: app.py
---

{description}

A ganforge model (`{model}`: its inference networks) served by ganforge's demo app;
`python app.py` runs it locally.
"""


def export_space(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    registry: Registry,
    examples: list[Path] | None = None,
    max_pixels: int | None = None,
    requirement: str | None = None,
) -> list[Path]:
    """Write ``app.py``, ``requirements.txt``, ``README.md``, the model and examples to ``out``.

    The model is its inference networks and card (an export of the checkpoint), loaded with
    ganforge in ``app.py``; a failed or killed export leaves no partial folder. ``requirement`` is the
    pip line that installs ganforge in the Space (default ``ganforge[demo]==VERSION``; give a
    ``git+https://...`` URL or a wheel when ganforge is not on the package index).
    """
    model = DemoModel(checkpoint, registry, device="cpu", max_pixels=max_pixels)  # loads: it works
    if examples is None:
        examples = model.sample_examples()
    folder = Path(out)
    if folder.exists() and any(folder.iterdir()):
        raise GanforgeError(f"--export-space: {folder} is not empty")
    # Written into a hidden sibling, then renamed: a killed or failed export leaves no partial Space.
    staging = folder.parent / f".{folder.name}.ganforge-space"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        model_name = "model.safetensors"
        model.model.save(staging / model_name)  # the inference networks and their card only
        app, requirements, readme = staging / "app.py", staging / "requirements.txt", staging / "README.md"
        app.write_text(SPACE_APP.format(model=model_name, max_pixels=max_pixels), encoding="utf-8")
        # The Space's gradio comes from README's sdk_version; this line brings ganforge (and torch).
        requirements.write_text(f"{requirement or f'ganforge[demo]=={__version__}'}\n", encoding="utf-8")
        title = " ".join("".join(c if c.isalnum() or c in "-_" else " " for c in model.title).split())[:60]
        readme.write_text(
            SPACE_README.format(
                title=title or "ganforge",
                gradio=_gradio().__version__,
                description=model.title,
                model=model_name,
            ),
            encoding="utf-8",
        )
        names = ["app.py", "requirements.txt", "README.md", model_name]
        if examples:
            (staging / "examples").mkdir()
            for path in examples:
                shutil.copyfile(path, staging / "examples" / path.name)
                names.append(f"examples/{path.name}")
        if folder.exists():
            folder.rmdir()  # empty: checked above
        os.replace(staging, folder)
    except OSError as exc:  # a full disk, a read-only folder: named as the Space's own path
        reason = describe_os_error(exc).replace(str(staging), str(folder))
        raise GanforgeError(f"--export-space {folder}: {reason}; nothing was written") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    written = [folder / name for name in names]
    return written
