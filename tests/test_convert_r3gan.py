"""``ganforge convert --from r3gan``: the official R3GAN generator's weights become an export of a
generator from noise that loads, samples and gives the reference's outputs.

The reference generator is tests/r3gan_reference.py's re-implementation of R3GAN/Networks.py
(github.com/brownvc/R3GAN at 19a7ddf463fbac2bd39b4c1c73d63f1c441c7403). Its files are made here
as the docs tell a user to make them: ``torch.save(G_ema.state_dict(), "g_ema.pt")`` of the
training code's network, which wraps the generator as ``Model`` (training/networks.py), so
every key starts with ``Model.``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from conftest import make_folder, no_callbacks
from PIL import Image
from r3gan_reference import RefDiscriminator, RefGenerator, randomise

import ganforge
from ganforge.cli import cli
from ganforge.errors import GanforgeError
from ganforge.plugins import get_registry
from ganforge_plugins.apps.export.convert import convert_file
from ganforge_plugins.apps.export.export import read_header
from ganforge_plugins.networks.resnet import ResnetGenerator

LATENT = 8
# 16 px (three stages): widths that change and stay, grouped convs, a stage without blocks.
LAYOUT = dict(Widths=(16, 16, 8), Cards=(4, 4, 2), Blocks=(1, 2, 0), Expansion=2)
CLASSES = 5
EMBED = 6  # not the noise size (the reference's presets' choice): read from the weights


def reference(num_classes: int = 0, seed: int = 1, layout: dict | None = None) -> RefGenerator:
    torch.manual_seed(seed)
    cond = dict(CondDim=num_classes, CondEmbDim=EMBED) if num_classes else {}
    return randomise(RefGenerator(LATENT, **(layout or LAYOUT), **cond), seed).eval()


def g_ema_state(net: RefGenerator) -> dict[str, torch.Tensor]:
    """``G_ema.state_dict()`` of the reference's training code: the network under ``Model``."""
    return {f"Model.{k}": v for k, v in net.state_dict().items()}


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def convert(file: Path, out: Path, *extra: str) -> Path:
    result = run("convert", file, "--from", "r3gan", "--out", out, *extra)
    assert result.exit_code == 0, result.output
    return out


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def expected(ref: RefGenerator, z: torch.Tensor, labels: torch.Tensor | None, classes: int) -> torch.Tensor:
    """The reference's images: it takes one-hot labels (its ``c``)."""
    with torch.no_grad():
        return ref(z, F.one_hot(labels, classes).float() if classes else None)


@pytest.mark.parametrize("classes", [0, CLASSES], ids=["unconditional", "conditional"])
def test_reference_generator_converts_with_its_outputs(tmp_path, classes):
    ref = reference(classes)
    file = tmp_path / "g_ema.pt"
    torch.save(g_ema_state(ref), file)
    out = convert(file, tmp_path / "r3gan.safetensors")

    card = read_header(out)
    assert card["objective"] == ("r3gan-cond" if classes else "r3gan")
    assert card["directions"] == {} and card["noise"] == {"network": "G", "latent_dim": LATENT}
    assert card["image_size"] == 16 and card["converted_from"] == "r3gan" and card["source"] == file.name
    g = card["networks"]["G"]
    assert g["component"] == "r3gan" and g["kind"] == "generator"
    opts = g["options"]
    assert (opts["widths"], opts["blocks"], opts["expansion"]) == ([16, 16, 8], [1, 2, 0], 2)
    assert opts["cardinalities"] == [4, 4, 1]  # a stage without blocks: no groups to read, 1
    assert g["parameters"] == sum(p.numel() for p in ref.parameters())
    if classes:
        assert g["context"] == {"num_classes": CLASSES} and opts["embedding_dim"] == EMBED
        assert card["condition"]["kind"] == "class" and card["condition"]["batch_key"] == "label"
        assert card["condition"]["values"] == [str(i) for i in range(CLASSES)]
    else:
        assert g["context"] == {} and card["condition"] is None

    model = ganforge.load(out, device="cpu")
    assert model.generates and model.latent_dim == LATENT and not model.directions
    assert model.classes == [str(i) for i in range(classes)]
    z = torch.randn(4, LATENT, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([0, 3, 4, 1]) if classes else None
    want = expected(ref, z, labels, classes)
    torch.testing.assert_close(model.generate(z, labels), want, rtol=0, atol=1e-5)
    assert want.abs().max() > 0.1  # not a degenerate comparison
    images = model.sample(3, seed=0, cls=3 if classes else None)
    assert len(images) == 3 and images[0].size == (16, 16)
    if classes:  # the class by name ("3") is the class by index; another class draws other images
        assert images[0].tobytes() == model.sample(3, seed=0, cls="3")[0].tobytes()
        assert images[0].tobytes() != model.sample(3, seed=0, cls=1)[0].tobytes()


@pytest.mark.parametrize(
    "wrap",
    [
        lambda g, other: g,  # the network's own state dict (R3GAN/Networks.py's Generator)
        lambda g, other: {f"Model.{k}": v for k, v in g.items()},
        lambda g, other: {"G_ema": {f"Model.{k}": v for k, v in g.items()}, "G": other, "D": {}},
        lambda g, other: {"G": g},
    ],
    ids=["network", "training-wrapper", "G_ema-and-G", "G"],
)
def test_state_dicts_and_their_containers(tmp_path, wrap):
    ref, other = reference(seed=2), reference(seed=3)
    file = tmp_path / "g.pt"
    torch.save(wrap(ref.state_dict(), other.state_dict()), file)
    convert_file(file, "r3gan", tmp_path / "out.safetensors", get_registry())
    model = ganforge.load(tmp_path / "out.safetensors", device="cpu")
    z = torch.randn(2, LATENT)
    torch.testing.assert_close(model.generate(z), expected(ref, z, None, 0), rtol=0, atol=1e-5)


def test_sample_writes_grids(tmp_path):
    for classes in (0, CLASSES):
        torch.save(g_ema_state(reference(classes)), tmp_path / f"g{classes}.pt")
        convert(tmp_path / f"g{classes}.pt", tmp_path / f"g{classes}.safetensors")
    grid = tmp_path / "grid.png"
    # 16 px tiles with 2 px padding: 16 images in 4 columns; a class-conditional model without
    # --class draws a row per class (4 images each), with --class 16 of that class.
    for classes, extra, size in [
        (0, [], (4 * 18 + 2, 4 * 18 + 2)),
        (CLASSES, [], (4 * 18 + 2, CLASSES * 18 + 2)),
        (CLASSES, ["--class", "3"], (4 * 18 + 2, 4 * 18 + 2)),
    ]:
        export = tmp_path / f"g{classes}.safetensors"
        result = run("sample", export, "-n", "16", "--out", grid, "--seed", "1", *extra)
        assert result.exit_code == 0, result.output
        assert Image.open(grid).size == size
        grid.unlink()
    result = run("sample", tmp_path / "g0.safetensors", "-n", "4", "--out", grid, "--class", "3")
    assert "takes no class" in one_line_error(result)


def test_class_names_from_set(tmp_path):
    ref = reference(CLASSES)
    file = tmp_path / "g_ema.pt"
    torch.save(g_ema_state(ref), file)
    names = ["cat", "dog", "fox", "owl", "bee"]
    out = convert(file, tmp_path / "a.safetensors", "--set", 'classes=["cat", "dog", "fox", "owl", "bee"]')
    assert ganforge.load(out, device="cpu").classes == names
    out = convert(file, tmp_path / "b.safetensors", "--set", "classes=cat,dog,fox,owl,bee")
    model = ganforge.load(out, device="cpu")
    assert model.classes == names and model.class_index("owl") == 3
    grid = tmp_path / "owl.png"
    assert run("sample", out, "-n", "4", "--out", grid, "--class", "owl").exit_code == 0 and grid.is_file()
    message = one_line_error(
        run(
            "convert",
            file,
            "--from",
            "r3gan",
            "--out",
            tmp_path / "c.safetensors",
            "--set",
            "classes=cat,dog",
        )
    )
    assert message == f"error: --set classes: 2 names for the 5 classes of the generator in {file.name}"
    torch.save(g_ema_state(reference()), tmp_path / "unconditional.pt")
    message = one_line_error(
        run(
            "convert",
            tmp_path / "unconditional.pt",
            "--from",
            "r3gan",
            "--out",
            tmp_path / "d.safetensors",
            "--set",
            "classes=cat,dog",
        )
    )
    assert "objective 'r3gan' is unconditional" in message


@pytest.mark.parametrize(
    "change, says",
    [
        (
            lambda s: s.pop("Model.MainLayers.1.Layers.2.NonLinearity2.Bias"),
            "missing MainLayers.1.Layers.2.NonLinearity2.Bias",
        ),
        (
            lambda s: s.update({"Model.MainLayers.0.Layers.1.Extra": torch.zeros(2)}),
            "unexpected MainLayers.0.Layers.1.Extra",
        ),
        (
            lambda s: s.update({"Model.AggregationLayer.Layer.bias": torch.zeros(3)}),
            "unexpected AggregationLayer.Layer.bias",
        ),
        (
            lambda s: s.update({"Model.MainLayers.1.Layers.1.NonLinearity1.Bias": torch.zeros(7)}),
            "MainLayers.1.Layers.1.NonLinearity1.Bias has shape [7] where ganforge's r3gan generator "
            "has [32]",
        ),
    ],
    ids=["missing", "extra", "extra-bias", "shape"],
)
def test_keys_match_strictly(tmp_path, change, says):
    state = g_ema_state(reference())
    change(state)
    file = tmp_path / "g_ema.pt"
    torch.save(state, file)
    out = tmp_path / "out.safetensors"
    message = one_line_error(run("convert", file, "--from", "r3gan", "--out", out))
    assert message.startswith(f"error: {file}: ") and says in message, message
    assert not out.exists()


def test_wrong_files_are_refused_on_one_line(tmp_path):
    out = tmp_path / "out.safetensors"
    translator = tmp_path / "latest_net_G_A.pth"
    torch.save(ResnetGenerator(ngf=4, blocks=2).state_dict(), translator)
    message = one_line_error(run("convert", translator, "--from", "r3gan", "--out", out))
    assert (
        message == f"error: {translator}: not an R3GAN generator state dict (no MainLayers.0.Layers.0.Basis)"
    )

    d = tmp_path / "d.pt"
    torch.save(RefDiscriminator((8, 16, 16), (2, 4, 4), (1, 0, 2), 2).state_dict(), d)
    assert "it is a discriminator's: convert G_ema" in one_line_error(
        run("convert", d, "--from", "r3gan", "--out", out)
    )

    g = tmp_path / "g_ema.pt"
    torch.save(g_ema_state(reference()), g)
    for source, says in [
        ("official-cyclegan", "not a ResnetGenerator state dict"),
        ("cut", "not a ResnetGenerator state dict"),
        ("official-pix2pix", "not a UnetGenerator state dict"),
        ("uvcgan2", "not a UVCGAN2 ViT-ModNet generator state dict"),
        ("ugatit", "a U-GAT-IT params file holds genA2B and genB2A"),
    ]:
        message = one_line_error(run("convert", g, "--from", source, "--out", out))
        assert says in message and str(g) in message, (source, message)
    message = one_line_error(run("convert", g, "--from", "r3gan", "--direction", "a2b", "--out", out))
    assert "makes images from noise; it has no directions" in message
    message = one_line_error(
        run("convert", translator, "--from", "official-cyclegan", "--out", out, "--set", "classes=a,b")
    )
    assert message == "error: --set classes: only a class-conditional generator has class names"
    assert not out.exists()


def test_layouts_ganforge_does_not_build_are_named(tmp_path):
    state = g_ema_state(reference())
    state["Model.MainLayers.1.Layers.0.Resampler.Kernel"] = torch.full((4, 4), 1 / 16)
    torch.save(state, tmp_path / "box.pt")
    with pytest.raises(GanforgeError, match=r"Resampler.Kernel is not R3GAN's \[1, 2, 1\] resampling filter"):
        convert_file(tmp_path / "box.pt", "r3gan", tmp_path / "o.safetensors", get_registry())
    torch.manual_seed(0)
    wide = RefGenerator(LATENT, (8, 8), (2, 2), (1, 1), 2)
    wide.MainLayers[0].Layers[1].LinearLayer2.Layer = torch.nn.Conv2d(16, 16, 5, groups=2, bias=False)
    torch.save(wide.state_dict(), tmp_path / "k5.pt")
    with pytest.raises(GanforgeError, match="is a 5x5 conv"):
        convert_file(tmp_path / "k5.pt", "r3gan", tmp_path / "o.safetensors", get_registry())
    with pytest.raises(GanforgeError, match="sized for 16 px"):
        torch.save(g_ema_state(reference()), tmp_path / "g.pt")
        convert_file(tmp_path / "g.pt", "r3gan", tmp_path / "o.safetensors", get_registry(), image_size=32)


# The official presets of train.py: (widths, blocks, cardinalities per stage from 4x4, classes).
PRESETS = {
    "CIFAR10": ([768] * 4, [2] * 4, [96] * 4, 10),
    "FFHQ-64": ([768] * 4 + [384], [2] * 5, [96] * 4 + [48], 0),
    "FFHQ-256": ([768] * 4 + [384, 192, 96], [2] * 7, [96] * 4 + [48, 24, 12], 0),
    "ImageNet-32": ([1536] * 4, [2] * 4, [96] * 4, 1000),
    "ImageNet-64": ([1536] * 5, [2] * 5, [96] * 5, 1000),
}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_official_presets_are_read_from_their_shapes(preset):
    """The layout of every published R3GAN model, read back from its state dict's shapes (built on
    the meta device: no memory), rebuilds a ganforge generator with the same keys and shapes."""
    from ganforge_plugins.apps.export.converters import r3gan_options

    widths, blocks, cards, classes = PRESETS[preset]
    cond = dict(CondDim=classes, CondEmbDim=64) if classes else {}
    with torch.device("meta"):
        ref = RefGenerator(64, widths, cards, blocks, 2, **cond)
    kernel = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64
    # the converter checks the resampling filters' values: those need real tensors
    state = {k: kernel if k.endswith("Kernel") else v for k, v in ref.state_dict().items()}
    options, size, found = r3gan_options(state, Path(f"{preset}.pt"))
    assert (options["widths"], options["blocks"], options["cardinalities"]) == (widths, blocks, cards)
    assert (options["latent_dim"], options["expansion"], found) == (64, 2, classes)
    assert size == 4 * 2 ** (len(widths) - 1)
    assert options.get("embedding_dim", 64) == 64
    with torch.device("meta"):
        table = {"name": "r3gan", **options, "image_size": size}
        ours = get_registry().build("generator", table, num_classes=found)  # as convert builds it
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in state.items()]


# -- against a trained run's export -------------------------------------------------------------

TINY_RUN = [
    "data.image_size=16",
    "generator.image_size=16",
    "discriminator.image_size=16",
    f"generator.latent_dim={LATENT}",
    "generator.widths=[8, 8, 8]",
    "generator.cardinalities=[2, 2, 2]",
    "generator.blocks=[1, 1, 1]",
    "discriminator.widths=[8, 8, 8]",
    "discriminator.cardinalities=[2, 2, 2]",
    "discriminator.blocks=[1, 1, 1]",
    "train.batch_size=4",
    "train.num_workers=0",
    "train.max_steps=1",
    "train.device='cpu'",
    "objective.sample_count=2",
    *no_callbacks("checkpoint"),
]
RUN_CLASSES = ["cat", "dog", "fox"]


@pytest.mark.parametrize("method", ["r3gan", "r3gan-cond"])
def test_the_export_is_what_a_trained_run_exports(tmp_path, anime_root, method):
    """A trained tiny run's generator, saved as the reference's G_ema and converted, gives the
    export of the run itself: the same header (but for where it came from) and outputs."""
    from conftest import RECIPES

    from ganforge.recipe import Recipe
    from ganforge.training.trainer import Trainer

    root = anime_root
    if method == "r3gan-cond":  # class folders, as CIFAR-10's train/<class>/
        root = tmp_path / "classes"
        files = sorted(anime_root.iterdir())
        for i, name in enumerate(RUN_CLASSES):
            make_folder(
                root / "train" / name, [Image.open(f).convert("RGB") for f in files[4 * i : 4 * i + 4]], 16
            )
    recipe = {"r3gan": "r3gan_anime64.toml", "r3gan-cond": "r3gan_cifar10.toml"}[method]
    items = [*TINY_RUN, f"data.root={root}"] + (["data.source=''"] if method == "r3gan-cond" else [])
    registry = get_registry()
    Trainer(Recipe.load(RECIPES / recipe, items).resolve(registry), tmp_path / "run", registry).fit()
    trained = ganforge.load(tmp_path / "run", device="cpu")
    exported = read_header(trained.export(tmp_path / "trained.safetensors"))

    classes = len(RUN_CLASSES) if method == "r3gan-cond" else 0
    cond = dict(CondDim=classes, CondEmbDim=LATENT) if classes else {}
    ref = RefGenerator(LATENT, (8, 8, 8), (2, 2, 2), (1, 1, 1), 2, **cond)
    ref.load_state_dict(trained.networks["G"].state_dict(), strict=True)  # the moving average
    torch.save(g_ema_state(ref), tmp_path / "g_ema.pt")
    extra = ["--set", f"classes={','.join(RUN_CLASSES)}"] if classes else []
    converted = read_header(convert(tmp_path / "g_ema.pt", tmp_path / "converted.safetensors", *extra))

    provenance = {"step", "source", "converted_from", "sample_count", "sample_seed"}
    assert set(converted) - provenance == set(exported) - provenance
    for key in ("objective", "directions", "noise", "condition", "input", "output", "image_size", "plugins"):
        assert converted[key] == exported[key], key
    ours, theirs = converted["networks"]["G"], exported["networks"]["G"]
    assert set(ours) == set(theirs)
    for key in (
        "kind",
        "component",
        "context",
        "plugin",
        "size_multiple",
        "parameters",
        "latent_dim",
        "section",
    ):
        assert ours[key] == theirs[key], key
    for key in ("latent_dim", "widths", "cardinalities", "blocks", "expansion", "image_size", "out_channels"):
        assert ours["options"][key] == theirs["options"][key], key

    model = ganforge.load(tmp_path / "converted.safetensors", device="cpu")
    z = torch.randn(3, LATENT)
    labels = torch.tensor([2, 0, 1]) if classes else None
    torch.testing.assert_close(model.generate(z, labels), trained.generate(z, labels), rtol=0, atol=1e-6)
    assert model.classes == trained.classes
