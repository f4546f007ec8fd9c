"""CUT and FastCUT (Park et al., ECCV 2020): one-sided translation by patchwise contrastive learning."""

from __future__ import annotations

import functools
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge import (
    Declaration,
    Direction,
    Network,
    Objective,
    Optimizer,
    Part,
    Range,
    Runtime,
    Section,
    frozen,
    local,
    minimize,
    outputs_probabilities,
    protocols,
    unwrap,
)

Weight = Annotated[float, Range(0.0)]


# -- PatchNCE: a generated patch (query) should be closer to the input patch at the same place (its
# positive) than to the input's other patches (the negatives). As CUT with
# nce_includes_all_negatives_from_minibatch=False, the negatives come from the same image only.

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


class CUT(Objective):
    """Contrastive unpaired translation A->B: one generator, one discriminator, PatchNCE, no cycle.

    The generator's encoder features of the input and of its translation are sampled at the same
    patches (``nce_layers``) and projected by ``F`` ([projector]); each translated patch must
    pick its own input patch out of the other patches of the image (PatchNCE, temperature
    ``nce_temperature``). With ``nce_identity`` the same loss also ties G(B) to B. With
    ``flip_equivariance`` (FastCUT) the input is flipped at random and the loss compares
    flipped features. D step first, then G and F together, as the reference code.
    """

    declares = Declaration(
        sections=(
            Section("generator", "generator"),
            Section("discriminator", "discriminator"),
            Section("loss", "loss"),
            Section("projector", "projector", doc="CUT's netF: patch sampler and MLP head"),
            Section("optim", "optimizer", roles=("g", "d", "f")),
        ),
        networks={
            "G": Network("generator", inference=True),
            "D": Network("discriminator"),
            "F": Network("projector"),
        },
        losses={"loss": Part("loss")},
        optimizers={
            "g": Optimizer("optim.g", ("G",), losses=("G", "NCE")),
            "d": Optimizer("optim.d", ("D",), losses=("D",)),
            "f": Optimizer("optim.f", ("F",)),
        },
        batch_keys=("A", "B"),
        directions={"a2b": Direction("G", source="A", target="B")},
    )

    def __init__(
        self,
        builder: Any,
        runtime: Runtime,
        lambda_gan: Weight = 1.0,
        lambda_nce: Weight = 1.0,
        nce_identity: bool = True,
        nce_layers: list[Annotated[int, Range(0)]] = [0, 4, 8, 12, 16],  # noqa: B006 (a recipe value, never mutated)
        nce_temperature: Annotated[float, Range(0.0, min_open=True)] = 0.07,
        flip_equivariance: bool = False,
        sample_count: Annotated[int, Range(1)] = 4,
    ) -> None:
        if not nce_layers:
            raise ValueError("nce_layers must name at least one encoder layer")
        self.nce_layers = list(nce_layers)  # network_context needs them while G is built
        super().__init__(builder, runtime)
        self.lambda_gan, self.lambda_nce = lambda_gan, lambda_nce
        self.nce_identity, self.flip_equivariance = nce_identity, flip_equivariance
        self.nce_temperature, self.sample_count = nce_temperature, sample_count
        self._d_probs = outputs_probabilities(self.D)

    def network_context(self, name: str) -> dict[str, Any]:
        if name != "F":
            return {}
        generator = unwrap(self.G)
        if not isinstance(generator, protocols.Features):
            raise ValueError(
                f"[generator] '{type(generator).__name__}' has no encoder features (features / "
                "feature_channels): use a ResNet generator"
            )
        return {"channels": generator.feature_channels(self.nce_layers)}

    def _nce(self, source: Tensor, target: Tensor, flipped: Tensor | None) -> Tensor:
        """PatchNCE between G's encoder features of ``source`` (keys) and ``target`` (queries)."""
        encoder = unwrap(self.G)
        feat_q = encoder.features(target, self.nce_layers)
        if flipped is not None:  # the translation was made from a flipped input: flip back
            feat_q = [torch.where(flipped, q.flip(3), q) for q in feat_q]
        feat_k = encoder.features(source, self.nce_layers)
        keys, ids = self.F(feat_k)
        queries, _ = self.F(feat_q, ids)
        n = source.shape[0]
        losses = [
            patch_nce_loss(q, k, self.nce_temperature, batch_size=n).mean() * self.lambda_nce
            for q, k in zip(queries, keys)
        ]
        return torch.stack(losses).sum() / len(losses)

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        n, rt, loss, probs = real_A.shape[0], self.runtime, self.loss, self._d_probs
        identity = self.nce_identity and self.lambda_nce > 0
        real = torch.cat([real_A, real_B]) if identity else real_A  # one G call: exact with instance norm
        flipped = None
        if self.flip_equivariance:  # decided on the device: no host sync, the same in a CUDA graph
            flipped = torch.rand((), device=real.device) < 0.5
            real = torch.where(flipped, real.flip(3), real)

        with rt.autocast():
            fake = self.G(real)
            fake_B = fake[:n]
            # D step on the newest translation.
            d_real, d_fake = self.D(self.d_input(real_B)), self.D(self.d_input(fake_B.detach()))
            d_loss = loss.d_loss(d_real, d_fake, probabilities=probs) * 0.5
        self.opt_d.minimize(d_loss)

        with frozen(self.D):
            with rt.autocast():
                g_gan = (
                    loss.g_loss(local(self.D)(self.d_input(fake_B)), probabilities=probs) * self.lambda_gan
                )
                nce = self._nce(real_A, fake_B, flipped) if self.lambda_nce > 0 else fake_B.new_zeros(())
                nce_both = nce
                if identity:
                    nce_idt = self._nce(real_B, fake[n:], flipped)
                    nce_both = (nce + nce_idt) * 0.5
            minimize(g_gan + nce_both, self.opt_g, self.opt_f)

        losses = {"G": g_gan, "NCE": nce, "D": d_loss}
        if identity:
            losses["NCE_idt"] = nce_idt
        return losses


class FastCUT(CUT):
    """FastCUT: CUT without the NCE identity term, with lambda_nce 10 and flip equivariance."""

    # The same options as CUT's with FastCUT's defaults (the registry reads them from here).
    __init__ = functools.partialmethod(
        CUT.__init__, lambda_nce=10.0, nce_identity=False, flip_equivariance=True
    )
