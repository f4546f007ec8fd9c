"""The fast path (bf16 autocast + torch.compile) computes the same step as the plain fp32 path."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import NO_CALLBACKS, RECIPES, TINY, sets

from ganforge import GanforgeError
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer

RECIPE = RECIPES / "cyclegan_selfie2anime.toml"


def one_step(root, tmp_path, name: str, *extra: str, round_to_bf16: bool = False) -> tuple[dict, dict, dict]:
    """(weights before, after, losses) of one step; ``round_to_bf16`` rounds the parameters to
    bfloat16 first (kept in their own dtype)."""
    items = [
        *TINY,
        f"data.root={root}",
        "train.device='cpu'",
        "train.max_steps=1",
        "pool.name=none",
        "optim.g={name='sgd', lr=0.1}",
        "optim.d={name='sgd', lr=0.1}",
        *NO_CALLBACKS,
        *extra,
    ]
    trainer = Trainer(Recipe.load(RECIPE, items).resolve(get_registry()), tmp_path / name, get_registry())
    if round_to_bf16:
        with torch.no_grad():
            for net in trainer.engine.networks.values():
                for p in net.parameters():
                    p.copy_(p.to(torch.bfloat16))
    before = {
        f"{n}.{k}": v.detach().clone()
        for n, m in trainer.engine.networks.items()
        for k, v in m.state_dict().items()
    }
    batch = trainer.to_device(next(iter(trainer._loader(0))))
    losses = trainer.objective.train_step(batch, 0)
    after = {
        f"{n}.{k}": v.detach().clone()
        for n, m in trainer.engine.networks.items()
        for k, v in m.state_dict().items()
    }
    return before, after, {k: float(v.detach()) for k, v in losses.items()}


def _updates(w0: dict, w1: dict, net: str) -> torch.Tensor:
    # Per network, all tensors together: the conv biases in front of InstanceNorm have a true
    # gradient of zero, so alone their updates are rounding noise in any precision.
    return torch.cat([(w1[k] - w0[k]).flatten() for k in w0 if k.startswith(net + ".")])


NETS = ("G_AB", "G_BA", "D_A", "D_B")


def test_compiled_step_matches_eager(selfie_root, tmp_path):
    w0, w1, plain = one_step(selfie_root, tmp_path, "plain")
    f0, f1, fast = one_step(selfie_root, tmp_path, "fast", "train.compile=true")
    for k in w0:
        torch.testing.assert_close(w0[k], f0[k])  # same init: the difference is the step alone
    for k, v in plain.items():
        assert abs(fast[k] - v) <= 1e-4 * abs(v) + 1e-6, (k, v, fast[k])
    for net in NETS:
        ref = _updates(w0, w1, net)
        assert (_updates(f0, f1, net) - ref).norm() / ref.norm() < 1e-4, net


def test_bf16_step_matches_fp32_within_bf16_tolerance(selfie_root, tmp_path):
    """bf16 autocast computes the fp32 step, within what bf16 rounding does to this very step.

    InstanceNorm's backward subtracts from each gradient its mean and its projection on the
    normalised activations, most of it at initialisation, so one step's direction is ill
    conditioned: rounding the weights alone to bf16 (8 significant bits), then taking the step
    in fp32, already turns a generator's update by up to 30 degrees (measured, cosine 0.86 on
    some images; a fixed cosine of 0.9 failed on the synthetic images of a fresh clone). The
    test measures that: the fp32 step from bf16-rounded weights. Autocast rounds every layer's
    activations too, which that measurement leaves out: its deviation may be a few times
    larger (measured: 0.8x-1.6x for the generators, up to 5x where the rounded weights move a
    discriminator's update by only 3%), hence 3x plus 0.1. The update's size is well
    conditioned (within 5% on every image set tried): a wrong loss or gradient scale shows there.
    """
    w0, w1, plain = one_step(selfie_root, tmp_path, "plain", "train.precision='fp32'")
    f0, f1, fast = one_step(selfie_root, tmp_path, "fast", "train.precision='bf16'")
    r0, r1, _ = one_step(selfie_root, tmp_path, "rounded", "train.precision='fp32'", round_to_bf16=True)
    for k, v in plain.items():
        assert abs(fast[k] - v) <= 3e-2 * abs(v) + 1e-2, (k, v, fast[k])
    for net in NETS:
        exact = _updates(w0, w1, net)
        bf16 = (_updates(f0, f1, net) - exact).norm() / exact.norm()
        rounded = (_updates(r0, r1, net) - exact).norm() / exact.norm()
        assert bf16 <= 3 * rounded + 0.1, (net, float(bf16), float(rounded))
        assert abs(_updates(f0, f1, net).norm() / exact.norm() - 1) < 0.15, net


def test_bench_on_cpu(cli, selfie_root):
    result = cli(
        "bench",
        str(RECIPE),
        *sets(*TINY, f"data.root={selfie_root}"),
        "--steps",
        "3",
        "--warmup",
        "1",
        "--device",
        "cpu",
        "--json",
        "--peak-tflops",
        "1.0",
    )
    assert result.returncode == 0, result.stderr
    numbers = json.loads(result.stdout)
    assert numbers["sample_unit"] == "pairs" and numbers["timed_steps"] == 3
    assert numbers["samples_per_s"] > 0 and 0 <= numbers["data_wait_share"] <= 1
    assert numbers["step_time_p10_s"] <= numbers["step_time_median_s"] <= numbers["step_time_p90_s"]
    assert numbers["flops_per_step"] > 1e8 and 0 < numbers["mfu"] < 1
    table = cli(
        "bench",
        str(RECIPE),
        *sets(*TINY, f"data.root={selfie_root}"),
        "--steps",
        "2",
        "--warmup",
        "0",
        "--device",
        "cpu",
        "--no-flops",
    )
    assert table.returncode == 0 and "pairs/s" in table.stdout and "data-wait share" in table.stdout


def test_compile_setting_picks_mode_per_device(monkeypatch):
    from ganforge.runtime import Runtime

    assert Runtime.create("cpu", compile="auto").compile is False  # compiling costs more than it saves
    assert Runtime.create("cpu", compile=True).compile_mode is None  # torch.compile's default mode
    autotune = Runtime.create("cpu", compile="max-autotune")
    assert autotune.compile and autotune.compile_mode == "max-autotune-no-cudagraphs"  # graphs are ours
    assert autotune.describe()["compile_mode"] == "max-autotune-no-cudagraphs"
    calls = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: calls.append(kw) or module)
    autotune.prepare(torch.nn.Conv2d(3, 4, 3))
    Runtime.create("cpu", compile=True).prepare(torch.nn.Conv2d(3, 4, 3))
    assert calls == [{"mode": "max-autotune-no-cudagraphs"}, {"mode": None}]


def test_bench_baseline_runs_the_official_like_setup_first(cli, selfie_root):
    result = cli(
        "bench",
        str(RECIPE),
        *sets(*TINY, f"data.root={selfie_root}", "train.precision='bf16'"),  # CPU's default is fp32
        *("--steps", "2", "--warmup", "0", "--device", "cpu", "--no-flops", "--baseline", "--json"),
    )
    assert result.returncode == 0, result.stderr
    numbers = json.loads(result.stdout)
    base = numbers["baseline"]
    assert numbers["precision"] == "bf16" and base["precision"] == "fp32"  # the overrides reach it
    assert not base["channels_last"] and not base["compile"]
    assert base["timed_steps"] == numbers["timed_steps"] == 2 and base["batch_size"] == numbers["batch_size"]
    assert numbers["speedup"] == pytest.approx(numbers["samples_per_s"] / base["samples_per_s"])


def test_the_recipe_declares_its_baseline_and_every_item_is_a_valid_override():
    from ganforge_plugins.apps.bench.bench import baseline

    recipe = Recipe.load(RECIPE, ["optim.d={name='sgd', lr=0.01}"])
    name, items = baseline(recipe, get_registry())
    assert "official" in name and "optim.g.fused=false" in items and "optim.d.fused=false" in items
    Recipe.load(RECIPE, items).resolve(get_registry())  # every item is a valid override


def test_a_recipe_without_a_baseline_is_a_one_line_error(tmp_path):
    from ganforge_plugins.apps.bench.bench import baseline

    bare = tmp_path / "bare.toml"
    bare.write_text(RECIPE.read_text().split("[baseline]")[0])
    with pytest.raises(GanforgeError, match=r"--baseline needs a \[baseline\] table"):
        baseline(Recipe.load(bare), get_registry())
