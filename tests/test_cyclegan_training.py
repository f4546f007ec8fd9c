"""CycleGAN end to end on tiny real images: training, resume, interrupts, bad data, translate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import RECIPES, REPO, TINY, make_folder, sets
from PIL import Image

from ganforge import GanforgeError
from ganforge import checkpoint as ckpt
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer

RECIPE = RECIPES / "cyclegan_selfie2anime.toml"


def resolved(root: Path, *extra: str, recipe: Path = RECIPE) -> dict:
    items = [*TINY, f"data.root={root}", "train.device='cpu'", "callbacks.samples.every=0", *extra]
    return Recipe.load(recipe, items).resolve(get_registry())


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        f"{n}.{k}": v.clone()
        for n, net in trainer.engine.networks.items()
        for k, v in net.state_dict().items()
    }


def assert_same(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=1e-5, msg=k)


@pytest.mark.parametrize(
    "recipe_extra",
    [
        (),  # S1: history pool, linear decay, LSGAN
        (
            "pool={name='cache', size=4, every=2, count=1}",
            "loss.gradient_penalty=10.0",
            "schedule.name=cyclic",
            "schedule.cycle_epochs=0.5",
        ),
    ],
    ids=["s1", "cache-gp-cyclic"],
)
def test_resume_equals_uninterrupted(selfie_root, tmp_path, recipe_extra, one_thread):
    full = Trainer(
        resolved(selfie_root, "train.max_steps=6", *recipe_extra), tmp_path / "full", get_registry()
    )
    full.fit()

    first = Trainer(
        resolved(selfie_root, "train.max_steps=3", *recipe_extra), tmp_path / "split", get_registry()
    )
    first.fit()
    second = Trainer(
        resolved(selfie_root, "train.max_steps=6", *recipe_extra), tmp_path / "split", get_registry()
    )
    second.resume(tmp_path / "split")
    assert second.step == 3
    second.fit()
    assert second.step == 6
    assert_same(weights(full), weights(second))
    opt_full, opt_split = (
        full.objective.opt_g.optimizer.state_dict(),
        second.objective.opt_g.optimizer.state_dict(),
    )
    for i in opt_full["state"]:
        torch.testing.assert_close(opt_full["state"][i]["exp_avg"], opt_split["state"][i]["exp_avg"])
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == sorted(steps) and steps[-1] == 6


def test_cli_run_writes_checkpoint_samples_metrics_and_resumes(cli, selfie_root, tmp_path):
    out = tmp_path / "RUN"
    args = [
        "run",
        str(RECIPE),
        *sets(*TINY, f"data.root={selfie_root}", "train.max_steps=4"),
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    assert (out / "checkpoints" / "step-00000004.safetensors").is_file()
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-00000004.safetensors"
    grid = Image.open(out / "samples" / "step-00000004.png")
    assert grid.width > grid.height  # six columns: input | translation | reconstruction, both ways
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 4 and {"G_AB", "D_A", "cycle_A", "idt_A", "lr_g"} <= records[-1].keys()
    meta = ckpt.read_meta(out / "checkpoints" / "step-00000004.safetensors")
    assert (
        meta["step"] == 4 and meta["recipe"]["generator"]["ngf"] == 8 and meta["torch"] == torch.__version__
    )
    assert "ganforge" in meta

    # running again into the same folder never overwrites it
    again = cli(*args)
    assert again.returncode == 2 and "--resume" in again.stderr

    resumed = cli("run", str(RECIPE), "--resume", str(out), *sets("train.max_steps=6"), "--device", "cpu")
    assert resumed.returncode == 0, resumed.stderr
    assert "at step 4" in resumed.stderr
    assert (out / "checkpoints" / "step-00000006.safetensors").is_file()


def run_until_logged(root, out, sig: signal.Signals, lines: int) -> tuple[int, str]:
    """Start a long CLI run, send ``sig`` once ``lines`` steps are logged; (exit code, stderr)."""
    cmd = [sys.executable, "-m", "ganforge", "run", str(RECIPE),
           *sets(*TINY, f"data.root={root}", "train.max_steps=1000", "train.log_every=1",
                 "callbacks.samples.every=0"),
           "--out", str(out), "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same summation order as the one_thread tests
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # Minutes, not seconds: start-up (torch, the plugins) is slow on a loaded machine, and a signal
    # sent before the lines are logged would test nothing. The run plans 1000 steps: it is still
    # going when the signal comes.
    deadline = time.monotonic() + 600
    metrics = out / "metrics.jsonl"
    try:
        while (not metrics.exists() or len(metrics.read_text().splitlines()) < lines) and proc.poll() is None:
            assert time.monotonic() < deadline, f"no {lines} logged steps in 600 s"
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def test_interrupt_writes_checkpoint_then_resume_matches(selfie_root, tmp_path, one_thread):
    out = tmp_path / "RUN"
    code, err = run_until_logged(selfie_root, out, signal.SIGTERM, lines=2)
    assert code == 143, err
    assert "stopped by SIGTERM" in err
    stopped_at = ckpt.read_meta(ckpt.resolve(out))["step"]
    assert 2 <= stopped_at < 1000

    target = stopped_at + 2
    resumed = Trainer(resolved(selfie_root, f"train.max_steps={target}"), out, get_registry())
    resumed.resume(out)
    resumed.fit()
    straight = Trainer(
        resolved(selfie_root, f"train.max_steps={target}"), tmp_path / "straight", get_registry()
    )
    straight.fit()
    assert_same(weights(straight), weights(resumed))


def test_ctrl_c_writes_checkpoint(selfie_root, tmp_path):
    out = tmp_path / "RUN"
    code, err = run_until_logged(selfie_root, out, signal.SIGINT, lines=1)
    assert code == 130, err
    assert ckpt.read_meta(ckpt.resolve(out))["step"] >= 1


def test_corrupt_image_is_reported_once_and_skipped(selfie_root, tmp_path, capfd):
    root = tmp_path / "data"
    for domain in ("trainA", "trainB"):
        make_folder(root / domain, [Image.open(p) for p in sorted((selfie_root / domain).iterdir())[:3]])
    bad = root / "trainA" / "img_001.jpg"
    bad.write_bytes(bad.read_bytes()[:200])  # a truncated JPEG
    (root / "trainA" / "notes.txt").write_text("not an image")  # ignored: not an image extension
    trainer = Trainer(
        resolved(root, "train.max_steps=6", "data.holdout=0", "train.batch_size=2"),
        tmp_path / "run",
        get_registry(),
    )
    trainer.fit()
    assert trainer.step == 6
    err = capfd.readouterr().err
    assert err.count(f"skipping unreadable image: {bad}") == 1


def test_missing_dataset_says_where_it_looked(cli, tmp_path):
    result = cli(
        "run",
        str(RECIPE),
        *sets(f"data.root={tmp_path / 'nowhere'}"),
        "--out",
        str(tmp_path / "r"),
        "--device",
        "cpu",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert "\n" not in line
    assert str(tmp_path / "nowhere" / "trainA") in line
    assert f"`ganforge data get selfie2anime --to {tmp_path / 'nowhere'}`" in line


def test_empty_domain_folder(selfie_root, tmp_path):
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").symlink_to(selfie_root / "trainB")
    with pytest.raises(GanforgeError, match="no images in"):
        Trainer(resolved(tmp_path), tmp_path / "run", get_registry())


@pytest.fixture(scope="module")
def trained_run(selfie_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "RUN"
    items = [
        *TINY,
        f"data.root={selfie_root}",
        "train.max_steps=2",
        "callbacks.checkpoint.every=1",
        "train.device='cpu'",
    ]
    Trainer(Recipe.load(RECIPE, items).resolve(get_registry()), out, get_registry()).fit()
    return out


def test_truncated_checkpoint_is_clear_and_previous_stays_usable(cli, trained_run, tmp_path):
    run = tmp_path / "RUN"
    import shutil

    shutil.copytree(trained_run, run)
    latest = ckpt.resolve(run)
    assert latest.name == "step-00000002.safetensors"
    latest.write_bytes(latest.read_bytes()[:1000])
    photos = make_folder(tmp_path / "photos", [Image.new("RGB", (40, 30), "red")])
    result = cli("translate", str(run), str(photos), "--out", str(tmp_path / "out"), "--device", "cpu")
    assert (
        result.returncode == 2
        and "truncated or corrupt" in result.stderr
        and "Traceback" not in result.stderr
    )
    resume = cli("run", str(RECIPE), "--resume", str(run), "--device", "cpu")
    assert resume.returncode == 2 and "truncated or corrupt" in resume.stderr
    previous = run / "checkpoints" / "step-00000001.safetensors"
    ok = cli("translate", str(previous), str(photos), "--out", str(tmp_path / "out"), "--device", "cpu")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "out" / "img_000.png").is_file()


def test_translate_any_size_and_bad_inputs(cli, trained_run, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.new("RGB", (75, 41), "blue").save(inputs / "wide.png")
    Image.new("RGB", (30, 64), "green").save(inputs / "tall.jpg")
    Image.new("L", (20, 20), 128).save(inputs / "gray.png")
    (inputs / "broken.jpg").write_bytes(b"nope")
    single = tmp_path / "single.png"
    Image.new("RGBA", (33, 33)).save(single)
    out = tmp_path / "out"
    result = cli(
        "translate",
        str(trained_run),
        str(inputs),
        str(single),
        str(tmp_path / "missing.png"),
        "--direction",
        "b2a",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--batch-size",
        "2",
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert (
        len(errors) == 2
        and any("broken.jpg" in e for e in errors)
        and any("missing.png" in e for e in errors)
    )
    assert "Traceback" not in result.stderr
    sizes = {p.name: Image.open(p).size for p in out.iterdir()}
    assert sizes == {"wide.png": (75, 41), "tall.png": (30, 64), "gray.png": (20, 20), "single.png": (33, 33)}


def test_translate_native_resolution_matches_model(trained_run, tmp_path):
    from ganforge.model import Model

    model = Model.load(trained_run, "cpu")
    assert model.image_size == 32
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = model.translate(x, "a2b")
    assert y.shape == x.shape and y.abs().max() <= 1


def test_s2_experiments_documented_overrides_run(selfie_root, tmp_path):
    # The S2 experiments of docs/recipes.md: each is a one-line change that trains.
    docs = (REPO / "docs" / "recipes.md").read_text()
    experiments = [line.split("`")[1] for line in docs.splitlines() if line.startswith("| S2 ")]
    assert len(experiments) >= 5
    for i, experiment in enumerate(experiments):
        extra = experiment.replace("--set ", "").split()
        extra = [e.strip("'") for e in extra]
        trainer = Trainer(
            resolved(selfie_root, "train.max_steps=1", *extra), tmp_path / f"run{i}", get_registry()
        )
        trainer.fit()
        assert trainer.step == 1


@pytest.mark.parametrize(
    "name", ["cyclegan_s0_128.toml", "cyclegan_s3_v1.toml", "cyclegan_s3_v2.toml", "cyclegan_s3_v3.toml"]
)
def test_seed_recipes_train_a_step(selfie_root, tmp_path, name):
    trainer = Trainer(
        resolved(selfie_root, "train.max_steps=2", recipe=RECIPES / name), tmp_path / "run", get_registry()
    )
    summary = trainer.fit()
    assert summary["step"] == 2


def test_environment_variable_root(cli, selfie_root, tmp_path):
    # data.source names a folder in GANFORGE_DATA_ROOT; no data.root anywhere
    result = cli(
        "run",
        str(RECIPE),
        *sets(*TINY, "train.max_steps=1", f"data.source={selfie_root.name}"),
        "--out",
        str(tmp_path / "r"),
        "--device",
        "cpu",
        env={"GANFORGE_DATA_ROOT": str(selfie_root.parent)},
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_amp_step(selfie_root, tmp_path):
    trainer = Trainer(
        Recipe.load(RECIPE, [*TINY, f"data.root={selfie_root}", "train.max_steps=2"]).resolve(get_registry()),
        tmp_path / "run",
        get_registry(),
    )
    assert trainer.runtime.precision in ("bf16", "fp16") and trainer.runtime.channels_last
    trainer.fit()


def test_a_resumed_run_takes_a_new_learning_rate(selfie_root, tmp_path):
    Trainer(
        resolved(selfie_root, "train.max_steps=2", "schedule.name=constant"), tmp_path / "r", get_registry()
    ).fit()
    later = Trainer(
        resolved(selfie_root, "train.max_steps=3", "schedule.name=constant", "optim.g.lr=1e-5"),
        tmp_path / "r",
        get_registry(),
    )
    later.resume(tmp_path / "r")
    assert later.engine.learning_rates() == {"g": 1e-5, "d": 2e-4}
    state = later.objective.opt_g.optimizer.state_dict()["state"]
    assert state and all(int(s["step"]) == 2 for s in state.values())  # the moments did come back
