"""``ganforge convert``: reference projects' generator files give the same outputs as ganforge exports.

Each file is made here with ``torch.save`` of a state dict of a module laid out like the
reference: the official CycleGAN's ``ResnetGenerator`` is ganforge's ``resnet`` (key for key),
CUT's is ``resnet`` with ``antialias=True``, and U-GAT-IT's generator is re-implemented below
from znxlwm/UGATIT-pytorch's networks.py (its module names and its ``torch.var`` statistics).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import run_cli
from torch import nn

from ganforge.cli import cli
from ganforge.errors import GanforgeError
from ganforge.model import Model
from ganforge.plugins import get_registry
from ganforge_plugins.apps.export.convert import convert_file
from ganforge_plugins.apps.export.export import read_header
from ganforge_plugins.networks.resnet import ResnetGenerator

# -- U-GAT-IT's reference generator, as in its networks.py ----------------------------------------


class RefResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, 1, 0, bias=False),
            nn.InstanceNorm2d(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, 1, 0, bias=False),
            nn.InstanceNorm2d(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


def ref_iln(x, rho, gamma, beta, eps=1e-5):
    in_mean, in_var = torch.mean(x, dim=[2, 3], keepdim=True), torch.var(x, dim=[2, 3], keepdim=True)
    out_in = (x - in_mean) / torch.sqrt(in_var + eps)
    ln_mean, ln_var = torch.mean(x, dim=[1, 2, 3], keepdim=True), torch.var(x, dim=[1, 2, 3], keepdim=True)
    out_ln = (x - ln_mean) / torch.sqrt(ln_var + eps)
    rho = rho.expand(x.shape[0], -1, -1, -1)
    return (rho * out_in + (1 - rho) * out_ln) * gamma + beta


class RefAdaILN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.rho = nn.Parameter(torch.full((1, c, 1, 1), 0.9))

    def forward(self, x, gamma, beta):
        return ref_iln(x, self.rho, gamma.unsqueeze(2).unsqueeze(3), beta.unsqueeze(2).unsqueeze(3))


class RefILN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.rho = nn.Parameter(torch.rand(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.rand(1, c, 1, 1) + 0.5)
        self.beta = nn.Parameter(torch.randn(1, c, 1, 1) * 0.1)

    def forward(self, x):
        return ref_iln(x, self.rho, self.gamma, self.beta)


class RefAdaILNBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.pad1, self.conv1, self.norm1 = (
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=False),
            RefAdaILN(dim),
        )
        self.relu1 = nn.ReLU(True)
        self.pad2, self.conv2, self.norm2 = (
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=False),
            RefAdaILN(dim),
        )

    def forward(self, x, gamma, beta):
        out = self.relu1(self.norm1(self.conv1(self.pad1(x)), gamma, beta))
        return self.norm2(self.conv2(self.pad2(out)), gamma, beta) + x


class RefUGATITGenerator(nn.Module):
    def __init__(self, ngf=4, n_blocks=2, img_size=32, light=False):
        super().__init__()
        self.n_blocks, self.light = n_blocks, light
        down = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, ngf, 7, 1, 0, bias=False),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            m = 2**i
            down += [nn.ReflectionPad2d(1), nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 0, bias=False)]
            down += [nn.InstanceNorm2d(ngf * m * 2), nn.ReLU(True)]
        dim = ngf * 4
        down += [RefResnetBlock(dim) for _ in range(n_blocks)]
        self.gap_fc, self.gmp_fc = nn.Linear(dim, 1, bias=False), nn.Linear(dim, 1, bias=False)
        self.conv1x1, self.relu = nn.Conv2d(dim * 2, dim, 1, 1, bias=True), nn.ReLU(True)
        mlp_in = dim if light else img_size // 4 * img_size // 4 * dim
        self.FC = nn.Sequential(
            nn.Linear(mlp_in, dim, bias=False), nn.ReLU(True), nn.Linear(dim, dim, bias=False), nn.ReLU(True)
        )
        self.gamma, self.beta = nn.Linear(dim, dim, bias=False), nn.Linear(dim, dim, bias=False)
        for i in range(n_blocks):
            setattr(self, f"UpBlock1_{i + 1}", RefAdaILNBlock(dim))
        up = []
        for i in range(2):
            m = 2 ** (2 - i)
            up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1)]
            up += [nn.Conv2d(ngf * m, ngf * m // 2, 3, 1, 0, bias=False), RefILN(ngf * m // 2), nn.ReLU(True)]
        up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7, 1, 0, bias=False), nn.Tanh()]
        self.DownBlock, self.UpBlock2 = nn.Sequential(*down), nn.Sequential(*up)

    def forward(self, x):
        x = self.DownBlock(x)
        gap_logit = self.gap_fc(nn.functional.adaptive_avg_pool2d(x, 1).view(x.shape[0], -1))
        gap = x * list(self.gap_fc.parameters())[0].unsqueeze(2).unsqueeze(3)
        gmp_logit = self.gmp_fc(nn.functional.adaptive_max_pool2d(x, 1).view(x.shape[0], -1))
        gmp = x * list(self.gmp_fc.parameters())[0].unsqueeze(2).unsqueeze(3)
        x = self.relu(self.conv1x1(torch.cat([gap, gmp], 1)))
        heatmap = torch.sum(x, dim=1, keepdim=True)
        if self.light:
            x_ = self.FC(nn.functional.adaptive_avg_pool2d(x, 1).view(x.shape[0], -1))
        else:
            x_ = self.FC(x.view(x.shape[0], -1))
        gamma, beta = self.gamma(x_), self.beta(x_)
        for i in range(self.n_blocks):
            x = getattr(self, f"UpBlock1_{i + 1}")(x, gamma, beta)
        return self.UpBlock2(x), torch.cat([gap_logit, gmp_logit], 1), heatmap


class NotAStateDict:
    """A custom class: its pickle needs a full unpickle."""

    def __init__(self):
        self.weights = torch.ones(2)


# -- tests -------------------------------------------------------------------------------------------


def trained_like(net: nn.Module, seed: int) -> nn.Module:
    """Random weights (not PyTorch's init), so every layer's mapping matters in the comparison."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return net.eval()


def convert_and_load(path: Path, source: str, tmp_path: Path, **kwargs):
    out = tmp_path / f"{path.stem}.safetensors"
    convert_file(path, source, out, get_registry(), **kwargs)
    return Model.load(out, "cpu"), read_header(out)


@pytest.mark.parametrize(
    "options", [dict(blocks=9), dict(blocks=3, norm="batch", dropout=True)], ids=["resnet9", "batch-dropout"]
)
def test_official_cyclegan_generator(tmp_path, options):
    torch.manual_seed(0)
    reference = trained_like(ResnetGenerator(ngf=4, **options), 1)
    if options.get("norm") == "batch":  # running statistics that are not the initial ones
        for m in reference.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    file = tmp_path / "latest_net_G_B.pth"
    torch.save(reference.state_dict(), file)
    model, meta = convert_and_load(file, "official-cyclegan", tmp_path)
    assert list(meta["directions"]) == ["b2a"] and meta["objective"] == "cyclegan"  # G_B maps B to A
    opts = meta["networks"]["G_BA"]["options"]
    assert (opts["ngf"], opts["blocks"], opts["antialias"]) == (4, options["blocks"], False)
    assert opts["norm"] == options.get("norm", "instance") and opts["dropout"] == options.get(
        "dropout", False
    )
    x = torch.rand(2, 3, 32, 28) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.translate(x, "b2a"), reference(x), rtol=0, atol=1e-6)


def test_cut_generator_with_its_blur_filters(tmp_path):
    torch.manual_seed(0)
    reference = trained_like(ResnetGenerator(ngf=4, blocks=9, antialias=True), 2)
    file = tmp_path / "latest_net_G.pth"
    # saved from DataParallel: every key starts with module.
    torch.save({f"module.{k}": v for k, v in reference.state_dict().items()}, file)
    model, meta = convert_and_load(file, "cut", tmp_path, image_size=128)
    assert meta["objective"] == "cut" and meta["image_size"] == 128
    assert meta["networks"]["G"]["options"]["antialias"] is True  # CUT's objective calls it G
    x = torch.rand(1, 3, 36, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.translate(x, "a2b"), reference(x), rtol=0, atol=1e-6)
    with pytest.raises(GanforgeError, match="convert it with --from cut"):
        convert_file(file, "official-cyclegan", tmp_path / "wrong.safetensors", get_registry())
    only_down = {
        k: v for k, v in reference.state_dict().items() if not (k.endswith("filt") and v.shape[-1] == 4)
    }
    torch.save(only_down, tmp_path / "no_aa_up.pth")
    with pytest.raises(GanforgeError, match="only downsampling anti-aliased"):
        convert_file(tmp_path / "no_aa_up.pth", "cut", tmp_path / "x.safetensors", get_registry())


@pytest.mark.parametrize("light", [False, True], ids=["full", "light"])
def test_ugatit_params_file_gives_the_reference_outputs(tmp_path, light):
    torch.manual_seed(0)
    a2b = trained_like(RefUGATITGenerator(light=light), 3)
    b2a = trained_like(RefUGATITGenerator(light=light), 4)
    file = tmp_path / "selfie2anime_params_latest.pt"
    torch.save({"genA2B": a2b.state_dict(), "genB2A": b2a.state_dict(), "disGA": {}, "D_optimizer": {}}, file)
    model, meta = convert_and_load(file, "ugatit", tmp_path, image_size=None if not light else 64)
    opts = meta["networks"]["G_AB"]["options"]
    assert (opts["ngf"], opts["blocks"], opts["light"], opts["variance"]) == (4, 2, light, "unbiased")
    assert meta["image_size"] == (64 if light else 32)  # the full MLP tells the size
    assert meta["directions"]["a2b"]["inverse"] == "b2a"
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.translate(x, "a2b"), a2b(x)[0], rtol=0, atol=1e-5)
        torch.testing.assert_close(model.translate(x, "b2a"), b2a(x)[0], rtol=0, atol=1e-5)
    if not light:
        with pytest.raises(GanforgeError, match="sized for 32 px"):
            convert_file(file, "ugatit", tmp_path / "y.safetensors", get_registry(), image_size=64)


def test_a_pickle_with_a_custom_class_is_refused_on_one_line(tmp_path):
    file = tmp_path / "latest_net_G_A.pth"
    torch.save({"model": NotAStateDict()}, file)
    with pytest.raises(GanforgeError, match="needs a full unpickle"):
        convert_file(file, "official-cyclegan", tmp_path / "out.safetensors", get_registry())
    result = run_cli(
        "convert", str(file), "--from", "official-cyclegan", "--out", str(tmp_path / "o.safetensors")
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "NotAStateDict" in lines[0] and "weights_only=True" in lines[0]
    assert not (tmp_path / "o.safetensors").exists()


def small_generator(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return trained_like(ResnetGenerator(ngf=4, blocks=2), seed)


def assert_converts_to(file: Path, reference: nn.Module, tmp_path: Path, **kwargs) -> None:
    model, _ = convert_and_load(file, "official-cyclegan", tmp_path, **kwargs)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.translate(x, "a2b"), reference(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda g, d: {"state_dict": g, "epoch": 3, "optimizer": {"state": {}, "param_groups": []}},
        lambda g, d: {"model": g},
        lambda g, d: {"net": g},
        lambda g, d: {"netG": g, "netD": d},
        lambda g, d: {"params_ema": g, "params": d},  # BasicSR: the EMA weights are the ones to use
        lambda g, d: {"model_state_dict": {"netG": {f"module.{k}": v for k, v in g.items()}, "netD": d}},
    ],
    ids=["state_dict", "model", "net", "netG", "params_ema", "nested-dataparallel"],
)
def test_common_checkpoint_containers_are_unwrapped(tmp_path, wrap):
    reference, other = small_generator(1), small_generator(2)
    file = tmp_path / "latest_net_G_A.pth"
    torch.save(wrap(reference.state_dict(), other.state_dict()), file)
    assert_converts_to(file, reference, tmp_path)  # it said "expected a dict of tensors, got dict"


def test_other_containers_name_their_keys_and_the_key_to_pass(tmp_path):
    reference = small_generator(3)
    file = tmp_path / "checkpoint.pth"
    torch.save({"G_A": reference.state_dict(), "D_A": small_generator(4).state_dict(), "epoch": 7}, file)
    with pytest.raises(GanforgeError) as err:
        convert_file(file, "official-cyclegan", tmp_path / "out.safetensors", get_registry())
    message = str(err.value)
    assert "\n" not in message and "got dict" not in message
    assert message.endswith("pass the one to convert with --key, e.g. --key G_A")
    assert "it holds a dict of 'G_A' (" in message and "'epoch' (int)" in message
    assert_converts_to(file, reference, tmp_path, key="G_A")
    out = tmp_path / "cli.safetensors"
    args = ["convert", str(file), "--from", "official-cyclegan", "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--key", "G_A"])
    assert result.exit_code == 0 and out.is_file(), result.output
    result = CliRunner().invoke(cli, [*args, "--key", "state_dict.G_A", "--force"])
    assert result.exit_code == 2 and "--key state_dict.G_A: " in result.output
    assert "has no 'state_dict' in the file (it has 'G_A', 'D_A', 'epoch')" in result.output


def test_a_pickled_module_is_refused_with_what_to_save_instead(tmp_path):
    file = tmp_path / "latest_net_G_A.pth"
    torch.save(nn.Sequential(nn.Conv2d(3, 3, 3)), file)  # the whole module, not its state_dict()
    with pytest.raises(GanforgeError) as err:
        convert_file(file, "official-cyclegan", tmp_path / "out.safetensors", get_registry())
    message = str(err.value)
    assert "holds a pickled torch module (torch.nn.modules.container.Sequential), not a state dict" in message
    assert "needs a full unpickle" in message and "weights_only=True" in message
    assert message.endswith(
        "save its weights alone, torch.save(model.state_dict(), 'weights.pth'), and convert that"
    )


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_a_truncated_checkpoint_is_reported_as_truncated_not_as_a_pickle(tmp_path, zip_format):
    import io
    import pickle

    buffer = io.BytesIO()
    torch.save(small_generator(5).state_dict(), buffer, _use_new_zipfile_serialization=zip_format)
    data = buffer.getvalue()
    file = tmp_path / "latest_net_G_A.pth"
    cuts = sorted(
        {1, 2, 10, 100, *range(130, 170), *range(200, len(data), max(1, len(data) // 40)), len(data) - 1}
    )
    unpickling = 0
    for cut in cuts:
        file.write_bytes(data[:cut])
        try:
            torch.load(file, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            unpickling += (
                1  # what torch raises for a truncated file at some cuts: it was reported as a pickle
            )
        except Exception:
            pass
        with pytest.raises(GanforgeError) as err:
            convert_file(file, "official-cyclegan", tmp_path / "out.safetensors", get_registry())
        message = str(err.value)
        assert message.startswith(f"{file} is truncated or corrupt ("), (cut, message)
        assert "full unpickle" not in message and "\n" not in message
    assert unpickling > 0  # the cuts cover the case of the issue
    file.write_bytes(b"")
    with pytest.raises(GanforgeError, match=r"is empty \(0 bytes\)"):
        convert_file(file, "official-cyclegan", tmp_path / "out.safetensors", get_registry())


def test_hook_register_converters(tmp_path):
    """A third party adds a converter for its own project's files; convert uses it by name."""
    from conftest import bare_host, without_kinds

    import ganforge_plugins.networks
    from ganforge import hookimpl
    from ganforge_plugins.apps.export.convert import Converted, state_tensors
    from ganforge_plugins.networks.resnet import ResnetGenerator

    class Theirs:
        """Files of 'their-gan': a ResnetGenerator under the key 'generator'."""

        objective = "cyclegan"

        def convert(self, raw, file, direction):
            state = state_tensors(raw["generator"], file, "a generator")
            options = {"ngf": 8, "blocks": 1, "init": "none"}
            return [Converted(direction or "a2b", "G_AB", "A", "B", "resnet", options, state)]

    class Plugin:
        @hookimpl
        def register_converters(self, register):
            register("their-gan", Theirs)

    host = bare_host()
    host.register_module(without_kinds(ganforge_plugins.networks), "networks", "ganforge")
    host.register_module(Plugin(), "their-plugin", "their-dist", "1.0")
    host.collect()
    net = ResnetGenerator(ngf=8, blocks=1)
    torch.save({"generator": net.state_dict()}, tmp_path / "theirs.pth")
    path, info = convert_file(
        tmp_path / "theirs.pth", "their-gan", tmp_path / "out.safetensors", host.registry
    )
    assert info["converted_from"] == "their-gan" and list(info["directions"]) == ["a2b"]
    assert read_header(path)["networks"]["G_AB"]["component"] == "resnet"
    with pytest.raises(GanforgeError, match="unknown converter 'nope'"):
        convert_file(tmp_path / "theirs.pth", "nope", tmp_path / "x.safetensors", host.registry)
