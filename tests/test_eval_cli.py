"""``ganforge eval`` on a short CPU-trained checkpoint, and the periodic ``eval`` callback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import RECIPES, TINY, sets

from ganforge import checkpoint as ckpt
from ganforge.cli import cli
from ganforge_plugins.apps.eval import inception as inc
from ganforge_plugins.apps.eval.callback import Evaluation

# TINY: the shared small-network overrides; selfie_root / anime_root: tiny real (or synthetic) folders.
RUN_TINY = [*sets(*TINY), "--device", "cpu"]


def _copy(source: Path, folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir())[:n]:
        shutil.copy(path, folder / path.name)
    return folder


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory, selfie_root):
    """A 4-step CycleGAN run (tiny networks) with the eval callback, plus 3 test images per domain."""
    root = tmp_path_factory.mktemp("evalrun")
    test_a = _copy(selfie_root / "trainA", root / "test" / "A", 3)
    test_b = _copy(selfie_root / "trainB", root / "test" / "B", 3)
    out = root / "run"
    eval_table = 'callbacks.eval={every = 2, count = 2, best = "a2b/cycle_l1"}'
    result = invoke(
        "run",
        RECIPES / "cyclegan_selfie2anime.toml",
        *RUN_TINY,
        *sets(f"data.root={json.dumps(str(selfie_root))}", "train.max_steps=4", eval_table),
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    return {"dir": out, "a": test_a, "b": test_b, "root": root}


def test_eval_prints_cycle_metrics_per_direction(run):
    result = invoke("eval", run["dir"], "--data", run["a"], run["b"], "--metrics", "cycle", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["step"] == 4 and report["images"] == {"A": 3, "B": 3}
    for direction in ("a2b", "b2a"):
        values = report["results"][direction]
        assert set(values) == {
            "cycle_l1",
            "cycle_psnr",
            "cycle_ssim",
            "identity_l1",
            "identity_psnr",
            "identity_ssim",
        }
        assert 0 < values["cycle_l1"] < 1 and values["cycle_psnr"] > 0 and -1 <= values["cycle_ssim"] <= 1
    table = invoke("eval", run["dir"] / "checkpoints", "--data", run["a"], run["b"], "--metrics", "cycle")
    assert table.exit_code == 0
    assert "a2b (A -> B, 3 images)" in table.stdout and "b2a (B -> A, 3 images)" in table.stdout
    assert "cycle_ssim" in table.stdout and "identity_l1" in table.stdout


def test_eval_fid_without_weights_is_one_line_naming_the_file(run, tmp_path):
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), inc.NO_DOWNLOAD_ENV: "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ganforge",
            "eval",
            str(run["dir"]),
            "--data",
            str(run["a"]),
            str(run["b"]),
            "--metrics",
            "fid",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    assert lines[0].startswith("error: ")
    assert f"FID Inception weights not found: put {inc.FID_WEIGHTS_FILE} in {folder}/" in lines[0]
    assert proc.stdout == ""


def test_eval_with_a_weights_file_prints_fid_and_kid(run, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "random_inception.pth"
    torch.save(inc.fid_inception_v3().state_dict(), weights)  # random weights: plumbing, not real FID
    result = invoke(
        "eval",
        run["dir"],
        "--data",
        run["a"],
        run["b"],
        "--metrics",
        "fid,kid,cycle",
        "--weights",
        weights,
        "--json",
        "--batch-size",
        "4",
    )
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)["results"]
    for direction in ("a2b", "b2a"):
        values = results[direction]
        assert {"fid", "kid_x100", "kid_x100_std", "cycle_l1"} <= set(values)
        assert values["fid"] > 0 and all(v == v for v in values.values())  # finite, no NaN
    assert "biased" in result.stderr  # the note about FID from few images


def test_eval_usage_errors_are_one_line(run):
    result = CliRunner().invoke(cli, ["eval", str(run["dir"]), "--data", str(run["a"]), "--metrics", "cycle"])
    assert result.exit_code == 2 and "needs two folders" in result.stderr
    result = CliRunner().invoke(
        cli, ["eval", str(run["dir"]), "--data", str(run["a"]), str(run["b"]), "--metrics", "cycel"]
    )
    assert result.exit_code == 2 and "did you mean 'cycle'" in result.stderr
    result = CliRunner().invoke(cli, ["eval", str(run["dir"])])
    assert result.exit_code == 2 and "--data" in result.stderr


def test_eval_callback_logs_metrics_and_keeps_the_best_checkpoint(run):
    records = [json.loads(line) for line in (run["dir"] / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/a2b/cycle_l1" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert {"eval/b2a/cycle_ssim", "eval/a2b/identity_l1"} <= set(evals[0])
    best = run["dir"] / "checkpoints" / "best.safetensors"
    assert best.is_file()
    state, meta = ckpt.load(best)
    saved = state["callbacks"]["eval"]
    values = {r["step"]: r["eval/a2b/cycle_l1"] for r in evals}
    assert saved["best_value"] == pytest.approx(min(values.values()))
    assert meta["step"] == saved["best_step"] == min(values, key=values.get)
    resumed = Evaluation(best="a2b/cycle_l1")
    resumed.load_state_dict(json.loads(json.dumps(saved)))  # plain JSON values
    assert resumed.best_value == saved["best_value"]


class _Checkpoints:
    def __init__(self):
        self.best, self.saved = [], []

    def latest(self):
        return self.saved[-1] if self.saved else None

    def mark_best(self, path):
        self.best.append(path)


class _Trainer:
    def __init__(self):
        self.step, self.checkpoints = 0, _Checkpoints()

    def save_checkpoint(self):
        path = Path(f"step-{self.step:08d}.safetensors")
        self.checkpoints.saved.append(path)
        return path


@pytest.mark.parametrize(
    "mode, values, marked", [("min", [3.0, 2.0, 2.5, 1.0], [1, 2, 4]), ("max", [3.0, 2.0, 4.0, 1.0], [1, 3])]
)
def test_best_checkpoint_follows_the_mode(mode, values, marked, capsys):
    cb, trainer = Evaluation(best="eval/a2b/kid_x100", mode=mode), _Trainer()
    for step, value in enumerate(values, start=1):
        trainer.step = step
        cb._update_best(trainer, {"eval/a2b/kid_x100": value})
    assert [int(p.stem.split("-")[1]) for p in trainer.checkpoints.best] == marked
    marks = len(trainer.checkpoints.best)
    cb._update_best(trainer, {"eval/a2b/cycle_l1": 0.1})  # a key that is not evaluated: a warning
    assert "not one of the evaluated values (a2b/cycle_l1)" in capsys.readouterr().err
    assert cb.best_key == "" and len(trainer.checkpoints.best) == marks


def test_eval_on_a_generator_checkpoint(tmp_path, anime_root):
    data, out = anime_root, tmp_path / "dcgan"
    result = invoke(
        "run",
        RECIPES / "dcgan_anime.toml",
        "--device",
        "cpu",
        "--out",
        out,
        *sets(
            f"data.root={json.dumps(str(data))}",
            "data.image_size=32",
            "generator.image_size=32",
            "generator.ngf=8",
            "discriminator.image_size=32",
            "discriminator.ndf=8",
            "train.batch_size=2",
            "train.max_steps=2",
            "train.num_workers=0",
            "objective.sample_count=4",
            "callbacks.samples.count=4",
        ),
    )
    assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(cli, ["eval", str(out), "--data", str(data), "--metrics", "cycle"])
    assert bad.exit_code == 2 and "need a translation model" in bad.stderr
    torch.manual_seed(0)
    weights = tmp_path / "random_inception.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in inc.fid_inception_v3().state_dict().items()}, str(weights))
    result = invoke(
        "eval", out, "--data", data, "--metrics", "kid", "--weights", weights, "--json", "--max-images", "4"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["images"] == {"real": 4, "generated": 4} and "kid_x100" in report["results"]["generated"]
