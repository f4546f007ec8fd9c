"""DDP on CPU (gloo, 2 processes) matches one process on the same combined batch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import RECIPES, REPO, TINY, sets

from ganforge import checkpoint as ckpt

RECIPE = RECIPES / "cyclegan_selfie2anime.toml"
# No image pool (its random draws would differ between one and two pools) and no dropout. SGD,
# because the conv biases in front of InstanceNorm get a gradient that is zero up to rounding,
# and Adam's normalisation would turn that rounding noise into full-size steps. Two steps: tiny
# GANs are chaotic, and after a few more steps even a change of CPU thread count (another
# summation order) moves weights by 1e-4.
COMMON = [
    *TINY,
    "data.image_size=48",
    "data.load_size=48",
    "discriminator.n_layers=2",
    "pool.name=none",
    "train.max_steps=2",
    "callbacks.samples.every=0",
    "train.log_every=1",
    "optim.g={name='sgd', lr=0.002, momentum=0.9}",
    "optim.d={name='sgd', lr=0.002, momentum=0.9}",
]


def _weights(run) -> dict[str, torch.Tensor]:
    state, meta = ckpt.load(ckpt.resolve(run))
    return {
        f"{net}.{k}": v for net in ("G_AB", "G_BA", "D_A", "D_B") for k, v in state["objective"][net].items()
    }


@pytest.fixture(scope="module")
def ddp_and_single(selfie_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "ganforge",
            "run",
            str(RECIPE),
            "--nproc",
            "2",
            *sets(*COMMON, f"data.root={selfie_root}", "train.batch_size=1"),
            "--out",
            str(tmp / "ddp"),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run(
        [
            sys.executable,
            "-m",
            "ganforge",
            "run",
            str(RECIPE),
            *sets(*COMMON, f"data.root={selfie_root}", "train.batch_size=2"),
            "--out",
            str(tmp / "single"),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr
    return tmp / "ddp", tmp / "single"


def test_ddp_weights_match_single_process(ddp_and_single):
    ddp, single = ddp_and_single
    a, b = _weights(ddp), _weights(single)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4, msg=k)


def test_only_rank_zero_writes(ddp_and_single):
    ddp, _ = ddp_and_single
    meta = ckpt.read_meta(ckpt.resolve(ddp))
    assert meta["world_size"] == 2 and meta["step"] == 2
    steps = [json.loads(line)["step"] for line in (ddp / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]  # one writer: no line twice
    state, _ = ckpt.load(ckpt.resolve(ddp))
    assert set(state["ranks"]) == {"0", "1"}  # each rank's RNG stream is kept for resume
    assert not torch.equal(state["ranks"]["0"]["rng"]["cpu"], state["ranks"]["1"]["rng"]["cpu"])


def test_ddp_resume(ddp_and_single, cli):
    ddp, _ = ddp_and_single
    result = cli("run", str(RECIPE), "--resume", str(ddp), *sets("train.max_steps=3"), "--device", "cpu")
    assert result.returncode == 2 and "resume with the same world size" in result.stderr
    again = cli(
        "run",
        str(RECIPE),
        "--nproc",
        "2",
        "--resume",
        str(ddp),
        *sets("train.max_steps=3"),
        "--device",
        "cpu",
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert ckpt.read_meta(ckpt.resolve(ddp))["step"] == 3
