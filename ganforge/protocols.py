"""Typed capabilities of components: what the engine and the apps may ask of them. A component
declares one by having the attribute or method (a class attribute is enough: ``size_multiple = 4``);
all are optional, and ganforge asks only through these protocols."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class SizeMultiple(Protocol):
    """An image network whose input sides must be multiples of ``size_multiple``."""

    size_multiple: int


@runtime_checkable
class NoiseInput(Protocol):
    """A generator of images from latent vectors of ``latent_dim`` values."""

    latent_dim: int


@runtime_checkable
class Probabilities(Protocol):
    """A discriminator that says whether its outputs went through a sigmoid."""

    outputs_probabilities: bool


@runtime_checkable
class Features(Protocol):
    """A network that exposes intermediate activations (CUT's PatchNCE encoder)."""

    def features(self, x: Any, layers: Sequence[int]) -> list[Any]: ...

    def feature_channels(self, layers: Sequence[int]) -> list[int]: ...


@runtime_checkable
class SizeCheck(Protocol):
    """A component factory that says, at resolve time, why a square image size does not work (or None)."""

    def check_image_size(self, options: dict[str, Any], size: int) -> str | None: ...


@runtime_checkable
class OwnInit(Protocol):
    """A network with its own initialisation (R3GAN, SNGAN): ``init = "auto"`` keeps it over N(0, 0.02)."""

    own_init: bool


def own_init(net: Any) -> bool:
    return bool(net.own_init) if isinstance(net, OwnInit) else False


def size_multiple(net: Any) -> int:
    return int(net.size_multiple) if isinstance(net, SizeMultiple) else 1


def latent_dim(net: Any, default: int = 100) -> int:
    return int(net.latent_dim) if isinstance(net, NoiseInput) else default


def outputs_probabilities(net: Any) -> bool:
    return bool(net.outputs_probabilities) if isinstance(net, Probabilities) else False


@runtime_checkable
class Labelled(Protocol):
    """A dataset whose items carry class indices into ``classes`` (names, in index order)."""

    classes: Sequence[str]


@runtime_checkable
class DeviceBatches(Protocol):
    """A dataset that builds its images on the device (crops out of a cache kept there)."""

    def on_device(self, batch: dict[str, Any], device: Any) -> dict[str, Any]: ...


@runtime_checkable
class Yields(Protocol):
    """A dataset factory that declares its batch keys (``yields``: key -> description) and,
    optionally, the keys that come aligned (``aligned``: an input and its target of one scene)."""

    yields: dict[str, str]


@runtime_checkable
class OutputSize(Protocol):
    """A dataset factory that computes its images' square side from its options."""

    def output_size(self, options: dict[str, Any]) -> int | None: ...


@runtime_checkable
class SquareImages(Protocol):
    """A dataset of square images ``image_size`` px wide (what the models it trains are for)."""

    image_size: int


def image_size(dataset: Any) -> int | None:
    return int(dataset.image_size) if isinstance(dataset, SquareImages) else None


def classes(dataset: Any) -> list[str]:
    return [str(c) for c in dataset.classes] if isinstance(dataset, Labelled) else []


def aligned(factory: Any) -> tuple[str, ...]:
    return tuple(getattr(factory, "aligned", ()) or ()) if isinstance(factory, Yields) else ()


# The events a callback may define (each optional); Trainer.emit refuses any other name.
CALLBACK_EVENTS = tuple(
    "on_train_start on_step_end on_log on_log_info on_samples on_epoch_end on_checkpoint on_train_end".split()
)


@runtime_checkable
class Capturable(Protocol):
    """A part (pool, optimizer) that can switch to graph-safe behaviour: returns why not, or None."""

    def make_capturable(self) -> str | None: ...


@runtime_checkable
class Stateful(Protocol):
    """A part whose state a checkpoint keeps (pools, callbacks)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
