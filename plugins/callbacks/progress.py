"""A rich progress display: where the run goes, the plan, then step, epoch, it/s, ETA and losses.

The first screen says where the run folder is, the device and precision, how many steps the
run plans and how long an epoch is, and suggests ``--set train.max_steps=N`` when the plan is
long. Losses are grouped as the objective declares (``Declaration.loss_groups``: by the
optimizer that minimises them) and wrapped to the terminal's width.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.text import Text

from ganforge import Range

LONG_PLAN = 20_000  # steps; beyond this the first screen suggests a shorter first try
TRY_STEPS = 2_000


def plan_lines(trainer: Any) -> list[str]:
    """The first screen: run folder, device and precision, the plan, a hint for long plans."""
    rt = trainer.runtime.describe()
    device = rt.get("gpu") or rt["device"]
    flags = ("channels_last", "compile", "cuda_graph")
    extras = [rt["precision"]] + [k.replace("_", " ") for k in flags if rt.get(k)]
    total, per_epoch = trainer.total_steps, trainer.steps_per_epoch
    epochs = total / per_epoch
    span = f"{epochs:,.4g} epoch{'s' if epochs != 1 else ''}" if epochs >= 1 else f"{epochs:.1%} of an epoch"
    unit = trainer.objective.declares.sample_unit
    lines = [
        f"run folder  {trainer.run_dir.resolve()}",
        f"device      {device} ({', '.join(extras)})",
        f"plan        {total:,} steps = {span} of {per_epoch:,} steps "
        f"({len(trainer.dataset):,} {unit}, batch {trainer.global_batch})"
        + (f"; resuming at step {trainer.step:,}" if trainer.step else ""),
    ]
    if total - trainer.step > LONG_PLAN:
        lines.append(
            f"note        a long plan: for a first look add --set train.max_steps={TRY_STEPS} "
            "(resume later with --resume and a larger train.max_steps)"
        )
    return lines


def group_losses(trainer: Any, scalars: dict[str, float]) -> dict[str, list[str]]:
    """``{group: ["name value", ...]}`` of the losses (learning rates and throughput left out)."""
    keys = [k for k in scalars if not k.startswith("lr_")]
    groups = trainer.objective.declares.loss_groups(keys)
    return {label: [f"{k} {scalars[k]:.3f}" for k in names] for label, names in groups.items()}


def wrap_groups(groups: dict[str, list[str]], width: int) -> list[str]:
    """One line per group (``label  a 1.0  b 2.0``), continued under the first value to fit ``width``."""
    if not groups:
        return []
    pad = max(len(label) for label in groups) + 2
    lines = []
    for label, items in groups.items():
        line = label.ljust(pad)
        for item in items:
            if len(line) > pad and len(line) + 2 + len(item) > width:
                lines.append(line.rstrip())
                line = " " * pad
            line += ("" if len(line) == pad else "  ") + item
        lines.append(line.rstrip())
    return lines


class _Live(RichProgress):
    """The bar, then the grouped losses below it (re-wrapped whenever the terminal resizes)."""

    losses: dict[str, list[str]] = {}

    def get_renderables(self) -> Any:
        width = self.live.console.width if hasattr(self, "live") else 80  # called once before live exists
        losses = Text("\n".join(wrap_groups(self.losses, width)))
        yield Group(self.make_tasks_table(self.tasks), losses)


class Progress:
    """Live progress bar on a terminal; one plain line per log step otherwise (CI, files), and
    a line at least every ``every_s`` seconds between log steps that are further apart."""

    def __init__(
        self,
        losses: bool = True,
        every_s: Annotated[float, Range(1.0, 86_400.0, why="seconds between lines off a terminal")] = 120.0,
    ) -> None:
        self.show_losses = losses
        self.every_s = every_s
        self._bar: _Live | None = None
        self._task: Any = None
        self.console = Console(stderr=True)
        self._last_line = 0.0  # when the last plain line was printed (off a terminal)
        self._since: tuple[float, int] = (0.0, 0)  # (time, step) the rate of a between-logs line counts from

    def on_train_start(self, trainer: Any) -> None:
        if not trainer.is_main:
            return
        name = trainer.recipe["objective"]["name"]
        if self.console.is_terminal:
            self.console.print(f"[bold]ganforge run[/]: {name}", highlight=False)
            for line in plan_lines(trainer):
                self.console.print(
                    line, highlight=False, markup=False, style="yellow" if line.startswith("note") else None
                )
            self._bar = _Live(
                TextColumn("[bold]epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.losses = {}
            self._bar.start()
            self._task = self._bar.add_task(
                "train", total=trainer.total_steps, completed=trainer.step, epoch=trainer.epoch, rate=""
            )
        else:
            print(f"training {name}", file=sys.stderr, flush=True)
            for line in plan_lines(trainer):
                print(line, file=sys.stderr, flush=True)
            self._last_line = now = time.monotonic()
            self._since = (now, trainer.step)

    def on_step_end(self, trainer: Any, step: int, losses: dict) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=step, epoch=trainer.epoch)
            return
        if not trainer.is_main:
            return
        now = time.monotonic()
        if now - self._last_line >= self.every_s and step < trainer.total_steps:
            # Between log steps: where the run is, from the clock alone (losses stay on the device
            # until the log step: reading them here would cost a sync every step).
            since, start = self._since
            rate = (step - start) / max(now - since, 1e-9)
            eta = (trainer.total_steps - step) / max(rate, 1e-9)
            log_every = (getattr(trainer, "cfg", None) or {}).get("log_every")
            losses_at = f"  (losses every {log_every} steps)" if log_every else ""
            print(
                f"step {step}/{trainer.total_steps} epoch {trainer.epoch} {rate:.2f} it/s ETA {eta:.0f}s"
                + losses_at,
                file=sys.stderr,
                flush=True,
            )
            self._last_line = now

    def on_log(self, trainer: Any, step: int, scalars: dict[str, float]) -> None:
        if not trainer.is_main:
            return
        rate = f"{trainer.throughput.get('steps_per_s', 0):.2f} it/s"
        groups = group_losses(trainer, scalars) if self.show_losses else {}
        if self._bar is not None:
            self._bar.losses = groups
            self._bar.update(self._task, completed=step, rate=rate, epoch=trainer.epoch)
        else:
            eta = (trainer.total_steps - step) / max(trainer.throughput.get("steps_per_s", 0), 1e-9)
            text = " | ".join(f"{label}: {'  '.join(items)}" for label, items in groups.items())
            print(
                f"step {step}/{trainer.total_steps} epoch {trainer.epoch} {rate} ETA {eta:.0f}s  {text}",
                file=sys.stderr,
                flush=True,
            )
            self._last_line = time.monotonic()
            self._since = (self._last_line, step)

    def on_train_end(self, trainer: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
