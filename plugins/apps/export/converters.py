"""Converters of the reference projects' generator files (``ganforge convert --from NAME``).

- ``official-cyclegan`` (junyanz/pytorch-CycleGAN-and-pix2pix): ``latest_net_G_A.pth`` (A->B)
  or ``latest_net_G_B.pth`` (B->A), a ``ResnetGenerator``; ganforge's ``resnet`` generator has
  the same module tree (norm instance or batch).
- ``cut`` (taesungp/contrastive-unpaired-translation): ``latest_net_G.pth``, its anti-aliased
  ``ResnetGenerator`` (``antialias=true`` in ganforge's ``resnet``); one trained with
  ``--no_antialias --no_antialias_up`` has the official layout.
- ``ugatit`` (znxlwm/UGATIT-pytorch): ``*_params_latest.pt``, a dict of state dicts of which
  ``genA2B`` and ``genB2A`` are the generators; ganforge's ``ugatit`` generator uses the same
  names, with ``variance="unbiased"`` for the reference's ``torch.var``.
- ``official-pix2pix`` (junyanz/pytorch-CycleGAN-and-pix2pix): ``latest_net_G.pth``, a
  ``UnetGenerator``; ganforge's ``unet`` (``unet_256``, ``unet_128``) has the same module tree
  (norm batch or instance).
- ``uvcgan2`` (LS4GAN/uvcgan2 at 871b2b931f0b6c1fa012a3d658e830f3f4c6023c): ``net_gen_ab.pth``,
  ``net_avg_gen_ab.pth`` (the moving average it translates with), ``net_gen_ba.pth`` /
  ``net_avg_gen_ba.pth`` or a pre-training's ``net_encoder.pth``: a ``ViTModNetGenerator`` state
  dict keyed under ``net.``, which ganforge's ``vit-modnet`` loads strictly. The head count, the
  activations, ``modnet_demod``, an instance ``modnet_norm`` and a pooling ``modnet_downsample``
  leave no trace in the weights: they are the ``uvcgan2`` preset's unless ``--set`` says
  otherwise (``--set n_heads=8``).
- ``r3gan`` (brownvc/R3GAN at 19a7ddf463fbac2bd39b4c1c73d63f1c441c7403): a generator from noise,
  not a translator. Its snapshots (``network-snapshot-*.pkl``, the published ``ffhq-256x256.pkl``,
  ``cifar10.pkl``, ...) are pickled network objects, which ganforge never unpickles: with the
  reference code, save the weights alone, ``torch.save(legacy.load_network_pkl(f)["G_ema"]
  .state_dict(), "g_ema.pt")``, and convert that (a dict with a ``G_ema`` or ``G`` entry holding
  such a state dict converts too; the training code's ``Model.`` key prefix is stripped). Every
  option of ganforge's ``r3gan`` generator comes from the shapes: widths, blocks and groups per
  stage, the expansion, the noise size, the class count and embedding size, the resolution (a
  stage without blocks keeps no trace of its groups: 1, which changes nothing). A file with an
  embedding is class-conditional (objective ``r3gan-cond``); no file names its classes, so the
  export calls them ``0``..``N-1`` unless ``--set classes=cat,dog,...`` (or a TOML list) names
  them in index order. The reference runs its last stages in bfloat16 (``FP16Stages``); the
  export runs in the precision it is loaded with.

Widths, block counts and channels are read from the tensor shapes. The app's
``convert`` module reads the file with the weights-only loader, rebuilds each network with
ganforge's component, loads it strictly and writes the export: a translator's lists its
directions, a generator's is what a trained run of its objective exports (``ganforge sample``,
``Model.sample``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ganforge import GanforgeError

from .convert import Converted, state_tensors

_DOMAINS = {"a2b": ("A", "B"), "b2a": ("B", "A")}


def _direction(direction: str | None, default: str) -> str:
    if direction is None:
        return default
    if direction not in _DOMAINS:
        raise GanforgeError(f"--direction must be a2b or b2a, got {direction!r}")
    return direction


def _indices(state: dict[str, torch.Tensor], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := regex.fullmatch(k))})


def resnet_options(state: dict[str, torch.Tensor], source: str, file: Path) -> dict[str, Any]:
    """ganforge ``resnet`` options of an official CycleGAN or CUT ``ResnetGenerator`` state dict."""
    if "model.1.weight" not in state:
        raise GanforgeError(f"{file}: not a ResnetGenerator state dict (no model.1.weight)")
    first = state["model.1.weight"]
    ngf, in_channels = int(first.shape[0]), int(first.shape[1])
    blocks = len(_indices(state, r"model\.(\d+)\.conv_block\.1\.weight"))
    dropout = any(re.fullmatch(r"model\.\d+\.conv_block\.6\.weight", k) for k in state)
    norm = "batch" if "model.2.weight" in state else "instance"
    last = max(_indices(state, r"model\.(\d+)\.weight"))
    out_channels = int(state[f"model.{last}.weight"].shape[0])
    blurs = {int(v.shape[-1]) for k, v in state.items() if k.endswith(".filt")}
    if source == "official-cyclegan" and blurs:
        raise GanforgeError(f"{file}: has CUT's blur filters (.filt); convert it with --from cut")
    if blurs and blurs != {3, 4}:
        raise GanforgeError(
            f"{file}: CUT generator with only {'down' if 3 in blurs else 'up'}sampling anti-aliased "
            "(--no_antialias_up or --no_antialias); ganforge's resnet has both or neither"
        )
    return {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "ngf": ngf,
        "blocks": blocks,
        "norm": norm,
        "dropout": dropout,
        "upsample": "transpose",
        "antialias": bool(blurs),
        "init": "none",
    }


def ugatit_options(state: dict[str, torch.Tensor], file: Path) -> tuple[dict[str, Any], int | None]:
    """(ganforge ``ugatit`` options, the image size when the MLP tells it) of a reference generator."""
    if "DownBlock.1.weight" not in state or "FC.0.weight" not in state:
        raise GanforgeError(f"{file}: not a U-GAT-IT generator state dict (no DownBlock.1.weight)")
    first = state["DownBlock.1.weight"]
    ngf, in_channels = int(first.shape[0]), int(first.shape[1])
    dim = ngf * 4
    blocks = len(_indices(state, r"UpBlock1_(\d+)\.conv1\.weight"))
    last = max(_indices(state, r"UpBlock2\.(\d+)\.weight"))
    out_channels = int(state[f"UpBlock2.{last}.weight"].shape[0])
    mlp_in = int(state["FC.0.weight"].shape[1])
    light = mlp_in == dim
    size = None
    if not light:
        side = round((mlp_in / dim) ** 0.5)
        if side * side * dim != mlp_in:
            raise GanforgeError(f"{file}: FC.0 reads {mlp_in} values, not a square map of {dim} channels")
        size = side * 4
    options = {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "ngf": ngf,
        "blocks": blocks,
        "image_size": size or 256,
        "light": light,
        "variance": "unbiased",
        "init": "none",
    }
    return options, size


def unet_options(state: dict[str, torch.Tensor], file: Path) -> tuple[str, dict[str, Any]]:
    """(ganforge generator, options) of an official pix2pix ``UnetGenerator`` state dict.

    The blocks nest as ``model.model.1.model.3.model.3...``: every level below the outermost has
    its down-convolution at ``model.1`` of its ``Sequential``, so the depth is one plus the number
    of those. Batch norm has affine weights after each inner down-convolution
    (``model.model.1.model.2.weight``); instance norm (no affine) leaves the convolutions their
    bias instead (``model.model.0.bias``). The official ``norm='none'`` has neither norms nor
    biases, a layout ganforge's ``unet`` does not build. Dropout holds no weights: it is on, the
    pix2pix default, and only acts in train mode.
    """
    if "model.model.0.weight" not in state or "model.model.3.weight" not in state:
        raise GanforgeError(f"{file}: not a UnetGenerator state dict (no model.model.0.weight)")
    first = state["model.model.0.weight"]
    ngf, in_channels = int(first.shape[0]), int(first.shape[1])
    out_channels = int(state["model.model.3.weight"].shape[1])  # ConvTranspose2d: [in, out, k, k]
    downs = 1 + sum(1 for k in state if re.fullmatch(r"model\.model\.1\.(model\.3\.)*model\.1\.weight", k))
    if "model.model.1.model.2.weight" in state:
        norm = "batch"
    elif "model.model.0.bias" in state:
        norm = "instance"
    else:
        raise GanforgeError(
            f"{file}: a UnetGenerator trained with --norm none (no norm weights, no conv biases); "
            "ganforge's unet keeps the biases there, so it cannot load this file"
        )
    options: dict[str, Any] = {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "ngf": ngf,
        "norm": norm,
        "dropout": True,
        "init": "none",
    }
    presets = {8: "unet_256", 7: "unet_128"}
    if downs in presets:
        return presets[downs], options
    return "unet", {**options, "num_downs": downs}


def vit_modnet_options(state: dict[str, torch.Tensor], file: Path) -> tuple[dict[str, Any], int]:
    """(ganforge ``vit-modnet`` options, the image size) of a UVCGAN2 ``ViTModNetGenerator`` state dict.

    Widths, depths, the token grid (hence the image size) and which optional parameters exist
    (layer norms, ReZero gates, style biases, a batch norm, the down- and upsampling convs) come
    from the tensors; the rest is the preset's (see the module docstring).
    """
    if "net.layer_input.0.weight" not in state:
        raise GanforgeError(
            f"{file}: not a UVCGAN2 ViT-ModNet generator state dict (no net.layer_input.0.weight)"
        )
    channels = int(state["net.layer_input.0.weight"].shape[1])
    levels: list[str] = []
    prefix = "net.modnet"
    while f"{prefix}.conv.block.block.1.weight" in state:
        levels.append(prefix)
        prefix += ".inner_module"
    vit = prefix  # the bottleneck sits where the next level would
    if not levels or f"{vit}.trans_input.output.weight" not in state:
        raise GanforgeError(f"{file}: no ViT bottleneck under {vit} (not a ViT-ModNet generator)")
    features_list = [int(state[f"{p}.conv.block.block.1.weight"].shape[0]) for p in levels]
    inner = levels[-1]
    down = state.get(f"{inner}.conv.downsample.weight")
    downsample = "avgpool" if down is None else ("conv" if down.shape[-1] == 2 else "conv3")
    upsample = _modnet_upsample(state, inner, features_list[-1])
    tokens = int(state[f"{vit}.trans_input.x_const"].shape[1])
    side = round(tokens**0.5)
    if side * side != tokens:
        raise GanforgeError(f"{file}: the ViT holds {tokens} position tokens, not a square grid")
    extra = state[f"{vit}.extra_tokens"]
    blocks = _indices(state, re.escape(vit) + r"\.encoder\.encoder\.(\d+)\.atten\.in_proj_weight")
    first = f"{vit}.encoder.encoder.0"
    options: dict[str, Any] = {
        "features": int(extra.shape[2]),
        "n_heads": 6,
        "n_blocks": len(blocks),
        "ffn_features": int(state[f"{first}.ffn.net.0.weight"].shape[0]) if blocks else 1536,
        "embed_features": int(state[f"{vit}.trans_input.embed.projector.weight"].shape[0]),
        "norm": "layer" if f"{first}.norm1.weight" in state or not blocks else "none",
        "modnet_features_list": features_list,
        "modnet_norm": "batch" if f"{levels[0]}.conv.block.block.0.weight" in state else "none",
        "modnet_downsample": downsample,
        "modnet_upsample": upsample,
        "modnet_rezero": f"{levels[0]}.deconv.re_alpha" in state,
        "rezero": f"{first}.re_alpha" in state or not blocks,
        "style_rezero": f"{levels[0]}.deconv.block.style_block1.re_alpha" in state,
        "style_bias": f"{levels[0]}.deconv.block.style_block1.affine_mod.bias" in state,
        "n_ext": int(extra.shape[1]),
        "channels": channels,
        "io_range": "minus_one_one",  # ganforge's images; the network maps them to its [0, 1]
        "init": "none",
    }
    return options, side * 2 ** len(levels)


def _modnet_upsample(state: dict[str, torch.Tensor], level: str, inner: int) -> str:
    """Which x2 upsampling a ModNet decoder level has (``inner``: the width it upsamples)."""
    if f"{level}.deconv.upsample.weight" in state:
        return "deconv"
    conv = state.get(f"{level}.deconv.upsample.1.weight")
    if conv is not None:
        return "upsample-conv" if conv.shape[1] == inner else "pixel-shuffle-conv"
    # no weights: the block's first conv reads the skip plus the upsampled width
    reads = int(state[f"{level}.deconv.block.conv_block1.conv.weight"].shape[1])
    return "upsample" if reads == 2 * inner else "pixel-shuffle"


def _r3gan_kernel() -> torch.Tensor:
    """R3GAN's resampling filter: [1, 2, 1] convolved with [1, 1], outer product, sum 1 (4x4)."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(taps, taps)
    return kernel / kernel.sum()


def r3gan_options(state: dict[str, torch.Tensor], file: Path) -> tuple[dict[str, Any], int, int]:
    """(ganforge ``r3gan`` options, the image size, the class count) of an R3GAN ``Generator`` state dict.

    Stage ``s`` is ``MainLayers.<s>``: its ``Layers.0`` is the 4x4 basis (stage 0) or the
    upsampling transition (with a 1x1 conv where the width changes), ``Layers.1`` on its residual
    blocks. Widths, blocks, the expansion (a block's inner width over its width), the groups of
    each 3x3 conv (its inner width over the conv's input channels per group), the noise and
    embedding sizes and the class count are read from the shapes; a stage with no block keeps no
    trace of its cardinality, which is then 1 (it changes nothing).
    """
    basis = state.get("MainLayers.0.Layers.0.Basis")
    linear = state.get("MainLayers.0.Layers.0.LinearLayer.weight")
    if basis is None or linear is None or basis.dim() != 3:
        what = " (it is a discriminator's: convert G_ema)" if "ExtractionLayer.Layer.weight" in state else ""
        raise GanforgeError(
            f"{file}: not an R3GAN generator state dict (no MainLayers.0.Layers.0.Basis){what}"
        )
    stages = max(_indices(state, r"MainLayers\.(\d+)\..+")) + 1
    widths = [int(basis.shape[0])]
    for s in range(1, stages):
        conv = state.get(f"MainLayers.{s}.Layers.0.LinearLayer.Layer.weight")
        widths.append(int(conv.shape[0]) if conv is not None else widths[-1])
    blocks = [max(_indices(state, rf"MainLayers\.{s}\.Layers\.(\d+)\..+"), default=0) for s in range(stages)]
    expansion, cardinalities = None, []
    for s in range(stages):
        conv = state.get(f"MainLayers.{s}.Layers.1.LinearLayer2.Layer.weight")
        if conv is None:
            cardinalities.append(1)
            continue
        inner, per_group, k = int(conv.shape[0]), int(conv.shape[1]), int(conv.shape[-1])
        if k != 3:
            raise GanforgeError(
                f"{file}: MainLayers.{s}.Layers.1.LinearLayer2 is a {k}x{k} conv (KernelSize={k}); "
                "ganforge's r3gan generator has R3GAN's 3x3 ones"
            )
        cardinalities.append(max(1, inner // max(1, per_group)))
        expansion = expansion or max(1, inner // widths[s])
    kernel = _r3gan_kernel()
    for k, v in state.items():
        if not k.endswith(".Resampler.Kernel"):
            continue
        if v.shape != kernel.shape or not torch.allclose(v.float(), kernel):
            raise GanforgeError(
                f"{file}: {k} is not R3GAN's [1, 2, 1] resampling filter (ResamplingFilter); "
                "ganforge's r3gan generator has that one only"
            )
    embedding = state.get("EmbeddingLayer.weight")
    embed, classes = (int(embedding.shape[0]), int(embedding.shape[1])) if embedding is not None else (0, 0)
    aggregation = state.get("AggregationLayer.Layer.weight")
    options: dict[str, Any] = {
        "latent_dim": max(1, int(linear.shape[1]) - embed),
        "widths": widths,
        "cardinalities": cardinalities,
        "blocks": blocks,
        "expansion": expansion or 2,
        "out_channels": int(aggregation.shape[0]) if aggregation is not None else 3,
        "init": "none",
    }
    if classes:
        options["embedding_dim"] = embed
    return options, 4 * 2 ** (stages - 1), classes


class OfficialCycleGAN:
    """The official pytorch-CycleGAN-and-pix2pix ResnetGenerator (latest_net_G_A.pth / G_B)."""

    objective = "cyclegan"

    def convert(self, raw: Any, file: Path, direction: str | None) -> list[Converted]:
        d = _direction(direction, "b2a" if re.search(r"G_B\b|G_B[._]", file.name) else "a2b")
        state = state_tensors(raw, file, "a generator state dict")
        network = "G_AB" if d == "a2b" else "G_BA"
        options = resnet_options(state, "official-cyclegan", file)
        return [Converted(d, network, *_DOMAINS[d], "resnet", options, state)]


class CUTGenerator:
    """CUT's (anti-aliased) ResnetGenerator (latest_net_G.pth): one direction, A->B."""

    objective = "cut"

    def convert(self, raw: Any, file: Path, direction: str | None) -> list[Converted]:
        d = _direction(direction, "a2b")
        state = state_tensors(raw, file, "a generator state dict")
        return [Converted(d, "G", *_DOMAINS[d], "resnet", resnet_options(state, "cut", file), state)]


class UGATITGenerators:
    """U-GAT-IT's params file: genA2B and genB2A (both, or the --direction asked for)."""

    objective = "ugatit"

    def convert(self, raw: Any, file: Path, direction: str | None) -> list[Converted]:
        if not isinstance(raw, dict) or "genA2B" not in raw or "genB2A" not in raw:
            raise GanforgeError(f"{file}: a U-GAT-IT params file holds genA2B and genB2A; this one does not")
        out = []
        for d in [_direction(direction, "a2b")] if direction else ["a2b", "b2a"]:
            state = state_tensors(raw["genA2B" if d == "a2b" else "genB2A"], file, "a generator")
            options, size = ugatit_options(state, file)
            network = "G_AB" if d == "a2b" else "G_BA"
            out.append(Converted(d, network, *_DOMAINS[d], "ugatit", options, state, size))
        return out


class OfficialPix2Pix:
    """The official pytorch-CycleGAN-and-pix2pix UnetGenerator (latest_net_G.pth): A->B."""

    objective = "pix2pix"

    def convert(self, raw: Any, file: Path, direction: str | None) -> list[Converted]:
        d = _direction(direction, "a2b")
        state = state_tensors(raw, file, "a generator state dict")
        component, options = unet_options(state, file)
        if options["norm"] == "instance":
            # Files from PyTorch < 0.4 hold running statistics of the instance norms, which do not
            # track them (the official loader deletes them too).
            state = {k: v for k, v in state.items() if not k.endswith(("running_mean", "running_var"))}
        return [Converted(d, "G", *_DOMAINS[d], component, options, state)]


class UVCGAN2Generator:
    """UVCGAN2's ViT-ModNet generator (net_avg_gen_ab.pth, net_gen_ba.pth, ...): one direction."""

    objective = "uvcgan2"

    def convert(self, raw: Any, file: Path, direction: str | None) -> list[Converted]:
        d = _direction(direction, "b2a" if "gen_ba" in file.name else "a2b")
        state = state_tensors(raw, file, "a generator state dict")
        options, size = vit_modnet_options(state, file)
        network = "G_AB" if d == "a2b" else "G_BA"
        return [Converted(d, network, *_DOMAINS[d], "vit-modnet", options, state, size)]


class OfficialR3GAN:
    """R3GAN's generator (G_ema's state dict): noise to images, class-conditional with an embedding."""

    objective = "r3gan"  # r3gan-cond for a class-conditional file (set by convert)

    def convert(self, raw: Any, file: Path, direction: str | None) -> list[Converted]:
        if direction is not None:
            raise GanforgeError(
                f"--direction {direction}: an R3GAN generator makes images from noise; it has no directions"
            )
        if isinstance(raw, dict):  # {"G_ema": state dict} or {"G": ...}, as the reference's pickles
            raw = next((raw[k] for k in ("G_ema", "G") if isinstance(raw.get(k), dict)), raw)
        state = state_tensors(raw, file, "an R3GAN generator state dict")
        # The training code's networks wrap R3GAN/Networks.py's as `Model` (training/networks.py).
        if all(k.startswith("Model.") for k in state):
            state = {k[len("Model.") :]: v for k, v in state.items()}
        options, size, classes = r3gan_options(state, file)
        self.objective = "r3gan-cond" if classes else "r3gan"
        context = {"num_classes": classes} if classes else {}
        names = [str(i) for i in range(classes)] if classes else None
        return [Converted(None, "G", None, None, "r3gan", options, state, size, context, names)]


CONVERTERS = {
    "official-cyclegan": OfficialCycleGAN,
    "cut": CUTGenerator,
    "ugatit": UGATITGenerators,
    "official-pix2pix": OfficialPix2Pix,
    "uvcgan2": UVCGAN2Generator,
    "r3gan": OfficialR3GAN,
}
