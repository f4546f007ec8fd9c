"""Bundled image pools: buffers of generated images that the discriminator sees instead of the newest.

Interface: ``query(images) -> images`` plus ``state_dict()`` / ``load_state_dict(state)``. A
state is a flat dict of tensors and plain ints (it is saved to safetensors + JSON, never
pickled) and holds the pool's private CPU random generator, so a resumed run draws exactly the
same images. Random decisions are made on the CPU; stored images stay on the device of the
images queried, and no device tensor is ever read back to the host.

Optionally ``make_capturable() -> str | None``: switch to deciding on the device, so a query
can be recorded in a CUDA graph (see ``ganforge.training.cudagraph``), or say why the pool cannot.
"""

from typing import Annotated, Any, Literal

import torch
from torch import Tensor

from ganforge import GanforgeError, Range, Seed, hookimpl
from ganforge.hookspecs import Register

# The pool keeps that many generated images on the device (10,000 at 256 px: 7.9 GB).
PoolSize = Annotated[int, Range(0, 10_000, why="memory: the pool keeps that many images on the device")]


def _generator(seed: int) -> torch.Generator:
    rng = torch.Generator(device="cpu")
    rng.manual_seed(seed)
    return rng


def _load_rng(rng: torch.Generator, state: Any) -> None:
    if not isinstance(state, Tensor):
        state = torch.as_tensor(state)
    rng.set_state(state.detach().to("cpu", torch.uint8).clone())


class _Buffer:
    """A lazily allocated ``[size, C, H, W]`` tensor on the device of the first images stored."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: Tensor | None = None

    def ready(self, images: Tensor) -> Tensor:
        shape = tuple(images.shape[1:])
        if self.data is None:
            self.data = torch.empty((self.size, *shape), dtype=images.dtype, device=images.device)
        elif tuple(self.data.shape[1:]) != shape:
            raise GanforgeError(
                f"image pool: stored images have shape {tuple(self.data.shape[1:])}, got {shape}"
            )
        elif self.data.device != images.device:  # restored from a checkpoint onto another device
            self.data = self.data.to(images.device)
        return self.data

    def state(self, filled: int) -> dict[str, Tensor]:
        # A copy, so a checkpoint being written is not changed by later queries.
        return {"images": self.data[:filled].clone()} if self.data is not None and filled > 0 else {}

    def load(self, images: Tensor | None, filled: int) -> None:
        self.data = None
        if filled <= 0:
            return
        if images is None or images.shape[0] < filled:
            raise GanforgeError(f"image pool state: expected {filled} stored images")
        self.data = torch.empty((self.size, *images.shape[1:]), dtype=images.dtype, device=images.device)
        self.data[:filled].copy_(images[:filled])


def _match_layout(out: Tensor, like: Tensor) -> Tensor:
    """``out`` in the dtype and (channels-last) memory format of ``like``."""
    out = out.to(like.dtype)
    if like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    return out


class NoPool:
    """No pool: the discriminator sees the newest generated images, unchanged."""

    def query(self, images: Tensor) -> Tensor:
        return images

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def make_capturable(self) -> str | None:
        return None


class HistoryPool:
    """CycleGAN's image history buffer (Shrivastava et al.): half the time, an older fake instead.

    Official ``util/image_pool.py`` semantics, per image of the batch: while fewer than ``size``
    images are stored, store it and return it; once full, with probability 0.5 return a random
    stored image and store the new one in its place, otherwise return the new image. The output
    has the input's shape and is detached. ``size=0`` disables the pool. ``seed`` seeds the pool's
    own random generator.

    State: ``images`` (the stored images, absent while empty), ``count``, ``size`` and ``rng``.

    After ``make_capturable()`` the same decisions are made with tensor ops on the images'
    device, drawing from that device's default generator (saved with the run's RNG states), so
    a query never returns to the host and can be replayed in a CUDA graph.
    """

    def __init__(self, size: PoolSize = 50, seed: Seed = 0) -> None:
        if size < 0:
            raise GanforgeError(f"history pool: size must be >= 0, got {size}")
        self.size = size
        self._count = 0
        self._count_on_device: Tensor | None = None  # the count, when deciding on the device
        self._on_device = False
        self._buffer = _Buffer(size)
        self._rng = _generator(seed)

    @property
    def count(self) -> int:
        """How many images are stored (reads the device counter back in device mode)."""
        if self._count_on_device is not None:
            return int(self._count_on_device)
        return self._count

    def make_capturable(self) -> str | None:
        self._count = self.count
        self._count_on_device = None
        self._on_device = True
        return None

    def query(self, images: Tensor) -> Tensor:
        images = images.detach()
        if self.size == 0:
            return images
        buf = self._buffer.ready(images)
        if self._on_device:
            return self._query_on_device(buf, images)
        n = images.shape[0]
        coins: list[float] = []
        picks: list[int] = []
        if self._count + n > self.size:  # some images meet a full pool: draw their decisions
            coins = torch.rand(n, generator=self._rng).tolist()
            picks = torch.randint(self.size, (n,), generator=self._rng).tolist()
        out: Tensor | None = None
        for i in range(n):
            if self._count < self.size:
                buf[self._count].copy_(images[i])
                self._count += 1
            elif coins[i] > 0.5:
                j = picks[i]
                if out is None:
                    out = images.clone()
                out[i].copy_(buf[j])  # queued before the overwrite below, so it gets the old image
                buf[j].copy_(images[i])
        return images if out is None else out

    def _query_on_device(self, buf: Tensor, images: Tensor) -> Tensor:
        # The host loop above as tensor ops: each image's slot and choice are device values.
        if self._count_on_device is None:
            self._count_on_device = torch.tensor(self._count, dtype=torch.int64, device=images.device)
        n = images.shape[0]
        coins = torch.rand(n, device=images.device) > 0.5
        picks = torch.randint(self.size, (n,), device=images.device)
        count = self._count_on_device
        outs = []
        for i in range(n):
            full = count >= self.size
            slot = torch.where(full, picks[i], count.clamp(max=self.size - 1)).view(1)
            old = buf.index_select(0, slot)
            new = images[i : i + 1].to(buf.dtype)
            swap = full & coins[i]
            outs.append(torch.where(swap, old, new))
            buf.index_copy_(0, slot, torch.where(full & ~coins[i], old, new))
            count = count + (~full).long()
        self._count_on_device.copy_(count)
        return _match_layout(torch.cat(outs), images)

    def state_dict(self) -> dict[str, Any]:
        count = self.count
        return {
            "size": self.size,
            "count": count,
            "rng": self._rng.get_state(),
            **self._buffer.state(count),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        count = int(state["count"])
        if count > self.size:
            raise GanforgeError(f"history pool state holds {count} images but the pool size is {self.size}")
        self._buffer.load(state.get("images"), count)
        self._count = count
        self._count_on_device = None
        _load_rng(self._rng, state["rng"])


class CachePool:
    """Cache of recent fakes: every few queries the discriminator gets a batch of cached ones.

    Every query stores the new images in a ring buffer of ``size`` (the oldest replaced). On
    every ``every``-th query (the 3rd, 6th, ... by default), once at least ``count`` images are
    cached, it returns ``count`` cached images instead of the new ones: ``sample="random"`` draws
    them uniformly without replacement, ``sample="contiguous"`` takes consecutive entries from a
    random start (oldest to newest, wrapping around). The new images are stored before drawing,
    so they can be among those drawn. Note that such a batch has ``count`` images, not the input
    batch size. Other queries return the new images, detached. ``seed`` seeds the pool's own
    random generator.

    State: ``images`` (the cache in storage order, absent while empty), ``filled``, ``next``
    (the slot written next), ``queries``, ``size`` and ``rng``.
    """

    def __init__(
        self,
        size: PoolSize = 25,
        every: Annotated[int, Range(1)] = 3,
        sample: Literal["contiguous", "random"] = "random",
        count: Annotated[int, Range(1)] = 5,
        seed: Seed = 0,
    ) -> None:
        if size < 1 or every < 1 or count < 1 or count > size:
            raise GanforgeError(
                f"cache pool: need size, every, count >= 1 and count <= size, got size={size}, "
                f"every={every}, count={count}"
            )
        if sample not in ("contiguous", "random"):
            raise GanforgeError(f"cache pool: sample must be 'contiguous' or 'random', got {sample!r}")
        self.size = size
        self.every = every
        self.sample = sample
        self.count = count
        self.filled = 0
        self.next = 0
        self.queries = 0
        self._buffer = _Buffer(size)
        self._rng = _generator(seed)

    def query(self, images: Tensor) -> Tensor:
        images = images.detach()
        buf = self._buffer.ready(images)
        self.queries += 1
        self._store(buf, images[-self.size :])
        if self.queries % self.every != 0 or self.filled < self.count:
            return images
        if self.sample == "random":
            slots = torch.randperm(self.filled, generator=self._rng)[: self.count].tolist()
        else:
            start = int(torch.randint(self.filled, (1,), generator=self._rng))
            slots = [(start + k) % self.filled for k in range(self.count)]
        # Indexing with Python ints gives views: no index tensor has to travel to the device.
        return _match_layout(torch.stack([buf[s] for s in slots]), images)

    def _store(self, buf: Tensor, images: Tensor) -> None:
        m = images.shape[0]
        first = min(m, self.size - self.next)
        buf[self.next : self.next + first].copy_(images[:first])
        if m > first:
            buf[: m - first].copy_(images[first:])
        self.next = (self.next + m) % self.size
        self.filled = min(self.filled + m, self.size)

    def state_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "filled": self.filled,
            "next": self.next,
            "queries": self.queries,
            "rng": self._rng.get_state(),
            **self._buffer.state(self.filled),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        filled, nxt = int(state["filled"]), int(state["next"])
        saved_size = int(state.get("size", self.size))
        # The ring order (next) only means something for the same size.
        if saved_size != self.size or filled > self.size or not 0 <= nxt < self.size:
            raise GanforgeError(
                f"cache pool state (size={saved_size}, filled={filled}, next={nxt}) does not fit a "
                f"pool of size {self.size}"
            )
        self._buffer.load(state.get("images"), filled)
        self.filled, self.next, self.queries = filled, nxt, int(state["queries"])
        _load_rng(self._rng, state["rng"])

    def make_capturable(self) -> str | None:
        return "the cache pool decides on the host and changes the batch size"


@hookimpl
def register_pools(register: Register) -> None:
    register("history", HistoryPool)
    register("none", NoPool)
    register("cache", CachePool)
