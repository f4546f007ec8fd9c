"""Device, precision and memory-format choices, shared by training and inference."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ganforge.errors import GanforgeError


@dataclass
class Runtime:
    """Where and how tensors are computed: on CUDA bf16 autocast where supported (else fp16
    with a GradScaler) and channels_last; on CPU plain fp32."""

    device: torch.device
    precision: str  # "bf16" | "fp16" | "fp32"
    channels_last: bool
    compile: bool = False
    distributed: bool = False  # networks get wrapped in DistributedDataParallel
    cuda_graph: bool = False  # steps are captured in CUDA graphs (set by the trainer)
    compile_mode: str | None = None  # torch.compile's mode; None is its default

    @classmethod
    def create(
        cls,
        device: str = "auto",
        precision: str = "auto",
        channels_last: bool = True,
        compile: bool | str = False,
    ) -> Runtime:
        """``compile="auto"`` compiles on CUDA only (a CPU compile costs more than it saves);
        ``"max-autotune"`` benchmarks kernel choices at start-up (minutes longer, sometimes faster
        steps), without inductor's own CUDA graphs since the trainer captures whole steps."""
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise GanforgeError("--device cuda: no CUDA device is available (use --device cpu or auto)")
        dev = torch.device(device)
        if precision == "auto" and dev.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif precision == "auto":
            precision = "fp32"
        if dev.type == "cpu" and precision == "fp16":
            raise GanforgeError("train.precision = 'fp16' needs CUDA; use 'bf16' or 'fp32' on CPU")
        compiled = compile is True or compile == "max-autotune" or (compile == "auto" and dev.type == "cuda")
        mode = "max-autotune-no-cudagraphs" if compile == "max-autotune" else None
        return cls(dev, precision, channels_last and dev.type == "cuda", compiled, compile_mode=mode)

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast context for forward passes (a no-op in fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        # The weight-cast cache is freed when the context exits: inside a captured graph that
        # memory would be reused while the graph still refers to it.
        return torch.autocast(self.device.type, dtype=self.amp_dtype, cache_enabled=not self.cuda_graph)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A GradScaler for fp16 (bf16 and fp32 need none)."""
        return torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None

    def prepare(self, module: torch.nn.Module, trainable: bool = True) -> torch.nn.Module:
        """Move a network to the device (channels_last on CUDA; compiled and DDP-wrapped if asked);
        :func:`unwrap` reaches the plain module."""
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        if self.compile and trainable:
            module = torch.compile(module, mode=self.compile_mode)
        if self.distributed and trainable:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            module = DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)
        return module

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, C, H, W] images from a dataset -> float in [-1, 1] on the device."""
        x = images.to(self.device, non_blocking=True)
        if x.dtype == torch.uint8:
            x = x.float().div_(127.5).sub_(1.0)
        if x.dim() == 4:  # the runtime's layout, whatever layout the batch arrived in
            layout = torch.channels_last if self.channels_last else torch.contiguous_format
            x = x.contiguous(memory_format=layout)
        return x

    def describe(self) -> dict[str, Any]:
        """The settings, torch version, GPU name and CPU count, for ``run.json`` and reports."""
        info: dict[str, Any] = {"device": str(self.device), "precision": self.precision}
        info.update(channels_last=self.channels_last, compile=self.compile, compile_mode=self.compile_mode)
        info.update(cuda_graph=self.cuda_graph, torch=torch.__version__)
        if self.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(self.device)
        return {**info, "cpu_count": os.cpu_count()}


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, torch (CPU and CUDA)."""
    random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def rng_state() -> dict[str, Any]:
    """Global RNG states for a checkpoint (CPU, CUDA, Python)."""
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {"cpu": torch.get_rng_state(), "python": [version, list(internal), gauss]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        saved = list(state["cuda"])
        if len(saved) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(saved)


def local(module: torch.nn.Module) -> torch.nn.Module:
    """The network without its DistributedDataParallel wrapper (still compiled if it was), for
    passes whose gradients must not be synchronised (a frozen discriminator in the G step)."""
    from torch.nn.parallel import DistributedDataParallel

    return module.module if isinstance(module, DistributedDataParallel) else module


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The plain network inside a compiled and/or DistributedDataParallel wrapper."""
    while True:
        inner = getattr(module, "_orig_mod", None) or getattr(module, "module", None)
        if inner is None or not isinstance(inner, torch.nn.Module):
            return module
        module = inner


@contextlib.contextmanager
def eval_mode(*modules: torch.nn.Module) -> Iterator[None]:
    """Put modules in eval mode and no-grad, restoring their modes after."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
