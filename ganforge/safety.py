"""Guards that keep a user's files and machine safe: marked outputs that alone may be replaced,
atomic file writes, writable folders, memory budgets and finiteness checks."""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ganforge.errors import GanforgeError, WriteError

OUTPUT_KEY = "ganforge"  # PNG text chunk naming the command that wrote the image
REPORT_MARK = '<meta name="generator" content="ganforge report">'
RUN_FILES = ("recipe.resolved.toml", "run.json", "metrics.jsonl")


def png_info(command: str) -> Any:
    """A ``PngInfo`` marking an image as written by ``ganforge <command>``."""
    info = PngInfo()
    info.add_text(OUTPUT_KEY, command)
    return info


def is_own_output(path: Path) -> bool:
    """Whether ``path`` is an image or report ganforge wrote (so it may be replaced)."""
    try:
        if path.suffix.lower() == ".html":
            with open(path, encoding="utf-8", errors="replace") as f:
                return REPORT_MARK in f.read(4096)
        with Image.open(path) as img:  # text chunks before the pixels are read on open
            return OUTPUT_KEY in img.info
    except Exception:  # unreadable: not ours, so never replaced
        return False


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def guard_out_folder(out: Path, inputs: Iterable[Path], flag: str = "--out") -> None:
    """Refuse an output folder that is one of the input folders."""
    for item in inputs:
        if item.is_dir() and (_same(out, item) or out.resolve() == item.resolve()):
            raise GanforgeError(
                f"{flag} {out} is the input folder {item}; outputs would replace the inputs: "
                f"choose another {flag}"
            )


def guard_targets(targets: Iterable[Path], inputs: Iterable[Path] = (), flag: str = "--out") -> None:
    """Refuse to write a target that is an input, or an existing file ganforge did not write
    (its earlier outputs, marked by :func:`png_info`, may be replaced)."""
    inputs = [p for p in inputs if p.exists()]
    resolved = {p.resolve() for p in inputs}
    for target in targets:
        if target.resolve() in resolved or any(_same(target, p) for p in inputs if p.name == target.name):
            raise GanforgeError(
                f"{flag}: {target} is one of the inputs; ganforge never overwrites its inputs: "
                f"choose another {flag}"
            )
        if target.is_dir():
            raise GanforgeError(f"{flag}: {target} is a folder; choose another {flag}")
        if target.exists() and not is_own_output(target):
            raise GanforgeError(
                f"{flag}: {target} already exists and was not written by ganforge; it is never "
                f"overwritten: move it away or choose another {flag}"
            )


def plain_file_name(name: str, component: str, own: str = "") -> str:
    """``name`` if it is a plain file name in the run folder and none of the run's own records
    (``own``: the one the component itself writes, e.g. ``metrics.jsonl``); a ``ValueError`` otherwise."""
    reserved = {*RUN_FILES, "checkpoints", "samples", "report.html"} - {own}
    if not name or name in (".", "..") or "/" in name or "\\" in name or name in reserved:
        raise ValueError(
            f"{component}: filename must be a plain file name in the run folder (not a path, "
            f"nor one of {', '.join(sorted(reserved))}), got {name!r}"
        )
    return name


def ensure_writable_dir(folder: Path, what: str) -> None:
    """Create ``folder`` (with parents) and check a file can be written in it; one-line errors."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(prefix=".ganforge-write-test.", dir=folder).close()
    except OSError as exc:
        raise WriteError(f"{what} {folder} cannot be written: {describe_os_error(exc)}") from None


def protect_inputs(target: Path, inputs: Iterable[Path], flag: str = "--out") -> None:
    """Refuse to write ``target`` over an input or over a run's checkpoint, whatever ``--force``
    says: ``--force`` may replace an earlier output, never what a command reads or can resume."""
    for source in inputs:
        if _same(target, source):
            raise GanforgeError(f"{flag} {target} is the file being read; write to another file")
    if target.exists() and target.parent.name == "checkpoints" and target.suffix == ".safetensors":
        raise GanforgeError(
            f"{flag} {target} is a run's checkpoint (the run resumes from it); write to another file"
        )


def describe_os_error(exc: BaseException) -> str:
    """``Permission denied: 'path'`` style text for one line; of another exception (safetensors and
    onnx raise their own for a full disk), the OS error its message names, else its first line."""
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        return f"{reason}: '{exc.filename}'" if exc.filename else reason
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    phrases = ("No space left on device", "Read-only file system", "Permission denied")
    return next((p for p in phrases if p.lower() in text.lower()), text)


def atomic_write(path: Path, write: Callable[[str], Any]) -> None:
    """``write(tmp)`` then fsync and rename onto ``path``: a reader never sees half a file; a failure
    (full disk, read-only folder) is a one-line :class:`WriteError` that leaves ``path`` as it was."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        # mkstemp's mode is 0600: give the umask's, so colleagues can read checkpoints and exports
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except GanforgeError:
        raise
    except Exception as exc:
        raise WriteError(f"cannot write {path}: {describe_os_error(exc)}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def clean_stale(path: Path, names: str | None = None) -> list[Path]:
    """Remove the temporary files killed :func:`atomic_write` calls for ``path`` left beside it:
    only names of their own pattern, ``.NAME.XXXXXXXX.tmp`` (``names``: a regex for NAME)."""
    pattern = re.compile(rf"^\.(?:{names or re.escape(path.name)})\.[a-z0-9_]{{8}}\.tmp$")
    removed = []
    with contextlib.suppress(OSError):  # a folder that cannot be listed: the write says why
        for p in path.parent.iterdir():
            if pattern.match(p.name) and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory on ``device``: the GPU's total, or the host's RAM (its cgroup limit if lower)."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.get_device_properties(device).total_memory)
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError, RuntimeError):
        return None
    with contextlib.suppress(OSError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    return int(total)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def check_memory(needed: float, device: torch.device, what: str) -> None:
    """Refuse work whose memory alone exceeds the device's: a one-line error instead of an OOM kill."""
    available = device_memory(device)
    if available is not None and needed > available:
        raise GanforgeError(
            f"{what} needs {human_bytes(needed)}, more than the {human_bytes(available)} of memory "
            f"on {device.type}"
        )


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers (works on the meta device)."""
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


_measured: dict[Any, int] = {}  # (factory, options) -> bytes on the meta device


class MemoryBudget:
    """Sizes of an objective's networks, measured on the meta device before they are built.
    ``copies``: how many times each parameter is held (training about 4: weights, gradients and
    two optimizer moments; inference 1)."""

    def __init__(self, device: torch.device, copies: float, strict: bool = True) -> None:
        self.device, self.copies, self.strict = device, copies, strict
        self.total = 0
        self.parts: list[str] = []

    def add(self, what: str, build: Callable[[], Any], key: Any = None) -> None:
        """Measure what ``build()`` makes on the meta device (remembered by ``key``); refuse when the
        total cannot fit. What cannot build there is not measured (with ``strict``, a
        :class:`GanforgeError` it raises propagates)."""
        size = _measured.get(key)
        if size is None:
            try:
                with torch.device("meta"):
                    module = build()
                size = module_bytes(module) if isinstance(module, torch.nn.Module) else 0
            except GanforgeError:
                if self.strict:
                    raise
                return
            except Exception:  # not meta-safe, or an error the real build reports
                return
            if key is not None:
                if len(_measured) > 4096:  # a long-lived process resolving many recipes
                    _measured.clear()
                _measured[key] = size
        self.total += size
        self.parts.append(f"{what} {human_bytes(size)}")
        available = device_memory(self.device)
        needed = self.total * self.copies
        if available is not None and needed > available:
            role = (
                "training them needs about {} (weights, gradients and optimizer moments)"
                if self.copies > 1
                else "their weights alone need {}"
            ).format(human_bytes(needed))
            raise GanforgeError(
                f"networks too large: {', '.join(self.parts)}; {role}, more than the "
                f"{human_bytes(available)} of memory on {self.device.type}: make them narrower or shallower"
            )


def first_nonfinite(tree: Any, prefix: str = "") -> str | None:
    """The path of the first floating tensor (or float) in ``tree`` holding NaN or infinity."""
    if isinstance(tree, torch.Tensor):
        # A finite sum proves every element finite; only a non-finite one needs the element-wise
        # check (it may be an overflow). Loading 90 MB of weights: 1.2 s -> 0.05 s.
        if (tree.is_floating_point() or tree.is_complex()) and not bool(torch.isfinite(tree.sum())):
            return None if bool(torch.isfinite(tree).all()) else (prefix or "tensor")
        return None
    if isinstance(tree, float):
        return None if math.isfinite(tree) else (prefix or "value")
    if isinstance(tree, dict | list | tuple):
        items: Iterable[tuple[Any, Any]] = tree.items() if isinstance(tree, dict) else enumerate(tree)
        for key, value in items:
            found = first_nonfinite(value, f"{prefix}/{key}" if prefix else str(key))
            if found is not None:
                return found
    return None
