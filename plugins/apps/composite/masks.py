"""Mask providers: an RGB photo in, a soft [0, 1] person or face mask out.

Every provider is called as ``provider(image)`` with a PIL image and returns a float32 ``[H, W]``
tensor in [0, 1] at the image's resolution, or ``None`` when it finds no person or face.

Heavy or optional imports (mediapipe, LiteRT, OpenCV, scikit-image, torchvision's segmentation
models) happen when a provider is built or first called, never when this module is imported, so
``ganforge list`` works without them. docs/compositing.md describes the providers and extras.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge.errors import GanforgeError

log = logging.getLogger(__name__)

# The last mediapipe release whose wheel carries the legacy selfie segmentation models.
MEDIAPIPE_MODEL_RELEASE = "0.10.21"
MEDIAPIPE_MODEL_FILES = {
    "general": "selfie_segmentation.tflite",
    "landscape": "selfie_segmentation_landscape.tflite",
}
_MEDIAPIPE_WHEEL_DIR = "mediapipe/modules/selfie_segmentation/"
_MEDIAPIPE_INSTALL = (
    "pip install 'ganforge[mediapipe]' (or the lighter runtime: pip install 'ganforge[litert]')"
)
_FACE_INSTALL = "pip install 'ganforge[face]'"
_OPENCV_INSTALL = "pip install 'ganforge[opencv]'"

VOC_PERSON = 15  # "person" in the 21 VOC labels of torchvision's COCO_WITH_VOC_LABELS weights


# ---------------------------------------------------------------------------------------------
# Small helpers shared by the providers.


def _require(module: str, provider: str, package: str, install: str) -> Any:
    """Import ``module`` or raise a one-line GanforgeError with the install command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise GanforgeError(f"mask provider '{provider}' needs {package}: {install}") from None


def _importable(module: str) -> bool:
    """Whether ``module`` imports (a broken install counts as missing, so ``auto`` moves on)."""
    try:
        importlib.import_module(module)
    except Exception:
        return False
    return True


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """A PIL image of any mode as a contiguous ``[H, W, 3]`` uint8 array."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.array(image, dtype=np.uint8)  # a writable copy


def resize_mask(mask: torch.Tensor | np.ndarray, height: int, width: int) -> torch.Tensor:
    """A ``[h, w]`` mask resized (bilinear) to ``[height, width]``, float32 clamped to [0, 1]."""
    mask = torch.as_tensor(np.asarray(mask, dtype=np.float32) if isinstance(mask, np.ndarray) else mask)
    mask = mask.detach().to("cpu", torch.float32)
    if mask.ndim == 3 and mask.shape[-1] == 1:  # [H, W, 1], as TFLite models give
        mask = mask[..., 0]
    while mask.ndim > 2 and mask.shape[0] == 1:  # [1, 1, H, W]
        mask = mask[0]
    if mask.ndim != 2:
        raise ValueError(f"a mask must be [H, W], got shape {tuple(mask.shape)}")
    if tuple(mask.shape) != (height, width):
        mask = F.interpolate(mask[None, None], size=(height, width), mode="bilinear", align_corners=False)
        mask = mask[0, 0]
    return mask.clamp(0.0, 1.0).contiguous()


def _found(mask: torch.Tensor, threshold: float, min_area: float) -> bool:
    """Whether at least ``min_area`` of the pixels are at or above ``threshold``."""
    if mask.numel() == 0:
        return False
    covered = (mask >= threshold).float().mean().item()
    return covered > 0 and covered >= min_area


def cache_dir() -> Path:
    """Where ganforge keeps downloaded mask models (:func:`ganforge.paths.cache_root`)."""
    from ganforge.paths import cache_root

    return cache_root()


# ---------------------------------------------------------------------------------------------
# mediapipe-selfie


def mediapipe_model_candidates(model: str = "general") -> list[Path]:
    """Where ``mediapipe-selfie`` looks for its .tflite, in order (the explicit path aside)."""
    filename = MEDIAPIPE_MODEL_FILES[model]
    candidates: list[Path] = []
    env = os.environ.get("GANFORGE_MEDIAPIPE_MODEL_DIR")
    if env:
        candidates.append(Path(env).expanduser() / filename)
    try:  # an installed mediapipe <= 0.10.21 ships the file; find_spec does not import it
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(Path(location) / "modules" / "selfie_segmentation" / filename)
    candidates.append(cache_dir() / "mediapipe" / filename)
    return candidates


def fetch_mediapipe_model(dest: str | os.PathLike[str] | None = None, timeout: float = 300.0) -> Path:
    """Download mediapipe 0.10.21's wheel with pip (no install) and extract its selfie models.

    The wheel's ``numpy<2`` pin does not matter: nothing is installed, only the two .tflite files
    (Apache-2.0, ~250 kB each) are copied into ``dest`` (default: the ganforge cache). Returns the
    path of the general model.
    """
    dest_dir = Path(dest).expanduser() if dest else cache_dir() / "mediapipe"
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ganforge-mediapipe-") as tmp:
        # The models are the same in every platform's wheel: ask for one that always exists.
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp",
            "--abi", "cp311", "--disable-pip-version-check", "--quiet", "--dest", tmp,
            f"mediapipe=={MEDIAPIPE_MODEL_RELEASE}",
        ]  # fmt: skip
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GanforgeError(f"could not run pip to fetch the mediapipe selfie model: {exc}") from None
        wheels = sorted(Path(tmp).glob("mediapipe-*.whl"))
        if result.returncode != 0 or not wheels:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise GanforgeError(
                f"could not download mediapipe=={MEDIAPIPE_MODEL_RELEASE} with pip to extract the selfie "
                f"model ({detail[-1] if detail else 'no wheel'}); copy "
                f"{_MEDIAPIPE_WHEEL_DIR}{MEDIAPIPE_MODEL_FILES['general']} from that wheel into {dest_dir}"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            for filename in MEDIAPIPE_MODEL_FILES.values():
                data = wheel.read(_MEDIAPIPE_WHEEL_DIR + filename)
                target = dest_dir / filename
                partial = target.with_suffix(".part")
                partial.write_bytes(data)
                partial.replace(target)
    return dest_dir / MEDIAPIPE_MODEL_FILES["general"]


class MediaPipeSelfieMask:
    """MediaPipe selfie segmentation: a soft person mask (Tasks API or LiteRT, numpy 2 safe)."""

    def __init__(
        self,
        model: Literal["general", "landscape"] = "general",
        model_path: str = "",
        backend: Literal["auto", "mediapipe", "litert"] = "auto",
        download: bool = True,
        threshold: float = 0.5,
        min_area: float = 0.002,
    ) -> None:
        self.model = model
        self.model_path = model_path
        self.download = download
        self.threshold = threshold
        self.min_area = min_area
        if model_path and not Path(model_path).expanduser().is_file():
            raise GanforgeError(f"mask provider 'mediapipe-selfie': model_path {model_path!r} is not a file")
        self.backend = self._pick_backend(backend)
        self._run: Any = None

    @staticmethod
    def _pick_backend(backend: str) -> str:
        if backend in ("auto", "mediapipe") and _importable("mediapipe.tasks.python.vision"):
            return "mediapipe"
        if backend in ("auto", "litert") and _importable("ai_edge_litert.interpreter"):
            return "litert"
        if backend == "litert":
            raise GanforgeError(
                "mask provider 'mediapipe-selfie' (backend 'litert') needs ai-edge-litert: "
                "pip install 'ganforge[litert]'"
            )
        raise GanforgeError(f"mask provider 'mediapipe-selfie' needs mediapipe: {_MEDIAPIPE_INSTALL}")

    def resolve_model(self) -> Path:
        """The .tflite to run: ``model_path``, an installed copy, the cache, or a fresh download."""
        if self.model_path:
            return Path(self.model_path).expanduser()
        candidates = mediapipe_model_candidates(self.model)
        for path in candidates:
            if path.is_file():
                return path
        filename = MEDIAPIPE_MODEL_FILES[self.model]
        hint = (
            f"run 'python -m ganforge_plugins.apps.composite.masks fetch-mediapipe' (extracts it from the "
            f"mediapipe=={MEDIAPIPE_MODEL_RELEASE} wheel into {candidates[-1].parent}) or set model_path"
        )
        if not self.download:
            raise GanforgeError(f"mask provider 'mediapipe-selfie': {filename} not found; {hint}")
        log.info("fetching %s from the mediapipe %s wheel", filename, MEDIAPIPE_MODEL_RELEASE)
        try:
            fetch_mediapipe_model(candidates[-1].parent)
        except GanforgeError as exc:
            raise GanforgeError(
                f"mask provider 'mediapipe-selfie': {filename} not found ({exc}); {hint}"
            ) from None
        return candidates[-1]

    def _load(self) -> Any:
        path = self.resolve_model()
        try:
            if self.backend == "mediapipe":
                return _mediapipe_runner(path)
            return _litert_runner(path)
        except (RuntimeError, ValueError, OSError) as exc:
            text = str(exc).strip().splitlines()
            reason = text[0] if text else type(exc).__name__
            raise GanforgeError(f"mask provider 'mediapipe-selfie': cannot load {path} ({reason})") from None

    def probabilities(self, image: Image.Image) -> torch.Tensor:
        """The person probability map at the image's resolution (never None)."""
        if self._run is None:
            self._run = self._load()
        rgb = to_rgb_array(image)
        height, width = rgb.shape[:2]
        return resize_mask(self._run(rgb), height, width)

    def __call__(self, image: Image.Image) -> torch.Tensor | None:
        mask = self.probabilities(image)
        return mask if _found(mask, self.threshold, self.min_area) else None


def _mediapipe_runner(path: Path) -> Any:
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageSegmenterOptions(
        base_options=BaseOptions(model_asset_path=str(path)),
        output_confidence_masks=True,
        output_category_mask=False,
    )
    segmenter = vision.ImageSegmenter.create_from_options(options)
    atexit.register(_close_quietly, segmenter)  # before interpreter teardown breaks its __del__

    def run(rgb: np.ndarray) -> np.ndarray:
        result = segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        masks = result.confidence_masks or []
        if not masks:
            return np.zeros(rgb.shape[:2], np.float32)
        return np.array(masks[-1].numpy_view(), dtype=np.float32).reshape(rgb.shape[:2])

    return run


def _close_quietly(segmenter: Any) -> None:
    try:
        segmenter.close()
    except Exception:  # mediapipe's executor already shut down: drop the handle so that its
        segmenter._handle = None  # __del__ does not fail again with a traceback at exit


def _litert_runner(path: Path) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=max(1, min(4, os.cpu_count() or 1)))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    height, width = int(inp["shape"][1]), int(inp["shape"][2])

    def run(rgb: np.ndarray) -> np.ndarray:
        # The legacy graph stretches the frame to the model's size and feeds [0, 1] floats.
        resized = Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR)
        x = np.asarray(resized, dtype=np.float32)[None] / 255.0
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(out["index"])[0, ..., -1], dtype=np.float32)

    return run


# ---------------------------------------------------------------------------------------------
# deeplabv3

_DEEPLAB = {
    "resnet50": ("deeplabv3_resnet50", "DeepLabV3_ResNet50_Weights"),
    "resnet101": ("deeplabv3_resnet101", "DeepLabV3_ResNet101_Weights"),
    "mobilenet_v3_large": ("deeplabv3_mobilenet_v3_large", "DeepLabV3_MobileNet_V3_Large_Weights"),
}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class DeepLabV3Mask:
    """torchvision DeepLabV3 person mask (VOC class 15), as seed S2 used."""

    def __init__(
        self,
        weights: str = "",
        backbone: Literal["resnet50", "resnet101", "mobilenet_v3_large"] = "resnet50",
        pretrained: bool = True,
        size: int = 520,
        device: str = "cpu",
        threshold: float = 0.5,
        min_area: float = 0.002,
    ) -> None:
        if size < 16:
            raise GanforgeError(f"mask provider 'deeplabv3': size must be at least 16, got {size}")
        if weights and not Path(weights).expanduser().is_file():
            raise GanforgeError(f"mask provider 'deeplabv3': weights file {weights!r} does not exist")
        self.weights = weights
        self.backbone = backbone
        self.pretrained = pretrained
        self.size = size
        self.device = torch.device(device)
        self.threshold = threshold
        self.min_area = min_area
        self._model: torch.nn.Module | None = None

    def default_weights(self) -> Any:
        """torchvision's COCO_WITH_VOC_LABELS weights enum member for the backbone."""
        from torchvision.models import segmentation

        return getattr(segmentation, _DEEPLAB[self.backbone][1]).COCO_WITH_VOC_LABELS_V1

    def default_weights_path(self) -> Path:
        """Where torch's hub cache keeps the default weights file."""
        url = self.default_weights().url
        return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)

    def _state_dict(self) -> dict[str, torch.Tensor] | None:
        if self.weights:
            path = Path(self.weights).expanduser()
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                text = str(exc).strip().splitlines()
                raise GanforgeError(
                    f"mask provider 'deeplabv3': cannot read weights {path} ({text[0] if text else exc!r})"
                ) from None
            if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
                state = state["state_dict"]
            if not isinstance(state, dict):
                raise GanforgeError(f"mask provider 'deeplabv3': {path} holds no state_dict")
            return state
        if not self.pretrained:
            return None
        enum = self.default_weights()
        target = self.default_weights_path()
        try:
            return torch.hub.load_state_dict_from_url(
                enum.url, map_location="cpu", progress=False, check_hash=True
            )
        except Exception as exc:  # offline, proxy, truncated download...
            text = str(exc).strip().splitlines()
            raise GanforgeError(
                f"mask provider 'deeplabv3': no cached weights and the download failed "
                f"({text[0] if text else type(exc).__name__}); put {target.name} ({enum.url}) in "
                f"{target.parent}/ or pass weights=PATH"
            ) from None

    def _load(self) -> torch.nn.Module:
        from torchvision.models import segmentation

        build = getattr(segmentation, _DEEPLAB[self.backbone][0])
        model = build(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
        state = self._state_dict()
        if state is not None:
            try:
                missing, unexpected = model.load_state_dict(state, strict=False)
            except RuntimeError as exc:  # shape mismatch: another backbone or class count
                first = str(exc).strip().splitlines()
                raise GanforgeError(
                    f"mask provider 'deeplabv3': weights do not fit deeplabv3 {self.backbone} "
                    f"with 21 VOC classes ({first[0] if first else 'size mismatch'}...)"
                ) from None
            missing = [k for k in missing if not k.startswith("aux_classifier.")]
            unexpected = [k for k in unexpected if not k.startswith("aux_classifier.")]
            if missing or unexpected:
                keys = (missing or unexpected)[:3]
                raise GanforgeError(
                    f"mask provider 'deeplabv3': weights do not fit deeplabv3 {self.backbone} "
                    f"({'missing' if missing else 'unexpected'} keys such as {', '.join(keys)})"
                )
        model.aux_classifier = None
        return model.eval().to(self.device)

    @torch.inference_mode()
    def probabilities(self, image: Image.Image) -> torch.Tensor:
        """The person probability map at the image's resolution (never None)."""
        if self._model is None:
            self._model = self._load()
        rgb = to_rgb_array(image)
        height, width = rgb.shape[:2]
        x = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        scale = self.size / max(1, min(height, width))
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        if size != (height, width):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)
        mean = torch.tensor(_IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(_IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        logits = self._model((x - mean) / std)["out"]
        person = logits.softmax(dim=1)[0, VOC_PERSON]
        return resize_mask(person, height, width)

    def __call__(self, image: Image.Image) -> torch.Tensor | None:
        mask = self.probabilities(image)
        return mask if _found(mask, self.threshold, self.min_area) else None


# ---------------------------------------------------------------------------------------------
# face-box

_HAAR_FILE = "haarcascade_frontalface_default.xml"


def _opencv_cascade() -> str | None:
    """The path of OpenCV's frontal-face Haar cascade, or None (no cv2, or OpenCV 5 without it)."""
    try:
        import cv2
    except ImportError:
        return None
    if not hasattr(cv2, "CascadeClassifier"):
        return None
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not folder:
        return None
    path = os.path.join(folder, _HAAR_FILE)
    return path if os.path.isfile(path) else None


class FaceBoxMask:
    """A feathered ellipse around the detected face (OpenCV Haar or scikit-image LBP cascade)."""

    def __init__(
        self,
        detector: Literal["auto", "opencv", "skimage"] = "auto",
        margin: float = 0.25,
        stretch: float = 1.2,
        softness: float = 0.2,
        min_size: int = 40,
        min_neighbors: int = 3,
        detect_size: int = 640,
        pad: float = 0.15,
    ) -> None:
        if margin < -0.5 or stretch <= 0 or softness < 0 or min_size < 1 or detect_size < 32 or pad < 0:
            raise GanforgeError(
                "mask provider 'face-box': needs margin >= -0.5, stretch > 0, softness >= 0, "
                "min_size >= 1, detect_size >= 32 and pad >= 0"
            )
        self.pad = pad
        self.margin = margin
        self.stretch = stretch
        self.softness = softness
        self.min_size = min_size
        self.min_neighbors = min_neighbors
        self.detect_size = detect_size
        self.detector = self._pick_detector(detector)
        self._cascade: Any = None

    @staticmethod
    def _pick_detector(detector: str) -> str:
        if detector in ("auto", "opencv") and _opencv_cascade() is not None:
            return "opencv"
        if detector == "opencv":
            try:
                import cv2
            except ImportError:
                raise GanforgeError(
                    f"mask provider 'face-box' (detector 'opencv') needs OpenCV: {_OPENCV_INSTALL}"
                ) from None
            raise GanforgeError(
                f"mask provider 'face-box': OpenCV {cv2.__version__} has no {_HAAR_FILE} in cv2.data "
                f"(OpenCV 5 dropped the Haar cascades): pip install 'opencv-python-headless>=4.5,<5' "
                f"or use detector = 'skimage'"
            )
        _require("skimage.feature", "face-box", "scikit-image (or opencv-python-headless<5)", _FACE_INSTALL)
        return "skimage"

    def detect(self, image: Image.Image) -> list[tuple[float, float, float, float]]:
        """Face boxes ``(x, y, w, h)`` in the image's pixels, best first (OpenCV: most confident;
        scikit-image, which reports no confidence: largest)."""
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
        height, width = gray.shape
        scale = min(1.0, self.detect_size / max(height, width))
        if scale < 1.0:
            small = image.convert("L").resize(
                (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR
            )
            gray = np.asarray(small, dtype=np.uint8)
        min_px = max(12, round(self.min_size * scale))
        if min(gray.shape) < min_px:
            return []
        # Selfies crop the chin or the forehead: a replicated border lets the detector's window
        # hold the whole face.
        pad = round(max(gray.shape) * self.pad)
        if pad > 0:
            gray = np.pad(gray, pad, mode="edge")
        if self.detector == "opencv":
            boxes = self._detect_opencv(gray, min_px)
        else:
            boxes = self._detect_skimage(gray, min_px)
        boxes = [((x - pad) / scale, (y - pad) / scale, w / scale, h / scale) for x, y, w, h in boxes]
        if self.detector == "opencv":
            return boxes
        return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)

    def _detect_opencv(self, gray: np.ndarray, min_px: int) -> list[tuple[float, float, float, float]]:
        import cv2

        if self._cascade is None:
            self._cascade = cv2.CascadeClassifier(_opencv_cascade())
        found, _, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=1.1,
            minNeighbors=self.min_neighbors,
            minSize=(min_px, min_px),
            outputRejectLevels=True,
        )
        # Most confident first: a large false positive (a badge, a flag) must not beat the face.
        order = np.argsort(-np.asarray(weights, dtype=np.float64).reshape(-1))
        boxes = np.asarray(found).reshape(-1, 4)
        return [tuple(float(v) for v in boxes[i]) for i in order]

    def _detect_skimage(self, gray: np.ndarray, min_px: int) -> list[tuple[float, float, float, float]]:
        from skimage import data as skdata
        from skimage.feature import Cascade

        if self._cascade is None:
            self._cascade = Cascade(skdata.lbp_frontal_face_cascade_filename())
        height, width = gray.shape
        found = self._cascade.detect_multi_scale(
            img=gray.astype(np.float32) / 255.0,
            scale_factor=1.1,
            step_ratio=1,
            min_size=(min_px, min_px),
            max_size=(height, width),
            min_neighbor_number=self.min_neighbors,
        )
        return [(float(d["c"]), float(d["r"]), float(d["width"]), float(d["height"])) for d in found]

    def ellipse(self, height: int, width: int, box: tuple[float, float, float, float]) -> torch.Tensor:
        """The soft ellipse mask for one face box: 1 inside, smooth fall to exactly 0 outside."""
        x, y, w, h = box
        cx, cy = x + w / 2.0, y + h / 2.0
        ax = max(1.0, w / 2.0 * (1.0 + self.margin))
        ay = max(1.0, h / 2.0 * (1.0 + self.margin) * self.stretch)
        ys = (torch.arange(height, dtype=torch.float32) + 0.5 - cy) / ay
        xs = (torch.arange(width, dtype=torch.float32) + 0.5 - cx) / ax
        r = torch.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
        if self.softness <= 0:
            return (r <= 1.0).float()
        t = ((1.0 + self.softness - r) / self.softness).clamp(0.0, 1.0)
        return (t * t * (3.0 - 2.0 * t)).contiguous()  # smoothstep: 1 for r <= 1, 0 past the band

    def __call__(self, image: Image.Image) -> torch.Tensor | None:
        boxes = self.detect(image)
        if not boxes:
            return None
        return self.ellipse(image.height, image.width, boxes[0])


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m ganforge_plugins.apps.composite.masks fetch-mediapipe [DEST]``: fetch the model."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("fetch-mediapipe", "fetch-deeplabv3"):
        usage = (
            "usage: python -m ganforge_plugins.apps.composite.masks fetch-mediapipe [DEST_DIR]\n"
            "       python -m ganforge_plugins.apps.composite.masks fetch-deeplabv3 [BACKBONE]"
        )
        print(usage, file=sys.stderr)
        return 2
    try:
        if args[0] == "fetch-mediapipe":
            print(fetch_mediapipe_model(args[1] if len(args) > 1 else None))
        else:
            provider = DeepLabV3Mask(backbone=args[1] if len(args) > 1 else "resnet50")  # type: ignore[arg-type]
            provider._state_dict()
            print(provider.default_weights_path())
    except GanforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
