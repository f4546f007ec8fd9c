"""UVCGAN2 (Torbunov et al., "UVCGAN v2", WACV 2023): its generator pre-training and its translation.

Reference: LS4GAN/uvcgan2, commit 871b2b931f0b6c1fa012a3d658e830f3f4c6023c, files
``uvcgan2/cgan/uvcgan2.py`` (the translation model: ``optimization_step``, ``queued_forward``,
``backward_discriminator_base``), ``uvcgan2/cgan/autoencoder.py`` (the pre-training, ``joint``
with ``masking``), ``uvcgan2/torch/image_masking.py`` (``ImagePatchRandomMasking``),
``uvcgan2/train/transfer.py`` (``gen_ab`` and ``gen_ba`` both loaded strictly from the
pre-training's ``encoder``) and the selfie2anime scripts ``scripts/anime2selfie/
{pretrain_anime2selfie,train_anime2selfie_translation}.py``, whose settings are
``recipes/uvcgan2_pretrain_selfie2anime.toml`` and ``recipes/uvcgan2_selfie2anime.toml``.

The reference's images are in [0, 1]; ganforge's are in [-1, 1]. So that every loss, gradient and
penalty is the reference's, both objectives measure their L1 terms on the [0, 1] scale (half the
L1 of [-1, 1] images) and the translation feeds its discriminators ``(x + 1) / 2`` (its gradient
penalty differentiates with respect to those inputs); the ``vit-modnet`` generator maps its own
input and output (``io_range``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge import (
    Declaration,
    Direction,
    GanforgeError,
    Network,
    Objective,
    Optimizer,
    Part,
    Range,
    Runtime,
    Section,
    frozen,
    local,
    unwrap,
)
from ganforge.recipe import data_image_size, resolved_table

Weight = Annotated[float, Range(0.0)]
TWO_WAY = {  # CycleGAN's directions (a method module stands alone: no objective imports another)
    "a2b": Direction("G_AB", source="A", target="B", inverse="b2a"),
    "b2a": Direction("G_BA", source="B", target="A", inverse="a2b"),
}
PRETRAIN_RECIPE = "recipes/uvcgan2_pretrain_selfie2anime.toml"
# Options of every network table that say how it was initialised, not what it is.
_INIT_OPTIONS = ("init", "init_gain")


def l1_01(x: Tensor, y: Tensor) -> Tensor:
    """The L1 of two [-1, 1] images measured as the reference measures it, on [0, 1] images."""
    return 0.5 * F.l1_loss(x.float(), y.float())


def mask_patches(
    images: Tensor,
    patch_size: int | tuple[int, int] = 32,
    fraction: float = 0.4,
    generator: torch.Generator | None = None,
    fill: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """The pre-training's ``image-patch-random`` masking: ``(masked images, keep mask)``.

    The image is cut into a grid of ``patch_size`` patches (sides must divide); each patch of
    each image, all channels together, is hidden with probability ``fraction`` (a uniform draw
    ``> fraction`` keeps it, so the hidden count is random, not exact). Hidden pixels become
    ``fill``: the reference multiplies its [0, 1] images by the mask, i.e. black, which is
    ``fill=0.0`` there and ``fill=-1.0`` for ganforge's [-1, 1] images. The mask is bool
    ``[N, 1, H, W]``, True where the image is kept. The draw happens on the images' device
    (``generator``, if given, must live there), with no host synchronisation.
    """
    ph, pw = (patch_size, patch_size) if isinstance(patch_size, int) else patch_size
    if images.dim() != 4:
        raise ValueError(f"mask_patches: images must be [N, C, H, W], got shape {tuple(images.shape)}")
    n, _, h, w = images.shape
    if ph < 1 or pw < 1 or h % ph or w % pw:
        raise ValueError(f"mask_patches: patch size {ph}x{pw} must divide the image size {h}x{w}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"mask_patches: fraction must be in [0, 1], got {fraction}")
    gh, gw = h // ph, w // pw
    keep = torch.rand((n, 1, gh, gw), generator=generator, device=images.device) > fraction
    mask = keep[:, :, :, None, :, None].expand(n, 1, gh, ph, gw, pw).reshape(n, 1, h, w)
    return torch.where(mask, images, fill), mask


class UVCGAN2Pretrain(Objective):
    """UVCGAN2's generator pre-training: one generator inpaints randomly masked patches of both domains.

    Each step hides ``mask_patch`` px squares of every A and B image with probability
    ``mask_fraction`` (black, as the reference) and trains the one generator ``G`` on the L1
    between ``G(masked)`` and the whole image, per domain (``rec_A``, ``rec_B``; measured on the
    reference's [0, 1] scale). The result starts the ``uvcgan2`` translation
    (``[objective] pretrained``). Its directions ``a2a`` and ``b2b`` are that reconstruction.
    """

    declares = Declaration(
        sections=(
            Section("generator", "generator"),
            Section("optim", "optimizer", roles=("g",)),
        ),
        networks={"G": Network("generator", inference=True)},
        optimizers={"g": Optimizer("optim.g", ("G",), losses=("rec",))},
        batch_keys=("A", "B"),
        directions={
            "a2a": Direction("G", source="A", target="A"),
            "b2b": Direction("G", source="B", target="B"),
        },
    )

    def __init__(
        self,
        builder: Any,
        runtime: Runtime,
        mask_patch: Annotated[int, Range(1, 16384, why="a square patch inside the image")] = 32,
        mask_fraction: Annotated[float, Range(0.0, 1.0)] = 0.4,
        sample_count: Annotated[int, Range(1)] = 4,
    ) -> None:
        size = data_image_size(builder.registry, builder.recipe)
        if size is not None and size % mask_patch:
            raise GanforgeError(
                f"[objective] mask_patch {mask_patch} must divide the {size} px images of [data]"
            )
        super().__init__(builder, runtime)
        self.mask_patch, self.mask_fraction, self.sample_count = mask_patch, mask_fraction, sample_count

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        # Masks drawn for A, then B, on the device's default generator (saved with the run's RNG).
        masked_A, _ = mask_patches(real_A, self.mask_patch, self.mask_fraction, fill=-1.0)
        masked_B, _ = mask_patches(real_B, self.mask_patch, self.mask_fraction, fill=-1.0)
        with self.runtime.autocast():
            rec_A = l1_01(self.G(masked_A), real_A)
            rec_B = l1_01(self.G(masked_B), real_B)
        self.opt_g.minimize(rec_A + rec_B)
        return {"rec_A": rec_A, "rec_B": rec_B}


@runtime_checkable
class Queue(Protocol):
    """What UVCGAN2 needs of its ``[queue]`` parts (kind ``queue``; the bundled ``fifo``)."""

    def push(self, x: Tensor) -> None: ...

    def query(self, device: torch.device | None = None) -> Tensor | None: ...

    def __len__(self) -> int: ...


def takes_queued_bodies(net: nn.Module) -> bool:
    """Whether a discriminator's forward takes ``extra_bodies`` and ``return_body`` (a batch head)."""
    params = inspect.signature(unwrap(net).forward).parameters
    return {"extra_bodies", "return_body"} <= set(params)


class UVCGAN2(Objective):
    """UVCGAN2 translation A<->B: CycleGAN's losses, batch-head discriminators over body queues, GP.

    One step, as the reference's ``optimization_step``: the G step first (both discriminators
    frozen): LSGAN of ``D_B(fake_B)`` and ``D_A(fake_A)`` whose batch heads also see the queued
    fake bodies, cycle L1 times ``lambda_cycle``, identity L1 times ``lambda_cycle *
    lambda_identity``. Then the D step on that step's detached fakes (no image pool), B first:
    the gradient penalty of ``[loss]`` on a mix of real and fake with their queues mixed alike,
    then ``d_loss_weight * (real + fake)``, each forward followed by a push of its body output
    onto its queue (``queue_real_A``, ``queue_real_B``, ``queue_fake_A``, ``queue_fake_B``, built
    from ``[queue]``; only the D step pushes). ``[objective] ema`` keeps the generators' moving
    averages, which inference uses.

    ``pretrained`` (a run folder, a checkpoint or an exported file of ``uvcgan2-pretrain``)
    starts both generators from its generator, loaded strictly; it must be the component and
    options of ``[generator]`` (``init`` aside). Empty: both start from ``[generator]``'s init.
    """

    declares = Declaration(
        sections=(
            Section("generator", "generator"),
            Section("discriminator", "discriminator"),
            Section("loss", "loss"),
            Section("queue", "queue", doc="the discriminators' body queues (UVCGAN2's head_queue_size)"),
            Section("optim", "optimizer", roles=("g", "d")),
        ),
        networks={
            "G_AB": Network("generator", inference=True),
            "G_BA": Network("generator", inference=True),
            "D_A": Network("discriminator"),
            "D_B": Network("discriminator"),
        },
        losses={"loss": Part("loss")},
        pools={
            "queue_real_A": Part("queue"),
            "queue_real_B": Part("queue"),
            "queue_fake_A": Part("queue"),
            "queue_fake_B": Part("queue"),
        },
        optimizers={
            "g": Optimizer("optim.g", ("G_AB", "G_BA"), losses=("G_AB", "G_BA", "cycle", "idt")),
            "d": Optimizer("optim.d", ("D_A", "D_B"), losses=("D_A", "D_B", "gp")),
        },
        batch_keys=("A", "B"),
        directions=TWO_WAY,
        sample_unit="pairs",
    )

    def __init__(
        self,
        builder: Any,
        runtime: Runtime,
        lambda_cycle: Weight = 10.0,
        lambda_identity: Weight = 0.5,
        d_loss_weight: Weight = 0.5,
        pretrained: str = "",
        sample_count: Annotated[int, Range(1)] = 4,
    ) -> None:
        if runtime.distributed and runtime.compile:
            raise GanforgeError(
                "uvcgan2 on several processes needs train.compile = false: its gradient penalty "
                "differentiates the discriminators twice, which compiled networks cannot (one "
                "process runs the penalty's pass uncompiled)"
            )
        super().__init__(builder, runtime)
        self.lambda_cycle, self.lambda_identity = lambda_cycle, lambda_identity
        self.d_loss_weight, self.sample_count = d_loss_weight, sample_count
        for name in ("D_A", "D_B"):
            if not takes_queued_bodies(self.nets[name]):
                raise GanforgeError(
                    "[discriminator] needs forward(x, extra_bodies=None, return_body=False) "
                    "(a batch-head discriminator such as 'uvcgan2')"
                )
        self._queues = [self.queue_real_A, self.queue_real_B, self.queue_fake_A, self.queue_fake_B]
        if not all(isinstance(q, Queue) for q in self._queues):
            raise GanforgeError("[queue] needs push(x), query(device) and len() (a queue such as 'fifo')")
        self.pretrained, self._builder = pretrained, builder

    def on_fresh_start(self) -> None:
        """A new run starts from the pre-training (a resumed one from its checkpoint: the
        pre-training's folder is then not needed)."""
        if self.pretrained:
            self.load_pretrained(self.pretrained)

    def load_pretrained(self, path: str) -> None:
        """Copy the generator of a pre-training (run folder, checkpoint or export) into G_AB and G_BA."""
        from ganforge import Model

        builder = self._builder
        where = f"[objective] pretrained = {path!r}"
        if not Path(path).exists():
            raise GanforgeError(
                f"{where}: not found; train it first (ganforge run {PRETRAIN_RECIPE} --out {path}) "
                'or set pretrained = "" to start from random weights'
            )
        try:
            model = Model.load(path, device="cpu", precision="fp32", registry=builder.registry)
        except GanforgeError as exc:
            raise GanforgeError(f"{where}: {exc}") from None
        generators = {n: e for n, e in model.card["networks"].items() if e.get("kind") == "generator"}
        if len(generators) != 1:
            raise GanforgeError(
                f"{where}: expected one pre-trained generator, found {len(generators)} "
                f"({', '.join(generators) or 'none'}) in a '{model.name}' model"
            )
        name, entry = next(iter(generators.items()))
        component = builder.recipe.specs["generator"].component.name
        if entry.get("component") != component:
            raise GanforgeError(
                f"{where} holds a '{entry.get('component')}' generator; [generator] is '{component}'"
            )
        ours = {
            k: v for k, v in resolved_table(builder.recipe, "generator").items() if k not in _INIT_OPTIONS
        }
        theirs = {k: v for k, v in (entry.get("options") or {}).items() if k not in _INIT_OPTIONS}
        differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        if differ:
            k = differ[0]
            raise GanforgeError(
                f"{where} was trained with generator.{k} = {theirs.get(k)!r}, [generator] has "
                f"{ours.get(k)!r}: another architecture"
            )
        state = model.networks[name].state_dict()
        with torch.no_grad():
            for net in ("G_AB", "G_BA"):
                unwrap(self.nets[net]).load_state_dict(state, strict=True)

    def step_variant(self, step: int) -> Any:
        # The queued bodies' count changes the heads' input shape while the queues fill: those
        # steps run eagerly, and the step with full queues is the one a CUDA graph captures.
        return tuple(len(q) for q in self._queues)

    def d_view(self, images: Tensor) -> Tensor:
        """What a discriminator sees: the recipe's augmentation, then the reference's [0, 1] range."""
        return (self.d_input(images) + 1) * 0.5

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        rt, loss, device = self.runtime, self.loss, real_A.device

        # G step, both discriminators frozen; their heads see the fake queues, which it does not push.
        with frozen(self.D_A, self.D_B):
            with rt.autocast():
                fake_B = self.G_AB(real_A)
                rec_A = self.G_BA(fake_B)
                fake_A = self.G_BA(real_B)
                rec_B = self.G_AB(fake_A)
                queued_B, queued_A = self.queue_fake_B.query(device), self.queue_fake_A.query(device)
                g_AB = loss.g_loss(local(self.D_B)(self.d_view(fake_B), extra_bodies=queued_B))
                g_BA = loss.g_loss(local(self.D_A)(self.d_view(fake_A), extra_bodies=queued_A))
                cycle_A = self.lambda_cycle * l1_01(rec_A, real_A)
                cycle_B = self.lambda_cycle * l1_01(rec_B, real_B)
                g_total = g_AB + g_BA + cycle_A + cycle_B
                idt_A = idt_B = None
                if self.lambda_identity > 0:
                    w = self.lambda_cycle * self.lambda_identity
                    idt_A = w * l1_01(self.G_BA(real_A), real_A)
                    idt_B = w * l1_01(self.G_AB(real_B), real_B)
                    g_total = g_total + idt_A + idt_B
            self.opt_g.minimize(g_total)

        # D step on this step's fakes, B then A, as the reference.
        with rt.autocast():
            d_B, gp_B = self._d_loss(self.D_B, real_B, fake_B.detach(), self.queue_real_B, self.queue_fake_B)
            d_A, gp_A = self._d_loss(self.D_A, real_A, fake_A.detach(), self.queue_real_A, self.queue_fake_A)
            d_total = d_A + d_B
            if gp_A is not None and gp_B is not None:
                d_total = d_total + gp_A + gp_B
        self.opt_d.minimize(d_total)

        losses = {"G_AB": g_AB, "G_BA": g_BA, "cycle_A": cycle_A, "cycle_B": cycle_B, "D_A": d_A, "D_B": d_B}
        if idt_A is not None:
            losses.update(idt_A=idt_A, idt_B=idt_B)
        if gp_A is not None:
            losses.update(gp_A=gp_A, gp_B=gp_B)
        return losses

    def _d_loss(
        self, disc: nn.Module, real: Tensor, fake: Tensor, queue_real: Any, queue_fake: Any
    ) -> tuple[Tensor, Tensor | None]:
        """``backward_discriminator_base``: the penalty with the queues as they are, then the real
        and the fake pass, each pushing its body output after it has read its queue."""
        x_real, x_fake = self.d_view(real), self.d_view(fake)
        queued_real, queued_fake = queue_real.query(real.device), queue_fake.query(real.device)
        # A compiled network has no double backward (aot_autograd refuses it): the penalty's pass
        # runs the plain discriminator. Under DDP it keeps the wrapper, which syncs its gradients.
        gp = self.loss.penalty(
            disc if self.runtime.distributed else unwrap(disc),
            x_real,
            x_fake,
            real_kwargs={"extra_bodies": queued_real},
            fake_kwargs={"extra_bodies": queued_fake},
        )
        out_real, body_real = disc(x_real, extra_bodies=queued_real, return_body=True)
        queue_real.push(body_real)
        out_fake, body_fake = disc(x_fake, extra_bodies=queued_fake, return_body=True)
        queue_fake.push(body_fake)
        return self.d_loss_weight * self.loss.d_loss(out_real, out_fake), gp
