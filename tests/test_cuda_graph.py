"""Whole-step CUDA-graph capture: graph-safe pools and optimizers (CPU), and graphs vs eager (CUDA)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import DCGAN_TINY, RECIPES, TINY

from ganforge import ScheduledOptimizer
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.runtime import Runtime
from ganforge.training.cudagraph import CapturedStep, capture_blocker
from ganforge.training.trainer import Trainer
from ganforge_plugins.pools import HistoryPool

CYCLEGAN = RECIPES / "cyclegan_selfie2anime.toml"
DCGAN = RECIPES / "dcgan_anime.toml"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _official_pool(size: int, batches: list[torch.Tensor], draws: list[tuple[torch.Tensor, torch.Tensor]]):
    """The official util/image_pool.py rule, fed the same coins and picks as the device pool."""
    stored: list[torch.Tensor] = []
    outputs = []
    for images, (coins, picks) in zip(batches, draws):
        out = []
        for i, image in enumerate(images):
            if len(stored) < size:
                stored.append(image.clone())
                out.append(image)
            elif coins[i] > 0.5:
                j = int(picks[i])
                out.append(stored[j].clone())
                stored[j] = image.clone()
            else:
                out.append(image)
        outputs.append(torch.stack(out))
    return outputs, stored


def test_history_pool_deciding_on_device_follows_the_official_rule():
    size, n = 3, 2
    batches = [torch.randn(n, 3, 4, 4) for _ in range(8)]
    torch.manual_seed(7)  # the device path draws from the device's default generator
    draws = [(torch.rand(n), torch.randint(size, (n,))) for _ in batches]
    expected, stored = _official_pool(size, batches, draws)

    pool = HistoryPool(size=size)
    assert pool.make_capturable() is None
    torch.manual_seed(7)
    for images, want in zip(batches, expected):
        assert torch.equal(pool.query(images), want)
    assert pool.count == size
    state = pool.state_dict()
    assert state["count"] == size and torch.equal(state["images"], torch.stack(stored))
    assert 0 < sum(int((c > 0.5).sum()) for c, _ in draws[2:]), "the draws never swapped: a weak test"


def test_history_pool_device_state_round_trips_into_a_host_pool():
    pool = HistoryPool(size=4)
    pool.make_capturable()
    pool.query(torch.randn(3, 3, 2, 2))
    host = HistoryPool(size=4)
    host.load_state_dict(pool.state_dict())
    assert host.count == 3
    again = HistoryPool(size=4)
    again.make_capturable()
    again.load_state_dict(pool.state_dict())
    again.query(torch.randn(2, 3, 2, 2))
    assert again.count == 4


def test_scheduled_optimizer_graph_mode_keeps_lr_on_device_and_saves_plain_values():
    params = [torch.nn.Parameter(torch.randn(3))]
    opt = ScheduledOptimizer(torch.optim.Adam(params, lr=0.1), lambda step: 1.0 / (step + 1), None)
    assert opt.make_capturable() is None
    group = opt.optimizer.param_groups[0]
    assert isinstance(group["lr"], torch.Tensor) and group["capturable"] is True
    opt.set_step(3)
    assert float(group["lr"]) == pytest.approx(0.025) and opt.lr == pytest.approx(0.025)
    saved = opt.state_dict()["param_groups"][0]
    assert saved["lr"] == pytest.approx(0.025) and saved["capturable"] is False
    assert isinstance(group["lr"], torch.Tensor)  # saving leaves the live group alone
    opt.load_state_dict(opt.state_dict())
    assert isinstance(opt.optimizer.param_groups[0]["lr"], torch.Tensor)


def test_loaded_optimizer_moments_take_the_parameters_strides():
    # Checkpoints hold contiguous tensors; fused Adam on CUDA rejects moments whose strides
    # differ from their channels_last parameters.
    conv = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    opt = ScheduledOptimizer(torch.optim.Adam(conv.parameters()), None, None)
    conv(torch.randn(1, 3, 5, 5)).sum().backward()
    opt.optimizer.step()
    state = opt.state_dict()
    state["state"] = {k: {n: v.contiguous() for n, v in s.items()} for k, s in state["state"].items()}
    fresh = ScheduledOptimizer(torch.optim.Adam(conv.parameters()), None, None)
    fresh.load_state_dict(state)
    for moment in ("exp_avg", "exp_avg_sq"):
        assert fresh.optimizer.state[conv.weight][moment].stride() == conv.weight.stride()
        assert torch.equal(
            fresh.optimizer.state[conv.weight][moment], opt.optimizer.state[conv.weight][moment]
        )


def test_unfused_sgd_refuses_capture_without_changing_anything():
    params = [torch.nn.Parameter(torch.randn(3))]
    opt = ScheduledOptimizer(torch.optim.SGD(params, lr=0.1, fused=False), lambda step: 1.0, None)
    assert "fused" in opt.make_capturable()
    assert opt.optimizer.param_groups[0]["lr"] == 0.1
    fused = ScheduledOptimizer(torch.optim.SGD(params, lr=0.1, fused=True), lambda step: 0.5, None)
    assert fused.make_capturable() is None  # the bundled sgd is fused on CUDA: graphs stay on


def _trainer(recipe: Path, root: Path, out: Path, *extra: str) -> Trainer:
    overrides = [*(DCGAN_TINY if recipe == DCGAN else TINY), f"data.root={root}", *extra]
    return Trainer(Recipe.load(recipe, overrides).resolve(get_registry()), out, get_registry())


def test_cpu_runs_eager_and_says_why_graphs_are_off(selfie_root, tmp_path):
    trainer = _trainer(CYCLEGAN, selfie_root, tmp_path / "run", "train.max_steps=1", "train.device='cpu'")
    trainer.fit()
    assert not isinstance(trainer._step_fn, CapturedStep) and not trainer.runtime.cuda_graph
    assert capture_blocker(trainer.runtime) == "CUDA graphs need a CUDA device"
    cuda = Runtime(torch.device("cuda"), "bf16", True, distributed=True)
    assert "DistributedDataParallel" in capture_blocker(cuda)
    cuda = Runtime(torch.device("cuda"), "fp16", True)
    assert "fp16" in capture_blocker(cuda)


def test_cache_pool_refuses_capture_before_optimizers_change(selfie_root, tmp_path):
    trainer = _trainer(CYCLEGAN, selfie_root, tmp_path / "run", "pool={name='cache'}", "train.device='cpu'")
    assert trainer.engine.capture_ready().startswith("pool_A: the cache pool decides on the host")
    assert not isinstance(trainer.objective.opt_g.optimizer.param_groups[0]["lr"], torch.Tensor)


# -- on CUDA ----------------------------------------------------------------------------------

# Eager kernels in both runs (compile is on by default on CUDA): the comparison is about capture.
EXACT = ["train.precision='fp32'", "train.deterministic=true", "train.batch_size=2", "train.compile=false"]


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{k}": v.detach().float().cpu().clone()
        for name, net in trainer.engine.networks.items()
        for k, v in net.state_dict().items()
    }


def _assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= atol, f"largest weight difference {worst:.3g} > {atol}"


@needs_cuda
@pytest.mark.parametrize("recipe_extra", [[], ["pool.size=2"]], ids=["pool-filling", "pool-swapping"])
def test_cyclegan_graph_steps_match_eager_steps(selfie_root, tmp_path, recipe_extra):
    # A schedule that changes the lr every epoch (4 steps), so replays must pick up new lrs.
    schedule = ["schedule.constant_epochs=1", "schedule.decay_epochs=2"]
    extra = [*EXACT, *recipe_extra, *schedule, "train.max_steps=10"]
    eager = _trainer(CYCLEGAN, selfie_root, tmp_path / "eager", *extra, "train.cuda_graph=false")
    graph = _trainer(CYCLEGAN, selfie_root, tmp_path / "graph", *extra)
    for trainer in (eager, graph):
        torch.manual_seed(0)  # same device draws for both pools
        trainer.fit()
    assert isinstance(graph._step_fn, CapturedStep) and len(graph._step_fn.graphs) == 1
    assert not isinstance(eager._step_fn, CapturedStep)
    if not recipe_extra:  # pools not yet full: both return the newest fakes, same numbers
        _assert_close(_weights(eager), _weights(graph), atol=1e-4)
    assert graph.objective.opt_g.lr == pytest.approx(eager.objective.opt_g.lr)
    for trainer in (eager, graph):
        assert all(torch.isfinite(v).all() for v in _weights(trainer).values())


@needs_cuda
def test_graph_run_resumes_exactly(selfie_root, tmp_path):
    extra = [*EXACT, "pool.size=2"]
    straight = _trainer(CYCLEGAN, selfie_root, tmp_path / "straight", *extra, "train.max_steps=12")
    straight.fit()
    first = _trainer(CYCLEGAN, selfie_root, tmp_path / "split", *extra, "train.max_steps=6")
    first.fit()
    second = _trainer(CYCLEGAN, selfie_root, tmp_path / "split2", *extra, "train.max_steps=12")
    second.resume(tmp_path / "split")
    second.fit()
    assert isinstance(second._step_fn, CapturedStep) and second._step_fn.graphs
    _assert_close(_weights(straight), _weights(second), atol=1e-5)


@needs_cuda
def test_dcgan_captures_one_graph_per_step_variant(anime_root, tmp_path):
    extra = [*EXACT, "objective.n_critic=2", "objective.ema=0.9", "train.max_steps=14"]
    eager = _trainer(DCGAN, anime_root, tmp_path / "eager", *extra, "train.cuda_graph=false")
    graph = _trainer(DCGAN, anime_root, tmp_path / "graph", *extra)
    for trainer in (eager, graph):
        torch.manual_seed(0)
        trainer.fit()
    assert sorted(key[0] for key in graph._step_fn.graphs) == [False, True]
    _assert_close(_weights(eager), _weights(graph), atol=1e-4)


@needs_cuda
def test_scheduled_average_and_host_settings_follow_each_replay(anime_root, tmp_path):
    """An objective's prepare_step and ema_decay run before every replay, never baked into the
    graph: a decay of 0 after step 7 makes the average the generator itself, as eager steps do."""
    extra = [*EXACT, "objective.ema=0.9", "train.max_steps=12"]
    graph = _trainer(DCGAN, anime_root, tmp_path / "graph", *extra)
    seen: list[int] = []
    graph.objective.prepare_step = seen.append
    graph.objective.ema_decay = lambda step: 0.9 if step < 7 else 0.0
    graph.fit()
    assert isinstance(graph._step_fn, CapturedStep) and graph._step_fn.graphs and seen == list(range(12))
    for a, b in zip(graph.engine.networks["G"].parameters(), graph.engine.networks["G_ema"].parameters()):
        torch.testing.assert_close(a, b)


@needs_cuda
def test_bench_reports_graph_mode(selfie_root):
    from ganforge_plugins.apps.bench.bench import run_bench

    recipe = Recipe.load(CYCLEGAN, [*TINY, f"data.root={selfie_root}"])
    result = run_bench(recipe, get_registry(), steps=3, warmup=4)
    assert result["cuda_graph"] is True and result["samples_per_s"] > 0


@needs_cuda
def test_graph_replays_of_compiled_networks_match_compiled_eager_steps(selfie_root, tmp_path):
    # The default CUDA path (bf16, channels_last, compiled networks incl. the traced instance
    # norm, fused Adam, whole-step graph) against the same compiled networks stepped eagerly.
    # Together with the CPU tests (compiled == eager, bf16 ~ fp32) this closes the chain.
    common = ["train.batch_size=2", "train.max_steps=8", "train.deterministic=true", "train.compile=true"]
    graph = _trainer(CYCLEGAN, selfie_root, tmp_path / "graph", *common)
    eager = _trainer(CYCLEGAN, selfie_root, tmp_path / "eager", *common, "train.cuda_graph=false")
    runs = {"graph": graph, "eager": eager}
    w0 = {name: _weights(t) for name, t in runs.items()}
    _assert_close(w0["graph"], w0["eager"], atol=0.0)  # same initial weights: only the steps differ
    losses: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for name, trainer in runs.items():
        torch.manual_seed(0)  # same device draws for both pools
        loader = iter(trainer._loader(0))
        for _ in range(7):  # 3 eager warm-up steps, the capture, 3 replays
            out = trainer.train_step(trainer.to_device(next(loader)))
            losses[name].append({k: float(v) for k, v in out.items()})
            trainer.step += 1
    assert isinstance(graph._step_fn, CapturedStep) and len(graph._step_fn.graphs) == 1
    assert graph.runtime.compile and graph.runtime.precision == "bf16"
    assert not isinstance(eager._step_fn, CapturedStep)
    for step, (g, e) in enumerate(zip(losses["graph"], losses["eager"])):
        for key, value in e.items():
            assert abs(g[key] - value) <= 2e-2 * abs(value) + 1e-3, (step, key, value, g[key])
    w1 = {name: _weights(t) for name, t in runs.items()}
    for net in ("G_AB", "G_BA", "D_A", "D_B"):
        keys = [k for k in w0["eager"] if k.startswith(net + ".")]
        delta = {name: torch.cat([(w1[name][k] - w0[name][k]).flatten() for k in keys]) for name in runs}
        relative = (delta["graph"] - delta["eager"]).norm() / delta["eager"].norm()
        assert relative < 0.2, (net, float(relative))
