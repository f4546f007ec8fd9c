"""Quality during training: metric plugins on held-out images, logged as ``eval/...``; the best
checkpoint.

Every ``every`` steps (``0``: only at the end) and at the end of training the callback scores the
live model (``trainer.model``: the moving averages where kept) on ``count`` fixed held-out images
per domain (per class for a class-conditional generator), the dataset's ``holdout`` split, with
the named metrics through ``ganforge_plugins.apps.eval.evaluation``. Values go to the log as
``eval/<group>/<key>``: a group per direction (``eval/a2b/kid_x100``, ``eval/b2a/fid``), per class
(``eval/class/cat/fid``), ``generated`` for a generator, and ``mean`` over the directions or
classes when there are two or more. ``metrics.jsonl``, TensorBoard and the report carry them;
the ``metrics.jsonl`` record also names the protocol (``"eval/protocol"``) and, at a new best, the
value that chose it (``"eval/best"``), both sent with the ``on_log_info(trainer, step, info)``
event that the ``metrics-log`` callback merges into the record of that step.

``best`` chooses the best checkpoint: a short name (``"kid"``, ``"fid"``, ``"cycle_l1"``) means the
mean over directions or classes (the only one where there is one), ``"a2b/kid"`` one direction,
any logged key works. Each new best writes a checkpoint of that step whose state records it and
copies it to ``RUN/checkpoints/best.safetensors`` (never rotated away). The best value and its
step are the callback's state in every checkpoint, so ``--resume`` keeps comparing against them,
and a resumed run never replaces a better best with a worse one.

With ``on_cpu = false`` (the GPU recipes) the callback does nothing when training on the CPU,
where the Inception network takes minutes per evaluation; it says so once.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal

from ganforge import Range
from ganforge import checkpoint as ckpt
from ganforge.errors import GanforgeError

FID_UNBIASED_FROM = 2048  # FID's bias is small only from about this many images per set


def _warn(text: str) -> None:
    print(f"warning: [callbacks.eval] {text}", file=sys.stderr, flush=True)


def _note(text: str) -> None:
    print(f"note: [callbacks.eval] {text}", file=sys.stderr, flush=True)


def normalise_best(best: str) -> str:
    """``"eval/a2b/kid"`` -> ``"a2b/kid_x100"``; ``"kid"`` -> ``"kid_x100"`` (the logged names)."""
    from .evaluation import value_name

    spec = best.strip().removeprefix("eval/")
    if not spec:
        return ""
    *group, name = spec.split("/")
    return "/".join([*group, value_name(name)])


def higher_is_better(name: str) -> bool:
    """Whether larger values of a logged value are better (PSNR, SSIM); FID, KID, L1: lower."""
    return any(word in name.lower() for word in ("psnr", "ssim"))


class Evaluation:
    """FID/KID (or other metrics) on held-out images every N steps and at the end; keeps the best checkpoint.

    Options: ``every`` (steps; 0: only at the end), ``metrics`` (metric names), ``count`` (held-out
    images per domain, or per class), ``best`` (``"kid"``, ``"fid"``: the mean over directions or
    classes; ``"a2b/kid"``: one direction; any logged key; ``""``: no best checkpoint) with
    ``mode`` (``auto``: higher for PSNR/SSIM, lower otherwise), ``weights`` (FID Inception
    weights), ``protocol`` (clean-fid, torch-fidelity, pytorch-fid, ugatit), ``at_end`` (also
    evaluate when training ends), ``on_cpu`` (false: do nothing when training on the CPU).
    """

    def __init__(
        self,
        every: Annotated[int, Range(0)] = 1000,
        metrics: tuple[str, ...] = ("cycle",),
        count: Annotated[
            int, Range(1, 100_000, why="memory: the held-out images are kept on the device")
        ] = 64,
        best: str = "",
        mode: Literal["auto", "min", "max"] = "auto",
        weights: str = "",
        batch_size: Annotated[int, Range(1, 65536, why="memory: a batch is held at once")] = 16,
        at_end: bool = True,
        protocol: str = "clean-fid",
        on_cpu: bool = True,
    ) -> None:
        from .evaluation import parse_metric_names
        from .protocols import get_protocol

        self.every, self.count, self.weights = every, count, weights
        self.protocol = get_protocol(protocol).name  # an unknown name fails with the recipe
        self.metric_names = parse_metric_names(metrics)
        self.best = normalise_best(best)  # what the user chose, in logged names
        self.mode = mode if mode != "auto" else ("max" if higher_is_better(self.best) else "min")
        self.best_key = ""  # the logged key it resolves to, once values exist
        self.batch_size, self.at_end, self.on_cpu = max(1, batch_size), at_end, on_cpu
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.last: dict[str, float] = {}
        self.active = True
        self._metrics: dict[str, Any] | None = None
        self._extractors: Any = None
        self._holdout: dict[str, Any] | None = None
        self._real: dict[str, dict] = {}
        self._last_step = -1
        self._warned_unscored = False

    # -- state for resume -------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_key": self.best_key,
            "best_value": self.best_value,
            "best_step": self.best_step,
            "mode": self.mode,
            "protocol": self.protocol,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Keep the saved best when it was chosen the same way (value, direction, mode, protocol)."""
        saved = normalise_best(str(state.get("best") or state.get("best_key") or ""))
        same = (
            saved == self.best
            and state.get("mode", self.mode) == self.mode
            and state.get("protocol", self.protocol) == self.protocol
        )
        if not same:
            if saved and self.best and state.get("best_value") is not None:
                _note(
                    f"the checkpoint's best ({saved}, {state.get('mode', '?')}, protocol "
                    f"{state.get('protocol', '?')}) was chosen differently from best = '{self.best}' "
                    f"({self.mode}, protocol {self.protocol}); the best starts afresh"
                )
            return
        value, step = state.get("best_value"), state.get("best_step")
        self.best_value = None if value is None else float(value)
        self.best_step = None if step is None else int(step)
        self.best_key = str(state.get("best_key") or "")

    # -- events -----------------------------------------------------------------------------

    def on_train_start(self, trainer: Any) -> None:
        self.active = self.on_cpu or trainer.runtime.device.type != "cpu"
        if not self.active:
            if trainer.is_main:
                _note(
                    "off on the CPU (on_cpu = false): no FID/KID during training and no best checkpoint; "
                    "--set callbacks.eval.on_cpu=true turns it on (the Inception network takes minutes "
                    "per evaluation there), or score a checkpoint with 'ganforge eval'"
                )
            return
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
        conditional = trainer.model.generates and bool(trainer.model.classes)
        want = self.count * len(trainer.model.classes) if conditional else self.count
        self._holdout = trainer.holdout(want)
        self._check_holdout(trainer, conditional)
        self._restore_best_file(trainer)

    def on_step_end(self, trainer: Any, step: int, losses: dict) -> None:
        if self.every > 0 and step % self.every == 0:
            self.evaluate(trainer)

    def on_train_end(self, trainer: Any) -> None:
        if self.at_end and self._last_step != trainer.step:
            self.evaluate(trainer)

    # -- checks -----------------------------------------------------------------------------

    def _check_holdout(self, trainer: Any, conditional: bool) -> None:
        """Say when the held-out images are too few, or not held out at all."""
        assert self._holdout is not None
        data = trainer.recipe.get("data") or {}
        if data.get("holdout") == 0:
            _warn(
                "data.holdout = 0: the images it scores are training images; set data.holdout (e.g. 200) "
                "for a held-out split"
            )
        if conditional:
            labels = self._holdout.get(trainer.objective.declares.condition.batch_key)
            counts = [int((labels == i).sum()) for i in range(len(trainer.model.classes))]
            fewest, what = (min(counts) if counts else 0), "per class"
        else:
            counts = [len(v) for v in self._holdout.values() if hasattr(v, "dim") and v.dim() == 4]
            fewest, what = (min(counts) if counts else 0), "per domain"
        if fewest < self.count:
            _warn(
                f"count = {self.count} but the dataset holds out {fewest} images {what} "
                f"(data.holdout = {data.get('holdout', '?')}); raise data.holdout"
            )
        features = [n for n, m in (self._metrics or {}).items() if m.uses == "features"]
        if "fid" in features and fewest < FID_UNBIASED_FROM:
            _note(
                f"FID from {fewest} images {what} is biased upwards (it falls with more images): compare "
                "values only at equal counts; KID is unbiased and means something from a few hundred"
            )

    def _restore_best_file(self, trainer: Any) -> None:
        """After a resume: ``best.safetensors`` is the checkpoint of the best step (a kill between
        writing that checkpoint and copying it can leave an older copy)."""
        if self.best_step is None:
            return
        root = trainer.checkpoints.root
        best = root / f"{ckpt.BEST}.safetensors"
        try:
            have = ckpt.read_meta(best).get("step") if best.is_file() else None
        except GanforgeError:
            have = None
        source = root / f"step-{self.best_step:08d}.safetensors"
        if have != self.best_step and source.is_file():
            trainer.checkpoints.mark_best(source)

    # -- work -------------------------------------------------------------------------------

    def evaluate(self, trainer: Any) -> dict[str, float]:
        """Score the current model, log ``eval/...`` values, update the best checkpoint.

        Every process calls it (a new best writes a checkpoint, which all processes take part in);
        the main process scores and decides.
        """
        if not self.active:
            return {}
        step = trainer.step
        self._last_step = step
        scalars: dict[str, float] = {}
        improved = False
        if trainer.is_main and self._metrics is not None and self._holdout is not None:
            scalars = self.score(trainer)
            self.last = scalars
            improved = self._improves(scalars, step)
            info: dict[str, str] = {}
            if any(m.uses == "features" for m in self._metrics.values()):
                info["eval/protocol"] = self.protocol
            if improved:
                info["eval/best"] = self.best_key.removeprefix("eval/")
            if info:
                trainer.emit("on_log_info", step, info)
            trainer.emit("on_log", step, scalars)
        if getattr(trainer, "world_size", 1) > 1:
            import torch.distributed as dist

            decided = [improved]
            dist.broadcast_object_list(decided, src=0)
            improved = bool(decided[0])
        if improved:
            # A checkpoint of this step whose state holds the new best (one written earlier in the
            # step holds the old one): a resume from it compares against the right value.
            path = trainer.save_checkpoint()
            if path is not None:
                trainer.checkpoints.mark_best(path)
        return scalars

    def score(self, trainer: Any) -> dict[str, float]:
        """The metrics of the live model on the held-out images: ``{"eval/<group>/<key>": value}``."""
        from .evaluation import MEAN, evaluate_classes, evaluate_direction, evaluate_generation, mean_over

        assert self._metrics is not None and self._holdout is not None
        model = trainer.model
        groups: dict[str, dict[str, float]] = {}
        if model.directions:
            for direction, d in model.directions.items():
                groups[direction] = evaluate_direction(
                    model,
                    self._holdout[d.source],
                    self._holdout[d.target],
                    direction,
                    self._metrics,
                    self._extractors,
                    self.batch_size,
                    self._real.setdefault(direction, {}),
                )
            if len(groups) > 1:
                groups[MEAN] = mean_over(groups)
        elif model.generates and model.classes and model.condition_kind == "class":
            key = trainer.objective.declares.condition.batch_key
            images = next(v for k, v in self._holdout.items() if k != key)
            groups, unscored = evaluate_classes(
                model,
                images,
                self._holdout[key],
                self._metrics,
                self._extractors,
                self.batch_size,
                trainer.cfg["seed"],
                self._real,
            )
            if unscored and not self._warned_unscored:
                self._warned_unscored = True
                _warn(f"class(es) {', '.join(unscored)} have fewer than 2 held-out images: not scored")
        elif model.generates:
            groups["generated"] = evaluate_generation(
                model,
                next(iter(self._holdout.values())),
                self._metrics,
                self._extractors,
                self.batch_size,
                trainer.cfg["seed"],
                self._real.setdefault("generated", {}),
            )
        else:
            raise GanforgeError(
                f"[callbacks.eval]: objective '{model.name}' neither translates nor generates images"
            )
        return {f"eval/{group}/{k}": v for group, values in groups.items() for k, v in values.items()}

    def resolve_best(self, scalars: dict[str, float]) -> str:
        """The logged key ``best`` names among ``scalars`` (``""``: none)."""
        if "/" in self.best:
            key = f"eval/{self.best}"
            return key if key in scalars else ""
        for key in (f"eval/mean/{self.best}", f"eval/generated/{self.best}"):
            if key in scalars:
                return key
        found = [k for k in scalars if k.endswith(f"/{self.best}")]
        return found[0] if len(found) == 1 else ""

    def _improves(self, scalars: dict[str, float], step: int) -> bool:
        """Whether ``scalars`` hold a new best; if so it becomes the best (value and step)."""
        if not self.best:
            return False
        key = self.resolve_best(scalars)
        if not key:
            # A typo must not end a long run: say so once and stop tracking the best.
            known = ", ".join(k.removeprefix("eval/") for k in scalars)
            _warn(
                f"best = '{self.best}' is not one of the evaluated values ({known}); not keeping a best "
                "checkpoint"
            )
            self.best = ""
            return False
        if self.best_key and key != self.best_key:  # a resumed state chosen by another key
            self.best_value = self.best_step = None
        self.best_key = key
        value = float(scalars[key])
        if value != value:  # NaN is never a best
            return False
        better = self.best_value is None or (
            value < self.best_value if self.mode == "min" else value > self.best_value
        )
        if better:
            self.best_value, self.best_step = value, int(step)
        return better
