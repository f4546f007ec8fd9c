"""What a training method declares: its recipe sections, networks, optimizers, parts, batch
keys and what its inference does; plain data, checked once before anything is built."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ganforge.errors import GanforgeError


@dataclass(frozen=True)
class Section:
    """A recipe section an objective reads: ``[name]`` holding one component of ``kind``, or with
    ``roles`` several, one table per role (``[optim.g]`` and ``[optim.d]``)."""

    name: str
    kind: str
    required: bool = True
    roles: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Network:
    """A network built from a recipe section; ``inference`` ones are what a :class:`ganforge.Model`
    holds (translate, sample, export) and what the moving average follows."""

    section: str
    inference: bool = False


@dataclass(frozen=True)
class Optimizer:
    """An optimizer built from a recipe section, stepping the parameters of ``steps`` (networks).
    ``losses`` names the ``train_step`` keys it minimises, each exactly or as a prefix before
    ``_`` (``"cycle"`` covers ``cycle_A``); displays group the logged losses by it."""

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
    """A translation direction: ``network`` maps images of batch key ``source`` to ``target``;
    ``inverse`` names the direction that maps back (cycle metrics and sample rows use it)."""

    network: str
    source: str
    target: str
    inverse: str | None = None


@dataclass(frozen=True)
class Condition:
    """What the inference networks take besides their image or noise input: int64 indices into
    the dataset's ``classes`` under ``batch_key``, the ``networks``' second argument (``G(z, y)``).
    ``kind``: ``"class"`` (``sample --class NAME``) or ``"domain"`` (``translate --domain NAME``)."""

    batch_key: str
    networks: tuple[str, ...]
    kind: Literal["class", "domain"] = "class"


@dataclass(frozen=True)
class Declaration:
    """Everything an objective is made of, by name. ``paired`` names batch keys that must come
    aligned (an input and its target of one scene, as pix2pix trains on): the dataset must declare
    them in its ``aligned``."""

    sections: tuple[Section, ...] = ()
    networks: dict[str, Network] = field(default_factory=dict)
    optimizers: dict[str, Optimizer] = field(default_factory=dict)
    losses: dict[str, Part] = field(default_factory=dict)
    pools: dict[str, Part] = field(default_factory=dict)
    batch_keys: tuple[str, ...] = ()
    paired: tuple[str, ...] = ()
    directions: dict[str, Direction] = field(default_factory=dict)
    noise: str | None = None  # the network that maps latent vectors to images
    condition: Condition | None = None
    sample_unit: str = "images"  # what one batch element is, for throughput ("pairs")

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def inference_networks(self) -> list[str]:
        return [name for name, spec in self.networks.items() if spec.inference]

    def check(self, objective: str) -> None:
        """Cross-check the names (a plugin author's mistake, reported before anything is built)."""
        declared = {s.name for s in self.sections} | {f"{s.name}.{r}" for s in self.sections for r in s.roles}
        groups = (self.networks, self.optimizers, self.losses, self.pools)
        undeclared = [part.section for g in groups for part in g.values() if part.section not in declared]
        if undeclared:
            raise GanforgeError(f"objective '{objective}' builds from undeclared section [{undeclared[0]}]")
        for name, opt in self.optimizers.items():
            if unknown := [n for n in opt.steps if n not in self.networks]:
                raise GanforgeError(f"objective '{objective}': optimizer '{name}' steps unknown {unknown}")
        for name, d in self.directions.items():
            if d.network not in self.networks or (d.inverse and d.inverse not in self.directions):
                raise GanforgeError(f"objective '{objective}': direction '{name}' names unknown parts")
        if self.noise is not None and self.noise not in self.networks:
            raise GanforgeError(f"objective '{objective}': noise network '{self.noise}' is not declared")
        if self.condition is not None:
            unknown = [n for n in self.condition.networks if n not in self.networks]
            if unknown or self.condition.batch_key not in self.batch_keys:
                raise GanforgeError(
                    f"objective '{objective}': its condition names unknown networks {unknown} or a "
                    f"batch key '{self.condition.batch_key}' not in batch_keys"
                )
        if not set(self.paired) <= set(self.batch_keys):
            raise GanforgeError(
                f"objective '{objective}': paired keys {list(self.paired)} are not batch keys"
            )

    def loss_groups(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """Loss keys grouped by the optimizer that minimises them, each group named by the kinds of
        the networks it steps (``generator``, ``generator+projector``); other keys go to ``other``."""
        owners: list[tuple[str, str]] = []  # (loss prefix, group), in declaration order
        for name, opt in self.optimizers.items():
            kinds = [self.networks[n].section.split(".")[0] for n in opt.steps if n in self.networks]
            owners += [(prefix, "+".join(dict.fromkeys(kinds)) or name) for prefix in opt.losses]
        groups: dict[str, list[str]] = {}
        for key in keys:
            group = next((g for p, g in owners if key == p or key.startswith(p + "_")), "other")
            groups.setdefault(group, []).append(key)
        return groups

    def to_json(self) -> dict[str, Any]:
        plain = asdict(self)
        plain["sections"] = [asdict(s) for s in self.sections]
        return plain
