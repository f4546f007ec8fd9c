"""Multi-process training with torchrun + DistributedDataParallel (docs/distributed.md): :func:`setup`
joins the process group (NCCL on CUDA, gloo on CPU) and picks this rank's device."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

from ganforge.runtime import Runtime


@dataclass
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    runtime: Runtime | None = None

    def cleanup(self) -> None:
        if self.world_size > 1 and torch_dist.is_initialized():
            torch_dist.barrier()
            torch_dist.destroy_process_group()


def setup(
    device: str = "auto", precision: str = "auto", channels_last: bool = True, compile: bool | str = False
) -> DistInfo:
    """Join the process group when launched by torchrun; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if use_cuda else "gloo")
    runtime = Runtime.create(f"cuda:{local}" if use_cuda else "cpu", precision, channels_last, compile)
    runtime.distributed = True
    return DistInfo(rank, world, runtime)


def launch(argv: list[str], nproc: int) -> int:
    """Re-run this command under torchrun with ``nproc`` processes on this machine."""
    # without --nproc N / --nproc=N: each process runs the command itself
    values = {i + 1 for i, a in enumerate(argv) if a == "--nproc"}
    args = [a for i, a in enumerate(argv) if not (a == "--nproc" or a.startswith("--nproc=") or i in values)]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return subprocess.call([*torchrun, "-m", "ganforge", *args])
