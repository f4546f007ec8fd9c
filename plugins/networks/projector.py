"""CUT's patch sampler and projection head (``PatchSampleF`` with ``netF=mlp_sample``)."""

from typing import Annotated

import torch
from torch import Tensor, nn

from ganforge import Range

from .layers import init_weights
from .resnet import Width


def _l2_normalise(x: Tensor) -> Tensor:
    """``x / (||x|| + 1e-7)`` row-wise in float32 (CUT's ``Normalize``).

    The squared norm is clamped to 1e-30 before the root: a zero row (an MLP whose ReLUs are all
    off) then gets a zero gradient instead of CUT's NaN (sqrt's derivative at 0), which would
    turn every weight of the head NaN after one step. Other rows are unchanged.
    """
    x = x.float()
    return x / (x.pow(2).sum(1, keepdim=True).clamp_min(1e-30).sqrt() + 1e-7)


class PatchProjector(nn.Module):
    """CUT's netF: samples patches of encoder feature maps and projects them by an MLP per layer.

    ``channels`` are the widths of the feature maps it will be given (one MLP each, built here,
    so the optimizer and ``state_dict`` see the parameters before any batch). Each MLP is
    ``Linear(c, nc) -> ReLU -> Linear(nc, nc)``, initialised N(0, 0.02) with zero biases as CUT;
    the modules are named ``mlp_<i>`` like CUT's so its ``latest_net_F.pth`` loads.
    ``use_mlp=False`` samples and normalises without projecting (CUT's ``netF=sample``).
    """

    def __init__(
        self,
        channels: list[Width],
        nc: Width = 256,
        num_patches: Annotated[int, Range(1, 2**20, why="memory: patches are gathered at once")] = 256,
        use_mlp: bool = True,
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels or min(channels) < 1:
            raise ValueError(f"projector: channels must be a non-empty list of widths >= 1, got {channels}")
        if nc < 1 or num_patches < 1:
            raise ValueError(
                f"projector: nc and num_patches must be >= 1, got nc={nc}, num_patches={num_patches}"
            )
        self.channels = channels
        self.nc = nc
        self.num_patches = num_patches
        self.use_mlp = use_mlp
        if use_mlp:
            for i, c in enumerate(channels):
                self.add_module(f"mlp_{i}", nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)))
            init_weights(self, "normal", 0.02)

    @property
    def out_channels(self) -> list[int]:
        """Width of each projected feature: ``nc`` with the MLP, the layer's width without."""
        return [self.nc] * len(self.channels) if self.use_mlp else list(self.channels)

    def forward(
        self, feats: list[Tensor], patch_ids: list[Tensor] | None = None
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Sample, project and L2-normalise patches: ``([B*n, nc] per layer, ids per layer)``.

        For each ``[B, C, H, W]`` map, ``n = min(num_patches, H*W)`` spatial positions (indices
        into the row-major ``H*W`` grid) are drawn without replacement, the same for every image,
        on the map's device from torch's default generator (a sort of uniform noise: no host
        sync, CUDA-graph safe), unless ``patch_ids`` gives them (e.g. the ids drawn for the
        source image, reused for the generated one). Rows ``b*n .. b*n + n - 1`` are image
        ``b``'s patches. Features come back float32.
        """
        if len(feats) != len(self.channels):
            raise ValueError(f"projector: built for {len(self.channels)} feature maps, got {len(feats)}")
        if patch_ids is not None and len(patch_ids) != len(feats):
            raise ValueError(f"projector: {len(patch_ids)} patch id tensors for {len(feats)} feature maps")
        out_feats: list[Tensor] = []
        out_ids: list[Tensor] = []
        for i, feat in enumerate(feats):
            b, c, h, w = feat.shape
            if c != self.channels[i]:
                raise ValueError(f"projector: feature map {i} has {c} channels, built for {self.channels[i]}")
            # [B, H*W, C]: a view for channels_last maps.
            flat = feat.permute(0, 2, 3, 1).reshape(b, h * w, c)
            if patch_ids is None:
                n = min(self.num_patches, h * w)
                ids = torch.rand(h * w, device=feat.device).argsort()[:n]
            else:
                ids = patch_ids[i]
            x = flat[:, ids, :].flatten(0, 1)
            if self.use_mlp:
                x = getattr(self, f"mlp_{i}")(x)
            out_feats.append(_l2_normalise(x))
            out_ids.append(ids)
        return out_feats, out_ids
