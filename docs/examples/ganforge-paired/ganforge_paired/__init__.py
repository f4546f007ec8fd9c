"""ganforge-paired: paired translation (pix2pix-style L1 + adversarial) as a ganforge plugin.

It adds, through entry points only:

- a component kind ``reconstruction`` (pixel losses between a translation and its target),
  with components ``l1`` and ``charbonnier``;
- a dataset ``example-pairs`` (``A/x.png`` pairs with ``B/x.png``);
- an objective ``paired`` that reads its own recipe section ``[reconstruction]``.
"""

from __future__ import annotations

from ganforge import Kind, hookimpl

from .data import PairedFolders
from .objective import PairedTranslation
from .reconstruction import L1, Charbonnier


@hookimpl
def register_kinds(register):
    register(
        Kind(
            "reconstruction",
            "Pixel losses between a translation and its paired target: "
            "``loss(fake, target) -> Tensor`` (a mean over pixels).",
        )
    )


@hookimpl
def register_reconstructions(register):
    register("l1", L1)
    register("charbonnier", Charbonnier)


@hookimpl
def register_datasets(register):
    register("example-pairs", PairedFolders)


@hookimpl
def register_objectives(register):
    register("paired", PairedTranslation)
