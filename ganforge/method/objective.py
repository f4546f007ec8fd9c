"""The objective contract: a training method declares its parts and writes ``train_step``; the
engine (``ganforge.training.engine``) does the rest. docs/objectives.md is the guide."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from ganforge.method.declaration import Declaration
from ganforge.method.toolkit import ScheduledOptimizer
from ganforge.runtime import Runtime
from ganforge.safety import MemoryBudget


class Objective:
    """Base class of every training objective: subclasses set ``declares`` and write
    ``train_step(batch, step) -> dict of loss tensors``. Their ``__init__`` takes ``builder``,
    ``runtime`` and their own recipe options and calls ``super().__init__(builder, runtime)``, which
    builds every declared part as an attribute by name (optimizers as ``opt_<name>``; ``None`` for
    an absent optional section). Options that :meth:`network_context` needs must be set before it."""

    declares: ClassVar[Declaration] = Declaration()
    sample_count: int = 4  # images per direction (or per class, or noise vectors) in sample grids
    sample_seed: int = 1234  # the fixed noise of generator sample grids

    def __init__(self, builder: Any, runtime: Runtime) -> None:
        decl = self.declares
        self.name: str = builder.recipe["objective"]["name"]
        self.runtime = runtime
        # the dataset's class count (0: no classes), what conditional networks are built for
        self.num_classes = int(builder.defaults.get("num_classes", 0))
        self.nets: dict[str, nn.Module] = {}  # as trained: compiled or wrapped (ganforge.unwrap: plain)
        self.contexts: dict[str, dict[str, Any]] = {}  # what each network was built with (model cards)
        # Each network is measured on the meta device first: one too big for the device's memory
        # is refused before anything is allocated (measured once per component, options, context).
        budget = MemoryBudget(runtime.device, 4.0)  # weights, gradients and two Adam moments
        for name, spec in decl.networks.items():
            context = builder.context_for(spec.section, **self.network_context(name))
            key = builder.size_key(spec.section, context)
            budget.add(
                f"{name} [{spec.section}]", lambda s=spec.section, c=context: builder.build(s, **c), key
            )
            self.contexts[name] = context
            self.nets[name] = runtime.prepare(builder.build(spec.section, **context))
            setattr(self, name, self.nets[name])
        self.parts: dict[str, Any] = {}
        for name, spec in {**decl.losses, **decl.pools}.items():
            part = None if spec.optional and not builder.has(spec.section) else builder.build(spec.section)
            self.parts[name] = part
            setattr(self, name, part)
        self.augment = builder.build("augment") if builder.has("augment") else None
        self.optimizers: dict[str, ScheduledOptimizer] = {}
        for name, spec in decl.optimizers.items():
            params = [p for n in spec.steps for p in self.nets[n].parameters()]
            self.optimizers[name] = ScheduledOptimizer(builder.build(spec.section, params=params))
            setattr(self, f"opt_{name}", self.optimizers[name])

    def network_context(self, name: str) -> dict[str, Any]:
        """Context passed when building network ``name`` (e.g. channel counts of another network)."""
        return {}

    def d_input(self, images: Tensor) -> Tensor:
        """What a discriminator sees of ``images``: the recipe's ``[augment]`` applied, if any; call
        it on real and generated images alike, in the D and the G steps (DiffAugment)."""
        return images if self.augment is None else self.augment(images)

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        """One optimisation step on a batch of the declared keys; returns the losses to log."""
        raise NotImplementedError(f"{type(self).__name__} must implement train_step(batch, step)")

    def on_fresh_start(self) -> None:
        """Called once before the first step of a new run, never on resume: load pre-trained weights
        here (UVCGAN2's pre-training); the moving average starts from what this leaves."""

    def prepare_step(self, step: int) -> None:
        """Host-side settings of step ``step`` (schedules of loss weights, Adam betas, an
        augmentation probability): runs before every step, outside any CUDA graph. A value the
        step reads on the device must live in a tensor written in place here (``t.fill_(v)``)."""

    def ema_decay(self, step: int) -> float | None:
        """The moving average's decay at ``step`` (a schedule, as R3GAN's EMA half-life in images);
        None, the default, keeps the recipe's ``[objective] ema``. Only used when that is on."""
        return None

    def step_variant(self, step: int) -> Any:
        """A hashable naming which work ``step`` does; one CUDA graph is captured per value
        (DCGAN's ``n_critic``: whether G updates at this step)."""
        return None

    def pools(self) -> dict[str, Any]:
        """The declared image pools that the recipe has (saved per DDP rank)."""
        return {n: p for n, p in self.parts.items() if n in self.declares.pools and p is not None}
