"""The GAN-agnostic training loop: runs a resolved recipe's objective into a run folder, with
checkpoints, exact resume and signals. Data order is a pure function of (seed, sample position), so
resuming at step N continues the exact stream with any number of loader workers."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

import ganforge
from ganforge import checkpoint as ckpt
from ganforge import protocols
from ganforge import recipe as recipe_mod
from ganforge.errors import GanforgeError, NonFiniteError, WriteError
from ganforge.method.objective import Objective
from ganforge.model import Model
from ganforge.registry import Registry, describe_exception
from ganforge.runtime import Runtime, rng_state, seed_everything, set_rng_state
from ganforge.safety import describe_os_error, first_nonfinite
from ganforge.training.cudagraph import CapturedStep, StepFn, capture_blocker
from ganforge.training.engine import Engine
from ganforge.training.state import MAX_SAMPLE_POSITIONS, check_state

RESOLVED_RECIPE = "recipe.resolved.toml"
# A loss whose interval mean is this many times its first value (or this many, where that was below
# 1) has grown by orders of magnitude: a warning, or with train.stop_on_divergence a stop (exit 3).
DIVERGENCE_FACTOR = 1000.0
_ADVICE = "lower the learning rates or loss weights"


class PositionSampler(Sampler[int]):
    """Yields the sample positions of steps ``[start, end)``, sharded across ranks: position
    ``step * world * batch + rank * batch + i``."""

    def __init__(self, start_step: int, end_step: int, batch_size: int, rank: int = 0, world: int = 1):
        self.start_step, self.end_step = start_step, end_step
        self.batch_size, self.rank, self.world = batch_size, rank, world

    def __iter__(self) -> Iterator[int]:
        b, w, r = self.batch_size, self.world, self.rank
        for step in range(self.start_step, self.end_step):
            base = step * w * b + r * b
            yield from range(base, base + b)

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step) * self.batch_size


def _to_cpu(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_to_cpu(v) for v in tree)
    return tree.cpu() if isinstance(tree, torch.Tensor) else tree


def _worker_init(_: int) -> None:
    # Ctrl-C goes to the whole process group; only the main process handles it (and checkpoints).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Trainer:
    """Runs one training job from a resolved recipe into a run folder."""

    def __init__(
        self,
        resolved: recipe_mod.Resolved,
        run_dir: str | os.PathLike[str],
        registry: Registry,
        runtime: Runtime | None = None,
        rank: int = 0,
        world_size: int = 1,
        console: Any = None,
    ) -> None:
        self.recipe = resolved
        self.cfg = resolved["train"]
        self.run_dir = Path(run_dir)
        self.registry = registry
        self.runtime = runtime or Runtime.create(
            self.cfg["device"], self.cfg["precision"], self.cfg["channels_last"], self.cfg["compile"]
        )
        self.rank, self.world_size = rank, world_size
        self.is_main = rank == 0
        self.console = console
        self.step = self.epoch = 0
        self.checkpoints = ckpt.CheckpointDir(self.run_dir / "checkpoints")
        self.stop_reason: str | None = None
        self._last_saved = -1
        self._resumed = False  # set by resume(): a new run's first step starts it fresh
        self._pending: list[dict[str, torch.Tensor]] = []  # losses of the steps since the last log
        self._first_loss: dict[str, torch.Tensor] = {}  # each loss's first value of this fit (device)
        self._diverged: set[str] = set()  # losses already warned about
        self.throughput: dict[str, float] = {}

        seed_everything(self.cfg["seed"] + rank, self.cfg["deterministic"])
        self.builder = recipe_mod.Builder(registry, resolved, seed=self.cfg["seed"])
        self.dataset = self.builder.build("data")
        if len(self.dataset) == 0:
            raise GanforgeError(f"dataset [data] '{resolved['data']['name']}' has no images")
        self.global_batch = self.cfg["batch_size"] * world_size
        self.steps_per_epoch = max(1, math.ceil(len(self.dataset) / self.global_batch))
        self.total_steps = self.cfg["max_steps"] or self.cfg["epochs"] * self.steps_per_epoch
        if self.total_steps * self.global_batch >= MAX_SAMPLE_POSITIONS:  # int64 in the samplers
            raise GanforgeError(
                f"[train]: {self.total_steps:,} steps of {self.global_batch} images is more sample "
                "positions than 64-bit integers hold; lower train.epochs or train.max_steps"
            )
        self.builder.defaults.update(steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps)
        self.classes = protocols.classes(self.dataset)
        condition = self.registry.get("objective", resolved["objective"]["name"]).factory.declares.condition
        if condition is not None and not self.classes:
            raise GanforgeError(
                f"[data]: objective '{resolved['objective']['name']}' takes a {condition.kind} "
                f"('{condition.batch_key}'); dataset '{resolved['data']['name']}' has no classes (use a "
                "dataset with one folder per class)"
            )
        if self.classes:
            self.builder.defaults["num_classes"] = len(self.classes)  # context of conditional networks
        self.objective: Objective = self.builder.build(
            "objective", builder=self.builder, runtime=self.runtime
        )
        self.engine = Engine(
            self.objective, self.builder, self.runtime, resolved["objective"].get("ema", 0.0)
        )
        self.image_size = protocols.image_size(self.dataset)
        self.card = self.engine.card(self.image_size, self.classes)
        self.model = Model(self.card, self.engine.inference_networks(), self.runtime)
        tables = resolved.get("callbacks") or {}  # the kind's defaults plus the recipe's
        self.callbacks = {
            n: self.builder.build(f"callbacks.{n}") for n, t in tables.items() if t.get("enabled", True)
        }
        self._step_fn: StepFn | None = None
        self.cuda_graph_note: str | None = None  # why steps are not captured, when they are not

    def emit(self, event: str, *args: Any) -> None:
        """Call ``event`` (one of ``protocols.CALLBACK_EVENTS``) on every callback defining it."""
        if event not in protocols.CALLBACK_EVENTS:
            raise ValueError(f"unknown callback event {event!r}")
        for cb in self.callbacks.values():
            if callable(fn := getattr(cb, event, None)):
                fn(self, *args)

    def _loader(self, start_step: int) -> DataLoader:
        workers, cpus = self.cfg["num_workers"], _usable_cpus()
        if workers < 0:
            workers = 0 if self.runtime.device.type == "cpu" else min(8, max(1, cpus - 1))
        elif workers > cpus:  # more processes than CPUs only add memory (each holds a copy)
            if self.is_main:
                print(
                    f"note: train.num_workers={workers} is more than the {cpus} CPU(s) this process may "
                    f"use: using {cpus} loader workers",
                    file=sys.stderr,
                    flush=True,
                )
            workers = cpus
        batch = self.cfg["batch_size"]
        return DataLoader(
            self.dataset,
            batch_size=batch,
            sampler=PositionSampler(start_step, self.total_steps, batch, self.rank, self.world_size),
            num_workers=workers,
            pin_memory=self.runtime.device.type == "cuda",
            prefetch_factor=4 if workers else None,
            worker_init_fn=_worker_init if workers else None,
            generator=torch.Generator(),  # keeps the loader from drawing on the global RNG (exact resume)
        )

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move a batch to the device; uint8 images become float in [-1, 1]. A
        :class:`~ganforge.protocols.DeviceBatches` dataset builds its images there first."""
        if isinstance(self.dataset, protocols.DeviceBatches):
            batch = self.dataset.on_device(batch, self.runtime.device)
        return self._inputs(batch)

    def _inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = dict(batch)
        for key, value in batch.items():
            if isinstance(value, torch.Tensor) and value.dtype == torch.uint8:
                out[key] = self.runtime.to_input(value)
            elif isinstance(value, torch.Tensor):
                out[key] = value.to(self.runtime.device, non_blocking=True)
        return out

    def holdout(self, n: int) -> dict[str, torch.Tensor]:
        """Fixed held-out images (from the dataset) on the device, for samples and evaluation."""
        return self._inputs(self.dataset.holdout(n))  # images already: no on_device

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One optimisation step at ``self.step``: a CUDA-graph replay where possible."""
        if self._step_fn is None:
            self._step_fn = self._choose_step_fn()
        return self._step_fn(batch, self.step)

    def _choose_step_fn(self) -> StepFn:
        if not self.cfg["cuda_graph"] or self.runtime.device.type != "cuda":
            return self.engine.run_step
        if reason := capture_blocker(self.runtime) or self.engine.capture_ready():
            self.cuda_graph_note = reason
            if self.is_main and self.console is not None:
                self.console.print(f"[yellow]CUDA graphs off[/]: {reason}")
            return self.engine.run_step
        self.runtime.cuda_graph = True
        return CapturedStep(self.engine, self.runtime.device)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly; in a DDP job every rank must call it (it gathers)."""
        state: dict[str, Any] = {
            "trainer": {"step": self.step, "epoch": self.epoch},
            "rng": rng_state(),
            "objective": self.engine.state_dict(),
            "callbacks": {
                n: cb.state_dict() for n, cb in self.callbacks.items() if isinstance(cb, protocols.Stateful)
            },
        }
        if self.world_size > 1:
            # Per-rank state (RNG streams, image pools) differs between ranks: keep each one.
            local = {"rng": rng_state(), "objective": self.engine.local_state_dict()}
            gathered: list[Any] = [None] * self.world_size
            torch.distributed.all_gather_object(gathered, local)
            state["ranks"] = {str(r): _to_cpu(g) for r, g in enumerate(gathered)}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`, checked first."""
        if problems := check_state(state, self.world_size):
            raise GanforgeError(f"the state does not fit this trainer: {problems[0]}")
        step = state["trainer"]["step"]
        if step * self.global_batch >= MAX_SAMPLE_POSITIONS:
            raise GanforgeError(
                f"the state is at step {step:,}, impossible with {self.global_batch} image(s) per step "
                "(more sample positions than a run can reach, 2**62)"
            )
        self.engine.load_state_dict(state["objective"])  # checks everything before loading
        self._resumed = True
        self._step_fn = None  # captured graphs refer to the state tensors being replaced
        self.step, self.epoch = step, state["trainer"]["epoch"]
        for name, cb_state in state.get("callbacks", {}).items():
            if isinstance(callback := self.callbacks.get(name), protocols.Stateful):
                try:
                    callback.load_state_dict(cb_state)
                except (KeyError, ValueError, TypeError, AttributeError, IndexError, RuntimeError) as exc:
                    raise GanforgeError(
                        f"callback '{name}' state does not load ({describe_exception(exc)})"
                    ) from None
        if (mine := state.get("ranks", {}).get(str(self.rank))) is not None:
            self.engine.load_local_state_dict(mine["objective"])
        set_rng_state(state["rng"] if mine is None else mine["rng"])

    def meta(self) -> dict[str, Any]:
        """The metadata a checkpoint of the current step carries (versions, step, model card, recipe)."""
        return {
            "ganforge": ganforge.__version__,
            "torch": torch.__version__,
            "step": self.step,
            "epoch": self.epoch,
            "objective": self.recipe["objective"]["name"],
            "image_size": self.image_size,
            "world_size": self.world_size,
            "model": self.card,  # what inference builds, with no recipe (ganforge.Model.load)
            "recipe": self.recipe,
            "plugins": self.recipe.plugins(),  # named when a later load lacks one
            "time": time.time(),
        }

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current step (called on every rank; rank 0 writes). Non-finite
        losses since the last log or state tensors raise :class:`NonFiniteError` instead, so
        rotation never drops the last finite checkpoint for a broken one."""
        if self.world_size == 1 and self._pending:  # DDP ranks agree on non-finite losses in _log
            self._check_losses(self._pending)
        state = self.state_dict()
        if (bad := first_nonfinite(state["objective"], "objective")) is not None:
            raise NonFiniteError(
                f"step {self.step}: {bad} holds NaN or infinite values; not writing a checkpoint. "
                + self._last_finite(_ADVICE)
            )
        if not self.is_main:
            return None
        path = self.checkpoints.save(self.step, state, self.meta())
        self._last_saved = self.step
        self.emit("on_checkpoint", path)
        return path

    def resume(self, path: str | os.PathLike[str]) -> Path:
        """Restore everything from a checkpoint file or run folder, checked whole before any
        state is touched (each problem a one-line error naming the file)."""
        file = ckpt.resolve(path)
        meta = ckpt.read_run_meta(file)
        state, _ = ckpt.load(file)
        step = state.get("trainer", {}).get("step") if isinstance(state.get("trainer"), dict) else None
        if step != meta["step"]:
            raise GanforgeError(
                f"{file}: the state is at step {step!r} but the metadata says {meta['step']}; the file "
                "was changed after it was written"
            )
        if meta.get("objective") != self.recipe["objective"]["name"]:
            raise GanforgeError(
                f"{file}: checkpoint is for objective '{meta.get('objective')}', "
                f"the recipe runs '{self.recipe['objective']['name']}'"
            )
        if (saved_world := meta.get("world_size", 1)) != self.world_size:
            raise GanforgeError(
                f"{file}: saved with {saved_world} process(es); resume with the same "
                f"world size (now {self.world_size})"
            )
        try:
            self.load_state_dict(state)
        except GanforgeError as exc:
            raise type(exc)(f"{file}: {exc}") from None
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
            raise GanforgeError(
                f"{file}: does not match the recipe's components ({describe_exception(exc)})"
            ) from None
        return file

    def fit(self) -> dict[str, Any]:
        """Train until ``total_steps`` (or a signal); returns a summary. Stops with
        :class:`NonFiniteError` (exit code 3) on a NaN or infinite loss or weight, :class:`WriteError`
        when the run folder cannot be written (read-only, full disk) and :class:`GanforgeError` when
        the device runs out of memory; the last checkpoint is intact."""
        try:
            if self.step == 0 and not self._resumed:  # before anything is written to the run folder
                self.engine.fresh_start()
            return self._fit()
        except GanforgeError:
            raise
        except OSError as exc:
            raise WriteError(f"run folder {self.run_dir}: {describe_os_error(exc)}") from None
        except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
            if not _out_of_memory(exc):
                raise
            raise GanforgeError(
                f"out of memory at step {self.step + 1} on {self.runtime.device} "
                f"({describe_exception(exc)}); lower train.batch_size, data.image_size or the "
                f"networks' widths. {self._last_finite()}"
            ) from None

    def _last_finite(self, advice: str = "") -> str:
        """Where the run can go on from: the last checkpoint written (all are finite)."""
        last = self.checkpoints.latest() if self.is_main else None
        if last is None:
            return "No checkpoint was written before it" + (f"; {advice} and start again" if advice else ".")
        return f"The last checkpoint, {last}, is intact" + (
            f"; {advice} and resume from it" if advice else "."
        )

    def _fit(self) -> dict[str, Any]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self._step_fn is None:
            self._step_fn = self._choose_step_fn()  # before run.json, which says why graphs are off
        if self.is_main:
            self.checkpoints.clean_stale()  # temporary files of writes a kill interrupted
            (self.run_dir / RESOLVED_RECIPE).write_text(recipe_mod.dumps(self.recipe))
            run = {
                "runtime": self.runtime.describe(),
                "cuda_graph_off": self.cuda_graph_note,
                "world_size": self.world_size,
                "steps_per_epoch": self.steps_per_epoch,
                "total_steps": self.total_steps,
                "overrides": list(self.recipe.overrides),  # the report shows them
                "dataset_size": len(self.dataset),
            }
            (self.run_dir / "run.json").write_text(json.dumps(run, indent=2))
        previous = self._install_signal_handlers()
        start_step = self.step
        pending = self._pending = []
        log_every = max(1, self.cfg["log_every"])
        t_start = time.perf_counter()
        self._interval = [t_start, 0.0]  # start of the current log interval, data wait within it
        try:
            self.emit("on_train_start")
            loader = iter(self._loader(self.step))
            while self.step < self.total_steps and not self._should_stop():
                t0 = time.perf_counter()
                batch = self.to_device(next(loader))
                self._interval[1] += time.perf_counter() - t0
                losses = self._first_step(batch) if self.step == start_step else self.train_step(batch)
                self.step += 1
                pending.append(losses)
                self.emit("on_step_end", self.step, losses)
                if self.step % log_every == 0 or self.step == self.total_steps:
                    self._log(pending)
                    pending = self._pending = []
                epoch = self.step * self.global_batch // len(self.dataset)
                if epoch > self.epoch:
                    self.epoch = epoch
                    self.emit("on_epoch_end", epoch)
            if pending:
                self._log(pending)
                pending = self._pending = []
            if self._last_saved != self.step:
                self.save_checkpoint()
            self.emit("on_train_end")
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
        return {
            "step": self.step,
            "epoch": self.epoch,
            "seconds": time.perf_counter() - t_start,
            "stopped": self.stop_reason,
            "steps_run": self.step - start_step,
        }

    def _should_stop(self) -> bool:
        """A signal stops the run; in a DDP job all ranks agree, at log steps, to stop together."""
        if self.world_size == 1:
            return self.stop_reason is not None
        if self.step % max(1, self.cfg["log_every"]) != 0:
            return False
        flag = torch.tensor([1.0 if self.stop_reason else 0.0], device=self.runtime.device)
        torch.distributed.all_reduce(flag)
        stop = flag.item() > 0  # the same on every rank, whatever signal arrives meanwhile
        if stop and self.stop_reason is None:
            self.stop_reason = "SIGTERM"
        return stop

    def _first_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The run's first step, where components that do not fit together fail: a one-line error
        naming the failing part (``GANFORGE_DEBUG=1`` and later steps keep the traceback)."""
        try:
            return self.train_step(batch)
        except GanforgeError:
            raise
        except Exception as exc:
            if os.environ.get("GANFORGE_DEBUG") or _out_of_memory(exc):
                raise
            raise GanforgeError(
                f"step {self.step + 1}: the recipe's components do not work together: "
                f"{self._blame(exc.__traceback__)}{describe_exception(exc)}"
            ) from None

    def _blame(self, tb: Any) -> str:
        """``[section] 'component' (part) failed with `` for the innermost part of the objective in ``tb``."""
        decl = self.objective.declares
        sections = {n: spec.section for n, spec in {**decl.networks, **decl.losses, **decl.pools}.items()}
        parts = {id(net): name for name, net in self.engine.networks.items()}
        parts.update((id(part), name) for name, part in self.objective.parts.items() if part is not None)
        found = None
        while tb is not None:  # the innermost frame of a part's method wins
            found = parts.get(id(tb.tb_frame.f_locals.get("self")), found)
            tb = tb.tb_next
        section = sections.get((found or "").removesuffix("_ema"))
        if section is None:
            return ""
        spec = self.recipe.specs.get(section)
        return f"[{section}] '{spec.component.name if spec else '?'}' ({found}) failed with "

    def _check_losses(self, pending: list[dict[str, torch.Tensor]]) -> None:
        """Raise :class:`NonFiniteError` naming the first step and loss that is NaN or infinite."""
        keys = list(dict.fromkeys(k for p in pending for k in p))
        if not keys:
            return
        zero = torch.zeros((), device=next(p[k] for p in pending for k in p).device)
        rows = [torch.stack([p[k].detach().float() if k in p else zero for k in keys]) for p in pending]
        table = torch.stack(rows).cpu()  # one sync
        bad = (~torch.isfinite(table)).nonzero()
        if len(bad):
            row, col = bad[0].tolist()
            raise NonFiniteError(
                f"step {self.step - len(pending) + 1 + row}: loss '{keys[col]}' is "
                f"{table[row, col].item()}; training stopped. " + self._last_finite(_ADVICE)
            )

    def _log(self, pending: list[dict[str, torch.Tensor]]) -> None:
        """Average the interval's losses and measure its throughput in one host sync, which also stops
        the run on a NaN or infinite loss (:class:`NonFiniteError`) and warns once about one grown past
        ``DIVERGENCE_FACTOR`` times its first value (or stops: ``train.stop_on_divergence``)."""
        keys = list(dict.fromkeys(k for p in pending for k in p))  # a loss may skip steps (n_critic)
        means = torch.stack(
            [torch.stack([p[k].detach().float() for p in pending if k in p]).mean() for k in keys]
        )
        for k in keys:  # the first value of each loss (device tensors: no sync)
            if k not in self._first_loss:
                first = next(p[k] for p in pending if k in p)
                self._first_loss[k] = first.detach().float().reshape(()).clone()
        firsts = torch.stack([self._first_loss[k] for k in keys])
        grown = means.abs() > DIVERGENCE_FACTOR * firsts.abs().clamp(min=1.0)
        # A NaN or infinity in any step makes its mean non-finite: the check costs nothing here.
        flags = torch.stack([(~torch.isfinite(means)).any(), grown.any()]).float()
        if self.world_size > 1:  # every rank stops at the same log step
            torch.distributed.all_reduce(flags)
        host = torch.cat([means, firsts, grown.float(), flags]).cpu()  # the sync: the interval's work is done
        n = len(keys)
        values = host[:n].tolist()
        if host[-2].item() > 0:
            if all(map(math.isfinite, values)):
                raise NonFiniteError(
                    f"step {self.step}: a loss of another process is NaN or infinite; training "
                    f"stopped. {self._last_finite()}"
                )
            self._check_losses(pending)  # names the first step and loss
            name = next(k for k, v in zip(keys, values) if not math.isfinite(v))
            raise NonFiniteError(
                f"step {self.step}: the mean of loss '{name}' over the log interval overflows; training "
                "stopped. " + self._last_finite(_ADVICE)
            )
        if host[-1].item() > 0:
            rows = zip(keys, values, host[n : 2 * n].tolist(), host[2 * n : 3 * n].tolist())
            self._diverging([(k, v, first) for k, v, first, g in rows if g])
        now = time.perf_counter()
        elapsed, data_wait = max(now - self._interval[0], 1e-9), self._interval[1]
        self._interval = [now, 0.0]
        self.throughput = {
            "steps_per_s": len(pending) / elapsed,
            "samples_per_s": len(pending) * self.global_batch / elapsed,
            "data_wait_share": data_wait / elapsed,
        }
        self.emit("on_log", self.step, dict(zip(keys, values)))

    def _diverging(self, grown: list[tuple[str, float, float]]) -> None:
        """Losses (name, mean, first value) grown by orders of magnitude (empty when only another
        rank's did): warned about once each, or a :class:`NonFiniteError` with ``stop_on_divergence``."""
        stop = bool(self.cfg.get("stop_on_divergence"))
        if stop and not grown:
            raise NonFiniteError(
                f"step {self.step}: a loss of another process grew over {DIVERGENCE_FACTOR:,.0f} times its "
                f"first value; training stopped (train.stop_on_divergence). {self._last_finite()}"
            )
        for name, value, first in grown:
            if stop:
                raise NonFiniteError(
                    f"step {self.step}: loss '{name}' is {value:.3g}, over {DIVERGENCE_FACTOR:,.0f} times "
                    f"its first value ({first:.3g}); training stopped (train.stop_on_divergence). "
                    + self._last_finite(_ADVICE)
                )
            if name not in self._diverged and self.is_main:
                print(
                    f"warning: step {self.step}: loss '{name}' is {value:.3g}, over "
                    f"{DIVERGENCE_FACTOR:,.0f} times its first value ({first:.3g}): training is "
                    "probably diverging; lower the learning rates (train.stop_on_divergence = true "
                    "stops a run here)",
                    file=sys.stderr,
                    flush=True,
                )
            self._diverged.add(name)

    def _install_signal_handlers(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
            return previous

        def handler(signum: int, _frame: Any) -> None:
            if self.stop_reason is not None:  # a second signal: stop now
                signal.signal(signum, previous.get(signum, signal.SIG_DFL))
                raise KeyboardInterrupt
            self.stop_reason = signal.Signals(signum).name

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        return previous


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a container's share), else all."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def _out_of_memory(exc: BaseException) -> bool:
    oom = isinstance(exc, torch.OutOfMemoryError | MemoryError)
    return oom or "can't allocate memory" in str(exc) or "out of memory" in str(exc).lower()
