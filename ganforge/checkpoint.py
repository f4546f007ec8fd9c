"""Checkpoint I/O: a nested state dict <-> one safetensors file (tensors under ``a/b/c`` keys, the
rest a JSON tree in the header), written atomically, CRC-32 checksummed, never unpickled; and
a run's checkpoint and run folders."""

from __future__ import annotations

import json
import math
import mmap
import os
import re
import shutil
import time
import zlib
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ganforge.errors import GanforgeError
from ganforge.registry import _short_repr, describe_exception
from ganforge.safety import RUN_FILES, atomic_write, clean_stale, first_nonfinite
from ganforge.training.state import MAX_SAMPLE_POSITIONS, check_state

FORMAT = "ganforge-checkpoint/2"
FORMATS = ("ganforge-checkpoint/1", FORMAT)  # 1: ganforge 0.1.0, without checksums
_TENSOR = "__tensor__"
_TUPLE = "__tuple__"
LATEST = "latest"
BEST = "best"
_STEP_FILE = re.compile(r"^step-(\d+)\.safetensors$")
_INT_KEY = re.compile(r"^#-?\d+$")
_MAX_DEPTH = 64  # state trees are a few levels deep; deeper is damage (and would recurse)


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
    if isinstance(state, list | tuple):
        items = [_split(v, f"{prefix}/{i}", tensors) for i, v in enumerate(state)]
        return {_TUPLE: items} if isinstance(state, tuple) else items
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


def tensor_crc(t: torch.Tensor) -> int:
    """CRC-32 of a CPU tensor's bytes (any dtype; no copy when contiguous)."""
    return zlib.crc32(t.contiguous().reshape(-1).view(torch.uint8).numpy())


def save(path: str | os.PathLike[str], state: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write ``state`` (nested tensors and plain values) and JSON ``meta`` atomically: a failure
    (read-only folder, full disk) is a :class:`WriteError` naming the file and leaves ``path`` as it was."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    tree = _split(state, "", tensors)
    meta_json, state_json = json.dumps(meta), json.dumps(tree)
    sums = {
        "meta": zlib.crc32(meta_json.encode()),
        "state": zlib.crc32(state_json.encode()),
        "tensors": {k: tensor_crc(t) for k, t in tensors.items()},
    }
    header = {"format": FORMAT, "meta": meta_json, "state": state_json, "checksums": json.dumps(sums)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))
    return path


def read_state_tree(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(meta, state tree)`` from the header alone (checked; no tensor is read)."""
    return _open(Path(path))[:2]


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Only the JSON metadata (cheap: reads the header; its checksum is checked)."""
    return _open(Path(path))[0]


def read_run_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run checkpoint's metadata, its schema checked (:func:`check_run_meta`)."""
    return check_run_meta(read_meta(path), Path(path))


def load(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", only: list[str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint: ``(state, meta)``. A damaged file is a one-line error naming it.
    ``only``: paths into the state (``"objective/G_AB"``) to read alone, nested as in the state
    (``{"objective": {"G_AB": ...}}``); every checksum is checked either way."""
    path = Path(path)
    meta, tree, tensors = _open(path, want_tensors=True, only=only)
    if only is not None:
        tree = _select(tree, only, path)
    if str(device) != "cpu":
        tensors = {k: t.to(device) for k, t in tensors.items()}
    return _join(tree, tensors), meta


def _select(tree: Any, only: list[str], path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in only:
        node, target = tree, out
        parts = item.split("/")
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                raise GanforgeError(f"checkpoint {path} has no '{item}' in its state")
            node = node[part]
            if i < len(parts) - 1:
                target = target.setdefault(part, {})
        target[parts[-1]] = node
    return out


def _corrupt(path: Path, what: str) -> GanforgeError:
    return GanforgeError(f"checkpoint {path} is truncated or corrupt ({what})")


def sniff(path: Path) -> None:
    """Check the safetensors framing (8-byte header length, then JSON) before parsing anything:
    a pickle (``torch.save``) is named as one; a short or garbled file is called truncated."""
    with open(path, "rb") as f:
        head = f.read(9)
        size = os.fstat(f.fileno()).st_size
    length = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
    if len(head) == 9 and 0 < length <= size - 8 and head[8:9] == b"{":
        return
    if head[:1] == b"\x80" or head[:4] == b"PK\x03\x04":  # pickle protocol >= 2, or torch's zip
        raise GanforgeError(
            f"{path} is a pickle (torch.save) file, not a ganforge checkpoint; ganforge never unpickles: "
            "convert it with `ganforge convert`"
        )
    if size < 9:
        raise _corrupt(path, f"{size} bytes, too short for a header")
    if length > size - 8:
        raise _corrupt(path, f"its header claims {length:,} bytes, the file has {size:,}")
    raise _corrupt(path, "no safetensors header")


def _header_json(header: dict[str, str], key: str, path: Path) -> dict[str, Any]:
    if key not in header:
        raise _corrupt(path, f"no '{key}' in the header")
    try:
        value = json.loads(header[key])
    except (ValueError, RecursionError):
        raise _corrupt(path, f"the header's '{key}' is not valid JSON") from None
    if not isinstance(value, dict):
        raise _corrupt(path, f"the header's '{key}' is {_json_kind(value)}, expected a JSON object")
    return value


def _json_kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _tree_refs(tree: Any, path: Path) -> list[str]:
    """Every tensor key the state tree references; a malformed tree is an error."""
    refs: list[str] = []

    def walk(node: Any, where: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise _corrupt(path, f"the state tree is nested more than {_MAX_DEPTH} levels at '{where}'")
        if isinstance(node, dict) and _TENSOR in node:
            if len(node) != 1 or not isinstance(node[_TENSOR], str):
                raise _corrupt(path, f"a malformed tensor reference at '{where}'")
            refs.append(node[_TENSOR])
        elif isinstance(node, dict) and _TUPLE in node:
            if len(node) != 1 or not isinstance(node[_TUPLE], list):
                raise _corrupt(path, f"a malformed tuple at '{where}'")
            walk(node[_TUPLE], where, depth)  # its items, as a list's
        elif isinstance(node, dict):
            for k, v in node.items():
                if k.startswith("#") and not _INT_KEY.match(k):
                    raise _corrupt(path, f"a malformed key '{k}' at '{where}'")
                walk(v, f"{where}/{k}" if where else k, depth + 1)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}", depth + 1)

    walk(tree, "", 0)
    return refs


def _names(keys: Any, limit: int = 3) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(f"'{k}'" for k in keys[:limit]) + more


def _open(path: Path, want_tensors: bool = False, only: list[str] | None = None) -> tuple[Any, Any, dict]:
    if not path.is_file():
        raise GanforgeError(f"checkpoint {path} not found")
    try:
        sniff(path)
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            fmt = header.get("format")
            if fmt not in FORMATS:
                raise GanforgeError(f"{path} is not a ganforge checkpoint (no '{FORMAT}' header)")
            meta, tree = (_header_json(header, key, path) for key in ("meta", "state"))
            sums = _header_json(header, "checksums", path) if fmt == FORMAT else None
            keys = set(f.keys())
            refs = _tree_refs(tree, path)
            missing, extra = set(refs) - keys, keys - set(refs)
            if missing:
                raise _corrupt(path, f"tensors {_names(missing)} of the state are missing from the file")
            if extra:
                raise _corrupt(path, f"the file holds tensors the state does not name: {_names(extra)}")
            if len(refs) != len(keys):
                raise _corrupt(path, "the state names one tensor twice")
            if sums is not None:
                _check_header_sums(path, header, sums, keys)
            wanted = keys if only is None else set(_tree_refs(_select(tree, only, path), path))
            tensors = {k: f.get_tensor(k) for k in sorted(wanted)} if want_tensors else {}
    except GanforgeError:
        raise
    except Exception as exc:  # safetensors raises several types for truncated or garbled files
        raise _corrupt(path, describe_exception(exc)) from None
    if sums is not None:
        for k, t in tensors.items():
            if tensor_crc(t) != sums["tensors"][k]:
                raise _changed(path, f"tensor '{k}'")
        if want_tensors and only is not None:  # the tensors not read are checked too, as bytes
            _check_raw_sums(path, {k: v for k, v in sums["tensors"].items() if k not in tensors})
    return meta, tree, tensors


def _changed(path: Path, what: str) -> GanforgeError:
    return GanforgeError(
        f"checkpoint {path} is damaged: {what} does not match its checksum (changed after it was written)"
    )


def _check_raw_sums(path: Path, sums: dict[str, int]) -> None:
    """The checksums of tensors not loaded, over their bytes in the file (no tensor is built)."""
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        layout = json.loads(f.read(length))
        start = 8 + length
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view, memoryview(view) as whole:
            for key, expected in sums.items():
                begin, end = layout[key]["data_offsets"]
                with whole[start + begin : start + end] as part:  # released before the map closes
                    if zlib.crc32(part) != expected:
                        raise _changed(path, f"tensor '{key}'")


def _check_header_sums(path: Path, header: dict[str, str], sums: dict[str, Any], keys: set[str]) -> None:
    table = sums.get("tensors")
    if not isinstance(table, dict) or not all(isinstance(v, int) for v in table.values()):
        raise _corrupt(path, "malformed checksums")
    if set(table) != keys:
        missing, extra = set(table) - keys, keys - set(table)
        what = f"tensors {_names(missing)} are missing" if missing else f"unexpected tensors {_names(extra)}"
        raise _corrupt(path, f"{what} (the checksums list other tensors than the file holds)")
    for key in ("meta", "state"):
        if sums.get(key) != zlib.crc32(header[key].encode()):
            raise _changed(path, "its metadata" if key == "meta" else "its state tree")


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def check_run_meta(meta: Any, path: Path) -> dict[str, Any]:
    """Check the metadata of a run checkpoint (what the trainer writes); one-line errors."""

    def bad(key: str, expected: str) -> GanforgeError:
        got = "missing" if key not in meta else f"got {_short_repr(meta[key], 60)}"
        return GanforgeError(f"checkpoint {path}: metadata '{key}' must be {expected} ({got})")

    if not isinstance(meta, dict):
        raise GanforgeError(f"checkpoint {path}: its metadata is {_json_kind(meta)}, expected an object")
    if not isinstance(meta.get("recipe"), dict) or not meta["recipe"]:
        raise bad("recipe", "the run's recipe (a table)")
    if not _is_int(meta.get("step"), 0):
        raise bad("step", "a whole number >= 0")
    checks = {
        "epoch": (lambda v: _is_int(v, 0), "a whole number >= 0"),
        "world_size": (lambda v: _is_int(v, 1), "a whole number >= 1"),
        "image_size": (lambda v: v is None or _is_int(v, 1), "a whole number >= 1"),
        **dict.fromkeys(("objective", "ganforge", "torch"), (lambda v: isinstance(v, str), "a string")),
        "time": (
            lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
            "a number",
        ),
    }
    for key, (ok, expected) in checks.items():
        if key in meta and not ok(meta[key]):
            raise bad(key, expected)
    # step x batch x world size sample positions: the trainer stops any plan at MAX_SAMPLE_POSITIONS
    train = meta["recipe"].get("train")
    batch = train.get("batch_size", 1) if isinstance(train, dict) else 1
    batch = batch if _is_int(batch, 1) else 1  # the recipe's own check names a bad one
    images = batch * meta.get("world_size", 1)
    if meta["step"] * images >= MAX_SAMPLE_POSITIONS:
        raise GanforgeError(
            f"checkpoint {path}: metadata 'step' {meta['step']:,} is impossible: {meta['step']:,} steps "
            f"of {images} image(s) are more sample positions than a run can reach (2**62); the file "
            "was changed after it was written"
        )
    table = meta["recipe"].get("objective")
    name = table.get("name") if isinstance(table, dict) else None
    if "objective" in meta and name != meta["objective"]:
        raise GanforgeError(
            f"checkpoint {path}: metadata says objective {_short_repr(meta['objective'], 60)} but its recipe "
            f"runs {_short_repr(name, 60)}"
        )
    return meta


class CheckpointDir:
    """``RUN/checkpoints``: ``step-N.safetensors`` files, a ``latest`` pointer, the last K kept."""

    def __init__(self, root: str | os.PathLike[str], keep: int = 3) -> None:
        self.root = Path(root)
        self.keep = keep

    def save(self, step: int, state: dict[str, Any], meta: dict[str, Any]) -> Path:
        path = save(self.root / f"step-{step:08d}.safetensors", state, meta)
        atomic_write(self.root / LATEST, lambda tmp: Path(tmp).write_text(path.name + "\n"))
        if self.keep > 0:  # the newest `keep` step files; never the one just written
            for old in self.steps()[: -self.keep]:
                if old != path:
                    old.unlink(missing_ok=True)
        return path

    def mark_best(self, path: Path) -> None:
        """Keep a copy of ``path`` as ``best.safetensors`` (never rotated away)."""
        atomic_write(self.root / f"{BEST}.safetensors", lambda tmp: shutil.copyfile(path, tmp))

    def clean_stale(self) -> list[Path]:
        """Remove the temporary files that killed writes left behind (only names of our own pattern)."""
        return clean_stale(self.root / LATEST, rf"step-\d+\.safetensors|{LATEST}|{BEST}\.safetensors")

    def steps(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        files = [p for p in self.root.iterdir() if step_of(p) is not None]
        return sorted(files, key=lambda p: step_of(p) or 0)

    def latest(self) -> Path | None:
        """The newest ``step-N`` file. Not the one the ``latest`` pointer names: a write that filled
        the disk may have renamed its (complete) checkpoint into place without updating the pointer."""
        steps = self.steps()
        return steps[-1] if steps else None


def step_of(path: Path) -> int | None:
    """N of a ``step-N.safetensors`` file name, else None."""
    m = _STEP_FILE.match(path.name)
    return int(m.group(1)) if m else None


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


def verify(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """Check a run checkpoint whole without training: ``(file, meta)``: checksums, metadata, the
    trainer's state and finite values (``--resume`` adds the check against the recipe's parts)."""
    file = resolve(path)
    meta = read_run_meta(file)
    state, _ = load(file)
    problems = check_state(state, meta.get("world_size", 1))
    if problems:
        raise GanforgeError(f"{file}: the state does not fit a ganforge run: {problems[0]}")
    if state["trainer"]["step"] != meta["step"]:
        raise GanforgeError(
            f"{file}: the state is at step {state['trainer']['step']} but the metadata says {meta['step']}; "
            "the file was changed after it was written"
        )
    bad = first_nonfinite(state["objective"], "objective")
    if bad is not None:
        raise GanforgeError(f"{file}: {bad} holds NaN or infinite values")
    return file, meta


def new_run_dir(
    stem: str, out: Path | None, resume: str = "--resume {run}", flag: str = "--out", check: bool = True
) -> Path:
    """The folder a new run of recipe ``stem`` writes (``out``, else ``runs/STEM-TIME``): never
    one that holds a run, with or without checkpoints (``resume`` says how to continue one)."""
    run_dir = out or Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not check:
        return run_dir
    if CheckpointDir(run_dir / "checkpoints").steps():
        raise GanforgeError(
            f"{run_dir} already holds a run's checkpoints; continue it with "
            f"{resume.format(run=run_dir)}, or choose another {flag}"
        )
    held = run_contents(run_dir)
    if held:  # a run that never wrote a checkpoint is still not overwritten
        raise GanforgeError(f"{run_dir} already holds a run ({', '.join(held)}); choose another {flag}")
    return run_dir


def run_contents(folder: Path) -> list[str]:
    """The run outputs ``folder`` holds: checkpoints and the run's record files."""
    if not folder.is_dir():
        return []
    found = [name for name in RUN_FILES if (folder / name).is_file()]
    checkpoints = folder / "checkpoints"
    if checkpoints.is_dir() and any(p.suffix == ".safetensors" for p in checkpoints.iterdir()):
        found.insert(0, "checkpoints/")
    return found


def resume_run_dir(file: Path, out: Path | None, flag: str = "--out") -> Path:
    """The run folder ``run --resume FILE [--out OUT]`` writes to; refused where it would
    overwrite anything saved: another run in ``OUT``, or checkpoints newer than ``FILE``."""
    source = file.parent.parent if file.parent.name == "checkpoints" else None
    run_dir = out or source
    if run_dir is None:
        raise GanforgeError(
            f"--resume {file}: the file is not in a run's checkpoints/ folder; give the run "
            f"folder to write to with {flag} RUN_DIR"
        )
    if source is None or run_dir.resolve() != source.resolve():
        held = run_contents(run_dir)
        if held:
            raise GanforgeError(
                f"{flag} {run_dir} holds another run ({', '.join(held)}); resuming {file} there would "
                f"overwrite it: choose a new {flag}"
                + (f", or leave {flag} out to continue in {source}" if source is not None else "")
            )
        return run_dir
    step = step_of(file)
    if step is None:  # best.safetensors: its metadata says
        step = read_meta(file).get("step")
    newer = [p for p in CheckpointDir(run_dir / "checkpoints").steps() if (step_of(p) or 0) > (step or 0)]
    if newer:
        raise GanforgeError(
            f"--resume {file} (step {step}): {run_dir} has later checkpoints ({newer[-1].name}) that "
            f"continuing here would overwrite; resume the newest with --resume {run_dir}, or branch "
            f"from this one with {flag} NEW_RUN_DIR"
        )
    return run_dir
