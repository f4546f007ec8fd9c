"""Periodic evaluation during training: metric plugins on held-out images, logged as ``eval/...``.

Every ``every`` steps (and at the end of training) the callback scores the model on ``count``
fixed held-out images per domain (the dataset's ``holdout``) with the named metrics, through
``ganforge_plugins.apps.eval.evaluation``. Values go to the log as ``eval/<direction>/<key>`` (e.g.
``eval/a2b/cycle_l1``, ``eval/a2b/kid_x100``), so ``metrics.jsonl`` and the report carry them.
With ``best`` set to one of those keys (with or without the ``eval/`` prefix) the checkpoint
of each new best value is saved and copied to ``RUN/checkpoints/best.safetensors``.

FID and KID follow the ``protocol`` (``protocols.py``): its resize, input range and KID
estimator, applied to the held-out images (not its split or image count). Each evaluation's
``metrics.jsonl`` record names it as ``"eval/protocol"``: the callback sends it with the
``on_log_info(trainer, step, info)`` event, which the ``metrics-log`` callback merges into the
record of that step (other callbacks, which take only numbers, never see it).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal

from ganforge import Range
from ganforge.errors import GanforgeError


class Evaluation:
    """Evaluate metrics (default: cycle) on held-out images every ``every`` steps; keep the best checkpoint.

    Options: ``metrics`` (metric names), ``count`` (held-out images per domain), ``best`` (a
    logged key such as ``a2b/kid_x100``; empty: no best checkpoint) with ``mode`` min or max,
    ``weights`` (FID Inception weights for fid/kid), ``protocol`` (how fid/kid preprocess and
    estimate: clean-fid, torch-fidelity, pytorch-fid, ugatit), ``at_end`` (also evaluate when
    training ends).
    """

    def __init__(
        self,
        every: Annotated[int, Range(0)] = 1000,
        metrics: tuple[str, ...] = ("cycle",),
        count: Annotated[
            int, Range(1, 100_000, why="memory: the held-out images are kept on the device")
        ] = 64,
        best: str = "",
        mode: Literal["min", "max"] = "min",
        weights: str = "",
        batch_size: Annotated[int, Range(1, 65536, why="memory: a batch is held at once")] = 16,
        at_end: bool = True,
        protocol: str = "clean-fid",
    ) -> None:
        from .evaluation import parse_metric_names
        from .protocols import get_protocol

        self.every, self.count, self.mode, self.weights = every, count, mode, weights
        self.protocol = get_protocol(protocol).name  # an unknown name fails with the recipe
        self.metric_names = parse_metric_names(metrics)
        self.best_key = best if not best or best.startswith("eval/") else f"eval/{best}"
        self.batch_size, self.at_end = max(1, batch_size), at_end
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.last: dict[str, float] = {}
        self._metrics: dict[str, Any] | None = None
        self._extractors: Any = None
        self._holdout: dict[str, Any] | None = None
        self._real: dict[str, dict] = {}
        self._last_step = -1

    # -- state for resume -------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"best_value": self.best_value, "best_step": self.best_step, "best_key": self.best_key}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("best_key", self.best_key) == self.best_key:
            value = state.get("best_value")
            self.best_value = None if value is None else float(value)
            step = state.get("best_step")
            self.best_step = None if step is None else int(step)

    # -- events -----------------------------------------------------------------------------

    def on_train_start(self, trainer: Any) -> None:
        if not trainer.is_main:
            return
        from .evaluation import Extractors, build_metrics

        self._metrics = build_metrics(trainer.registry, self.metric_names, self.weights, self.protocol)
        self._extractors = Extractors(
            trainer.registry, trainer.runtime.device, self.batch_size, self.protocol
        )
        for metric in self._metrics.values():
            if metric.uses == "features":
                self._extractors.get(metric)  # a missing weights file fails now, not after hours
        self._holdout = trainer.holdout(self.count)

    def on_step_end(self, trainer: Any, step: int, losses: dict) -> None:
        if self.every > 0 and step % self.every == 0:
            self.evaluate(trainer)

    def on_train_end(self, trainer: Any) -> None:
        if self.at_end and self._last_step != trainer.step:
            self.evaluate(trainer)

    # -- work -------------------------------------------------------------------------------

    def evaluate(self, trainer: Any) -> dict[str, float]:
        """Score the current model, log ``eval/...`` values, update the best checkpoint."""
        if not trainer.is_main or self._metrics is None or self._holdout is None:
            return {}
        from .evaluation import evaluate_direction, evaluate_generation

        objective, step = trainer.model, trainer.step
        self._last_step = step
        scalars: dict[str, float] = {}
        if objective.directions:
            for direction, d in objective.directions.items():
                values = evaluate_direction(
                    objective,
                    self._holdout[d.source],
                    self._holdout[d.target],
                    direction,
                    self._metrics,
                    self._extractors,
                    self.batch_size,
                    self._real.setdefault(direction, {}),
                )
                scalars.update({f"eval/{direction}/{k}": v for k, v in values.items()})
        elif objective.generates:
            values = evaluate_generation(
                objective,
                next(iter(self._holdout.values())),
                self._metrics,
                self._extractors,
                self.batch_size,
                trainer.cfg["seed"],
                self._real.setdefault("gen", {}),
            )
            scalars.update({f"eval/generated/{k}": v for k, v in values.items()})
        else:
            raise GanforgeError(
                f"[callbacks.eval]: objective '{objective.name}' neither translates nor generates images"
            )
        self.last = scalars
        if any(m.uses == "features" for m in self._metrics.values()):
            trainer.emit("on_log_info", step, {"eval/protocol": self.protocol})
        trainer.emit("on_log", step, scalars)
        self._update_best(trainer, scalars)
        return scalars

    def _update_best(self, trainer: Any, scalars: dict[str, float]) -> None:
        if not self.best_key:
            return
        if self.best_key not in scalars:
            # A typo must not end a long run: say so once and stop tracking the best.
            known = ", ".join(k.removeprefix("eval/") for k in scalars)
            print(
                f"warning: [callbacks.eval] best = '{self.best_key.removeprefix('eval/')}' is not one of "
                f"the evaluated values ({known}); not keeping a best checkpoint",
                file=sys.stderr,
                flush=True,
            )
            self.best_key = ""
            return
        value = scalars[self.best_key]
        better = self.best_value is None or (
            value < self.best_value if self.mode == "min" else value > self.best_value
        )
        if not better:
            return
        self.best_value, self.best_step = float(value), int(trainer.step)
        latest = trainer.checkpoints.latest()
        path = (
            latest if latest is not None and latest.name == f"step-{trainer.step:08d}.safetensors" else None
        )
        if path is None:
            path = trainer.save_checkpoint()
        if path is not None:
            trainer.checkpoints.mark_best(path)
