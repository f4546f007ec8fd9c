"""The training engine: what every method's step needs and no method writes (lr schedules, the fp16
GradScaler, the moving average, CUDA-graph readiness, checkpoint state and its checks, the model card)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from ganforge.errors import GanforgeError
from ganforge.method.objective import Objective
from ganforge.method.toolkit import make_capturable
from ganforge.runtime import Runtime, unwrap
from ganforge.safety import first_nonfinite
from ganforge.training.state import check_optimizer_state, compare_tensors, kind_of


class Engine:
    """Runs one objective's steps and holds its state: networks, ``opt_<name>``, pools, ``scaler``."""

    def __init__(self, objective: Objective, builder: Any, runtime: Runtime, ema: float = 0.0) -> None:
        self.objective, self.builder, self.runtime = objective, builder, runtime
        self.declares = objective.declares
        self.scaler = runtime.grad_scaler()
        schedule = builder.build("schedule") if builder.has("schedule") else None
        for opt in objective.optimizers.values():
            opt.factor, opt.scaler = schedule, self.scaler
        self.ema_decay = float(ema)
        self.ema: dict[str, nn.Module] = {}
        if self.ema_decay > 0:
            self._enable_ema()

    def run_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        """What the trainer calls (and captures in a CUDA graph): settings, ``train_step``, scaler."""
        self.set_step(step)
        losses = self.objective.train_step(batch, step)
        if self.scaler is not None:
            self.scaler.update()
        return {k: v.detach() for k, v in losses.items()}

    def set_step(self, step: int) -> None:
        """Host-side settings of a step (the scheduled learning rates, the objective's own, the
        moving average's decay); records nothing in a graph."""
        for opt in self.objective.optimizers.values():
            opt.set_step(step)
        if self.runtime.device.type == "cuda" and torch.cuda.is_current_stream_capturing():
            return  # host values: set again before every replay, never recorded into the graph
        self.objective.prepare_step(step)
        if self.ema:
            decay = self.objective.ema_decay(step)
            self._ema_weight.fill_(1.0 - (self.ema_decay if decay is None else float(decay)))

    def step_variant(self, step: int) -> Any:
        return self.objective.step_variant(step)

    def capture_ready(self) -> str | None:
        """Switch pools and optimizers to graph-safe behaviour; returns why not, or None."""
        parts: dict[str, Any] = dict(self.objective.pools())
        parts.update({self.declares.optimizers[n].section: o for n, o in self.objective.optimizers.items()})
        return make_capturable(parts)

    def fresh_start(self) -> None:
        """Before the first step of a new run: the objective's ``on_fresh_start`` (pre-trained
        weights), then the moving averages start from the networks as they now are."""
        self.objective.on_fresh_start()
        with torch.no_grad():
            for name, average in self.ema.items():
                average.load_state_dict(unwrap(self.objective.nets[name]).state_dict())

    def _enable_ema(self) -> None:
        """``<name>_ema``: a moving average of each inference network, updated after each step of
        its optimizer; inference uses the averages."""
        nets = self.objective.nets
        # 1 - decay, a device tensor: a scheduled decay changes it in place, even inside a graph
        self._ema_weight = torch.tensor(1.0 - self.ema_decay, device=self.runtime.device)
        for name in self.declares.inference_networks():
            average = self.runtime.prepare(copy.deepcopy(unwrap(nets[name])), trainable=False)
            self.ema[name] = average.requires_grad_(False)
        for opt_name, opt in self.objective.optimizers.items():
            names = [n for n in self.declares.optimizers[opt_name].steps if n in self.ema]
            if names:
                opt.after_step.append(lambda names=names: self._update_ema(names))

    @torch.no_grad()
    def _update_ema(self, names: list[str]) -> None:
        for name in names:
            average, net = self.ema[name], unwrap(self.objective.nets[name])
            params = list(average.parameters())
            torch._foreach_lerp_(params, list(net.parameters()), [self._ema_weight] * len(params))
            for b_avg, b in zip(average.buffers(), net.buffers()):
                b_avg.copy_(b)

    @property
    def networks(self) -> dict[str, nn.Module]:
        """Every network by name, plain (not compiled or wrapped), moving averages included."""
        nets = {name: unwrap(net) for name, net in self.objective.nets.items()}
        nets.update({f"{name}_ema": net for name, net in self.ema.items()})
        return nets

    def inference_networks(self) -> dict[str, nn.Module]:
        """Each inference network as inference uses it: its moving average when there is one."""
        return {
            name: self.ema.get(name) or unwrap(self.objective.nets[name])
            for name in self.declares.inference_networks()
        }

    def learning_rates(self) -> dict[str, float]:
        """Each optimizer's current learning rate, by name."""
        return {name: opt.lr for name, opt in self.objective.optimizers.items()}

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizers (``opt_<name>``), pools and the GradScaler, by name."""
        state: dict[str, Any] = {name: net.state_dict() for name, net in self.networks.items()}
        state.update({f"opt_{name}": opt.state_dict() for name, opt in self.objective.optimizers.items()})
        state.update({name: pool.state_dict() for name, pool in self.objective.pools().items()})
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def check_state_dict(self, state: Any) -> list[str]:
        """What in ``state`` does not fit the objective's declared parts (empty: it fits): part
        names, tensor names, shapes and dtypes, optimizer moments, finite values."""
        if not isinstance(state, dict):
            return [f"the objective state is {kind_of(state)}, not a table"]
        expected = set(self.networks) | {f"opt_{n}" for n in self.objective.optimizers}
        expected |= set(self.objective.pools()) | ({"scaler"} if self.scaler is not None else set())
        # fp16 resuming a non-fp16 run gets a fresh scaler
        parts = (("missing", expected - set(state) - {"scaler"}), ("unexpected", set(state) - expected))
        if problems := [f"{word} part {', '.join(sorted(keys))}" for word, keys in parts if keys]:
            return problems
        for name, net in self.networks.items():
            problems += compare_tensors(net.state_dict(), state[name], f"objective/{name}")
        for name, opt in self.objective.optimizers.items():
            problems += check_optimizer_state(opt.optimizer, state[f"opt_{name}"], f"objective/opt_{name}")
        for name in self.objective.pools():
            if not isinstance(state[name], dict):
                problems.append(f"objective/{name} is {kind_of(state[name])}, not a table")
        for key in sorted(state, key=lambda k: (k not in self.networks, k)):  # networks first
            bad = first_nonfinite(state[key], f"objective/{key}")
            if bad is not None:
                problems.append(f"{bad} holds NaN or infinite values")
                break
        return problems

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; everything is checked first and the differences named."""
        if problems := self.check_state_dict(state):
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise GanforgeError(
                f"objective '{self.objective.name}' state does not match its parts: {problems[0]}{more}"
            )
        for name, net in self.networks.items():
            net.load_state_dict(state[name])
        for name, opt in self.objective.optimizers.items():
            opt.load_state_dict(state[f"opt_{name}"])
        self.load_local_state_dict({n: state[n] for n in self.objective.pools()})
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def local_state_dict(self) -> dict[str, Any]:
        """What differs between DDP ranks: each rank's image pools."""
        return {name: pool.state_dict() for name, pool in self.objective.pools().items()}

    def load_local_state_dict(self, state: dict[str, Any]) -> None:
        for name, pool in self.objective.pools().items():
            if name in state:
                pool.load_state_dict(state[name])

    def card(self, image_size: int | None, classes: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """The model card of the inference networks (:mod:`ganforge.model`): what a checkpoint
        keeps so that inference builds only them, with no recipe."""
        from ganforge import protocols
        from ganforge.model import card_network, make_card
        from ganforge.recipe import resolved_table

        recipe, objective = self.builder.recipe, self.objective
        networks = {}
        for name, net in self.inference_networks().items():
            section = self.declares.networks[name].section
            entry = networks[name] = card_network(
                recipe.specs[section],
                resolved_table(recipe, section),
                objective.contexts.get(name, {}),
                net,
                section=section,
                ema=name in self.ema,
            )
            if name == self.declares.noise:
                entry["latent_dim"] = protocols.latent_dim(net)
        extra = {"sample_count": objective.sample_count, "sample_seed": objective.sample_seed}
        return make_card(objective.name, self.declares, networks, image_size, classes, **extra)
