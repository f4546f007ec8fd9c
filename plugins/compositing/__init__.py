"""Segmentation compositing: mask providers and the ``mask-paste`` compositor.

Mask providers turn a photo into a soft person or face mask (``mediapipe-selfie``, ``deeplabv3``,
``face-box``); the compositor pastes a stylized image back onto the original photo through that
mask, at the photo's resolution. Optional runtimes (mediapipe, LiteRT, OpenCV, scikit-image) are
imported only when a provider is built, so listing plugins needs none of them. The submodules are
imported by the hooks, not here, so ``python -m ganforge_plugins.compositing.masks`` runs cleanly.
"""

from __future__ import annotations

from typing import Any

from ganforge import hookimpl


@hookimpl
def register_mask_providers(register: Any) -> None:
    from ganforge_plugins.compositing.masks import DeepLabV3Mask, FaceBoxMask, MediaPipeSelfieMask

    register("mediapipe-selfie", MediaPipeSelfieMask)
    register("deeplabv3", DeepLabV3Mask)
    register("face-box", FaceBoxMask)


@hookimpl
def register_compositors(register: Any) -> None:
    from ganforge_plugins.compositing.composite import MaskCompositor

    register("mask-paste", MaskCompositor)
