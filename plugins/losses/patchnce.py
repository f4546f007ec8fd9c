"""PatchNCE, the patchwise contrastive loss of CUT (Park et al., 2020).

A generated patch (query) should be closer to the input patch at the same place (its positive)
than to the input's other patches (the negatives). As CUT with
``nce_includes_all_negatives_from_minibatch=False``, the negatives come from the same image only.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

# CUT fills the self-similarity slots with -10 before dividing by the temperature: unit vectors
# have similarities in [-1, 1], so exp(-10 / T) is zero for any useful T.
_MASKED_LOGIT = -10.0


def patch_nce_loss(feat_q: Tensor, feat_k: Tensor, temperature: float = 0.07, *, batch_size: int) -> Tensor:
    """Per-patch PatchNCE losses ``[B*P]`` of L2-normalised query and key features ``[B*P, C]``.

    Rows ``b*P .. b*P + P - 1`` are the ``P`` patches of image ``b`` (the layout
    ``PatchProjector`` returns), and row ``i`` of ``feat_k`` is the positive for row ``i`` of
    ``feat_q``. For patch ``i`` of image ``b`` the logits are ``[q_i.k_i, q_i.k_j for j != i]
    / temperature`` over the ``P`` keys of image ``b`` (the self-similarity slot ``j == i`` of the
    negatives holds -10 before the division, as CUT), and the loss is the cross-entropy with
    target 0, i.e. ``-log_softmax(logits)[0]``. ``feat_k`` is detached (gradients reach the
    queries only). The maths is float32 whatever the input dtype.

    Average the result (and over layers) for CUT's ``loss_NCE``.
    """
    if temperature <= 0:
        raise ValueError(f"patch_nce_loss: temperature must be > 0, got {temperature}")
    if feat_q.dim() != 2 or feat_q.shape != feat_k.shape:
        raise ValueError(
            f"patch_nce_loss: expected two [B*P, C] tensors of one shape, got "
            f"{tuple(feat_q.shape)} and {tuple(feat_k.shape)}"
        )
    n, dim = feat_q.shape
    if batch_size < 1 or n % batch_size:
        raise ValueError(f"patch_nce_loss: {n} rows do not split into batch_size={batch_size} images")
    q = feat_q.float()
    k = feat_k.detach().float()
    l_pos = (q * k).sum(dim=1, keepdim=True)  # [B*P, 1]
    qb = q.view(batch_size, -1, dim)
    kb = k.view(batch_size, -1, dim)
    patches = qb.shape[1]
    l_neg = torch.bmm(qb, kb.transpose(1, 2))  # [B, P, P]
    diagonal = torch.eye(patches, device=q.device, dtype=torch.bool)[None]
    l_neg = l_neg.masked_fill(diagonal, _MASKED_LOGIT).view(-1, patches)
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature
    # Target class 0 everywhere: the positive comes first.
    return -F.log_softmax(logits, dim=1)[:, 0]
