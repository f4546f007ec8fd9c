"""Component kinds of the bundled losses and image pools (the networks package registers the
network kinds, each app its own)."""

from __future__ import annotations

from ganforge import Kind, hookimpl

KINDS = (
    Kind(
        "loss",
        "Adversarial losses: ``d_loss(real_logits, fake_logits)``, ``g_loss(fake_logits)`` and "
        "``penalty(discriminator, real, fake)`` (None when off).",
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
