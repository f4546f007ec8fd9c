"""The composite app: mask providers, the ``mask-paste`` compositor and ``ganforge composite``.

Mask providers turn a photo into a soft person or face mask (``mediapipe-selfie``, ``deeplabv3``,
``face-box``); the compositor pastes a stylized image back onto the original photo through that
mask, at the photo's resolution. Optional runtimes (mediapipe, LiteRT, OpenCV, scikit-image) are
imported only when a provider is built, so listing plugins needs none of them. The submodules are
imported by the hooks, not here, so ``python -m ganforge_plugins.apps.composite.masks`` runs cleanly.
"""

from __future__ import annotations

from typing import Any

from ganforge import Kind, hookimpl


@hookimpl
def register_kinds(register: Any) -> None:
    register(Kind("mask_provider", "Mask providers: an RGB photo in, a soft [0, 1] person or face mask out."))
    register(
        Kind(
            "compositor",
            "Compositors that paste a stylized image back into the original photo; a recipe's "
            "``[compositor]`` is the default of ``ganforge composite`` for its runs.",
            section="compositor",
        )
    )


@hookimpl
def register_mask_providers(register: Any) -> None:
    from .masks import DeepLabV3Mask, FaceBoxMask, MediaPipeSelfieMask

    register("mediapipe-selfie", MediaPipeSelfieMask)
    register("deeplabv3", DeepLabV3Mask)
    register("face-box", FaceBoxMask)


@hookimpl
def register_compositors(register: Any) -> None:
    from .composite import MaskCompositor

    register("mask-paste", MaskCompositor)


@hookimpl
def register_commands(cli: Any) -> None:
    from .commands import composite_command

    cli.add_command(composite_command)
