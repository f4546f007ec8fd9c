"""``ganforge export``: safetensors files that work wherever a run does, and ONNX on onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DCGAN_TINY, NO_CALLBACKS, RECIPES, run_cli
from PIL import Image
from safetensors import safe_open

from ganforge import checkpoint as ckpt
from ganforge.errors import GanforgeError
from ganforge.model import Model
from ganforge.plugins import get_registry
from ganforge.sampling import sample_to_files
from ganforge.translate import translate_files
from ganforge_plugins.apps.eval.evaluation import evaluate_checkpoint
from ganforge_plugins.apps.export.export import FORMAT, export_checkpoint, read_header


def header(path: Path) -> tuple[dict, list[str]]:
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["ganforge"]), list(f.keys())


def images(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def exported(tiny_cyclegan_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "model.safetensors"
    export_checkpoint(tiny_cyclegan_run, out)
    return out


def test_safetensors_holds_the_inference_networks_and_how_to_rebuild_them(tiny_cyclegan_run, exported):
    meta, keys = header(exported)
    assert meta["format"] == FORMAT and meta["objective"] == "cyclegan"
    assert {k.split("/")[0] for k in keys} == {"G_AB", "G_BA"}  # no discriminators, no optimizer state
    g = meta["networks"]["G_AB"]
    assert (g["kind"], g["component"], g["distribution"]) == ("generator", "resnet", "ganforge")
    assert g["options"]["ngf"] == 8 and g["options"]["blocks"] == 2 and g["options"]["norm"] == "instance"
    assert g["size_multiple"] == 4 and g["parameters"] > 0 and g["ema"] is False
    assert meta["directions"] == {
        "a2b": {"network": "G_AB", "source": "A", "target": "B", "inverse": "b2a"},
        "b2a": {"network": "G_BA", "source": "B", "target": "A", "inverse": "a2b"},
    }
    assert meta["input"]["range"] == [-1.0, 1.0] and meta["image_size"] == 32 and meta["noise"] is None
    assert meta["plugins"]["generator/resnet"].startswith("ganforge ")
    assert meta["step"] == 2 and meta["dtype"] == "fp32"
    # the weights are the trained ones, bit for bit
    state, _ = ckpt.load(ckpt.resolve(tiny_cyclegan_run))
    with safe_open(str(exported), framework="pt") as f:
        for key, value in state["objective"]["G_BA"].items():
            assert torch.equal(f.get_tensor(f"G_BA/{key}"), value)


def test_translate_and_eval_take_the_export_like_the_run(tiny_cyclegan_run, exported, selfie_root, tmp_path):
    registry = get_registry()
    inputs = [str(selfie_root / "trainA")]
    translate_files(Model.load(tiny_cyclegan_run, "cpu"), inputs, tmp_path / "run", "b2a")
    translate_files(Model.load(exported, "cpu"), inputs, tmp_path / "exp", "b2a")
    from_run, from_export = images(tmp_path / "run"), images(tmp_path / "exp")
    assert from_run.keys() == from_export.keys() and len(from_run) == 8
    assert all(np.array_equal(from_run[k], from_export[k]) for k in from_run)
    data = [str(selfie_root / "trainA"), str(selfie_root / "trainB")]
    a = evaluate_checkpoint(str(tiny_cyclegan_run), data, registry, "cycle", device="cpu", log=lambda _: None)
    b = evaluate_checkpoint(str(exported), data, registry, "cycle", device="cpu", log=lambda _: None)
    assert a.results == b.results and set(b.results) == {"a2b", "b2a", "mean"}


def test_one_direction_fp16_and_the_overwrite_guard(tiny_cyclegan_run, exported, tmp_path):
    out = tmp_path / "a2b.safetensors"
    export_checkpoint(tiny_cyclegan_run, out, directions=["a2b"], dtype="fp16")
    meta, keys = header(out)
    assert set(meta["networks"]) == {"G_AB"} and meta["directions"]["a2b"]["inverse"] is None
    with safe_open(str(out), framework="pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in keys)
    assert out.stat().st_size < exported.stat().st_size / 3  # half the networks, half the bytes
    model = Model.load(out, "cpu")
    full = Model.load(exported, "cpu")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert (model.translate(x, "a2b") - full.translate(x, "a2b")).abs().max() < 1e-2
    with pytest.raises(GanforgeError, match="no direction 'b2a'; it translates a2b"):
        model.direction("b2a")
    with pytest.raises(GanforgeError, match="already exists; pass --force"):
        export_checkpoint(tiny_cyclegan_run, out)
    export_checkpoint(exported, out, directions=["b2a"], force=True)  # an export of an export
    assert set(read_header(out)["networks"]) == {"G_BA"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_a_generator_exports_its_moving_average_and_samples_the_same(anime_root, tmp_path):
    from ganforge.recipe import Recipe
    from ganforge.training.trainer import Trainer

    registry = get_registry()
    run = tmp_path / "DC"
    items = [*DCGAN_TINY, f"data.root={anime_root}", "train.max_steps=2", "train.device='cpu'"]
    items += ["objective.ema=0.5", *NO_CALLBACKS]
    Trainer(Recipe.load(RECIPES / "dcgan_anime.toml", items).resolve(registry), run, registry).fit()
    out = tmp_path / "g.safetensors"
    export_checkpoint(run, out)
    meta, keys = header(out)
    assert set(meta["networks"]) == {"G"} and meta["networks"]["G"]["ema"] is True
    assert meta["noise"] == {"network": "G", "latent_dim": 16} and meta["directions"] == {}
    state, _ = ckpt.load(ckpt.resolve(run))
    with safe_open(str(out), framework="pt") as f:
        weight = next(k for k in state["objective"]["G_ema"] if k.endswith("weight"))
        assert torch.equal(f.get_tensor(f"G/{weight}"), state["objective"]["G_ema"][weight])
        assert not torch.equal(f.get_tensor(f"G/{weight}"), state["objective"]["G"][weight])
    a = sample_to_files(Model.load(run, "cpu"), count=4, out=tmp_path / "a.png", seed=3)[0]
    b = sample_to_files(Model.load(out, "cpu"), count=4, out=tmp_path / "b.png", seed=3)[0]
    assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


def test_onnx_matches_pytorch_on_real_images(tiny_cyclegan_run, selfie_root, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "b2a.onnx"
    export_checkpoint(tiny_cyclegan_run, out, format="onnx", directions=["b2a"])
    model = Model.load(tiny_cyclegan_run, "cpu")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["ganforge"])
    assert meta["directions"]["b2a"]["source"] == "B" and set(meta["networks"]) == {"G_BA"}
    files = sorted((selfie_root / "trainB").iterdir())
    # dynamic batch, height and width: 3 images at 32x32, 2 at 48x40
    for count, size in ((3, (32, 32)), (2, (40, 48))):
        batch = np.stack([np.asarray(Image.open(f).convert("RGB").resize(size)) for f in files[:count]])
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 127.5 - 1
        (y,) = session.run(None, {"images": x.numpy()})
        expected = model.translate(x, "b2a")

        def to_uint8(t):
            return torch.as_tensor(t).clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).int()

        assert y.shape == tuple(expected.shape)
        assert (to_uint8(y) - to_uint8(expected)).abs().max() <= 1
    half = tmp_path / "half.onnx"
    export_checkpoint(tiny_cyclegan_run, half, format="onnx", dtype="fp16")
    session = ort.InferenceSession(str(half), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"images": x.numpy().astype(np.float16)})
    assert (
        y.dtype == np.float16
        and np.abs(y.astype(np.float32) - model.translate(x, "a2b").numpy()).max() < 0.05
    )
    with pytest.raises(GanforgeError, match="fp32 or fp16"):
        export_checkpoint(tiny_cyclegan_run, tmp_path / "bf.onnx", format="onnx", dtype="bf16")
    with pytest.raises(GanforgeError, match="one direction"):
        export_checkpoint(tiny_cyclegan_run, tmp_path / "two.onnx", format="onnx", directions=["a2b", "b2a"])


def test_cli_export_prints_the_size_and_a_missing_plugin_names_its_distribution(
    tiny_cyclegan_run, exported, tmp_path
):
    out = tmp_path / "cli.safetensors"
    result = run_cli("export", str(tiny_cyclegan_run), "--out", str(out), "--direction", "a2b")
    assert result.returncode == 0, result.stderr
    assert f"wrote {out} (" in result.stderr and ("MB" in result.stderr or "kB" in result.stderr)
    again = run_cli("export", str(tiny_cyclegan_run), "--out", str(out))
    assert (
        again.returncode == 2
        and again.stderr.strip() == f"error: {out} already exists; pass --force to replace it"
    )

    # an export and a checkpoint whose generator came from a plugin this machine lacks
    from safetensors.torch import load_file, save_file

    meta, _ = header(exported)
    spec = meta["networks"]["G_AB"]
    spec.update(
        component="my-gen", plugin="ganforge_example", distribution="ganforge-example-plugin", version="1.2.3"
    )
    foreign = tmp_path / "foreign.safetensors"
    with safe_open(str(exported), framework="pt") as f:
        original = f.metadata()
    save_file(load_file(str(exported)), str(foreign), metadata={**original, "ganforge": json.dumps(meta)})
    with pytest.raises(GanforgeError, match=r"generator 'my-gen' from ganforge-example-plugin 1\.2\.3"):
        Model.load(foreign, "cpu")

    # a checkpoint: its model card names the plugin the same way
    state, cmeta = ckpt.load(ckpt.resolve(tiny_cyclegan_run))
    assert cmeta["plugins"]["generator/resnet"].startswith("ganforge ")  # Trainer.meta records them
    cmeta["model"]["networks"]["G_AB"].update(spec)
    ckpt.save(tmp_path / "foreign-run" / "checkpoints" / "step-00000002.safetensors", state, cmeta)
    result = run_cli("translate", str(tmp_path / "foreign-run"), str(tmp_path), "--out", str(tmp_path / "t"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "generator 'my-gen' from ganforge-example-plugin 1.2.3" in result.stderr
    assert "pip install ganforge-example-plugin" in result.stderr
    # a checkpoint from before model cards: its saved recipe and plugin list say it
    del cmeta["model"]
    cmeta["recipe"]["generator"] = {"name": "my-gen"}
    cmeta["plugins"]["generator/my-gen"] = "ganforge-example-plugin 1.2.3"
    ckpt.save(tmp_path / "old-run" / "checkpoints" / "step-00000002.safetensors", state, cmeta)
    result = run_cli("translate", str(tmp_path / "old-run"), str(tmp_path), "--out", str(tmp_path / "t"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "generator 'my-gen' was provided by ganforge-example-plugin 1.2.3" in result.stderr


def test_hook_register_exporters(tiny_cyclegan_run, tmp_path):
    """A third party adds a model file format; Model.export (and ganforge export) use it by name."""
    import numpy as np
    from conftest import bare_host

    from ganforge import hookimpl
    from ganforge.model import atomic_write

    class NPZ:
        """Each network's weights as numpy arrays."""

        def write(self, model, path, directions, dtype):
            card, networks = model.subset(directions)
            arrays = {
                f"{n}/{k}": v.numpy() for n, net in networks.items() for k, v in net.state_dict().items()
            }
            atomic_write(path, lambda tmp: np.savez(open(tmp, "wb"), **arrays))
            return card

    class Plugin:
        @hookimpl
        def register_exporters(self, register):
            register("npz", NPZ)

    host = bare_host()
    host.register_module(Plugin(), "npz-plugin", "ganforge-npz", "1.0")
    host.collect()
    model = Model.load(tiny_cyclegan_run, "cpu")
    path = model.export(tmp_path / "g.npz", format="npz", direction="a2b", registry=host.registry)
    saved = np.load(path)
    weight = next(k for k in saved.files if k.endswith("weight"))
    assert weight.startswith("G_AB/") and not any(k.startswith("G_BA/") for k in saved.files)
    with pytest.raises(GanforgeError, match="unknown exporter 'tflite'"):
        model.export(tmp_path / "g.tflite", format="tflite", registry=host.registry)
    with pytest.raises(GanforgeError, match="the file being read"):  # --force never replaces the input
        model.export(model.file, force=True)
