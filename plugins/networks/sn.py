"""Optional spectral normalisation for discriminator layers."""

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def spectral_normed(layers: list[nn.Module], enabled: bool) -> list[nn.Module]:
    """Wrap every conv and linear layer of ``layers`` in spectral norm when ``enabled``.

    Uses ``torch.nn.utils.parametrizations.spectral_norm`` (one power iteration per training
    forward; ``u`` and ``v`` are buffers, so they travel in the state dict). Disabled, the list
    comes back untouched, modules and state-dict keys unchanged.
    """
    if not enabled:
        return layers
    return [spectral_norm(m) if isinstance(m, nn.Conv2d | nn.Linear) else m for m in layers]
