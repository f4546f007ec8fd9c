"""Component kinds of the bundled objectives: networks, adversarial losses and image pools."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ganforge import Kind, Range, hookimpl

_NETWORK_COMMON = (
    ("init", Literal["normal", "xavier", "kaiming", "orthogonal", "none"], "normal"),
    # the std (normal) or gain of the init: 0 makes every weight equal, negative is meaningless
    ("init_gain", Annotated[float, Range(0.0, min_open=True)], 0.02),
)


def _init(net: Any, common: dict[str, Any]) -> Any:
    from ganforge.nn import init_weights

    return init_weights(net, common["init"], common["init_gain"])


KINDS = (
    Kind(
        "generator",
        "Generator networks (``torch.nn.Module`` factories). Every generator table also accepts "
        "``init`` and ``init_gain`` (weight initialisation applied after construction).",
        common=_NETWORK_COMMON,
        finish=_init,
    ),
    Kind(
        "discriminator",
        "Discriminator networks (``torch.nn.Module`` factories). Like generators, they also "
        "accept ``init`` and ``init_gain``.",
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
)


@hookimpl
def register_kinds(register):
    for kind in KINDS:
        register(kind)
