"""Checkpoint I/O: a nested state dict <-> one safetensors file with JSON metadata.

Tensors are stored flat under ``a/b/c`` keys; everything else (ints, floats, strings, lists)
goes into a JSON tree in the safetensors header, with each tensor replaced by a reference.
One file per checkpoint keeps writes atomic (temporary file, fsync, rename). Loading never
unpickles.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ganforge.errors import GanforgeError

FORMAT = "ganforge-checkpoint/1"
_TENSOR = "__tensor__"
_TUPLE = "__tuple__"
LATEST = "latest"
BEST = "best"
_STEP_FILE = re.compile(r"^step-(\d+)\.safetensors$")


def _split(state: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(state, torch.Tensor):
        key = prefix or "tensor"
        tensors[key] = state.detach().to("cpu", copy=True).contiguous()
        return {_TENSOR: key}
    if isinstance(state, dict):
        out = {}
        for k, v in state.items():
            if not isinstance(k, str | int):
                raise TypeError(f"checkpoint keys must be str or int, got {k!r} at {prefix}")
            # int keys (optimizer state) are kept apart from str keys
            name = f"#{k}" if isinstance(k, int) else k
            out[name] = _split(v, f"{prefix}/{name}" if prefix else name, tensors)
        return out
    if isinstance(state, tuple):
        return {_TUPLE: [_split(v, f"{prefix}/{i}", tensors) for i, v in enumerate(state)]}
    if isinstance(state, list):
        return [_split(v, f"{prefix}/{i}", tensors) for i, v in enumerate(state)]
    if state is None or isinstance(state, bool | int | float | str):
        return state
    raise TypeError(f"cannot store {type(state).__name__} at '{prefix}' in a checkpoint")


def _join(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, dict):
        if _TENSOR in tree and len(tree) == 1:
            return tensors[tree[_TENSOR]]
        if _TUPLE in tree and len(tree) == 1:
            return tuple(_join(v, tensors) for v in tree[_TUPLE])
        return {(int(k[1:]) if k.startswith("#") else k): _join(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join(v, tensors) for v in tree]
    return tree


def save(path: str | os.PathLike[str], state: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write ``state`` (nested tensors and plain values) and JSON ``meta`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    tree = _split(state, "", tensors)
    header = {"format": FORMAT, "meta": json.dumps(meta), "state": json.dumps(tree)}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=header)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Only the JSON metadata (cheap: reads the header)."""
    return _open(Path(path))[0]


def load(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint: ``(state, meta)``. A damaged file is a one-line error."""
    path = Path(path)
    meta, tree, tensors = _open(path, want_tensors=True, device=str(device))
    return _join(tree, tensors), meta


def _open(path: Path, want_tensors: bool = False, device: str = "cpu") -> tuple[Any, Any, dict]:
    if not path.is_file():
        raise GanforgeError(f"checkpoint {path} not found")
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            header = f.metadata() or {}
            if header.get("format") != FORMAT:
                raise GanforgeError(f"{path} is not a ganforge checkpoint (no '{FORMAT}' header)")
            meta = json.loads(header["meta"])
            tree = json.loads(header["state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()} if want_tensors else {}
    except GanforgeError:
        raise
    except Exception as exc:  # safetensors raises several types for truncated or garbled files
        raise GanforgeError(
            f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'})"
        ) from None
    return meta, tree, tensors


# -- a run's checkpoint folder -----------------------------------------------------------------


class CheckpointDir:
    """``RUN/checkpoints``: ``step-N.safetensors`` files, a ``latest`` pointer, the last K kept."""

    def __init__(self, root: str | os.PathLike[str], keep: int = 3) -> None:
        self.root = Path(root)
        self.keep = keep

    def save(self, step: int, state: dict[str, Any], meta: dict[str, Any]) -> Path:
        path = save(self.root / f"step-{step:08d}.safetensors", state, meta)
        _write_pointer(self.root / LATEST, path.name)
        self._rotate()
        return path

    def mark_best(self, path: Path) -> None:
        """Keep a copy of ``path`` as ``best.safetensors`` (never rotated away)."""
        tmp = self.root / ".best.tmp"
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            dst.write(src.read())
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, self.root / f"{BEST}.safetensors")

    def steps(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        files = [p for p in self.root.iterdir() if _STEP_FILE.match(p.name)]
        return sorted(files, key=lambda p: int(_STEP_FILE.match(p.name).group(1)))  # type: ignore[union-attr]

    def latest(self) -> Path | None:
        pointer = self.root / LATEST
        if pointer.is_file():
            target = self.root / pointer.read_text().strip()
            if target.is_file():
                return target
        steps = self.steps()
        return steps[-1] if steps else None

    def _rotate(self) -> None:
        if self.keep <= 0:
            return
        for old in self.steps()[: -self.keep]:
            old.unlink(missing_ok=True)


def _write_pointer(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def resolve(path: str | os.PathLike[str]) -> Path:
    """A checkpoint file from a file path, a run folder or a checkpoints folder."""
    path = Path(path)
    if path.is_file():
        return path
    for folder in (path / "checkpoints", path):
        if folder.is_dir():
            found = CheckpointDir(folder).latest()
            if found is not None:
                return found
    if path.exists():
        raise GanforgeError(f"no checkpoint found in {path} (expected {path}/checkpoints/step-*.safetensors)")
    raise GanforgeError(f"checkpoint {path} not found")
