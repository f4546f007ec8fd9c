"""Model files (issue 22): damaged exports are refused everywhere, ``--force`` never replaces an
input or a checkpoint, a full disk or a killed write leaves nothing behind, files follow the umask.

Exports (``ganforge export``, ``Model.save``, ``ganforge convert``) are safetensors files with a
CRC-32 per tensor (``ganforge-export/2``); every command that takes a model reads them through
``Model.load``, which checks the checksums and refuses non-finite weights.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest
import torch
from conftest import DCGAN_TINY, NO_CALLBACKS, RECIPES, REPO, make_folder
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file
from test_reliability import assert_one_line_error, invoke, tmpfs, tree_digest

import ganforge
from ganforge.errors import GanforgeError
from ganforge.plugins import get_registry
from ganforge_plugins.apps.demo import demo as demo_mod
from ganforge_plugins.apps.export.export import export_checkpoint
from ganforge_plugins.networks.resnet import ResnetGenerator


@pytest.fixture(scope="module")
def photos(selfie_root, tmp_path_factory) -> Path:
    images = [Image.open(p) for p in sorted((selfie_root / "trainA").iterdir())[:2]]
    return make_folder(tmp_path_factory.mktemp("photos"), images)


@pytest.fixture(scope="module")
def exported(tiny_cyclegan_run, tmp_path_factory) -> Path:
    """A CycleGAN export: both directions, fp32."""
    out = tmp_path_factory.mktemp("export") / "model.safetensors"
    export_checkpoint(tiny_cyclegan_run, out)
    return out


@pytest.fixture(scope="module")
def dcgan_exported(anime_root, tmp_path_factory) -> Path:
    """A DCGAN generator's export (what ``sample`` takes)."""
    from ganforge.recipe import Recipe
    from ganforge.training.trainer import Trainer

    tmp = tmp_path_factory.mktemp("dcgan")
    items = [*DCGAN_TINY, f"data.root={anime_root}", "train.max_steps=1", "train.device='cpu'", *NO_CALLBACKS]
    registry = get_registry()
    Trainer(Recipe.load(RECIPES / "dcgan_anime.toml", items).resolve(registry), tmp / "DC", registry).fit()
    out = tmp / "g.safetensors"
    export_checkpoint(tmp / "DC", out)
    return out


@pytest.fixture(scope="module")
def official_pth(tmp_path_factory) -> Path:
    """An official CycleGAN generator file (its ResnetGenerator is ganforge's resnet, key for key)."""
    torch.manual_seed(0)
    file = tmp_path_factory.mktemp("pth") / "latest_net_G_A.pth"
    torch.save(ResnetGenerator(ngf=4, blocks=2).state_dict(), file)
    return file


def flip_a_byte(path: Path) -> None:
    """Flip one byte in the middle of the tensor data (after the header), as a bad disk or copy would."""
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    at = start + (len(data) - start) // 2
    data[at] ^= 0x5A
    path.write_bytes(bytes(data))


def resigned(source: Path, target: Path, edit) -> Path:
    """A copy of an export with ``edit(tensors)`` applied and its checksums made to match (a
    consistent file whose content is wrong, which only the finiteness check can refuse)."""
    with safe_open(str(source), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        header = dict(f.metadata())
    edit(tensors)
    sums = {k: zlib.crc32(t.contiguous().reshape(-1).view(torch.uint8).numpy()) for k, t in tensors.items()}
    header["checksums"] = json.dumps(sums)
    save_file({k: t.contiguous() for k, t in tensors.items()}, str(target), metadata=header)
    return target


def refusals(file: Path, photos: Path, data: tuple[Path, Path], out: Path) -> dict[str, object]:
    """Every command that takes an export, on ``file``: the CLI results and the Python errors."""
    results: dict[str, object] = {
        "translate": invoke("translate", file, photos, "--out", out / "t", "--device", "cpu"),
        "export": invoke("export", file, "--out", out / "e.safetensors"),
        "eval": invoke("eval", file, "--data", *data, "--metrics", "cycle", "--device", "cpu"),
    }
    for name, load in (
        ("ganforge.load", lambda: ganforge.load(file, "cpu")),
        ("demo", lambda: demo_mod.DemoModel(file, get_registry(), device="cpu")),
    ):
        with pytest.raises(GanforgeError) as err:
            load()
        results[name] = str(err.value)
    return results


def assert_refused(results: dict[str, object], file: Path, says: str) -> None:
    for name, result in results.items():
        if isinstance(result, str):  # a Python error: the message the CLI would print
            assert "\n" not in result and str(file) in result and says in result, (name, result)
        else:
            line = assert_one_line_error(result, str(file), says)
            assert line.startswith("error: "), (name, line)


# -- 5. damaged exports ---------------------------------------------------------------------------


def test_a_flipped_byte_is_refused_by_every_command(exported, dcgan_exported, photos, selfie_root, tmp_path):
    damaged = tmp_path / "model.safetensors"
    shutil.copy(exported, damaged)
    flip_a_byte(damaged)
    before = damaged.read_bytes()
    data = (selfie_root / "trainA", selfie_root / "trainB")
    assert_refused(refusals(damaged, photos, data, tmp_path), damaged, "does not match its checksum")
    generator = tmp_path / "g.safetensors"
    shutil.copy(dcgan_exported, generator)
    flip_a_byte(generator)
    result = invoke("sample", generator, "-n", "4", "--out", tmp_path / "grid.png", "--device", "cpu")
    assert_one_line_error(result, str(generator), "does not match its checksum")
    assert damaged.read_bytes() == before  # read, never changed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.safetensors", "model.safetensors"]  # no output


def test_a_nan_weight_is_refused(exported, photos, selfie_root, tmp_path):
    def poison(tensors):
        key = next(k for k in tensors if k.startswith("G_AB/") and k.endswith("weight"))
        tensors[key] = torch.full_like(tensors[key], float("nan"))

    bad = resigned(exported, tmp_path / "nan.safetensors", poison)
    for command in (
        invoke("translate", bad, photos, "--out", tmp_path / "t", "--device", "cpu"),
        invoke("export", bad, "--out", tmp_path / "e.safetensors"),
    ):
        assert_one_line_error(command, str(bad), "NaN or infinite")
    with pytest.raises(GanforgeError, match=r"nan\.safetensors: G_AB/.*weight holds NaN or infinite values$"):
        ganforge.load(bad, "cpu")
    assert not (tmp_path / "t").exists() and not (tmp_path / "e.safetensors").exists()


def test_ganforge_reads_no_onnx_file_and_says_so(tiny_cyclegan_run, photos, tmp_path):
    """ONNX exports are for other runtimes: ganforge never reads one back (whole or damaged), so
    a flipped byte in one cannot mislead it; given one, every command says what it is."""
    pytest.importorskip("onnx")
    whole, damaged = tmp_path / "model.onnx", tmp_path / "damaged.onnx"
    export_checkpoint(tiny_cyclegan_run, whole, format="onnx")
    data = bytearray(whole.read_bytes())
    data[len(data) // 2] ^= 0x5A
    damaged.write_bytes(bytes(data))
    for file in (whole, damaged):
        result = invoke("translate", file, photos, "--out", tmp_path / "t", "--device", "cpu")
        assert_one_line_error(result, str(file), "is an ONNX file")
        with pytest.raises(GanforgeError, match="is an ONNX file"):
            ganforge.load(file, "cpu")


# -- 6. --force replaces earlier outputs, never an input or a checkpoint ----------------------------


def test_force_never_replaces_a_checkpoint_or_the_file_read(tiny_cyclegan_run, official_pth, tmp_path):
    run = tmp_path / "RUN"
    shutil.copytree(tiny_cyclegan_run, run)
    latest = run / "checkpoints" / "step-00000002.safetensors"
    older = shutil.copy(latest, run / "checkpoints" / "step-00000001.safetensors")
    pth = shutil.copy(official_pth, tmp_path / "g.pth")
    before, pth_bytes = tree_digest(run), pth.read_bytes()
    cases = [
        (["export", run, "--out", latest, "--force"], "is the file being read"),
        (["export", run, "--out", older, "--force"], "is a run's checkpoint"),
        (["export", run, "--format", "onnx", "--out", older, "--force"], "is a run's checkpoint"),
        (["convert", pth, "--from", "official-cyclegan", "--out", pth, "--force"], "is the file being read"),
        (["convert", pth, "--from", "official-cyclegan", "--out", older, "--force"], "is a run's checkpoint"),
    ]
    for args, says in cases:
        assert_one_line_error(invoke(*args), says)
    assert tree_digest(run) == before and pth.read_bytes() == pth_bytes
    # what --force is for: an earlier output, of export and of convert
    out = tmp_path / "model.safetensors"
    assert invoke("export", run, "--out", out).exit_code == 0
    assert_one_line_error(invoke("export", run, "--out", out), "already exists; pass --force")
    assert invoke("convert", pth, "--from", "official-cyclegan", "--out", out, "--force").exit_code == 0
    assert_one_line_error(invoke("export", out, "--out", out, "--force"), "is the file being read")
    assert invoke("export", run, "--out", out, "--force").exit_code == 0


# -- 7. full disks and killed writes ----------------------------------------------------------------


def test_a_full_disk_is_one_line_and_leaves_nothing(tiny_cyclegan_run, official_pth, tmp_path):
    with tmpfs(tmp_path / "small", "size=16k") as disk:  # every file here is larger
        commands = {
            "export": ["export", tiny_cyclegan_run, "--out", disk / "model.safetensors"],
            "convert": [
                "convert",
                official_pth,
                "--from",
                "official-cyclegan",
                "--out",
                disk / "g.safetensors",
            ],
        }
        if _has("onnx"):
            commands["onnx"] = ["export", tiny_cyclegan_run, "--format", "onnx", "--out", disk / "m.onnx"]
        for name, args in commands.items():
            line = assert_one_line_error(invoke(*args), "No space left on device", str(args[-1]))
            assert line.startswith(f"error: cannot write {args[-1]}: "), (name, line)
            assert list(disk.iterdir()) == [], (name, list(disk.iterdir()))  # no partial file, no .tmp


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


KILLED_WRITE = """
import os, signal, sys
from pathlib import Path

what, source, out = sys.argv[1:]

def die(*args, **kwargs):  # killed half-way through writing the temporary file
    tmp = next(a for a in args if isinstance(a, str) and a.endswith(".tmp"))
    Path(tmp).write_bytes(b"partial" * 1000)
    os.kill(os.getpid(), signal.SIGKILL)

if what == "onnx":
    import torch.onnx
    torch.onnx.export = lambda net, args, tmp, **kw: die(tmp)
    from ganforge_plugins.apps.export.export import export_checkpoint
    export_checkpoint(source, out, format="onnx")
else:
    import safetensors.torch
    safetensors.torch.save_file = lambda tensors, tmp, metadata=None: die(tmp)
    from ganforge_plugins.apps.export import convert_file
    convert_file(source, "official-cyclegan", out)
"""


@pytest.mark.parametrize("what", ["onnx", "convert"])
def test_a_killed_write_leaves_a_temporary_file_the_next_run_removes(
    what, tiny_cyclegan_run, official_pth, tmp_path
):
    if what == "onnx":
        pytest.importorskip("onnx")
    source = tiny_cyclegan_run if what == "onnx" else official_pth
    out = tmp_path / ("model.onnx" if what == "onnx" else "g.safetensors")
    foreign = [
        tmp_path / f".{out.name}.tmp",
        tmp_path / f".{out.name}.mine.tmp",
        tmp_path / ".x.abcdefgh.tmp",
    ]
    for path in foreign:  # not the names of ganforge's temporary files: kept
        path.write_text("the user's")
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITE, what, str(source), str(out)], cwd=REPO, capture_output=True
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    stale = [p for p in tmp_path.iterdir() if p not in foreign]
    assert len(stale) == 1 and stale[0].name.startswith(f".{out.name}.") and stale[0].name.endswith(".tmp")
    assert not out.exists()
    args = ["export", source, "--format", "onnx"] if what == "onnx" else ["convert", source]
    args += [] if what == "onnx" else ["--from", "official-cyclegan"]
    result = invoke(*args, "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(tmp_path.iterdir()) == sorted([out, *foreign])  # the stale one is gone


# -- 8. files follow the umask -----------------------------------------------------------------------

UMASK_SCRIPT = """
import json, os, stat, sys
from pathlib import Path

mask, run, pth, out = int(sys.argv[1], 8), sys.argv[2], sys.argv[3], Path(sys.argv[4])
os.umask(mask)
import torch
from ganforge import checkpoint as ckpt
from ganforge_plugins.apps.export import convert_file
from ganforge_plugins.apps.export.export import export_checkpoint

files = {
    "checkpoint": ckpt.CheckpointDir(out / "checkpoints").save(1, {"w": torch.ones(2)}, {"step": 1}),
    "export": export_checkpoint(run, out / "model.safetensors")[0],
    "convert": Path(convert_file(pth, "official-cyclegan", out / "g.safetensors")),
}
if len(sys.argv) > 5:
    files["onnx"] = export_checkpoint(run, out / "model.onnx", format="onnx")[0]
print(json.dumps({k: oct(stat.S_IMODE(os.stat(v).st_mode)) for k, v in files.items()}))
"""


@pytest.mark.parametrize("mask, mode", [("022", "0o644"), ("077", "0o600")])
def test_written_files_follow_the_umask(mask, mode, tiny_cyclegan_run, official_pth, tmp_path):
    """Atomic writes go through ``mkstemp`` (mode 0600): the file is given the umask's mode
    before it is renamed into place, so colleagues read checkpoints under umask 022, and 077 keeps
    them private."""
    args = [
        sys.executable,
        "-c",
        UMASK_SCRIPT,
        mask,
        str(tiny_cyclegan_run),
        str(official_pth),
        str(tmp_path),
    ]
    proc = subprocess.run(
        [*args, *(["onnx"] if _has("onnx") else [])], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    modes = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(modes) >= {"checkpoint", "export", "convert"}
    assert modes == dict.fromkeys(modes, mode)


def test_atomic_writes_leave_no_temporary_file_when_they_fail(tmp_path):
    from ganforge.errors import WriteError
    from ganforge.model import atomic_write

    def fails(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("the writer failed")

    with pytest.raises(WriteError, match=r"cannot write .*x\.bin: the writer failed"):
        atomic_write(tmp_path / "x.bin", fails)
    assert list(tmp_path.iterdir()) == []
    fd, name = tempfile.mkstemp(prefix=".x.bin.", suffix=".tmp", dir=tmp_path)  # a killed write's name
    os.close(fd)
    from ganforge.model import clean_stale

    assert clean_stale(tmp_path / "x.bin") == [Path(name)] and list(tmp_path.iterdir()) == []
