"""Reliability (issue 14): nothing a user has is lost, no traceback on bad input, no silent NaN.

Fault tests: a checkpoint-damage matrix through every command that reads checkpoints, the
non-finite stop, kills during checkpoint writes, decompression bombs and odd image modes, the
overwrite guards, a read-only output folder and a full disk (small tmpfs mounts, skipped where
the test cannot mount), plugin failures, declared ranges and size cross-checks. CLI cases run
the real click commands in-process (``CliRunner``: exit code, stderr, no escaping exception);
a few go through a real subprocess.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import random
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import DCGAN_TINY, NO_CALLBACKS, RECIPES, REPO, TINY, bare_host, make_folder, run_cli, sets
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from ganforge import GanforgeError, hookimpl
from ganforge import checkpoint as ckpt
from ganforge.cli import cli
from ganforge.data import open_rgb
from ganforge.errors import NonFiniteError
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer

RECIPE = RECIPES / "cyclegan_selfie2anime.toml"


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, *needles: str, code: int = 2) -> str:
    """Exit ``code``, no escaping exception (no traceback), exactly one ``error:`` line."""
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), f"{type(exc).__name__}: {exc}\n{result.output}"
    assert result.exit_code == code, f"exit {result.exit_code}:\n{result.output}"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    return errors[0]


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def resolved(root: Path, *items: str, recipe: Path = RECIPE, tiny=TINY):
    base = [*tiny, f"data.root={root}", "train.device='cpu'"]
    return Recipe.load(recipe, [*base, *items]).resolve(get_registry())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, selfie_root) -> Path:
    """A tiny CycleGAN trained 2 steps, a checkpoint at each step."""
    out = tmp_path_factory.mktemp("rel") / "RUN"
    table = "callbacks={checkpoint = {every = 1, keep = 5}, metrics-log = {}}"
    Trainer(resolved(selfie_root, "train.max_steps=2", table), out, get_registry()).fit()
    return out


@pytest.fixture(scope="module")
def photos(tmp_path_factory, selfie_root) -> Path:
    return make_folder(
        tmp_path_factory.mktemp("photos"),
        [Image.open(p) for p in sorted((selfie_root / "trainA").iterdir())[:2]],
    )


# -- checkpoint damage -----------------------------------------------------------------------------


def _parts(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())


def _write(path: Path, tensors: dict[str, torch.Tensor], header: dict[str, str], sums: bool = True) -> None:
    """Rewrite a checkpoint, with checksums made to match (a consistent tamper) unless ``sums`` is off."""
    if sums and "checksums" in header:
        table = {
            k: zlib.crc32(t.contiguous().reshape(-1).view(torch.uint8).numpy()) for k, t in tensors.items()
        }
        header["checksums"] = json.dumps(
            {
                "meta": zlib.crc32(header["meta"].encode()),
                "state": zlib.crc32(header["state"].encode()),
                "tensors": table,
            }
        )
    save_file({k: t.contiguous() for k, t in tensors.items()}, str(path), metadata=header)


def _edit_tree(header: dict[str, str], edit) -> None:
    tree = json.loads(header["state"])
    edit(tree)
    header["state"] = json.dumps(tree)


def _edit_meta(header: dict[str, str], edit) -> None:
    meta = json.loads(header["meta"])
    header["meta"] = json.dumps(edit(meta))


WEIGHT = "objective/G_AB/model.1.weight"
BIAS = "objective/G_AB/model.1.bias"


def _damage(kind: str, path: Path) -> None:
    data = path.read_bytes()
    tensors, header = _parts(path)
    rng = random.Random(kind)
    if kind == "truncated-half":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "truncated-header":
        path.write_bytes(data[:100])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random-bytes":
        path.write_bytes(rng.randbytes(5000))
    elif kind == "flipped-data-byte":
        at = len(data) - 777
        path.write_bytes(data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1 :])
    elif kind == "zero-header-length":
        path.write_bytes(b"\x00" * 8 + data[8:])
    elif kind == "pickle-evil":

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {path.parent / 'PWNED'}",))

        path.write_bytes(pickle.dumps({"state": Evil()}))
    elif kind == "torch-save-zip":
        buf = io.BytesIO()
        torch.save(tensors, buf)
        path.write_bytes(buf.getvalue())
    elif kind == "torch-save-legacy":
        buf = io.BytesIO()
        torch.save(tensors, buf, _use_new_zipfile_serialization=False)
        path.write_bytes(buf.getvalue())
    elif kind == "missing-tensor":  # the tree still names it
        del tensors[BIAS]
        _write(path, tensors, header, sums=False)
    elif kind == "extra-tensor":
        tensors["objective/G_AB/extra"] = torch.ones(3)
        _write(path, tensors, header, sums=False)
    elif kind == "missing-tensor-consistent":
        del tensors[BIAS]
        _edit_tree(header, lambda t: t["objective"]["G_AB"].pop("model.1.bias"))
        _write(path, tensors, header)
    elif kind == "extra-tensor-consistent":
        tensors["objective/G_AB/extra"] = torch.ones(3)
        _edit_tree(
            header, lambda t: t["objective"]["G_AB"].update(extra={"__tensor__": "objective/G_AB/extra"})
        )
        _write(path, tensors, header)
    elif kind == "wrong-dtype":
        tensors[WEIGHT] = tensors[WEIGHT].double()
        _write(path, tensors, header)
    elif kind == "wrong-shape":
        tensors[WEIGHT] = tensors[WEIGHT][:, :, :3]
        _write(path, tensors, header)
    elif kind == "nan-weight":
        tensors[WEIGHT] = torch.full_like(tensors[WEIGHT], float("nan"))
        _write(path, tensors, header)
    elif kind == "inf-optimizer-moment":
        key = next(k for k in tensors if k.startswith("objective/opt_g/state/") and k.endswith("exp_avg"))
        tensors[key] = torch.full_like(tensors[key], float("inf"))
        _write(path, tensors, header)
    elif kind == "optimizer-moment-shape":
        key = next(k for k in tensors if k.startswith("objective/opt_d/state/") and k.endswith("exp_avg_sq"))
        tensors[key] = torch.zeros(2, 2)
        _write(path, tensors, header)
    elif kind == "rng-cpu-missing":
        del tensors["rng/cpu"]
        _edit_tree(header, lambda t: t["rng"].pop("cpu"))
        _write(path, tensors, header)
    elif kind == "rng-cpu-wrong-dtype":
        tensors["rng/cpu"] = tensors["rng/cpu"].float()
        _write(path, tensors, header)
    elif kind == "meta-a-list":
        header["meta"] = "[1, 2, 3]"
        _write(path, tensors, header)
    elif kind == "meta-recipe-string":
        _edit_meta(header, lambda m: {**m, "recipe": "cyclegan"})
        _write(path, tensors, header)
    elif kind == "meta-no-recipe":
        _edit_meta(header, lambda m: {k: v for k, v in m.items() if k != "recipe"})
        _write(path, tensors, header)
    elif kind == "meta-negative-step":
        _edit_meta(header, lambda m: {**m, "step": -4})
        _edit_tree(header, lambda t: t["trainer"].update(step=-4))
        _write(path, tensors, header)
    elif kind == "meta-step-mismatch":
        _edit_meta(header, lambda m: {**m, "step": 7})
        _write(path, tensors, header)
    elif kind == "meta-not-json":
        header["meta"] = "{not json"
        _write(path, tensors, header)
    elif kind == "meta-unknown-generator":
        _edit_meta(header, lambda m: {**m, "recipe": {**m["recipe"], "generator": {"name": "nope"}}})
        _write(path, tensors, header)
    elif kind == "meta-changed-unsigned":  # a plausible edit without updating the checksums
        _edit_meta(
            header,
            lambda m: {
                **m,
                "recipe": {**m["recipe"], "objective": {**m["recipe"]["objective"], "lambda_cycle": 1.0}},
            },
        )
        _write(path, tensors, header, sums=False)
    elif kind == "meta-world-size-zero":
        _edit_meta(header, lambda m: {**m, "world_size": 0})
        _write(path, tensors, header)
    elif kind == "meta-objective-mismatch":
        _edit_meta(header, lambda m: {**m, "objective": "dcgan"})
        _write(path, tensors, header)
    elif kind == "state-a-list":
        header["state"] = "[]"
        _write(path, tensors, header)
    elif kind == "no-format":
        del header["format"]
        _write(path, tensors, header)
    else:
        raise AssertionError(kind)


DAMAGES = [
    "truncated-half", "truncated-header", "empty", "random-bytes", "flipped-data-byte",
    "zero-header-length", "pickle-evil", "torch-save-zip", "torch-save-legacy", "missing-tensor",
    "extra-tensor", "missing-tensor-consistent", "extra-tensor-consistent", "wrong-dtype",
    "wrong-shape", "nan-weight", "inf-optimizer-moment", "optimizer-moment-shape",
    "rng-cpu-missing", "rng-cpu-wrong-dtype", "meta-a-list", "meta-recipe-string", "meta-no-recipe",
    "meta-negative-step", "meta-step-mismatch", "meta-not-json", "meta-unknown-generator",
    "meta-changed-unsigned", "meta-world-size-zero", "meta-objective-mismatch", "state-a-list",
    "no-format",
]  # fmt: skip
# What the one-line error says, for a few (every case must name the file).
SAYS = {
    "pickle-evil": "never unpickles",
    "torch-save-zip": "`ganforge convert`",
    "torch-save-legacy": "pickle (torch.save)",
    "missing-tensor": BIAS,
    "missing-tensor-consistent": BIAS,
    "extra-tensor": "objective/G_AB/extra",
    "extra-tensor-consistent": "objective/G_AB/extra",
    "wrong-dtype": "float64",
    "wrong-shape": WEIGHT,
    "nan-weight": "NaN",
    "meta-negative-step": "step",
    "meta-recipe-string": "recipe",
    "flipped-data-byte": "checksum",
    "meta-changed-unsigned": "checksum",
}


# Self-consistent (re-signed) files whose damage is in what only training reads: inference reads
# the model card and the inference networks (and checks every tensor's checksum), so it works on
# them; --resume refuses them. What the report accepts: what it does not show.
TRAINING_ONLY = {
    "inf-optimizer-moment",
    "optimizer-moment-shape",
    "rng-cpu-missing",
    "rng-cpu-wrong-dtype",
    "meta-step-mismatch",
    "meta-unknown-generator",
}
REPORT_ACCEPTS = {"optimizer-moment-shape", "meta-unknown-generator"}


def _accepted(kind: str, command: str) -> bool:
    if command in ("translate", "eval", "export", "sample"):
        return kind in TRAINING_ONLY
    return command == "report" and kind in REPORT_ACCEPTS


def test_checkpoint_damage_matrix(run_dir, photos, selfie_root, tmp_path):
    """Every damaged file, through every command that reads checkpoints: one line, exit 2, the
    file unchanged and nothing written; except damage to what only training reads, which the
    inference commands do not read (and ``sample`` of a translator says it does not sample)."""
    a, b = selfie_root / "trainA", selfie_root / "trainB"
    failures = []
    for kind in DAMAGES:
        case = tmp_path / kind
        shutil.copytree(run_dir, case / "RUN")
        (
            case / "RUN" / "checkpoints" / "step-00000001.safetensors"
        ).unlink()  # the damaged one is all there is
        file = case / "RUN" / "checkpoints" / "step-00000002.safetensors"
        _damage(kind, file)
        damaged = file.read_bytes()
        commands = {
            "translate": ["translate", file, photos, "--out", case / "out", "--device", "cpu"],
            "sample": ["sample", file, "-n", "2", "--out", case / "grid.png", "--device", "cpu"],
            "eval": ["eval", file, "--data", a, b, "--metrics", "cycle", "--device", "cpu"],
            "report": ["report", case / "RUN"],
            "export": ["export", file, "--out", case / "out.safetensors"],
            "resume-file": ["run", "--resume", file, "--set", "train.max_steps=3", "--device", "cpu"],
            "resume-dir": ["run", "--resume", case / "RUN", "--set", "train.max_steps=3", "--device", "cpu"],
        }
        for name, args in commands.items():
            result = invoke(*args)
            try:
                if not _accepted(kind, name):
                    assert_one_line_error(result, file.name, SAYS.get(kind, ""))
                    assert not any((case / n).exists() for n in ("out", "grid.png", "out.safetensors"))
                elif name == "sample":
                    assert_one_line_error(result, "does not generate from noise")
                else:
                    assert result.exit_code == 0, result.output
                assert file.read_bytes() == damaged, "the checkpoint was changed"
            except AssertionError as exc:
                failures.append(f"{kind} x {name}: {exc}")
            shutil.rmtree(case / "out", ignore_errors=True)  # what an accepted command wrote
            (case / "out.safetensors").unlink(missing_ok=True)
        assert not (case / "RUN" / "checkpoints" / "PWNED").exists(), "a pickle ran"
    assert not failures, f"{len(failures)} failed:\n" + "\n\n".join(failures[:10])


def test_damaged_checkpoints_through_the_real_cli(run_dir, photos, tmp_path):
    for kind, command in [("pickle-evil", "translate"), ("nan-weight", "run"), ("meta-a-list", "report")]:
        case = tmp_path / kind
        shutil.copytree(run_dir, case)
        file = case / "checkpoints" / "step-00000002.safetensors"
        _damage(kind, file)
        args = {
            "translate": [
                "translate",
                str(file),
                str(photos),
                "--out",
                str(tmp_path / "o"),
                "--device",
                "cpu",
            ],
            "run": ["run", "--resume", str(case), "--set", "train.max_steps=3", "--device", "cpu"],
            "report": ["report", str(case)],
        }[command]
        result = run_cli(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error:") and file.name in result.stderr
        assert not (case / "checkpoints" / "PWNED").exists()


def test_a_healthy_checkpoint_passes_every_check(run_dir):
    file, meta = ckpt.verify(run_dir)
    assert file.name == "step-00000002.safetensors" and meta["step"] == 2
    with safe_open(str(file), "pt") as f:
        assert f.metadata()["format"] == ckpt.FORMAT and "checksums" in f.metadata()


# -- non-finite losses -------------------------------------------------------------------------------


def _poison_at(trainer: Trainer, step_index: int) -> None:
    """Make G_AB's first conv NaN just before step ``step_index`` (0-based) runs."""
    original = trainer.objective.train_step

    def train_step(batch, step):
        if step == step_index:
            with torch.no_grad():
                trainer.objective.G_AB.model[1].weight.fill_(float("nan"))
        return original(batch, step)

    trainer.objective.train_step = train_step


def test_nan_loss_stops_with_exit_3_and_keeps_the_last_finite_checkpoint(selfie_root, tmp_path):
    out = tmp_path / "RUN"
    table = "callbacks={checkpoint = {every = 1, keep = 2}, metrics-log = {}}"
    trainer = Trainer(
        resolved(selfie_root, "train.max_steps=10", "train.log_every=5", table), out, get_registry()
    )
    _poison_at(trainer, 3)
    with pytest.raises(NonFiniteError) as err:
        trainer.fit()
    assert err.value.exit_code == 3
    message = str(err.value)
    assert message.startswith("step 4: loss '") and "is nan" in message and "step-00000003" in message
    kept = ckpt.CheckpointDir(out / "checkpoints")
    assert [p.name for p in kept.steps()] == ["step-00000002.safetensors", "step-00000003.safetensors"]
    assert kept.latest().name == "step-00000003.safetensors"
    for path in kept.steps():
        ckpt.verify(path)  # finite, whole


def test_nan_between_checkpoints_is_caught_at_the_log_interval(selfie_root, tmp_path):
    out = tmp_path / "RUN"
    table = "callbacks={checkpoint = {every = 100}, metrics-log = {}}"
    trainer = Trainer(
        resolved(selfie_root, "train.max_steps=8", "train.log_every=4", table), out, get_registry()
    )
    _poison_at(trainer, 5)
    with pytest.raises(NonFiniteError, match=r"^step 6: loss '\w+' is nan.*No checkpoint was written"):
        trainer.fit()
    assert ckpt.CheckpointDir(out / "checkpoints").steps() == []  # none with NaN weights


def test_divergent_learning_rate_through_the_cli_exits_3(selfie_root, tmp_path):
    args = sets(*TINY, f"data.root={selfie_root}", "train.max_steps=20", "optim.g.lr=1e30", "optim.d.lr=1e30")
    result = invoke("run", RECIPE, *args, "--out", tmp_path / "RUN", "--device", "cpu")
    assert_one_line_error(result, "step ", "NaN" if "holds" in result.stderr else "loss", code=3)


# -- kills, read-only folders, full disks ---------------------------------------------------------------

KILL_SCRIPT = """
import os, signal, sys
from ganforge import checkpoint as ckpt
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer

real, calls = ckpt.save_file, [0]

def dying(tensors, filename, metadata=None):
    calls[0] += 1
    if calls[0] == 2:  # killed half-way through the second checkpoint
        with open(filename, "wb") as f:
            f.write(b"partial" * 1000)
        os.kill(os.getpid(), signal.SIGKILL)
    return real(tensors, filename, metadata=metadata)

ckpt.save_file = dying
recipe, out, *items = sys.argv[1:]
Trainer(Recipe.load(recipe, items).resolve(get_registry()), out, get_registry()).fit()
"""


def test_kill_during_a_checkpoint_write_then_resume(selfie_root, tmp_path):
    out = tmp_path / "RUN"
    items = [*TINY, f"data.root={selfie_root}", "train.device='cpu'", "train.max_steps=4"]
    items.append("callbacks={checkpoint = {every = 1}}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(RECIPE), str(out), *items],
        cwd=REPO,
        env=env,
        capture_output=True,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    folder = out / "checkpoints"
    stale = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert stale and stale[0].startswith(".step-00000002.safetensors.")
    assert ckpt.resolve(out).name == "step-00000001.safetensors"
    trainer = Trainer(
        resolved(selfie_root, "train.max_steps=3", "callbacks={checkpoint = {every = 1}}"),
        out,
        get_registry(),
    )
    assert trainer.resume(out).name == "step-00000001.safetensors" and trainer.step == 1
    trainer.fit()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # cleaned at start-up
    assert [p.name for p in ckpt.CheckpointDir(folder).steps()] == [
        "step-00000001.safetensors", "step-00000002.safetensors", "step-00000003.safetensors",
    ]  # fmt: skip
    ckpt.verify(out)


@contextlib.contextmanager
def tmpfs(where: Path, options: str):
    """A small tmpfs at ``where`` (root only); skips the test where it cannot mount."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
        )
    except OSError:
        pytest.skip("no mount command")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_read_only_output_folder(selfie_root, run_dir, photos, tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        result = invoke(
            "run", RECIPE, *sets(*TINY, f"data.root={selfie_root}"), "--out", ro / "RUN", "--device", "cpu"
        )
        assert_one_line_error(result, str(ro / "RUN"), "Read-only")
        result = invoke("translate", run_dir, photos, "--out", ro / "out", "--device", "cpu")
        assert_one_line_error(result, str(ro / "out"))
        result = invoke("report", run_dir, "--out", ro / "page.html")
        assert_one_line_error(result, str(ro), "Read-only")


def test_full_disk_keeps_earlier_checkpoints(selfie_root, tmp_path):
    table = "callbacks={checkpoint = {every = 1, keep = 10}}"
    with tmpfs(tmp_path / "small", "size=6m") as disk:
        out = disk / "RUN"
        args = sets(*TINY, f"data.root={selfie_root}", "train.max_steps=6", table)
        result = invoke("run", RECIPE, *args, "--out", out, "--device", "cpu")
        line = assert_one_line_error(result, "No space left on device", "cannot write")
        kept = ckpt.CheckpointDir(out / "checkpoints")
        assert kept.steps(), line
        for path in kept.steps():
            ckpt.verify(path)  # earlier checkpoints are intact
        assert kept.latest() == kept.steps()[-1]
        assert not [p for p in (out / "checkpoints").iterdir() if p.name.endswith(".tmp")]


# -- images ----------------------------------------------------------------------------------------


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


@pytest.mark.parametrize("side", [10_000, 60_000], ids=["over-limit", "over-twice-limit"])
def test_decompression_bomb_is_an_unreadable_image(tmp_path, side):
    bomb = _png_claiming(tmp_path / "bomb.png", side, side)
    with pytest.raises(GanforgeError, match=r"bomb\.png: not a readable image: .*pixels.*protects memory"):
        open_rgb(bomb)


def test_bomb_in_a_dataset_is_skipped_and_training_goes_on(selfie_root, tmp_path, capfd):
    root = tmp_path / "data"
    for domain in ("trainA", "trainB"):
        make_folder(root / domain, [Image.open(p) for p in sorted((selfie_root / domain).iterdir())[:4]])
    _png_claiming(root / "trainA" / "img_000.png", 60_000, 60_000)
    # every = 0 with on_epoch: checkpoints only at epoch ends (and the end), no division by zero
    table = "callbacks={checkpoint = {every = 0, on_epoch = true}}"
    trainer = Trainer(
        resolved(root, "train.max_steps=6", "data.holdout=0", "train.batch_size=2", table),
        tmp_path / "RUN",
        get_registry(),
    )
    trainer.fit()
    assert trainer.step == 6
    err = capfd.readouterr().err
    assert "img_000.png" in err and "decompression bombs" in err
    assert [p.name for p in trainer.checkpoints.steps()][-1] == "step-00000006.safetensors"


def test_bomb_among_inputs_does_not_stop_translate(run_dir, photos, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(photos, folder)
    _png_claiming(folder / "bomb.png", 60_000, 60_000)
    result = invoke("translate", run_dir, folder, "--out", tmp_path / "out", "--device", "cpu")
    assert result.exit_code == 2 and result.exception is None or isinstance(result.exception, SystemExit)
    assert "bomb.png" in result.stderr and "translated 2 image(s)" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img_000.png", "img_001.png"]


def test_sixteen_bit_and_exif_images(tmp_path):
    ramp = (np.arange(64, dtype=np.uint16)[None, :].repeat(8, 0) * 1040).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    img = np.asarray(open_rgb(tmp_path / "deep.png"))
    assert img.shape == (8, 64, 3) and img[0, 0, 0] == 0 and 250 <= img[0, -1, 0] <= 255
    assert abs(int(img[0, 32, 0]) - 130) <= 2  # scaled, not clipped to white
    photo = Image.new("RGB", (30, 20), "red")
    photo.paste(Image.new("RGB", (15, 20), "blue"), (15, 0))
    exif = photo.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a phone held upright
    photo.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    upright = open_rgb(tmp_path / "phone.jpg")
    assert upright.size == (20, 30)
    top, bottom = np.asarray(upright)[2, 10], np.asarray(upright)[-3, 10]
    assert top[0] > 200 and bottom[2] > 200  # red (the left) is now on top


# -- overwrite guards --------------------------------------------------------------------------------


def test_translate_never_overwrites_inputs_or_other_files(run_dir, photos, tmp_path):
    inputs = tmp_path / "photos"
    shutil.copytree(photos, inputs)
    Image.new("RGB", (20, 20), "red").save(inputs / "img_000.png")  # translate would write this name
    before = tree_digest(inputs)
    assert_one_line_error(
        invoke("translate", run_dir, inputs, "--out", inputs, "--device", "cpu"), "input folder"
    )
    assert_one_line_error(
        invoke("translate", run_dir, inputs / "img_000.png", "--out", inputs, "--device", "cpu"),
        "one of the inputs",
    )
    assert tree_digest(inputs) == before
    out = tmp_path / "out"
    out.mkdir()
    (out / "img_001.png").write_bytes(b"the user's own file")
    assert_one_line_error(
        invoke("translate", run_dir, photos, "--out", out, "--device", "cpu"),
        "img_001.png",
        "not written by ganforge",
    )
    assert (out / "img_001.png").read_bytes() == b"the user's own file" and len(list(out.iterdir())) == 1
    again = tmp_path / "again"
    for _ in range(2):  # its own earlier outputs may be replaced
        result = invoke("translate", run_dir, photos, "--out", again, "--device", "cpu")
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in again.iterdir()) == ["img_000.png", "img_001.png"]


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory, anime_root) -> Path:
    out = tmp_path_factory.mktemp("dc") / "DC"
    items = [
        *DCGAN_TINY,
        f"data.root={anime_root}",
        "train.max_steps=1",
        "train.device='cpu'",
        *NO_CALLBACKS,
    ]
    registry = get_registry()
    Trainer(Recipe.load(RECIPES / "dcgan_anime.toml", items).resolve(registry), out, registry).fit()
    return out


def test_sample_and_report_never_overwrite_other_files(dcgan_run, run_dir, tmp_path):
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"not a sample")
    assert_one_line_error(
        invoke("sample", dcgan_run, "-n", "4", "--out", mine, "--device", "cpu"), "mine.png"
    )
    assert mine.read_bytes() == b"not a sample"
    file = ckpt.resolve(dcgan_run)
    assert_one_line_error(
        invoke("sample", dcgan_run, "-n", "4", "--out", file, "--device", "cpu"), "one of the inputs"
    )
    grid = tmp_path / "grid.png"
    for _ in range(2):
        assert invoke("sample", dcgan_run, "-n", "4", "--out", grid, "--device", "cpu").exit_code == 0
    assert_one_line_error(invoke("sample", dcgan_run, "-n", "4", "--steps", "0", "--interpolate"), "--steps")
    page = tmp_path / "notes.html"
    page.write_text("<p>my notes</p>")
    assert_one_line_error(invoke("report", run_dir, "--out", page), "notes.html", "not written by ganforge")
    assert_one_line_error(invoke("report", run_dir, "--out", run_dir / "metrics.jsonl"), "metrics.jsonl")
    assert page.read_text() == "<p>my notes</p>"
    for _ in range(2):
        assert invoke("report", run_dir, "--out", tmp_path / "report.html").exit_code == 0


def test_resume_never_overwrites_another_run(run_dir, selfie_root, tmp_path):
    other = tmp_path / "OTHER"
    shutil.copytree(run_dir, other)
    before = tree_digest(other)
    result = invoke(
        "run", "--resume", run_dir, "--out", other, "--set", "train.max_steps=3", "--device", "cpu"
    )
    assert_one_line_error(result, "holds another run", str(other))
    older = run_dir / "checkpoints" / "step-00000001.safetensors"
    result = invoke("run", "--resume", older, "--set", "train.max_steps=3", "--device", "cpu")
    assert_one_line_error(result, "later checkpoints", "step-00000002", "--out NEW_RUN_DIR")
    loose = tmp_path / "loose.safetensors"
    shutil.copy(older, loose)
    assert_one_line_error(invoke("run", "--resume", loose, "--device", "cpu"), "--out RUN_DIR")
    assert tree_digest(other) == before
    branch = tmp_path / "BRANCH"  # a new folder: a branch from the older checkpoint
    result = invoke(
        "run", "--resume", older, "--out", branch, "--set", "train.max_steps=2", "--device", "cpu"
    )
    assert result.exit_code == 0, result.output
    assert [p.name for p in ckpt.CheckpointDir(branch / "checkpoints").steps()] == [
        "step-00000002.safetensors"
    ]
    assert tree_digest(other) == before


def test_a_fresh_run_never_overwrites_a_folder_holding_a_run(selfie_root, tmp_path):
    started = tmp_path / "STARTED"  # a run that stopped before its first checkpoint
    started.mkdir()
    (started / "run.json").write_text('{"mine": true}')
    (started / "metrics.jsonl").write_text('{"step": 1}\n')
    before = tree_digest(started)
    result = invoke(
        "run", RECIPE, *sets(*TINY, f"data.root={selfie_root}"), "--out", started, "--device", "cpu"
    )
    assert_one_line_error(result, "already holds a run", "run.json")
    assert tree_digest(started) == before


def test_callback_file_names_stay_in_the_run_folder(selfie_root, tmp_path):
    for name in ("../escape.jsonl", "/tmp/x.jsonl", "recipe.resolved.toml", ""):
        table = f"callbacks={{metrics-log = {{filename = {json.dumps(name)}}}}}"
        with pytest.raises(GanforgeError, match="plain file name"):
            Trainer(resolved(selfie_root, table), tmp_path / "RUN", get_registry())


# -- plugins ------------------------------------------------------------------------------------------


class Boom(torch.nn.Module):
    """A generator whose construction fails with an arbitrary exception."""

    def __init__(self, width: int = 3):
        super().__init__()
        raise RuntimeError("the plugin's own bug")


class BrokenPlugin:
    @hookimpl
    def register_generators(self, register):
        register("boom", Boom)


def test_a_plugin_factory_failure_is_one_line_naming_it(monkeypatch):
    host = bare_host()
    host.register_module(BrokenPlugin(), "broken-gen", "ganforge-broken", "9.9")
    host.collect()
    with pytest.raises(GanforgeError) as err:
        host.registry.build("generator", {"name": "boom"}, "[generator]")
    message = str(err.value)
    assert message.startswith("[generator]: generator 'boom' from plugin 'broken-gen' (ganforge-broken 9.9)")
    assert "RuntimeError: the plugin's own bug" in message and "\n" not in message
    monkeypatch.setenv("GANFORGE_DEBUG", "1")  # keeps the traceback for the plugin's author
    with pytest.raises(RuntimeError, match="own bug"):
        host.registry.build("generator", {"name": "boom"}, "[generator]")


def test_register_commands_failure_marks_the_plugin_failed():
    from ganforge import cli as cli_module

    class Good:
        @hookimpl
        def register_commands(self, cli):
            cli.command("good-cmd")(lambda: None)

    class Bad:
        @hookimpl
        def register_commands(self, cli):
            cli.command("half-cmd")(lambda: None)
            raise ValueError("no commands today")

    host = cli_module.get_host()
    infos = [host.register_module(Bad(), "bad-commands"), host.register_module(Good(), "good-commands")]
    loaded = dict(cli_module._PLUGIN_COMMANDS)
    try:
        cli_module._PLUGIN_COMMANDS["loaded"] = False
        result = CliRunner().invoke(cli, ["list", "--plugins", "--json"])
        assert result.exit_code == 0, result.output
        status = {p["name"]: p for p in json.loads(result.stdout)}
        assert not status["bad-commands"]["loaded"]
        assert status["bad-commands"]["error"].startswith("register_commands: ValueError: no commands today")
        assert status["good-commands"]["loaded"]
        assert "good-cmd" in cli.commands and "half-cmd" not in cli.commands  # all or nothing
    finally:
        for info in infos:
            host.pm.unregister(name=info.key)
            host.plugins.remove(info)
        for name in ("good-cmd", "half-cmd"):
            cli.commands.pop(name, None)
        cli_module._PLUGIN_COMMANDS.update(loaded)


# -- declared ranges and cross-checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    "item, says",
    [
        ("generator.blocks=1477064801642886061968311638", "<= 1000 (time"),
        ("generator.ngf=100000", "networks too large"),
        ("generator.init_gain=-1", "'init_gain' must be > 0"),
        ("generator.init_gain=inf", "'init_gain' must be > 0"),
        ("train.seed=9223372036854775808", "<= 2**63 - 1 (a 64-bit generator seed)"),
        ("data.image_size=7", "multiples of 4"),
        ("data.image_size=-32", "must be >= 1"),
        ("callbacks.checkpoint.every=-1", "'every' must be >= 0"),
        ("callbacks.checkpoint.keep=-1", "'keep' must be >= 0"),
        ("optim.d.eps=0", "'eps' must be > 0"),
        ("optim.d.lr=inf", "'lr'"),
        ("optim.g.betas=[0.5, 1.0]", "'betas' must be < 1"),
        ("objective.d_loss_weight=nan", "'d_loss_weight'"),
        ("objective.lambda_identity=-1", "'lambda_identity' must be >= 0"),
        ("data.max_images=-1", "'max_images' must be >= 0"),
        ("pool.size=100000000", "memory"),
        ("train.batch_size=1000000", "memory"),
        ("discriminator.n_layers=9", "needs images of at least"),
        ("loss.real_label=1e300", "overflow"),
        ('data.root="a\\u0000b"', "NUL"),
    ],
)
def test_values_that_used_to_pass_are_refused_at_resolve(item, says):
    with pytest.raises(GanforgeError) as err:
        Recipe.load(RECIPE, [item]).resolve(get_registry())
    assert says in str(err.value) and "\n" not in str(err.value)


def test_dcgan_networks_must_match_the_data_size():
    with pytest.raises(
        GanforgeError, match=r"\[generator\]: generator 'dcgan' .* set generator.image_size=32"
    ):
        Recipe.load(RECIPES / "dcgan_anime.toml", ["data.image_size=32"]).resolve(get_registry())
    ok = ["data.image_size=32", "generator.image_size=32", "discriminator.image_size=32"]
    Recipe.load(RECIPES / "dcgan_anime.toml", ok).resolve(get_registry())


@pytest.mark.parametrize(
    "kind, table",
    [
        ("generator", {"name": "resnet", "ngf": 2, "blocks": 1}),
        ("generator", {"name": "resnet", "ngf": 2, "blocks": 0, "antialias": True}),
        ("discriminator", {"name": "patchgan", "ndf": 2}),
        ("discriminator", {"name": "patchgan", "ndf": 2, "n_layers": 4, "kernel_size": 2}),
        ("discriminator", {"name": "patchgan", "ndf": 2, "kernel_size": 3, "norm": "batch"}),
        ("discriminator", {"name": "ugatit", "ndf": 2, "layers": 5}),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={x}" for k, x in v.items() if k != "name"),
)
def test_declared_image_sizes_match_what_the_networks_take(kind, table):
    """``check_image_size`` says yes exactly where one training step works."""
    from ganforge.recipe import Spec, image_size_problem

    registry = get_registry()
    net = registry.build(kind, table).train()
    spec = Spec(registry.get(kind, table["name"]), registry.validate(kind, table), "x")
    for size in [*range(1, 34), 48, 64]:
        if kind == "generator" and size % 4:
            continue  # other sides are refused as not multiples of 4 (their output differs in size)
        try:
            out = net(torch.randn(1, 3, size, size))
            (out[0] if isinstance(out, tuple) else out).sum().backward()
            works = True
        except (RuntimeError, ValueError):
            works = False
        assert works == (image_size_problem(registry, spec, size) is None), size


def test_networks_too_large_for_training_are_refused_before_allocating(selfie_root, tmp_path, monkeypatch):
    import ganforge.safety as safety

    recipe = resolved(selfie_root, "generator.ngf=16")  # the weights fit: resolve accepts it
    monkeypatch.setattr(safety, "device_memory", lambda device: 2_000_000)  # then a 2 MB device
    with pytest.raises(
        GanforgeError, match=r"networks too large: G_AB \[generator\] .*training them needs about"
    ):
        Trainer(recipe, tmp_path / "RUN", get_registry())
    assert not (tmp_path / "RUN").exists()
