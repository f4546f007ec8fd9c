"""Evaluation metrics (FID, KID, cycle consistency) and the FID Inception feature extractor.

The metric interface (see ``ganforge.evaluation``, which drives it):

* every metric object has ``uses`` and ``compute(real, fake) -> dict[str, float]``;
* ``uses = "features"``: distribution metrics (``fid``, ``kid``). ``real`` and ``fake`` are
  ``[N, D]`` features of unpaired image sets, from the feature extractor the metric names in
  its ``extractor`` attribute (built with its ``weights`` option when that is set);
* ``uses = "pairs"``: paired-image metrics (``cycle``). ``real`` and ``fake`` are aligned
  ``[N, 3, H, W]`` images in [0, 1]; the ``pairs`` attribute names the pairings wanted
  (``cycle``: x and F(G(x)); ``identity``: y and G(y)), and the driver prefixes the keys with
  them. Values are means over images, so batches are averaged weighted by their size.

A feature extractor is an ``nn.Module``-like callable: images in [0, 1], ``[N, 3, H, W]`` in,
``[N, D]`` features out, with a ``dim`` attribute.
"""

from ganforge import hookimpl
from ganforge_plugins.metrics.fid_kid import FID, KID
from ganforge_plugins.metrics.inception import InceptionFeatures
from ganforge_plugins.metrics.translation import CycleMetrics


@hookimpl
def register_metrics(register):
    register("fid", FID)
    register("kid", KID)
    register("cycle", CycleMetrics)


@hookimpl
def register_feature_extractors(register):
    register("inception", InceptionFeatures)
