"""pix2pix: the objective, the paired datasets, the recipes and ``convert --from official-pix2pix``.

Training runs at 32 px on CPU (a U-Net with 5 halvings and ngf 8, a 2-layer PatchGAN) on real
selfies paired with a channel-swapped copy of themselves. The official ``UnetGenerator`` the
converter is checked against is the re-implementation in tests/plugins/test_unet.py
(junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py`` at 48ced5e8e3af621acca066a70203a196ba571bed).
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from conftest import RECIPES, SHARED_DATA, _real_images, _synthetic
from PIL import Image
from torch import nn

from ganforge.cli import cli
from ganforge.data import item_generator
from ganforge.errors import GanforgeError
from ganforge.model import Model
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer
from ganforge.translate import translate_files
from ganforge_plugins.apps.export.convert import convert_file
from ganforge_plugins.apps.export.converters import unet_options
from ganforge_plugins.apps.export.export import export_checkpoint, read_header
from ganforge_plugins.datasets.images import resize_crop
from ganforge_plugins.datasets.paired import pair_files

SMALL = [
    "data.image_size=32",
    "data.load_size=36",
    "data.holdout=2",
    "generator={name='unet', num_downs=5, ngf=8, norm='batch', dropout=true}",
    "discriminator.ndf=8",
    "discriminator.n_layers=2",
    "train.log_every=2",
    "train.num_workers=0",
    "train.device='cpu'",
    "callbacks.samples.every=0",
]


def _swap(img: Image.Image) -> Image.Image:
    """The image with its red and blue channels swapped: resizing, cropping and flipping commute
    with it exactly, so B == A[[2, 1, 0]] holds for every crop and flip of an aligned pair."""
    r, g, b = img.split()
    return Image.merge("RGB", (b, g, r))


@pytest.fixture(scope="module")
def pairs_root(tmp_path_factory) -> Path:
    """8 real selfies (trainA, PNG) paired by name with their channel-swapped copies (trainB)."""
    root = tmp_path_factory.mktemp("pairs")
    images = _real_images(SHARED_DATA / "selfie2anime" / "trainA", 8) or _synthetic(8, 5)
    for folder in ("trainA", "trainB"):
        (root / folder).mkdir()
    for i, img in enumerate(images):
        img = img.resize((48, 48), Image.BICUBIC)
        img.save(root / "trainA" / f"{i:02d}.png")
        _swap(img).save(root / "trainB" / f"{i:02d}.png")
    return root


def resolved(root: Path, *extra: str, recipe: str = "pix2pix_facades.toml"):
    items = [f"data.root={root}", *SMALL, *extra]
    return Recipe.load(RECIPES / recipe, items).resolve(get_registry())


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        f"{n}.{k}": v.clone()
        for n, net in trainer.engine.networks.items()
        for k, v in net.state_dict().items()
    }


# -- training, resume, translate, export --------------------------------------------------------


def test_trains_resumes_exactly_translates_and_exports(pairs_root, tmp_path, one_thread):
    ort = pytest.importorskip("onnxruntime")
    full = Trainer(resolved(pairs_root, "train.max_steps=4"), tmp_path / "full", get_registry())
    full.fit()
    Trainer(resolved(pairs_root, "train.max_steps=2"), tmp_path / "split", get_registry()).fit()
    second = Trainer(resolved(pairs_root, "train.max_steps=4"), tmp_path / "split", get_registry())
    second.resume(tmp_path / "split")
    second.fit()
    a, b = weights(full), weights(second)
    assert a.keys() == b.keys() and {k.split(".")[0] for k in a} == {"G", "D"}
    for key in a:  # dropout draws, batch-norm statistics and Adam moments included
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5, msg=key)
    losses = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert {"G_GAN", "G_L1", "D"} <= set(losses[-1])

    model = Model.load(tmp_path / "full", "cpu")
    assert list(model.directions) == ["a2b"] and model.card["objective"] == "pix2pix"
    out = tmp_path / "translated"
    # direction BtoA (the facades recipe): the swapped copies are the inputs
    failures = translate_files(model, [str(pairs_root / "trainB")], out)
    assert not failures and len(list(out.glob("*.png"))) == 8

    exported = tmp_path / "g.safetensors"
    export_checkpoint(tmp_path / "full", exported)
    assert set(read_header(exported)["networks"]) == {"G"}  # D is not part of inference
    x = full.holdout(2)["A"]
    with torch.no_grad():
        expected = model.translate(x, "a2b")
        torch.testing.assert_close(Model.load(exported, "cpu").translate(x, "a2b"), expected)
    onnx_file = tmp_path / "g.onnx"
    export_checkpoint(tmp_path / "full", onnx_file, format="onnx")
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"images": x.numpy()})
    np.testing.assert_allclose(y, expected.numpy(), atol=1e-4)


def test_one_step_losses_by_hand(pairs_root, tmp_path):
    """G_GAN + 100 x L1 and the halved D loss of one step, recomputed from the networks: D is
    updated first, and G's adversarial term comes from the updated D (the official order)."""
    trainer = Trainer(
        resolved(
            pairs_root,
            "train.max_steps=1",
            "generator.dropout=false",
            "discriminator.ndf=2",
            "discriminator.n_layers=1",
        ),
        tmp_path / "run",
        get_registry(),
    )
    engine = trainer.engine
    G, D = engine.networks["G"], engine.networks["D"]
    g_before, d_before = copy.deepcopy(G).train(), copy.deepcopy(D).train()
    batch = trainer.to_device(next(iter(trainer._loader(0))))
    a, b = batch["A"], batch["B"]
    losses = {k: float(v) for k, v in engine.run_step(batch, 0).items()}
    d_after = copy.deepcopy(D).train()

    def bce_with_logits(out: torch.Tensor, target: float) -> torch.Tensor:
        # -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))), averaged over every patch
        return (target * F.softplus(-out) + (1 - target) * F.softplus(out)).mean()

    with torch.no_grad():
        fake = g_before(a)
        d_expected = 0.5 * (
            bce_with_logits(d_before(torch.cat([a, fake], 1)), 0.0)
            + bce_with_logits(d_before(torch.cat([a, b], 1)), 1.0)
        )
        g_gan = bce_with_logits(d_after(torch.cat([a, fake], 1)), 1.0)
        g_gan_stale_d = bce_with_logits(d_before(torch.cat([a, fake], 1)), 1.0)
        g_l1 = 100 * (fake - b).abs().mean()
    assert set(losses) == {"G_GAN", "G_L1", "D"}
    assert losses["D"] == pytest.approx(float(d_expected), rel=1e-5)
    assert losses["G_GAN"] == pytest.approx(float(g_gan), rel=1e-5)
    assert losses["G_L1"] == pytest.approx(float(g_l1), rel=1e-5)
    assert abs(float(g_gan_stale_d) - losses["G_GAN"]) > 1e-5  # the D step changed what G sees
    assert any(not torch.equal(v, g_before.state_dict()[k]) for k, v in G.state_dict().items())


# -- the declaration: listed, and an unpaired dataset refused -----------------------------------


def test_ganforge_list_objectives_shows_pix2pix():
    result = CliRunner().invoke(cli, ["list", "objectives", "--json"])
    assert result.exit_code == 0, result.output
    entry = next(e for e in json.loads(result.stdout) if e["name"] == "pix2pix")
    assert entry["distribution"] == "ganforge" and entry["doc"].startswith("Paired translation")
    table = CliRunner().invoke(cli, ["list", "objectives"], env={"COLUMNS": "250"}).output
    assert "pix2pix" in table and "trains on aligned A / B pairs" in table
    params = {p["name"]: p["default"] for p in entry["params"]}
    assert params["lambda_l1"] == 100.0 and params["d_loss_weight"] == 0.5


def test_an_unpaired_dataset_is_refused_when_the_recipe_is_resolved(pairs_root):
    with pytest.raises(GanforgeError, match="does not yield them aligned"):
        resolved(pairs_root, f"data={{name='unpaired-folders', root='{pairs_root}', image_size=32}}")


@pytest.mark.parametrize("recipe", ["pix2pix_facades.toml", "pix2pix_edges2shoes.toml"])
def test_recipes_hold_the_official_values(recipe):
    r = Recipe.load(RECIPES / recipe).resolve(get_registry())
    assert (r["objective"]["name"], r["objective"]["lambda_l1"], r["objective"]["d_loss_weight"]) == (
        "pix2pix",
        100.0,
        0.5,
    )
    assert r["loss"]["name"] == "bce" and r["data"]["name"] == "paired-folders"
    assert (r["generator"]["name"], r["generator"]["norm"], r["generator"]["dropout"]) == (
        "unet_256",
        "batch",
        True,
    )
    d = r["discriminator"]
    assert (d["name"], d["in_channels"], d["n_layers"], d["norm"]) == ("patchgan", 6, 3, "batch")
    for role in ("g", "d"):
        assert (r["optim"][role]["lr"], r["optim"][role]["betas"]) == (2e-4, [0.5, 0.999])
    assert r["data"]["image_size"] == 256 and "baseline" in r and "samples" in r["callbacks"]
    if recipe == "pix2pix_facades.toml":
        assert (r["data"]["direction"], r["data"]["load_size"], r["data"]["flip"]) == ("BtoA", 286, True)
        assert (r["train"]["batch_size"], r["train"]["epochs"]) == (1, 200)
        assert (r["schedule"]["constant_epochs"], r["schedule"]["decay_epochs"]) == (100, 100)
    else:
        assert (r["data"]["direction"], r["train"]["batch_size"], r["train"]["epochs"]) == ("AtoB", 4, 15)


# -- the paired datasets ------------------------------------------------------------------------


def _aligned_root(tmp_path: Path, images: list[Image.Image]) -> Path:
    """pix2pix's format: A | B side by side in one image, B the channel-swapped A."""
    folder = tmp_path / "aligned" / "train"
    folder.mkdir(parents=True)
    for i, img in enumerate(images):
        img = img.resize((40, 48), Image.BICUBIC)  # not square: the resize to load_size matters
        ab = Image.new("RGB", (80, 48))
        ab.paste(img, (0, 0))
        ab.paste(_swap(img), (40, 0))
        ab.save(folder / f"{i}.png")
    return folder.parent


@pytest.mark.parametrize("name", ["aligned", "paired-folders"])
def test_a_and_b_of_a_pair_get_the_same_crop_and_flip(name, pairs_root, tmp_path):
    images = [Image.open(p) for p in sorted((pairs_root / "trainA").iterdir())]
    root = _aligned_root(tmp_path, images) if name == "aligned" else pairs_root
    table = {"name": name, "root": str(root), "image_size": 32, "load_size": 40, "holdout": 0}
    ds = get_registry().build("dataset", table, seed=3)
    assert ds.aligned == ("A", "B") and len(ds) == 8
    crops = set()
    for position in range(40):
        item = ds[position]
        assert item["A"].shape == item["B"].shape == (3, 32, 32)
        assert torch.equal(item["B"], item["A"][[2, 1, 0]]), position  # the same box and flip
        assert torch.equal(item["A"], ds[position]["A"])  # a pure function of (seed, position)
        # A is exactly the reference transform of its image: resize 40, crop 32, flip
        index = ds._index(position)
        source = images[index] if name == "paired-folders" else images[index].resize((40, 48), Image.BICUBIC)
        g = item_generator("item", 3, position)
        expected = torch.from_numpy(np.array(resize_crop(source, 32, 40, "resize_and_crop", g, True)))
        assert torch.equal(item["A"], expected.permute(2, 0, 1)), position
        crops.add(item["A"].numpy().tobytes())
    assert len(crops) > 20  # crops and flips vary from position to position
    swapped = get_registry().build("dataset", {**table, "direction": "BtoA"}, seed=3)
    assert torch.equal(swapped[5]["A"], ds[5]["B"]) and torch.equal(swapped[5]["B"], ds[5]["A"])
    held = get_registry().build("dataset", {**table, "holdout": 2}, seed=3).holdout(4)
    assert held["A"].shape == (2, 3, 32, 32) and torch.equal(held["B"], held["A"][:, [2, 1, 0]])


def test_pairs_are_matched_by_name_and_never_guessed(tmp_path):
    a, b = tmp_path / "trainA", tmp_path / "trainB"
    a.mkdir()
    b.mkdir()
    for i in range(3):  # CycleGAN's facades: 1_A.jpg pairs with 1_B.jpg
        (a / f"{i}_A.jpg").touch()
        (b / f"{i}_B.png").touch()
    pairs = pair_files(sorted(a.iterdir()), sorted(b.iterdir()))
    assert [(x.name, y.name) for x, y in pairs] == [(f"{i}_A.jpg", f"{i}_B.png") for i in range(3)]
    (b / "7_B.png").touch()
    with pytest.raises(GanforgeError, match=r"1 in .*trainB have no partner in .*trainA \(e.g. 7_B.png\)"):
        pair_files(sorted(a.iterdir()), sorted(b.iterdir()))
    (a / "1_A.png").touch()
    with pytest.raises(GanforgeError, match="1_A.jpg and 1_A.png would both be pair"):
        pair_files(sorted(a.iterdir()), sorted(b.iterdir()))


# -- convert --from official-pix2pix ------------------------------------------------------------


def _reference():
    """The official UnetGenerator, re-implemented in tests/plugins/test_unet.py."""
    path = Path(__file__).parent / "plugins" / "test_unet.py"
    spec = importlib.util.spec_from_file_location("unet_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REF = _reference()


@pytest.mark.parametrize(
    "num_downs, norm, component",
    [(8, "batch", "unet_256"), (7, "instance", "unet_128"), (6, "batch", "unet")],
)
def test_convert_official_pix2pix_gives_the_official_outputs(tmp_path, num_downs, norm, component):
    ref = REF.RefUnetGenerator(3, 3, num_downs, ngf=4, norm_layer=REF.ref_norm_layer(norm), use_dropout=True)
    ref = REF.trained_like(ref, seed=num_downs).eval()
    state = ref.state_dict()
    if norm == "instance":  # a PyTorch < 0.4 file: the instance norms' running statistics
        state = {**state, "model.model.1.model.2.running_mean": torch.zeros(8)}
        state["model.model.1.model.2.running_var"] = torch.ones(8)
    file = tmp_path / "latest_net_G.pth"
    torch.save(state, file)
    out = tmp_path / "g.safetensors"
    convert_file(file, "official-pix2pix", out, get_registry())
    meta = read_header(out)
    assert meta["objective"] == "pix2pix" and list(meta["directions"]) == ["a2b"]
    spec = meta["networks"]["G"]
    assert spec["component"] == component and spec["options"]["ngf"] == 4 and spec["options"]["norm"] == norm
    assert spec["options"].get("num_downs", num_downs) == num_downs
    assert spec["parameters"] == sum(p.numel() for p in ref.parameters())
    side = 2**num_downs
    x = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(Model.load(out, "cpu").translate(x, "a2b"), ref(x), atol=1e-6, rtol=0)


def test_convert_reads_the_options_from_the_shapes_and_refuses_norm_none(tmp_path):
    ref = REF.RefUnetGenerator(1, 2, 5, ngf=3, norm_layer=REF.ref_norm_layer("batch"))
    component, options = unet_options(ref.state_dict(), Path("x.pth"))
    assert component == "unet" and options == {
        "in_channels": 1,
        "out_channels": 2,
        "ngf": 3,
        "norm": "batch",
        "dropout": True,
        "init": "none",
        "num_downs": 5,
    }
    plain = REF.RefUnetGenerator(3, 3, 5, ngf=2, norm_layer=lambda c: nn.Identity())  # --norm none
    torch.save(plain.state_dict(), tmp_path / "none.pth")
    with pytest.raises(GanforgeError, match="--norm none"):
        convert_file(tmp_path / "none.pth", "official-pix2pix", tmp_path / "n.safetensors", get_registry())
    torch.save({"netG": {"model.1.weight": torch.zeros(1)}}, tmp_path / "resnet.pth")
    with pytest.raises(GanforgeError, match="not a UnetGenerator state dict"):
        convert_file(tmp_path / "resnet.pth", "official-pix2pix", tmp_path / "r.safetensors", get_registry())
