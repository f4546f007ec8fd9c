"""The bundled optimizers and learning-rate schedules."""

import math

import pytest
import torch
from torch import nn

from ganforge import GanforgeError
from ganforge.plugins import get_registry
from ganforge_plugins.optim import (
    Constant,
    Cosine,
    CosineRestarts,
    Cyclic,
    LinearDecay,
    StepDecay,
    adam,
    adamw,
    sgd,
)


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))


def take_step(opt: torch.optim.Optimizer, net: nn.Module) -> None:
    opt.zero_grad()
    net(torch.randn(5, 4)).pow(2).mean().backward()
    opt.step()


# -- optimizers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [adam, adamw, sgd])
def test_optimizers_build_from_a_generator_and_step(factory) -> None:
    net = model()
    before = [p.detach().clone() for p in net.parameters()]
    opt = factory(net.parameters())
    assert len(opt.param_groups[0]["params"]) == 4
    take_step(opt, net)
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_optimizer_defaults() -> None:
    net = model()
    group = adam(net.parameters()).param_groups[0]
    assert group["lr"] == 2e-4 and group["betas"] == (0.5, 0.999) and group["weight_decay"] == 0.0
    assert not group["fused"]  # CPU parameters: no fused kernels unless asked
    assert isinstance(adamw(net.parameters()), torch.optim.AdamW)
    assert adamw(net.parameters()).param_groups[0]["weight_decay"] == 0.01
    group = sgd(net.parameters(), nesterov=True).param_groups[0]
    assert group["momentum"] == 0.9 and group["nesterov"] is True and not group["fused"]
    assert sgd(net.parameters(), fused=True).param_groups[0]["fused"]  # what CUDA parameters get


def test_optimizer_accepts_param_groups() -> None:
    net = model()
    opt = adam([{"params": net[0].parameters(), "lr": 1e-2}, {"params": net[2].parameters()}], lr=1e-3)
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 1e-3]
    take_step(opt, net)


def test_optimizers_through_registry() -> None:
    reg = get_registry()
    for name in ("adam", "adamw", "sgd"):
        assert reg.get("optimizer", name).context == ("params",)
    net = model()
    opt = reg.build("optimizer", {"name": "adam", "lr": 1e-3}, params=net.parameters())
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 1e-3
    opt = reg.build("optimizer", {"name": "adamw", "betas": [0.0, 0.99]}, params=net.parameters())
    assert opt.param_groups[0]["betas"] == (0.0, 0.99)
    take_step(opt, net)
    with pytest.raises(GanforgeError):
        reg.build("optimizer", {"name": "sgd", "betas": [0.5, 0.9]}, params=net.parameters())


# -- schedules -----------------------------------------------------------------------------------


def test_constant() -> None:
    assert [Constant()(s) for s in (0, 10, 10**6)] == [1.0, 1.0, 1.0]


def test_linear_decay_official_values() -> None:
    f = LinearDecay(steps_per_epoch=10, total_steps=2000)
    epoch = lambda e: f(e * 10 + 3)  # noqa: E731  any step inside the epoch
    assert all(epoch(e) == 1.0 for e in range(100))
    assert epoch(100) == pytest.approx(1 - 1 / 101)
    assert epoch(150) == pytest.approx(1 - 51 / 101)
    assert epoch(199) == pytest.approx(1 / 101)
    assert epoch(200) == 0.0 and epoch(500) == 0.0
    values = [epoch(e) for e in range(100, 200)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_linear_decay_other_lengths() -> None:
    f = LinearDecay(steps_per_epoch=1, total_steps=10, constant_epochs=2, decay_epochs=3)
    assert [f(s) for s in range(6)] == pytest.approx([1.0, 1.0, 0.75, 0.5, 0.25, 0.0])


@pytest.mark.parametrize("mode", ["triangular", "cosine"])
def test_cyclic_is_periodic_and_bounded(mode: str) -> None:
    f = Cyclic(steps_per_epoch=7, total_steps=1000, min_factor=0.2, cycle_epochs=4.0, mode=mode)
    period = 28
    for s in range(0, 60):
        assert f(s) == pytest.approx(f(s + period)) == pytest.approx(f(s + 5 * period))
        assert 0.2 - 1e-12 <= f(s) <= 1.0 + 1e-12
    assert f(0) == pytest.approx(0.2) and f(14) == pytest.approx(1.0)


def test_cyclic_triangular_is_linear() -> None:
    f = Cyclic(steps_per_epoch=1, total_steps=100, min_factor=0.0, cycle_epochs=4.0)
    assert [f(s) for s in range(5)] == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0])


def test_cyclic_triangular2_halves_the_amplitude() -> None:
    f = Cyclic(steps_per_epoch=10, total_steps=1000, min_factor=0.1, cycle_epochs=1.0, mode="triangular2")
    peaks = [f(5 + 10 * c) for c in range(3)]
    assert peaks == pytest.approx([1.0, 0.1 + 0.9 / 2, 0.1 + 0.9 / 4])
    assert f(10) == pytest.approx(0.1)  # continuous at the cycle boundary


def test_step_decay() -> None:
    f = StepDecay(steps_per_epoch=5, total_steps=1000, step_epochs=30, gamma=0.1)
    assert f(0) == 1.0 and f(149) == 1.0
    assert f(150) == pytest.approx(0.1) and f(300) == pytest.approx(0.01)


def test_cosine_endpoints_and_warmup() -> None:
    f = Cosine(steps_per_epoch=10, total_steps=100, min_factor=0.1)
    assert f(0) == 1.0
    assert f(50) == pytest.approx(0.55)
    assert f(100) == pytest.approx(0.1) and f(1000) == pytest.approx(0.1)
    values = [f(s) for s in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    w = Cosine(steps_per_epoch=10, total_steps=110, warmup_steps=10)
    assert [w(s) for s in range(10)] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert w(10) == 1.0 and w(60) == pytest.approx(0.5) and w(110) == pytest.approx(0.0)


@pytest.mark.parametrize("t_mult", [1, 2, 3])
def test_cosine_restarts_follow_torch_stepped_per_epoch(t_mult: int) -> None:
    """UVCGAN2's pre-training schedule: torch's CosineAnnealingWarmRestarts, stepped after each
    epoch, gives the same learning rate as the factor of the epoch's steps."""
    lr, eta_min, per_epoch = 3.125e-4, 3.125e-9, 7
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=lr)
    torch_schedule = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=5, T_mult=t_mult, eta_min=eta_min
    )
    ours = CosineRestarts(per_epoch, 10_000, restart_epochs=5, t_mult=t_mult, min_factor=eta_min / lr)
    for epoch in range(60):
        expected = opt.param_groups[0]["lr"]
        for step in range(epoch * per_epoch, (epoch + 1) * per_epoch):
            assert lr * ours(step) == pytest.approx(expected, rel=1e-9, abs=1e-15), (epoch, step)
        opt.step()
        torch_schedule.step()
    # the first period ends after 5 epochs whatever t_mult: low just before, 1 again at the restart
    assert ours(0) == 1.0 and ours(5 * per_epoch - 1) < 0.1 and ours(5 * per_epoch) == 1.0


def test_schedules_guard_degenerate_context() -> None:
    for f in (
        LinearDecay(steps_per_epoch=0, total_steps=0),
        Cyclic(steps_per_epoch=0, total_steps=0),
        StepDecay(steps_per_epoch=0, total_steps=0),
        Cosine(steps_per_epoch=0, total_steps=0),
    ):
        assert all(math.isfinite(f(s)) for s in range(5))


def test_schedules_are_pure() -> None:
    f = Cyclic(steps_per_epoch=3, total_steps=100, mode="triangular2")
    forward = [f(s) for s in range(50)]
    backward = [f(s) for s in reversed(range(50))][::-1]
    assert forward == backward


def test_schedules_through_registry() -> None:
    reg = get_registry()
    for name in ("linear-decay", "cyclic", "step", "cosine"):
        assert reg.get("scheduler", name).context == ("steps_per_epoch", "total_steps")
    f = reg.build("scheduler", {"name": "linear-decay"}, steps_per_epoch=10, total_steps=100)
    assert callable(f) and f(0) == 1.0 and f(1000) == pytest.approx(1 - 1 / 101)
    assert reg.build("scheduler", {"name": "constant"}, steps_per_epoch=10, total_steps=100)(5) == 1.0
    f = reg.build("scheduler", {"name": "cyclic", "cycle_epochs": 2}, steps_per_epoch=10, total_steps=100)
    assert f(10) == pytest.approx(1.0)
    f = reg.build(
        "scheduler", {"name": "step", "step_epochs": 1, "gamma": 0.5}, steps_per_epoch=2, total_steps=9
    )
    assert f(4) == pytest.approx(0.25)
    f = reg.build("scheduler", {"name": "cosine", "min_factor": 0.5}, steps_per_epoch=2, total_steps=10)
    assert f(10) == pytest.approx(0.5)
    with pytest.raises(GanforgeError):
        reg.build("scheduler", {"name": "cyclic", "mode": "sawtooth"}, steps_per_epoch=1, total_steps=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("factory", [adam, adamw, sgd])
def test_optimizers_fuse_on_cuda_by_default(factory) -> None:
    net = model().cuda()
    assert factory(net.parameters()).param_groups[0]["fused"]  # fused kernels, graph-capturable
    assert not factory(net.parameters(), fused=False).param_groups[0]["fused"]
