"""Whole-step CUDA-graph capture: one graph replay per training step instead of ~1000 launches
(docs/performance.md). Randomness inside the step (noise, pool draws) comes from the default CUDA
generator, which replays advance like eager calls, so checkpoints keep exact RNG states."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import Tensor

StepFn = Callable[[dict[str, Any], int], dict[str, Tensor]]


def capture_blocker(runtime: Any) -> str | None:
    """Why no step can be captured on this runtime, or None if one can."""
    if runtime.device.type != "cuda":
        return "CUDA graphs need a CUDA device"
    if runtime.distributed:
        return "not with DistributedDataParallel (its gradient hooks synchronise ranks outside the graph)"
    if runtime.precision == "fp16":
        return "not with fp16 (the GradScaler reads its inf checks on the host); use bf16"
    return None


class _Graph:
    """One captured step: static inputs, the graph, and its flattened loss outputs."""

    def __init__(self, engine: Any, batch: dict[str, Any], step: int, stream: torch.cuda.Stream) -> None:
        self.inputs = {k: v.clone() if isinstance(v, Tensor) else v for k, v in batch.items()}
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: the DataLoader's pin-memory thread keeps calling CUDA during the capture.
        with torch.cuda.graph(self.graph, stream=stream, capture_error_mode="thread_local"):
            losses = engine.run_step(self.inputs, step)
            self.names = list(losses)
            parts = [v.detach().float().reshape(-1) for v in losses.values()]
            self.sizes = [p.numel() for p in parts]
            self.flat = torch.cat(parts) if parts else torch.zeros(0, device=stream.device)
            self.shapes = [tuple(v.shape) for v in losses.values()]

    def replay(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        for key, value in batch.items():
            if isinstance(value, Tensor):
                self.inputs[key].copy_(value, non_blocking=True)
        self.graph.replay()
        # One copy of all losses, so the caller may keep them past the next replay.
        return {
            name: part.reshape(shape)
            for name, part, shape in zip(self.names, self.flat.clone().split(self.sizes), self.shapes)
        }


class CapturedStep:
    """A drop-in ``train_step(batch, step)`` that replays a CUDA graph of the objective's step;
    a new batch shape or step variant runs eagerly for ``warmup`` steps, then is captured (the
    capture runs nothing: the first replay is that step's own update)."""

    def __init__(self, engine: Any, device: torch.device, warmup: int = 3) -> None:
        self.engine, self.device = engine, device
        self.warmup = max(1, warmup)
        self.stream = torch.cuda.Stream(device)
        self.graphs: dict[Hashable, _Graph] = {}
        self._seen: dict[Hashable, int] = {}

    def __call__(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        shapes = tuple(
            (k, tuple(v.shape), v.dtype, v.stride()) for k, v in batch.items() if isinstance(v, Tensor)
        )
        key = (self.engine.step_variant(step), shapes)
        graph = self.graphs.get(key)
        if graph is None:
            seen = self._seen.get(key, 0)
            if seen < self.warmup:
                self._seen[key] = seen + 1
                return self._on_side_stream(lambda: self.engine.run_step(batch, step))
            graph = self._on_side_stream(lambda: _Graph(self.engine, batch, step, self.stream))
            self.graphs[key] = graph
        self.engine.set_step(step)
        return graph.replay(batch)

    def _on_side_stream(self, fn: Callable[[], Any]) -> Any:
        # Warm-up and capture run on a side stream, as torch.cuda.graph requires.
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            result = fn()
        current.wait_stream(self.stream)
        return result
