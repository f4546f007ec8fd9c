"""The Python API: ``ganforge.train``, ``ganforge.load``, :class:`Run` and :class:`Model`.

The same work as the command line, for notebooks and scripts (docs/python.md)::

    run = ganforge.train("recipe.toml", overrides=[...], device="cpu")
    model = ganforge.load(run.checkpoint)          # a run, a checkpoint or an exported file
    anime = model.translate(Image.open("selfie.jpg"))

Every error a user can cause is a :class:`ganforge.GanforgeError` with a one-line message.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganforge.errors import GanforgeError

if TYPE_CHECKING:
    import torch
    from PIL import Image

PathLike = str | os.PathLike[str]


def _registry() -> Any:
    from ganforge.plugins import get_registry, warn_failures

    warn_failures()
    return get_registry()


class Run:
    """A run folder: its checkpoints, logged metrics and resolved recipe.

    ``Run(path)`` opens an existing folder; :func:`train` returns one, with ``summary`` set to
    what the training did (``step``, ``epoch``, ``seconds``, ``stopped``, ``steps_run``).
    """

    def __init__(self, path: PathLike, summary: dict[str, Any] | None = None) -> None:
        self.dir = Path(path)
        if not self.dir.is_dir():
            raise GanforgeError(f"run folder {self.dir} not found")
        self.summary = summary or {}

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, step={self.step})"

    @property
    def checkpoints(self) -> list[Path]:
        """The step checkpoints kept in ``checkpoints/``, oldest first."""
        from ganforge import checkpoint as ckpt

        return ckpt.CheckpointDir(self.dir / "checkpoints").steps()

    @property
    def checkpoint(self) -> Path:
        """The latest checkpoint (what ``ganforge.load(run.dir)`` would load)."""
        from ganforge import checkpoint as ckpt

        return ckpt.resolve(self.dir)

    @property
    def step(self) -> int:
        """The step of the latest checkpoint (0 before the first one)."""
        from ganforge import checkpoint as ckpt

        latest = ckpt.CheckpointDir(self.dir / "checkpoints").latest()
        return int(ckpt.read_meta(latest).get("step", 0)) if latest is not None else 0

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl``: one dict per log step (``step``, losses, ``lr_*``, ...)."""
        from ganforge_plugins.apps.report.report import read_records

        return read_records(self.dir / "metrics.jsonl")

    @property
    def recipe(self) -> dict[str, Any]:
        """The resolved recipe the run trained with (every default filled in)."""
        import tomllib

        path = self.dir / "recipe.resolved.toml"
        if not path.is_file():
            raise GanforgeError(f"{self.dir} has no recipe.resolved.toml")
        return tomllib.loads(path.read_text(encoding="utf-8"))

    def load(self, device: str = "auto") -> Model:
        """The latest checkpoint as a :class:`Model`."""
        return load(self.dir, device=device)


def train(
    recipe: PathLike | dict[str, Any],
    overrides: Iterable[str] = (),
    out: PathLike | None = None,
    device: str | None = None,
    resume: PathLike | None = None,
) -> Run:
    """Train ``recipe`` (a TOML file or a recipe dict) into ``out`` and return the :class:`Run`.

    ``overrides`` are ``--set`` items (``"train.max_steps=100"``); ``device`` is ``cpu``,
    ``cuda`` or ``auto`` (default: the recipe's ``train.device``); ``resume`` continues a run
    (its folder or a checkpoint; ``recipe`` may then be None). ``out`` defaults to
    ``runs/<recipe name>-<time>``, or the resumed run's folder.
    """
    from ganforge import checkpoint as ckpt
    from ganforge.recipe import Recipe
    from ganforge.trainer import Trainer

    items = list(overrides)
    if isinstance(overrides, str):
        raise GanforgeError("overrides is a list of 'section.key=value' strings, not one string")
    registry = _registry()
    if resume is not None:
        from ganforge.safety import resume_run_dir

        file = ckpt.resolve(resume)
        source = Recipe.from_saved(ckpt.read_run_meta(file)["recipe"], f"{file} (saved recipe)", items)
        # never into another run, nor over this run's later checkpoints
        run_dir = resume_run_dir(file, Path(out) if out else None, flag="out=")
    elif recipe is None:
        raise GanforgeError("train() needs a recipe, or resume=RUN_DIR")
    else:
        if isinstance(recipe, dict):
            source = Recipe.from_saved(recipe, "<recipe dict>", items)
            stem = "run"
        else:
            source = Recipe.load(recipe, items)
            stem = Path(recipe).stem
        run_dir = Path(out) if out else Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        if ckpt.CheckpointDir(run_dir / "checkpoints").steps():
            raise GanforgeError(
                f"{run_dir} already holds a run's checkpoints; continue it with resume={str(run_dir)!r}, "
                "or choose another out"
            )
        from ganforge.safety import run_contents

        if run_contents(run_dir):  # a run that never wrote a checkpoint is still not overwritten
            raise GanforgeError(
                f"{run_dir} already holds a run ({', '.join(run_contents(run_dir))}); choose another out"
            )
    if device:
        source.set(f"train.device={json.dumps(device)}")
    trainer = Trainer(source.resolve(registry), run_dir, registry)
    if resume is not None:
        trainer.resume(resume)
    summary = trainer.fit() if trainer.step < trainer.total_steps else {"step": trainer.step, "steps_run": 0}
    return Run(run_dir, summary)


class Model:
    """A trained model for inference, from a run, a checkpoint or an exported file.

    ``directions`` lists what it translates (empty for a generator), ``generates`` says whether
    it samples from noise, ``image_size`` is its training size. ``objective`` is the underlying
    objective (or :class:`ganforge_plugins.apps.export.export.ExportedModel`) for anything else.
    """

    def __init__(self, objective: Any, meta: dict[str, Any], file: Path) -> None:
        from ganforge.inference import image_size

        self.objective = objective
        self.meta = meta
        self.file = file
        self.image_size = image_size(meta)

    def __repr__(self) -> str:
        what = f"directions={self.directions}" if self.directions else "generates=True"
        return f"Model({self.objective.name!r}, {what}, file={str(self.file)!r})"

    @property
    def name(self) -> str:
        """The objective's registry name."""
        return self.objective.name

    @property
    def directions(self) -> list[str]:
        return list(self.objective.directions)

    @property
    def generates(self) -> bool:
        return bool(self.objective.generates)

    @property
    def device(self) -> torch.device:
        return self.objective.runtime.device

    def translate(
        self,
        images: Image.Image | torch.Tensor | PathLike | Sequence[Image.Image] | Sequence[PathLike],
        direction: str | None = None,
        out: PathLike | None = None,
        size: int | None = None,
    ) -> Any:
        """Translate images; what comes back matches what went in.

        - a PIL image (or a list of them): PIL images of the same size. Like ``ganforge
          translate``, the model sees it at ``size`` square (default: the training size; 0: the
          image's own size rounded down to the network's multiple);
        - a tensor ``[3, H, W]`` or ``[N, 3, H, W]``, uint8 or float in [-1, 1]: a tensor of the
          same shape and kind, on the CPU, translated at its own size (a multiple of
          ``size_multiple``);
        - a file or folder path (or a list of them) with ``out``: PNGs written into ``out``,
          whose path comes back.

        ``direction`` defaults to the first one the model translates.
        """
        import torch
        from PIL import Image

        direction = self.objective.direction(direction)
        if isinstance(images, Image.Image):
            return self._translate_pil([images], direction, size)[0]
        if isinstance(images, torch.Tensor):
            return self._translate_tensor(images, direction)
        if isinstance(images, str | os.PathLike):
            images = [images]
        items = list(images)
        if items and all(isinstance(i, Image.Image) for i in items):
            return self._translate_pil(items, direction, size)
        if not items or not all(isinstance(i, str | os.PathLike) for i in items):
            raise GanforgeError("translate() takes a PIL image, a tensor, or file/folder paths (with out=)")
        if out is None:
            raise GanforgeError("translate() of files or folders needs out=FOLDER for the results")
        return self._translate_files([str(i) for i in items], direction, Path(out), size)

    def _translate_pil(
        self, images: list[Image.Image], direction: str, size: int | None
    ) -> list[Image.Image]:
        from PIL import Image

        from ganforge.translate import translate_image

        side = self.image_size if size is None else size
        results = []
        for img in images:
            rgb = img.convert("RGB")
            y = translate_image(self.objective, rgb, direction, side)
            results.append(y if y.size == rgb.size else y.resize(rgb.size, Image.BICUBIC))
        return results

    def _translate_tensor(self, images: torch.Tensor, direction: str) -> torch.Tensor:
        import torch

        single = images.dim() == 3
        x = images.unsqueeze(0) if single else images
        if x.dim() != 4 or x.shape[1] != 3:
            raise GanforgeError(
                f"translate() takes [3, H, W] or [N, 3, H, W] images, got {list(images.shape)}"
            )
        m = self.objective.size_multiple(direction)
        if x.shape[2] % m or x.shape[3] % m:
            raise GanforgeError(
                f"translate(): sides must be multiples of {m} for this network, got {x.shape[2]}x{x.shape[3]}"
            )
        uint8 = x.dtype == torch.uint8
        runtime = self.objective.runtime
        y = self.objective.translate(runtime.to_input(x) if uint8 else x.to(runtime.device), direction).cpu()
        if uint8:
            y = y.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
        return y[0] if single else y

    def _translate_files(self, inputs: list[str], direction: str, out: Path, size: int | None) -> Path:
        from ganforge.translate import translate_files

        failures = translate_files(
            str(self.file), inputs, out, _registry(), direction, str(self.device), size=size
        )
        if failures:
            raise GanforgeError(f"{len(failures)} image(s) could not be translated, e.g. {failures[0]}")
        return out

    def sample(self, n: int = 1, seed: int | None = None) -> list[Image.Image]:
        """``n`` images from noise (a generator); a ``seed`` gives ``ganforge sample --seed``'s images."""
        import torch

        from ganforge.translate import _to_pil

        if not self.generates:
            raise GanforgeError(f"model '{self.name}' does not generate from noise (use translate)")
        if n < 1:
            raise GanforgeError(f"sample(n): n must be at least 1, got {n}")
        g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**63)
        z = self.objective.noise(n, g).cpu()
        images = torch.cat([self.objective.generate(chunk) for chunk in z.split(256)])
        return [_to_pil(img) for img in images]

    def export(
        self,
        out: PathLike,
        format: str = "safetensors",
        direction: str | Iterable[str] | None = None,
        dtype: str = "fp32",
        force: bool = False,
    ) -> Path:
        """Write the inference network(s) to ``out`` (``ganforge export``); returns the path."""
        from ganforge_plugins.apps.export.export import export_checkpoint

        directions = [direction] if isinstance(direction, str) else direction
        path, _ = export_checkpoint(
            self.file, out, _registry(), format=format, directions=directions, dtype=dtype, force=force
        )
        return path


def load(path: PathLike | Run, device: str = "auto") -> Model:
    """A :class:`Model` from a run folder (its latest checkpoint), a checkpoint or an exported file."""
    from ganforge.inference import load_objective

    if isinstance(path, Run):
        path = path.dir
    objective, meta, file = load_objective(path, _registry(), device)
    return Model(objective, meta, file)


def convert_file(
    file: PathLike,
    source: str,
    out: PathLike,
    direction: str | None = None,
    image_size: int | None = None,
    options: Iterable[str] = (),
    force: bool = False,
) -> Path:
    """``ganforge convert``: a reference project's generator file (``source`` names a converter,
    see ``ganforge list converters``) into an exported file; returns its path."""
    from ganforge_plugins.apps.export.convert import convert_file as convert

    path, _ = convert(
        file,
        source,
        out,
        _registry(),
        direction=direction,
        image_size=image_size,
        overrides=list(options),
        force=force,
    )
    return path
