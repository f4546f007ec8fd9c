"""Component kinds of the bundled objectives: networks, adversarial losses, image pools and queues."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ganforge import Kind, Range, hookimpl, protocols

_NETWORK_COMMON = (
    # auto: the network's own initialisation if it has one (protocols.OwnInit), else normal
    ("init", Literal["auto", "normal", "xavier", "kaiming", "orthogonal", "none"], "auto"),
    # the std (normal) or gain of the init: 0 makes every weight equal, negative is meaningless
    ("init_gain", Annotated[float, Range(0.0, min_open=True)], 0.02),
)


def _init(net: Any, common: dict[str, Any]) -> Any:
    from ganforge.nn import init_weights

    scheme = common["init"]
    if scheme == "auto":
        scheme = "none" if protocols.own_init(net) else "normal"
    return init_weights(net, scheme, common["init_gain"])


KINDS = (
    Kind(
        "generator",
        "Generator networks (``torch.nn.Module`` factories). Every generator table also accepts "
        "``init`` and ``init_gain`` (weight initialisation applied after construction; ``auto`` "
        "keeps a network's own). Context: ``num_classes`` (the dataset's class count, for "
        "class-conditional networks; see ``ganforge.protocols``).",
        context=("num_classes",),
        common=_NETWORK_COMMON,
        finish=_init,
    ),
    Kind(
        "discriminator",
        "Discriminator networks (``torch.nn.Module`` factories). Like generators, they also "
        "accept ``init`` and ``init_gain`` and get ``num_classes`` as context.",
        context=("num_classes",),
        common=_NETWORK_COMMON,
        finish=_init,
    ),
    Kind(
        "loss",
        "Adversarial losses: ``d_loss(real_logits, fake_logits)``, ``g_loss(fake_logits)`` and "
        "``penalty(discriminator, real, fake)`` (None when off).",
    ),
    Kind(
        "projector",
        "Feature projectors for contrastive losses (CUT's netF): built from the feature widths "
        "of another network. Context: ``channels`` (one width per feature map). "
        "``forward(feats, patch_ids=None) -> (projected, patch_ids)``.",
        context=("channels",),
    ),
    Kind(
        "pool",
        "Image pools (history buffers of generated images for the discriminator): "
        "``query(images) -> images`` plus ``state_dict`` / ``load_state_dict`` and optionally "
        "``make_capturable()``.",
    ),
    Kind(
        "queue",
        "Queues of discriminator outputs kept across steps (UVCGAN2's batch-head body queues): "
        "``push(x)``, ``query(device) -> Tensor | None``, ``len()``, ``state_dict`` / "
        "``load_state_dict`` and ``make_capturable()``. An objective declares them as pools: "
        "saved per process and resumed.",
    ),
)


@hookimpl
def register_kinds(register):
    for kind in KINDS:
        register(kind)
