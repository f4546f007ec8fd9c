"""The Python API for training (docs/python.md): ``ganforge.train`` and :class:`Run` (``ganforge.load`` and
:class:`ganforge.Model` are in :mod:`ganforge.model`). A user's error is a one-line ``GanforgeError``."""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganforge.errors import GanforgeError

if TYPE_CHECKING:
    from ganforge.model import Model

PathLike = str | os.PathLike[str]


def read_records(path: Path) -> list[dict[str, Any]]:
    """``metrics.jsonl`` records; unreadable lines (a killed write) and records without a finite
    ``step`` are skipped."""
    records: list[dict[str, Any]] = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            step = record.get("step") if isinstance(record, dict) else None
            if isinstance(step, int | float) and not isinstance(step, bool) and math.isfinite(step):
                records.append(record)
    return records


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
        return read_records(self.dir / "metrics.jsonl")

    @property
    def recipe(self) -> dict[str, Any]:
        """The resolved recipe the run trained with (every default filled in)."""
        path = self.dir / "recipe.resolved.toml"
        if not path.is_file():
            raise GanforgeError(f"{self.dir} has no recipe.resolved.toml")
        return tomllib.loads(path.read_text(encoding="utf-8"))

    def load(self, device: str = "auto") -> Model:
        """The latest checkpoint as a :class:`ganforge.Model`."""
        from ganforge.model import Model

        return Model.load(self.dir, device=device)


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
    from ganforge.plugins import get_registry, warn_failures
    from ganforge.recipe import Recipe
    from ganforge.training.trainer import Trainer

    items = list(overrides)
    if isinstance(overrides, str):
        raise GanforgeError("overrides is a list of 'section.key=value' strings, not one string")
    warn_failures()
    registry = get_registry()
    if resume is not None:
        file = ckpt.resolve(resume)
        source = Recipe.from_saved(ckpt.read_run_meta(file)["recipe"], f"{file} (saved recipe)", items)
        # never into another run, nor over this run's later checkpoints
        run_dir = ckpt.resume_run_dir(file, Path(out) if out else None, flag="out=")
    elif recipe is None:
        raise GanforgeError("train() needs a recipe, or resume=RUN_DIR")
    else:
        if isinstance(recipe, dict):
            source, stem = Recipe.from_saved(recipe, "<recipe dict>", items), "run"
        else:
            source, stem = Recipe.load(recipe, items), Path(recipe).stem
        run_dir = ckpt.new_run_dir(stem, Path(out) if out else None, "resume='{run}'", "out")
    if device:
        source.set(f"train.device={json.dumps(device)}")
    trainer = Trainer(source.resolve(registry), run_dir, registry)
    if resume is not None:
        trainer.resume(resume)
    summary = trainer.fit() if trainer.step < trainer.total_steps else {"step": trainer.step, "steps_run": 0}
    return Run(run_dir, summary)
