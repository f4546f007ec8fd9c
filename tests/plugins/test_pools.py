"""The bundled image pools: official history semantics, the every-k cache, exact resume."""

import json

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ganforge import GanforgeError
from ganforge.plugins import get_registry
from ganforge_plugins.pools import CachePool, HistoryPool, NoPool


def tagged(*values: float) -> torch.Tensor:
    """A batch whose image i is filled with values[i], so each image can be traced by its value."""
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 2, 3, 3).clone()


def tags(images: torch.Tensor) -> list[float]:
    return images[:, 0, 0, 0].tolist()


def serialise(state: dict) -> dict:
    """A round trip as a checkpoint stores it: tensors to safetensors, the rest to JSON."""
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    plain = {k: v for k, v in state.items() if not isinstance(v, torch.Tensor)}
    return {
        **json.loads(json.dumps(plain)),
        **st_load(st_save({k: v.contiguous() for k, v in tensors.items()})),
    }


# -- none -------------------------------------------------------------------------------------


def test_none_pool_passes_images_through() -> None:
    pool = NoPool()
    x = torch.randn(2, 3, 4, 4)
    assert pool.query(x) is x
    assert pool.state_dict() == {}
    pool.load_state_dict({})


# -- history ----------------------------------------------------------------------------------


def test_history_returns_input_while_filling() -> None:
    pool = HistoryPool(size=4)
    assert tags(pool.query(tagged(1, 2, 3))) == [1, 2, 3]
    assert pool.count == 3
    out = pool.query(tagged(4))
    assert tags(out) == [4] and not out.requires_grad


def test_history_mixes_old_and_new_once_full() -> None:
    pool = HistoryPool(size=4, seed=1)
    pool.query(tagged(0, 1, 2, 3))
    seen = {0.0, 1.0, 2.0, 3.0}
    old = 0
    for v in range(4, 204):
        (got,) = tags(pool.query(tagged(v)))
        assert got == v or got in seen  # either the new image or one stored before
        old += got != v
        seen.add(float(v))
    assert 60 < old < 140  # probability 0.5 over 200 queries
    stored = tags(pool._buffer.data)
    assert len(set(stored)) == 4  # swaps never duplicate an image


def test_history_swap_within_one_batch_returns_the_old_image() -> None:
    pool = HistoryPool(size=2, seed=3)
    pool.query(tagged(10, 11))
    before = set(tags(pool._buffer.data))
    batch = tagged(*range(20, 40))
    out = tags(pool.query(batch))
    # Every image is accounted for: returned or still stored, none lost or duplicated.
    assert sorted(out + tags(pool._buffer.data)) == sorted(list(before) + list(range(20, 40)))


def test_history_size_zero_disables_it() -> None:
    x = torch.randn(3, 2, 2, 2)
    assert torch.equal(HistoryPool(size=0).query(x), x)


@pytest.mark.parametrize("via_checkpoint", [False, True])
def test_history_state_round_trip_resumes_exactly(via_checkpoint: bool) -> None:
    a = HistoryPool(size=5, seed=7)
    for v in range(8):
        a.query(tagged(v, v + 0.5))
    state = a.state_dict()
    assert set(state) == {"images", "count", "size", "rng"}
    if via_checkpoint:
        state = serialise(state)
    b = HistoryPool(size=5, seed=123)  # a different seed: the state decides
    b.load_state_dict(state)
    for v in range(100, 130):
        assert torch.equal(a.query(tagged(v, -v)), b.query(tagged(v, -v)))


def test_history_empty_state_round_trip() -> None:
    a = HistoryPool(size=3, seed=2)
    state = serialise(a.state_dict())
    assert "images" not in state
    b = HistoryPool(size=3)
    b.load_state_dict(state)
    for v in range(10):
        assert torch.equal(a.query(tagged(v)), b.query(tagged(v)))


def test_history_state_is_a_copy() -> None:
    pool = HistoryPool(size=2)
    pool.query(tagged(1, 2))
    state = pool.state_dict()
    for v in range(3, 20):
        pool.query(tagged(v))
    assert tags(state["images"]) == [1, 2]


# -- cache ------------------------------------------------------------------------------------


def test_cache_returns_cached_batch_every_kth_query_contiguous() -> None:
    pool = CachePool(size=6, every=3, sample="contiguous", count=4, seed=0)
    assert tags(pool.query(tagged(0, 1))) == [0, 1]
    assert tags(pool.query(tagged(2, 3))) == [2, 3]
    out = tags(pool.query(tagged(4, 5)))  # 3rd query: 4 consecutive cached images
    assert len(out) == 4
    start = int(out[0])
    assert out == [float((start + k) % 6) for k in range(4)]
    assert tags(pool.query(tagged(6))) == [6]  # overwrote the oldest (0)
    assert tags(pool._buffer.data) == [6, 1, 2, 3, 4, 5]


def test_cache_random_draws_distinct_stored_images() -> None:
    pool = CachePool(size=5, every=2, sample="random", count=3, seed=4)
    for q in range(1, 41):
        out = tags(pool.query(tagged(q)))
        if q % 2 == 0 and q >= 3:
            assert len(out) == 3 and len(set(out)) == 3
            assert all(q - 5 < v <= q for v in out)  # only the 5 most recent are cached
        else:
            assert out == [q]


def test_cache_too_small_returns_new_images() -> None:
    pool = CachePool(size=10, every=1, count=5)
    for q in range(4):
        assert tags(pool.query(tagged(q))) == [q]
    assert len(tags(pool.query(tagged(4)))) == 5


def test_cache_batch_larger_than_cache_keeps_the_newest() -> None:
    pool = CachePool(size=3, every=2, count=3, sample="contiguous")
    pool.query(tagged(*range(7)))
    assert sorted(tags(pool._buffer.data)) == [4, 5, 6]
    assert sorted(tags(pool.query(tagged(7)))) == [5, 6, 7]


def test_cache_keeps_channels_last_and_dtype() -> None:
    pool = CachePool(size=4, every=2, count=2)
    x = torch.randn(2, 3, 4, 4, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    pool.query(x)
    out = pool.query(x)
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("sample", ["contiguous", "random"])
def test_cache_state_round_trip_resumes_exactly(sample: str) -> None:
    a = CachePool(size=6, every=3, sample=sample, count=4, seed=5)
    for v in range(7):
        a.query(tagged(v))
    b = CachePool(size=6, every=3, sample=sample, count=4, seed=99)
    b.load_state_dict(serialise(a.state_dict()))
    for v in range(10, 40):
        assert torch.equal(a.query(tagged(v)), b.query(tagged(v)))
    with pytest.raises(GanforgeError):
        CachePool(size=7, every=3, sample=sample, count=4).load_state_dict(a.state_dict())


def test_cache_rejects_bad_options() -> None:
    with pytest.raises(GanforgeError):
        CachePool(size=3, count=5)
    with pytest.raises(GanforgeError):
        CachePool(every=0)


# -- registry -----------------------------------------------------------------------------------


def test_pools_registered_through_entry_points() -> None:
    reg = get_registry()
    assert reg.get("pool", "history").factory is HistoryPool
    assert reg.get("pool", "none").factory is NoPool
    assert reg.get("pool", "cache").factory is CachePool
    pool = reg.build("pool", {"name": "cache", "sample": "contiguous", "every": 2})
    assert isinstance(pool, CachePool) and pool.every == 2 and pool.count == 5
    assert reg.build("pool", {"name": "history", "size": 10}).size == 10
    with pytest.raises(GanforgeError):
        reg.build("pool", {"name": "cache", "sample": "sequential"})
