"""The objective contract: what a training method declares, and the one method it writes.

An objective is a subclass of :class:`Objective` with a :class:`Declaration` of its parts:
the recipe sections it reads, its networks, its optimizers (with the networks each one steps),
its pools and losses, the batch keys it needs, and what it can do at inference (translate in
named directions, or generate from noise). The base class builds the parts from the recipe and
derives from the declaration everything that is the same for every method: checkpoint state
(global and per-rank), CUDA-graph readiness, scheduled learning rates, an optional moving
average of the inference networks, parameter counts, translation, sampling and sample grids.
A method writes ``train_step(batch, step) -> losses``, like a LightningModule's
``training_step``, and whatever inference it does differently.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ganforge.errors import GanforgeError
from ganforge.runtime import Runtime, eval_mode, unwrap
from ganforge.safety import MemoryBudget, first_nonfinite

# -- declarations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A recipe section an objective reads: ``[name]`` holding one component of ``kind``.

    With ``roles`` the section holds several components of the kind, one table per role
    (``[optim.g]`` and ``[optim.d]``; ``[discriminator.global]`` and ``[discriminator.local]``).
    """

    name: str
    kind: str
    required: bool = True
    roles: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Network:
    """A network built from a recipe section; ``inference`` ones are what translate/generate use."""

    section: str
    inference: bool = False


@dataclass(frozen=True)
class Optimizer:
    """An optimizer built from a recipe section, stepping the parameters of ``steps`` (networks).

    ``losses`` names the ``train_step`` keys it minimises, each exactly or as a prefix before
    ``_`` (``"cycle"`` covers ``cycle_A``): the progress view and other displays group the
    logged losses by it.
    """

    section: str
    steps: tuple[str, ...]
    losses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Part:
    """Any other component built from a section (a loss, an image pool); ``optional`` ones are
    built only when the recipe has the section."""

    section: str
    optional: bool = False


@dataclass(frozen=True)
class Direction:
    """A translation direction: ``network`` maps images of batch key ``source`` to ``target``.

    ``inverse`` names the direction that maps back (cycle metrics and sample rows use it).
    """

    network: str
    source: str
    target: str
    inverse: str | None = None


@dataclass(frozen=True)
class Declaration:
    """Everything an objective is made of, by name."""

    sections: tuple[Section, ...] = ()
    networks: dict[str, Network] = field(default_factory=dict)
    optimizers: dict[str, Optimizer] = field(default_factory=dict)
    losses: dict[str, Part] = field(default_factory=dict)
    pools: dict[str, Part] = field(default_factory=dict)
    batch_keys: tuple[str, ...] = ()
    directions: dict[str, Direction] = field(default_factory=dict)
    noise: str | None = None  # the network that maps latent vectors to images
    sample_unit: str = "images"  # what one batch element is, for throughput ("pairs")

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def check(self, objective: str) -> None:
        """Cross-check the names (a plugin author's mistake, reported before anything is built)."""
        declared = {s.name for s in self.sections}
        for role in {s.name: s for s in self.sections}.values():
            declared.update(f"{role.name}.{r}" for r in role.roles)
        parts = [
            *self.networks.values(),
            *self.optimizers.values(),
            *self.losses.values(),
            *self.pools.values(),
        ]
        for part in parts:
            if part.section not in declared:
                raise GanforgeError(
                    f"objective '{objective}' builds from undeclared section [{part.section}]"
                )
        for name, opt in self.optimizers.items():
            unknown = [n for n in opt.steps if n not in self.networks]
            if unknown:
                raise GanforgeError(f"objective '{objective}': optimizer '{name}' steps unknown {unknown}")
        for name, d in self.directions.items():
            if d.network not in self.networks or (d.inverse and d.inverse not in self.directions):
                raise GanforgeError(f"objective '{objective}': direction '{name}' names unknown parts")
        if self.noise is not None and self.noise not in self.networks:
            raise GanforgeError(f"objective '{objective}': noise network '{self.noise}' is not declared")

    def loss_groups(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """Loss keys grouped by the optimizer that minimises them (``Optimizer.losses``).

        A group is named by the kinds of the networks its optimizer steps (``generator``,
        ``discriminator``; ``generator+projector`` for one stepping both). A key no optimizer
        declares goes by its name: ``D...`` and ``gp...`` to ``discriminator``, the rest to
        ``generator``.
        """
        labels = {}
        for name, opt in self.optimizers.items():
            kinds = [self.networks[n].section.split(".")[0] for n in opt.steps if n in self.networks]
            labels[name] = "+".join(dict.fromkeys(kinds)) or name
        groups: dict[str, list[str]] = {}
        for key in keys:
            owner = next(
                (
                    n
                    for n, opt in self.optimizers.items()
                    if any(key == p or key.startswith(p + "_") for p in opt.losses)
                ),
                None,
            )
            if owner is not None:
                label = labels[owner]
            else:
                label = "discriminator" if key.startswith(("D", "gp")) else "generator"
            groups.setdefault(label, []).append(key)
        return groups

    def to_json(self) -> dict[str, Any]:
        plain = asdict(self)
        plain["sections"] = [asdict(s) for s in self.sections]
        return plain


# -- helpers every objective uses ----------------------------------------------------------------


class ScheduledOptimizer:
    """An optimizer with a learning-rate factor schedule and an optional shared GradScaler.

    ``factor(step)`` multiplies each parameter group's base lr; setting a float lr per step
    needs no host sync. ``after_step`` functions run after every ``minimize`` (moving averages).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        factor: Callable[[int], float] | None = None,
        scaler: torch.amp.GradScaler | None = None,
    ) -> None:
        self.optimizer = optimizer
        self.factor = factor
        self.scaler = scaler
        self.after_step: list[Callable[[], None]] = []
        self._capturable = False
        self._factor = 1.0
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])

    def set_step(self, step: int) -> None:
        """Set each group's lr for ``step``: a float, or in place into a tensor lr (graph mode).

        While a CUDA graph is being captured this records nothing: the value is host data,
        set before every replay.
        """
        if self.factor is None:
            return
        f = self._factor = float(self.factor(step))
        for group in self.optimizer.param_groups:
            lr = group["lr"]
            if isinstance(lr, torch.Tensor):
                if not (lr.is_cuda and torch.cuda.is_current_stream_capturing()):
                    lr.fill_(group["initial_lr"] * f)
            else:
                group["lr"] = group["initial_lr"] * f

    def make_capturable(self) -> str | None:
        """Make ``step()`` safe to capture in a CUDA graph; returns why not, or None.

        Step counters move to the device (``capturable``) and, under a schedule, learning rates
        become device tensors, so the schedule changes them in place instead of baking one value
        into the graph.
        """
        opt = self.optimizer
        for group in opt.param_groups:
            if "capturable" not in group and not group.get("fused"):
                return f"{type(opt).__name__} without fused=true cannot be captured"
        self._capturable = True
        for group in opt.param_groups:
            device = group["params"][0].device
            if "capturable" in group:
                group["capturable"] = True
            if self.factor is not None and not isinstance(group["lr"], torch.Tensor):
                group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
        for param, state in opt.state.items():
            step = state.get("step")
            if isinstance(step, torch.Tensor) and step.device != param.device:
                state["step"] = step.to(param.device, torch.float32)
        return None

    def minimize(self, loss: Tensor) -> None:
        """zero_grad(set_to_none), backward (scaled under fp16), step, then ``after_step``."""
        minimize(loss, self)

    @property
    def lr(self) -> float:
        """The first group's current lr (computed on the host: a tensor lr is never read back)."""
        group = self.optimizer.param_groups[0]
        if isinstance(group["lr"], torch.Tensor):
            return group["initial_lr"] * self._factor
        return group["lr"]

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state; graph-mode settings (tensor lr, capturable) saved as plain ones."""
        state = self.optimizer.state_dict()
        for group in state["param_groups"]:  # fresh dicts: the live groups are untouched
            if isinstance(group.get("lr"), torch.Tensor):
                group["lr"] = float(group["lr"])
            if "capturable" in group:
                group["capturable"] = False
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore moments and step counts; the hyperparameters stay the recipe's (a resumed run's
        ``--set optim.g.lr=...`` takes effect, an unchanged recipe resumes exactly)."""
        recipe = [{k: v for k, v in g.items() if k in _RECIPE_KEYS} for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state)
        for group, settings in zip(self.optimizer.param_groups, recipe):
            group.update(settings)
        # Saved moments are contiguous; fused and foreach kernels need the parameters' strides
        # (channels_last conv weights on CUDA).
        for param, param_state in self.optimizer.state.items():
            for key, value in param_state.items():
                if (
                    isinstance(value, torch.Tensor)
                    and value.shape == param.shape
                    and value.stride() != param.stride()
                ):
                    param_state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
        if self._capturable:
            self.make_capturable()


# Optimizer settings that come from the recipe, not from a checkpoint.
_RECIPE_KEYS = ("lr", "initial_lr", "betas", "eps", "weight_decay", "momentum", "dampening", "nesterov")


def minimize(loss: Tensor, *optimizers: ScheduledOptimizer) -> None:
    """One backward of ``loss``, then a step of each optimizer (e.g. a generator and its head).

    Gradients are zeroed first (set to None); under fp16 the loss is scaled and each step goes
    through the shared GradScaler. Each optimizer's ``after_step`` runs after its step.
    """
    for opt in optimizers:
        opt.optimizer.zero_grad(set_to_none=True)
    scaler = optimizers[0].scaler
    (scaler.scale(loss) if scaler is not None else loss).backward()
    for opt in optimizers:
        if scaler is not None:
            scaler.step(opt.optimizer)
        else:
            opt.optimizer.step()
        for fn in opt.after_step:
            fn()


def make_capturable(parts: dict[str, Any]) -> str | None:
    """Call ``make_capturable()`` on each named part (pools first, then optimizers).

    Returns the first part's reason for refusing, prefixed with its name, or None when all agree.
    A part without the method refuses.
    """
    for name, part in parts.items():
        if part is None:
            continue
        method = getattr(part, "make_capturable", None)
        reason = f"{type(part).__name__} has no make_capturable()" if method is None else method()
        if reason:
            return f"{name}: {reason}"
    return None


def set_requires_grad(modules: Iterable[nn.Module], flag: bool) -> None:
    """Freeze or unfreeze networks (the discriminators during a generator step)."""
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(flag)


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Networks with ``requires_grad`` off inside the block, on again after it."""
    set_requires_grad(modules, False)
    try:
        yield
    finally:
        set_requires_grad(modules, True)


def outputs_probabilities(module: nn.Module) -> bool:
    """Whether a discriminator ends in a sigmoid (its ``outputs_probabilities`` attribute)."""
    return bool(getattr(unwrap(module), "outputs_probabilities", False))


def _kind(value: Any) -> str:
    if isinstance(value, Tensor):
        return "a tensor"
    return {dict: "a table", list: "a list", tuple: "a tuple", str: "a string"}.get(
        type(value), type(value).__name__
    )


def _compare_tensors(expected: dict[str, Tensor], given: Any, where: str) -> list[str]:
    """Names, shapes and dtypes of a network's saved tensors against the live network's."""
    if not isinstance(given, dict):
        return [f"{where} is {_kind(given)}, not a table of tensors"]
    missing = [k for k in expected if k not in given]
    extra = [k for k in given if k not in expected]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(f'{where}/{k}' for k in missing[:3])}" + _more(missing))
    if extra:
        problems.append(f"unexpected {', '.join(f'{where}/{k}' for k in extra[:3])}" + _more(extra))
    for key, live in expected.items():
        saved = given.get(key)
        if key not in given:
            continue
        if not isinstance(saved, Tensor):
            problems.append(f"{where}/{key} is {_kind(saved)}, not a tensor")
        elif tuple(saved.shape) != tuple(live.shape):
            problems.append(
                f"{where}/{key} has shape {list(saved.shape)}, the network has {list(live.shape)}"
            )
        elif saved.dtype != live.dtype:
            problems.append(
                f"{where}/{key} is {str(saved.dtype).removeprefix('torch.')}, the network "
                f"has {str(live.dtype).removeprefix('torch.')}"
            )
    return problems


def _more(items: list[Any]) -> str:
    return f" and {len(items) - 3} more" if len(items) > 3 else ""


def _check_optimizer_state(optimizer: torch.optim.Optimizer, given: Any, where: str) -> list[str]:
    """An optimizer's saved groups and per-parameter state against its live parameters."""
    if not isinstance(given, dict) or not isinstance(given.get("state"), dict):
        return [f"{where} is not an optimizer state (a table with 'state' and 'param_groups')"]
    groups = given.get("param_groups")
    live_groups = optimizer.param_groups
    if not isinstance(groups, list) or len(groups) != len(live_groups):
        count = len(groups) if isinstance(groups, list) else _kind(groups)
        return [f"{where}/param_groups: {count} groups saved, the optimizer has {len(live_groups)}"]
    params: dict[int, Tensor] = {}
    for i, (group, live) in enumerate(zip(groups, live_groups)):
        ids = group.get("params") if isinstance(group, dict) else None
        if not isinstance(ids, list) or len(ids) != len(live["params"]):
            return [f"{where}/param_groups/{i}: not the {len(live['params'])} parameters of the optimizer"]
        for pid, p in zip(ids, live["params"]):
            if not isinstance(pid, int) or isinstance(pid, bool):
                return [f"{where}/param_groups/{i}: parameter id {pid!r} is not an int"]
            params[pid] = p
    for pid, entry in given["state"].items():
        if pid not in params:
            return [f"{where}/state/{pid}: no such parameter"]
        if not isinstance(entry, dict):
            return [f"{where}/state/{pid} is {_kind(entry)}, not a table"]
        shape = tuple(params[pid].shape)
        for key, value in entry.items():
            if isinstance(value, Tensor) and value.dim() > 0 and tuple(value.shape) != shape:
                return [
                    f"{where}/state/{pid}/{key} has shape {list(value.shape)}, its parameter {list(shape)}"
                ]
            if isinstance(value, Tensor) and value.dim() > 0 and not value.is_floating_point():
                return [
                    f"{where}/state/{pid}/{key} is {str(value.dtype).removeprefix('torch.')}, not floating"
                ]
    return []


# -- the base class --------------------------------------------------------------------------------


class Objective:
    """Base class of every training objective.

    Subclasses set ``declares`` and write ``train_step(batch, step) -> dict of loss tensors``.
    Their ``__init__`` takes ``builder`` and ``runtime`` (the kind's context) plus their own
    recipe options, and calls ``super().__init__(builder, runtime)``, which builds every
    declared part: networks (moved to the device, compiled or DDP-wrapped as the runtime says)
    become attributes by name, optimizers become ``opt_<name>``, losses and pools attributes by
    name (``None`` when an optional section is absent). Options that ``network_context`` needs
    must be set before that call.
    """

    declares: ClassVar[Declaration] = Declaration()
    sample_count: int = 4  # images per direction (or noise vectors) in sample grids
    sample_seed: int = 1234  # the fixed noise of generator sample grids

    def __init__(self, builder: Any, runtime: Runtime) -> None:
        decl = self.declares
        self.name: str = builder.recipe["objective"]["name"]
        self.runtime = runtime
        self.builder = builder
        self._nets: dict[str, nn.Module] = {}  # as trained: compiled or wrapped
        self._ema: dict[str, nn.Module] = {}
        self.ema_decay = 0.0
        # Each network is measured on the meta device first: one too big for the device's memory
        # is refused before anything is allocated.
        budget = MemoryBudget(runtime.device, 1.0 if builder.inference else 4.0)
        for name, spec in decl.networks.items():
            context = self.network_context(name)
            # Measured once per component, options and context (resolving the recipe measured most).
            key = builder.size_key(spec.section, context)
            budget.add(
                f"{name} [{spec.section}]", lambda s=spec.section, c=context: builder.build(s, **c), key
            )
            net = builder.build(spec.section, **context)
            self._nets[name] = runtime.prepare(net)
            setattr(self, name, self._nets[name])
        self.parts: dict[str, Any] = {}
        for name, spec in {**decl.losses, **decl.pools}.items():
            part = None if spec.optional and not builder.has(spec.section) else builder.build(spec.section)
            self.parts[name] = part
            setattr(self, name, part)
        # Differentiable augmentation of every discriminator input, for any objective.
        self.augment = builder.build("augment") if builder.has("augment") else None
        schedule = builder.build("schedule") if builder.has("schedule") else None
        self.scaler = runtime.grad_scaler()
        self.optimizers: dict[str, ScheduledOptimizer] = {}
        for name, spec in decl.optimizers.items():
            params = [p for n in spec.steps for p in self._nets[n].parameters()]
            opt = ScheduledOptimizer(builder.build(spec.section, params=params), schedule, self.scaler)
            self.optimizers[name] = opt
            setattr(self, f"opt_{name}", opt)
        self._compiled: dict[str, nn.Module] = {}  # inference networks, when runtime.compile
        self._fixed_noise: Tensor | None = None  # the noise of generator sample grids

    def network_context(self, name: str) -> dict[str, Any]:
        """Context passed when building network ``name`` (e.g. channel counts of another network)."""
        return {}

    # -- the step --------------------------------------------------------------------------

    def d_input(self, images: Tensor) -> Tensor:
        """What a discriminator sees of ``images``: the recipe's ``[augment]`` applied, if any.

        Call it on real and generated images alike, in the D and the G steps (DiffAugment).
        """
        return images if self.augment is None else self.augment(images)

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        """One optimisation step on a batch of the declared keys; returns the losses to log."""
        raise NotImplementedError(f"{type(self).__name__} must implement train_step(batch, step)")

    def run_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        """What the trainer calls (and captures in a CUDA graph): settings, ``train_step``, scaler."""
        self.set_step(step)
        losses = self.train_step(batch, step)
        if self.scaler is not None:
            self.scaler.update()
        return {k: v.detach() for k, v in losses.items()}

    def set_step(self, step: int) -> None:
        """Host-side settings of a step (the scheduled learning rates); records nothing in a graph."""
        for opt in self.optimizers.values():
            opt.set_step(step)

    def step_variant(self, step: int) -> Any:
        """A hashable naming which work ``step`` does; one CUDA graph is captured per value."""
        return None

    def capture_ready(self) -> str | None:
        """Switch pools and optimizers to graph-safe behaviour; returns why not, or None."""
        parts: dict[str, Any] = dict(self._pools())
        parts.update({self.declares.optimizers[n].section: o for n, o in self.optimizers.items()})
        return make_capturable(parts)

    # -- moving average of the inference networks --------------------------------------------

    def enable_ema(self, decay: float) -> None:
        """Keep ``<name>_ema``, a moving average of each inference network, updated after each
        step of the optimizer that trains it; inference then uses the averages."""
        if decay <= 0:
            return
        self.ema_decay = float(decay)
        for name, spec in self.declares.networks.items():
            if not spec.inference:
                continue
            average = self.runtime.prepare(copy.deepcopy(unwrap(self._nets[name])), trainable=False)
            average.requires_grad_(False)
            self._ema[name] = average
            setattr(self, f"{name}_ema", average)
        for opt_name, opt in self.optimizers.items():
            names = [n for n in self.declares.optimizers[opt_name].steps if n in self._ema]
            if names:
                opt.after_step.append(lambda names=names: self._update_ema(names))

    @torch.no_grad()
    def _update_ema(self, names: list[str]) -> None:
        for name in names:
            average, net = self._ema[name], unwrap(self._nets[name])
            torch._foreach_lerp_(list(average.parameters()), list(net.parameters()), 1.0 - self.ema_decay)
            for b_avg, b in zip(average.buffers(), net.buffers()):
                b_avg.copy_(b)

    # -- what the declaration gives every objective --------------------------------------------

    @property
    def networks(self) -> dict[str, nn.Module]:
        """Every network by name, plain (not compiled or wrapped), moving averages included."""
        nets = {name: unwrap(net) for name, net in self._nets.items()}
        nets.update({f"{name}_ema": net for name, net in self._ema.items()})
        return nets

    def inference_networks(self) -> dict[str, nn.Module]:
        """The networks inference needs, as saved: the declared inference ones and their averages."""
        names = [n for n, spec in self.declares.networks.items() if spec.inference]
        nets = {name: unwrap(self._nets[name]) for name in names}
        nets.update({f"{name}_ema": self._ema[name] for name in names if name in self._ema})
        return nets

    def inference_network(self, name: str) -> nn.Module:
        """Network ``name`` as inference uses it: its moving average when there is one."""
        average = self._ema.get(name)
        return average if average is not None else unwrap(self._nets[name])

    def parameter_counts(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in net.parameters()) for name, net in self.networks.items()}

    def learning_rates(self) -> dict[str, float]:
        """Each optimizer's current learning rate, by name."""
        return {name: opt.lr for name, opt in self.optimizers.items()}

    # -- state ---------------------------------------------------------------------------------

    def _pools(self) -> dict[str, Any]:
        return {n: p for n, p in self.parts.items() if n in self.declares.pools and p is not None}

    def state_keys(self, inference_only: bool = False) -> set[str]:
        """The top-level keys of ``state_dict()`` (checked before a checkpoint is loaded)."""
        if inference_only:
            return set(self.inference_networks())
        keys = set(self.networks) | {f"opt_{n}" for n in self.optimizers} | set(self._pools())
        return keys | ({"scaler"} if self.scaler is not None else set())

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizers (``opt_<name>``), pools and the GradScaler, by name."""
        state: dict[str, Any] = {name: net.state_dict() for name, net in self.networks.items()}
        state.update({f"opt_{name}": opt.state_dict() for name, opt in self.optimizers.items()})
        state.update({name: pool.state_dict() for name, pool in self._pools().items()})
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def check_state_dict(self, state: Any, inference_only: bool = False) -> list[str]:
        """What in ``state`` does not fit this objective's declared parts (empty: it fits).

        Checked without touching any state: the part names; each network's tensor names,
        shapes and dtypes; each optimizer's groups and moment shapes against its parameters;
        and that every floating tensor is finite. Each problem names its key
        (``objective/<network>/model.1.bias``). With ``inference_only`` only the inference networks
        are required, and the other parts are checked where the state has them.
        """
        if not isinstance(state, dict):
            return [f"the objective state is {_kind(state)}, not a table"]
        expected = self.state_keys(inference_only)
        missing = sorted(expected - set(state))
        if "scaler" in missing:  # a checkpoint made without fp16 resumes under fp16 with a fresh scaler
            missing.remove("scaler")
        extra = sorted(set(state) - self.state_keys())
        problems = [f"missing part {', '.join(missing)}"] if missing else []
        problems += [f"unexpected part {', '.join(extra)}"] if extra else []
        if problems:
            return problems
        for name, net in self.networks.items():
            if name in state:
                problems += _compare_tensors(net.state_dict(), state[name], f"objective/{name}")
        for name, opt in self.optimizers.items():
            if f"opt_{name}" in state:
                problems += _check_optimizer_state(
                    opt.optimizer, state[f"opt_{name}"], f"objective/opt_{name}"
                )
        for name in self._pools():
            if name in state and not isinstance(state[name], dict):
                problems.append(f"objective/{name} is {_kind(state[name])}, not a table")
        for key in sorted(state, key=lambda k: (k not in self.networks, k)):  # networks first
            bad = first_nonfinite(state[key], f"objective/{key}")
            if bad is not None:
                problems.append(f"{bad} holds NaN or infinite values")
                break
        return problems

    def load_state_dict(self, state: dict[str, Any], inference_only: bool = False) -> None:
        """Restore :meth:`state_dict`; everything is checked first (:meth:`check_state_dict`)
        and the differences named."""
        problems = self.check_state_dict(state, inference_only)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise GanforgeError(
                f"objective '{self.name}' state does not match its parts: {problems[0]}{more}"
            )
        nets = self.inference_networks() if inference_only else self.networks
        for name, net in nets.items():
            net.load_state_dict(state[name])
        if inference_only:
            return
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[f"opt_{name}"])
        self.load_local_state_dict({n: state[n] for n in self._pools()})
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def local_state_dict(self) -> dict[str, Any]:
        """What differs between DDP ranks: each rank's image pools."""
        return {name: pool.state_dict() for name, pool in self._pools().items()}

    def load_local_state_dict(self, state: dict[str, Any]) -> None:
        for name, pool in self._pools().items():
            if name in state:
                pool.load_state_dict(state[name])

    # -- inference -------------------------------------------------------------------------------

    @property
    def directions(self) -> dict[str, Direction]:
        """Translation directions by name (empty: this objective does not translate)."""
        return self.declares.directions

    @property
    def generates(self) -> bool:
        """Whether this objective generates images from noise."""
        return self.declares.noise is not None

    def direction(self, name: str | None) -> str:
        """``name`` checked against the declared directions (None: the first); a one-line error."""
        known = list(self.directions)
        if not known:
            raise GanforgeError(f"objective '{self.name}' does not translate images (use 'ganforge sample')")
        if name is None:
            return known[0]
        if name not in self.directions:
            raise GanforgeError(
                f"objective '{self.name}' has no direction '{name}'; it translates {', '.join(known)}"
            )
        return name

    def size_multiple(self, direction: str) -> int:
        """What the input sides must be divisible by (the network's ``size_multiple``, else 1)."""
        net = self.inference_network(self.directions[direction].network)
        return int(getattr(net, "size_multiple", 1))

    def translate(self, images: Tensor, direction: str) -> Tensor:
        """Images in [-1, 1] -> translated images in [-1, 1] (float32)."""
        direction = self.direction(direction)
        net = self.inference_network(self.directions[direction].network)
        if self.runtime.compile:
            if direction not in self._compiled:
                self._compiled[direction] = torch.compile(net)
            return self._forward(self._compiled[direction], images, net)
        return self._forward(net, images, net)

    def _forward(self, fn: Callable[[Tensor], Tensor], x: Tensor, net: nn.Module) -> Tensor:
        with eval_mode(net), self.runtime.autocast():
            return fn(x).float()

    @property
    def latent_dim(self) -> int:
        if self.declares.noise is None:
            raise GanforgeError(
                f"objective '{self.name}' does not generate from noise (use 'ganforge translate')"
            )
        return int(getattr(self.inference_network(self.declares.noise), "latent_dim", 100))

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Latent vectors on the device (drawn on the CPU when a generator is given, for seeding)."""
        if generator is not None:
            return torch.randn(n, self.latent_dim, generator=generator).to(self.runtime.device)
        return torch.randn(n, self.latent_dim, device=self.runtime.device)

    def generate(self, z: Tensor) -> Tensor:
        """Latents -> images in [-1, 1] (float32), from the moving average when there is one."""
        if self.declares.noise is None:
            raise GanforgeError(
                f"objective '{self.name}' does not generate from noise (use 'ganforge translate')"
            )
        net = self.inference_network(self.declares.noise)
        with eval_mode(net), self.runtime.autocast():
            return net(z.to(self.runtime.device)).float()

    def sample_captions(self) -> list[str] | None:
        """Captions of ``sample_grid``'s columns (None for a generator's grid): per direction the
        input, its translation and, with an inverse, the reconstruction."""
        if not self.directions:
            return None
        captions: list[str] = []
        for d in self.directions.values():
            captions += [f"input {d.source}", f"{d.source} -> {d.target}"]
            if d.inverse:
                captions.append(f"{d.source} -> {d.target} -> {self.directions[d.inverse].target}")
        return captions

    def sample_grid(self, holdout: dict[str, Tensor] | None = None) -> Tensor:
        """A grid in [0, 1]: per held-out image, input | translation (| reconstruction) for each
        direction; or the fixed-noise samples of a generator."""
        from torchvision.utils import make_grid

        if not self.directions:
            if self._fixed_noise is None:
                g = torch.Generator().manual_seed(self.sample_seed)
                self._fixed_noise = self.noise(self.sample_count, g)
            images = self.generate(self._fixed_noise).clamp(-1, 1).add(1).div(2)
            nrow = max(1, int(round(len(images) ** 0.5)))
            return make_grid(images.cpu(), nrow=nrow, padding=2, pad_value=1.0)
        assert holdout is not None
        n = self.sample_count
        columns: list[list[Tensor]] = []
        for d in self.directions.values():  # plain networks: no compile for a few images
            real = holdout[d.source][:n]
            net = self.inference_network(d.network)
            fake = self._forward(net, real, net)
            if d.inverse:
                back = self.inference_network(self.directions[d.inverse].network)
                columns.append([real, fake, self._forward(back, fake, back)])
            else:
                columns.append([real, fake])
        k = min(len(col[0]) for col in columns)
        rows = [img[i] for i in range(k) for col in columns for img in col]
        images = torch.stack([r.float() for r in rows]).clamp(-1, 1).add(1).div(2)
        return make_grid(images.cpu(), nrow=sum(len(col) for col in columns), padding=2, pad_value=1.0)
