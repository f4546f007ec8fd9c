"""Mask providers and the mask-paste compositor (issue 6).

Face-box runs on scikit-image (or OpenCV 4.x), which the test extra installs; mediapipe-selfie
runs where mediapipe or ai-edge-litert and the extracted selfie model are present; deeplabv3 runs
with random weights to check the plumbing only. Nothing here touches the network.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SHARED_DATA, USE_SHARED_DATA, bare_host
from PIL import Image

import ganforge_plugins.apps.composite as compositing
from ganforge import GanforgeError
from ganforge_plugins.apps.composite.composite import (
    MaskCompositor,
    NoMaskWarning,
    blend,
    build_compositor,
    feather_mask,
    mask_bbox,
    mask_image,
    square_crop_box,
)
from ganforge_plugins.apps.composite.masks import DeepLabV3Mask, FaceBoxMask, MediaPipeSelfieMask

# shared/ sits beside the repository (CI clones it there); /work/shared is the workstation's copy.
# GANFORGE_TEST_SHARED_DATA=0 (conftest) hides both: the selfie cases then skip.
_SHARED = [SHARED_DATA.parent, Path("/work/shared")] if USE_SHARED_DATA else []
SELFIES = next(
    (p / "data/selfie2anime/trainA" for p in _SHARED if (p / "data/selfie2anime/trainA").is_dir()),
    SHARED_DATA / "selfie2anime/trainA",
)
# Known face boxes (left, top, right, bottom), checked by eye: the skin from brows to chin.
ASTRONAUT_FACE = (185, 75, 265, 160)
SELFIE_FACES = {
    "female_10.jpg": (85, 60, 175, 185),
    "female_10016.jpg": (70, 60, 180, 180),
    "female_10042.jpg": (80, 50, 190, 190),
}


# ---------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def registry():
    host = bare_host()
    components = types.SimpleNamespace(
        register_mask_providers=compositing.register_mask_providers,
        register_compositors=compositing.register_compositors,
    )
    host.register_module(components, "compositing", "ganforge")
    host.collect()
    assert not host.failures()
    return host.registry


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    skdata = pytest.importorskip("skimage.data")
    return Image.fromarray(skdata.astronaut())


def _selfie(name: str) -> Image.Image:
    path = SELFIES / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return Image.open(path).convert("RGB")


def _face_detector_or_skip(detector: str) -> FaceBoxMask:
    if detector == "skimage":
        pytest.importorskip("skimage.feature")
    try:
        return FaceBoxMask(detector=detector)  # type: ignore[arg-type]
    except GanforgeError as exc:
        pytest.skip(str(exc))


def _mediapipe_or_skip() -> MediaPipeSelfieMask:
    try:
        provider = MediaPipeSelfieMask(download=False)
        provider.resolve_model()
    except GanforgeError as exc:  # no runtime, or the model was never extracted here
        pytest.skip(str(exc))
    return provider


def _box_mean(mask: torch.Tensor, box: tuple[int, int, int, int]) -> float:
    left, top, right, bottom = box
    return float(mask[top:bottom, left:right].mean())


def invert_at_256(image: Image.Image) -> Image.Image:
    """A fake model: runs at the training size (256x256) and inverts the colours."""
    small = image.convert("RGB").resize((256, 256), Image.Resampling.BICUBIC)
    return Image.fromarray(255 - np.asarray(small))


def blob_provider(box: tuple[int, int, int, int], soft: bool = True):
    """A fake mask provider: a (soft-edged) rectangle at fixed pixel coordinates."""

    def provide(image: Image.Image) -> torch.Tensor:
        mask = torch.zeros(image.height, image.width)
        left, top, right, bottom = box
        mask[top:bottom, left:right] = 1.0
        if soft:
            mask = F.avg_pool2d(mask[None, None], 5, stride=1, padding=2, count_include_pad=False)[0, 0]
        return mask

    return provide


def noise_free_photo(width: int, height: int) -> Image.Image:
    """A textured photo-like image (gradients plus a pattern) of any size."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack(
        [(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)), ((x // 7 + y // 5) % 2) * 120 + 60],
        axis=-1,
    )
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def feather_band(hard: torch.Tensor, px: int) -> torch.Tensor:
    """Pixels within ``px`` (Chebyshev) of the hard mask: where the composite may differ."""
    return F.max_pool2d(hard[None, None].float(), 2 * px + 1, stride=1, padding=px)[0, 0] > 0


# ---------------------------------------------------------------------------------------------
# registration


def test_registered_names_and_options(registry):
    assert {"mediapipe-selfie", "deeplabv3", "face-box"} <= set(registry.names("mask_provider"))
    assert "mask-paste" in registry.names("compositor")
    paste = {p.name: p.default for p in registry.get("compositor", "mask-paste").params}
    assert paste == {
        "mask": "face-box",
        "mask_options": None,
        "feather": 15,
        "threshold": 0.5,
        "face_crop": False,
        "crop_margin": 0.4,
    }
    deeplab = {p.name for p in registry.get("mask_provider", "deeplabv3").params}
    assert {"weights", "backbone", "pretrained", "size"} <= deeplab
    face = {p.name for p in registry.get("mask_provider", "face-box").params}
    assert {"detector", "margin", "min_size"} <= face
    for component in registry.all("mask_provider") + registry.all("compositor"):
        assert component.doc
    with pytest.raises(GanforgeError, match="expects 'auto' | 'opencv' | 'skimage'"):
        registry.validate("mask_provider", {"name": "face-box", "detector": "dlib"}, "x")


def test_plugin_import_needs_no_optional_package():
    code = (
        "import sys\n"
        "import ganforge_plugins.apps.composite as c\n"
        "import ganforge_plugins.apps.composite.masks, ganforge_plugins.apps.composite.composite\n"
        "names = []\n"
        "c.register_mask_providers(lambda n, f: names.append(n))\n"
        "c.register_compositors(lambda n, f: names.append(n))\n"
        "heavy = [m for m in ('cv2', 'skimage', 'mediapipe', 'ai_edge_litert') "
        "if m in sys.modules]\n"
        "print(sorted(names), heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['deeplabv3', 'face-box', 'mask-paste', 'mediapipe-selfie'] []"


# ---------------------------------------------------------------------------------------------
# feathering and blending


def test_feather_mask_support_range_and_zero():
    mask = torch.zeros(40, 60)
    mask[20, 30] = 1.0
    for px in (0, 1, 4, 9):
        out = feather_mask(mask, px)
        assert out.dtype == torch.float32 and out.shape == (40, 60)
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
        assert float(out[20, 30]) > 0
        assert not bool((out > 0)[~feather_band(mask, px)].any())
    assert torch.equal(feather_mask(mask, 0), mask)
    ones = torch.ones(10, 7)
    assert torch.equal(feather_mask(ones, 15), ones)  # replicate padding keeps a full mask full


def test_blend_is_exact_where_mask_is_zero_or_one():
    a = noise_free_photo(31, 17)
    b = Image.fromarray(255 - np.asarray(a))
    mask = torch.zeros(17, 31)
    mask[:, 10:20] = 0.5
    mask[:, 20:] = 1.0
    out = np.asarray(blend(a, b, mask))
    assert np.array_equal(out[:, :10], np.asarray(a)[:, :10])
    assert np.array_equal(out[:, 20:], np.asarray(b)[:, 20:])
    mid = np.asarray(a).astype(int)[:, 10:20] + np.asarray(b).astype(int)[:, 10:20]
    assert np.abs(out[:, 10:20].astype(int) * 2 - mid).max() <= 1


# ---------------------------------------------------------------------------------------------
# the compositor


@pytest.mark.parametrize("size", [(413, 271), (200, 517), (64, 64)])
def test_composite_keeps_resolution_and_background_exactly(size):
    width, height = size
    photo = noise_free_photo(width, height)
    box = (width // 4, height // 5, width // 2 + 7, height // 2 + 3)
    compositor = MaskCompositor(feather=6)
    out, mask = compositor.composite(photo, invert_at_256, blob_provider(box))
    assert out.size == photo.size and out.mode == "RGB"
    assert mask is not None and tuple(mask.shape) == (height, width) and mask.dtype == torch.float32
    orig = np.asarray(photo)
    res = np.asarray(out)
    hard = compositor.prepare_mask(blob_provider(box)(photo), height, width)
    outside = ~feather_band(hard, 6).numpy()
    assert outside.any()
    assert np.array_equal(res[outside], orig[outside])
    assert np.array_equal(res[mask.numpy() == 0], orig[mask.numpy() == 0])
    # Deep inside the mask the pixels are the (resized) model output, i.e. roughly inverted.
    core = mask.numpy() >= 1.0
    assert core.any()
    expected = np.asarray(invert_at_256(photo).resize(photo.size, Image.Resampling.BICUBIC))
    assert np.array_equal(res[core], expected[core])


def test_composite_any_mode_and_hard_edges():
    photo = noise_free_photo(90, 50)
    for mode in ("RGBA", "L", "P"):
        image = photo.convert(mode)
        out, mask = MaskCompositor(feather=0).composite(image, invert_at_256, blob_provider((10, 10, 40, 30)))
        assert out.mode == "RGB" and out.size == (90, 50)
        assert set(np.unique(mask.numpy())) <= {0.0, 1.0}


def test_soft_threshold_zero_keeps_soft_mask():
    photo = noise_free_photo(80, 60)
    provider = blob_provider((20, 20, 50, 40), soft=True)
    compositor = MaskCompositor(feather=0, threshold=0.0)
    out, mask = compositor.composite(photo, invert_at_256, provider)
    values = set(np.unique(mask.numpy()).tolist())
    assert len(values) > 2  # the soft edge survives
    assert np.array_equal(np.asarray(out)[mask.numpy() == 0], np.asarray(photo)[mask.numpy() == 0])


def test_no_person_returns_photo_unchanged_with_warning():
    photo = noise_free_photo(120, 80)
    photo.filename = "empty.jpg"  # as Image.open sets it
    compositor = MaskCompositor()
    calls = []

    def translate(image):
        calls.append(image.size)
        return image

    for provider in (
        lambda image: None,
        lambda image: torch.zeros(image.height, image.width),
        lambda image: torch.full((image.height, image.width), 0.2),
    ):
        with pytest.warns(NoMaskWarning, match="no person or face found in 'empty.jpg'"):
            out, mask = compositor.composite(photo, translate, provider)
        assert mask is None
        assert np.array_equal(np.asarray(out), np.asarray(photo))
    assert calls == []  # the model is not even run


def test_face_box_no_face_on_gradient(astronaut):
    pytest.importorskip("skimage.feature")
    compositor = MaskCompositor(mask="face-box")
    flat = noise_free_photo(300, 200)
    with pytest.warns(NoMaskWarning, match="the image"):
        out, mask = compositor.composite(flat, invert_at_256)
    assert mask is None and np.array_equal(np.asarray(out), np.asarray(flat))
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (150, 220, 3), dtype=np.uint8))
    with pytest.warns(NoMaskWarning):
        out, mask = compositor.composite(noise, invert_at_256, name="noise.png")
    assert mask is None and np.array_equal(np.asarray(out), np.asarray(noise))


def test_face_crop_translates_a_square_crop_and_pastes_back():
    photo = noise_free_photo(500, 300)
    box = (200, 100, 260, 180)
    seen = []

    def translate(image):
        seen.append(image.size)
        return invert_at_256(image)

    compositor = MaskCompositor(feather=5, face_crop=True, crop_margin=0.4)
    out, mask = compositor.composite(photo, translate, blob_provider(box, soft=False))
    assert out.size == photo.size
    assert len(seen) == 1 and seen[0][0] == seen[0][1]  # a square crop, for a square-trained model
    crop = square_crop_box(box, 0.4, 500, 300)
    assert seen[0] == (crop[2] - crop[0], crop[3] - crop[1])
    m = mask.numpy()
    outside_crop = np.ones_like(m, dtype=bool)
    outside_crop[crop[1] : crop[3], crop[0] : crop[2]] = False
    assert not m[outside_crop].any()
    assert np.array_equal(np.asarray(out)[m == 0], np.asarray(photo)[m == 0])
    assert (m >= 1.0).any()


def test_square_crop_box_stays_inside():
    assert square_crop_box((0, 0, 10, 10), 0.5, 100, 100) == (0, 0, 20, 20)
    assert square_crop_box((90, 40, 100, 60), 0.5, 100, 100) == (60, 30, 100, 70)
    left, top, right, bottom = square_crop_box((5, 5, 95, 45), 0.5, 100, 50)
    assert (right - left, bottom - top) == (50, 50) and 0 <= left and right <= 100
    assert mask_bbox(torch.zeros(4, 4)) is None


def test_mask_image_roundtrip():
    mask = torch.tensor([[0.0, 0.5], [1.0, 0.25]])
    img = mask_image(mask)
    assert img.mode == "L" and np.asarray(img).tolist() == [[0, 128], [255, 64]]
    assert mask_image(None, (3, 2)).size == (3, 2)


# ---------------------------------------------------------------------------------------------
# building from tables, for the CLI and recipes


def test_build_from_registry_and_cli_helper(registry):
    comp = registry.build(
        "compositor",
        {"name": "mask-paste", "mask": "face-box", "feather": 7, "mask_options": {"margin": 0.3}},
    )
    assert isinstance(comp, MaskCompositor) and comp.feather == 7 and comp.mask_options == {"margin": 0.3}
    if importlib.util.find_spec("skimage") or importlib.util.find_spec("cv2"):
        assert isinstance(comp.mask_provider, FaceBoxMask) and comp.mask_provider.margin == 0.3
    with pytest.raises(GanforgeError, match="unknown mask_provider 'face-bx'.*did you mean 'face-box'"):
        MaskCompositor(mask="face-bx")
    with pytest.raises(GanforgeError, match="unknown key 'margn'"):
        MaskCompositor(mask="face-box", mask_options={"margn": 0.2})
    with pytest.raises(GanforgeError, match="feather"):
        MaskCompositor(feather=-1)
    assert build_compositor(registry=registry) is None
    cli = build_compositor("deeplabv3", feather=3, registry=registry)
    assert cli.mask == "deeplabv3" and cli.feather == 3
    recipe = {"name": "mask-paste", "mask": "face-box", "feather": 15, "mask_options": {"margin": 0.1}}
    same = build_compositor(None, None, recipe, registry=registry)
    assert same.mask == "face-box" and same.mask_options == {"margin": 0.1}
    other = build_compositor("mediapipe-selfie", 4, recipe, registry=registry)
    assert build_compositor("face-box", None, {"mask_options": {"margin": 0.1}}, registry).mask_options
    assert not build_compositor("deeplabv3", None, {"mask_options": {"margin": 0.1}}, registry).mask_options
    assert other.mask == "mediapipe-selfie" and other.mask_options == {} and other.feather == 4


# ---------------------------------------------------------------------------------------------
# face-box


@pytest.mark.parametrize("detector", ["skimage", "opencv"])
def test_face_box_covers_astronaut_face(astronaut, detector):
    provider = _face_detector_or_skip(detector)
    mask = provider(astronaut)
    assert mask is not None and mask.shape == (512, 512) and mask.dtype == torch.float32
    assert _box_mean(mask, ASTRONAUT_FACE) > 0.5
    assert float(mask[400:, :].max()) == 0.0  # the suit and helmet are not the face
    assert float(mask.min()) == 0.0 and float(mask.max()) == 1.0


@pytest.mark.parametrize("detector", ["skimage", "opencv"])
@pytest.mark.parametrize("name", sorted(SELFIE_FACES))
def test_face_box_covers_selfie_faces(name, detector):
    image = _selfie(name)
    provider = _face_detector_or_skip(detector)
    mask = provider(image)
    assert mask is not None and mask.shape == (image.height, image.width)
    assert _box_mean(mask, SELFIE_FACES[name]) > 0.5


def test_face_box_composite_on_non_square_astronaut(astronaut):
    pytest.importorskip("skimage.feature")
    photo = astronaut.crop((40, 0, 440, 300)).resize((533, 400), Image.Resampling.BICUBIC)
    compositor = MaskCompositor(mask="face-box", mask_options={"detector": "skimage"}, feather=10)
    out, mask = compositor.composite(photo, invert_at_256)
    assert out.size == photo.size and mask is not None
    hard = compositor.prepare_mask(compositor.provider(photo), photo.height, photo.width)
    outside = ~feather_band(hard, 10).numpy()
    orig, res = np.asarray(photo), np.asarray(out)
    assert outside.mean() > 0.5
    assert np.array_equal(res[outside], orig[outside])
    # The face (x 185-265, y 75-160 in the 512 image) moved by the crop and the resize.
    sx, sy = 533 / 400, 400 / 300
    face = (round((185 - 40) * sx), round(75 * sy), round((265 - 40) * sx), round(160 * sy))
    assert _box_mean(mask, face) > 0.5
    left, top, right, bottom = face
    assert np.abs(res[top:bottom, left:right].astype(int) - orig[top:bottom, left:right]).mean() > 40


def test_face_box_small_and_tiny_images():
    pytest.importorskip("skimage.feature")
    provider = FaceBoxMask(detector="skimage")
    assert provider(Image.new("RGB", (5, 3), (128, 128, 128))) is None
    ellipse = provider.ellipse(30, 50, (10.0, 5.0, 20.0, 20.0))
    assert ellipse.shape == (30, 50) and float(ellipse[15, 20]) == 1.0 and float(ellipse[0, 0]) == 0.0


def test_face_box_missing_dependencies(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    for module in [m for m in sys.modules if m == "skimage" or m.startswith("skimage.")]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(GanforgeError) as info:
        FaceBoxMask()
    message = str(info.value)
    assert "pip install 'ganforge[face]'" in message and "\n" not in message
    with pytest.raises(GanforgeError, match=r"pip install 'ganforge\[opencv\]'"):
        FaceBoxMask(detector="opencv")


# ---------------------------------------------------------------------------------------------
# mediapipe-selfie


def test_mediapipe_missing_dependency(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    with pytest.raises(GanforgeError) as info:
        MediaPipeSelfieMask()
    message = str(info.value)
    assert message.startswith("mask provider 'mediapipe-selfie' needs mediapipe: ")
    assert "pip install 'ganforge[mediapipe]'" in message and "\n" not in message
    with pytest.raises(GanforgeError, match=r"pip install 'ganforge\[litert\]'"):
        MediaPipeSelfieMask(backend="litert")


def test_mediapipe_missing_model_names_the_fix(monkeypatch, tmp_path):
    provider = MediaPipeSelfieMask.__new__(MediaPipeSelfieMask)  # no runtime needed to resolve
    provider.model, provider.model_path, provider.download = "general", "", False
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    monkeypatch.delenv("GANFORGE_MEDIAPIPE_MODEL_DIR", raising=False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(GanforgeError, match="fetch-mediapipe") as info:
        provider.resolve_model()
    assert str(tmp_path / "mediapipe") in str(info.value)
    (tmp_path / "mediapipe").mkdir()
    (tmp_path / "mediapipe" / "selfie_segmentation.tflite").write_bytes(b"x")
    assert provider.resolve_model() == tmp_path / "mediapipe" / "selfie_segmentation.tflite"
    with pytest.raises(GanforgeError, match="is not a file"):
        MediaPipeSelfieMask.__init__(provider, model_path=str(tmp_path / "nope.tflite"))


def test_mediapipe_selfie_covers_astronaut(astronaut):
    provider = _mediapipe_or_skip()
    mask = provider(astronaut)
    assert mask is not None and mask.shape == (512, 512) and mask.dtype == torch.float32
    assert 0.0 <= float(mask.min()) and float(mask.max()) <= 1.0
    assert _box_mean(mask, ASTRONAUT_FACE) > 0.5
    assert float(mask[:80, 420:].mean()) < 0.2  # the sky/rocket corner is background
    wide = astronaut.crop((0, 0, 512, 300))
    assert provider(wide).shape == (300, 512)


@pytest.mark.parametrize("name", sorted(SELFIE_FACES))
def test_mediapipe_selfie_covers_selfie_faces(name):
    image = _selfie(name)
    provider = _mediapipe_or_skip()
    mask = provider(image)
    assert mask is not None and _box_mean(mask, SELFIE_FACES[name]) > 0.5


def test_mediapipe_selfie_composite(astronaut):
    provider = _mediapipe_or_skip()
    photo = astronaut.resize((640, 512), Image.Resampling.BICUBIC)
    compositor = MaskCompositor(mask="mediapipe-selfie", feather=8)
    out, mask = compositor.composite(photo, invert_at_256, provider)
    assert out.size == photo.size
    hard = compositor.prepare_mask(provider(photo), 512, 640)
    outside = ~feather_band(hard, 8).numpy()
    assert outside.any()
    assert np.array_equal(np.asarray(out)[outside], np.asarray(photo)[outside])


# ---------------------------------------------------------------------------------------------
# deeplabv3


def test_deeplabv3_plumbing_random_weights():
    pytest.importorskip("torchvision")
    torch.manual_seed(0)
    provider = DeepLabV3Mask(
        backbone="mobilenet_v3_large", pretrained=False, size=64, min_area=0.0, threshold=0.0
    )
    image = noise_free_photo(97, 61)
    probs = provider.probabilities(image)
    assert probs.shape == (61, 97) and probs.dtype == torch.float32
    assert 0.0 <= float(probs.min()) and float(probs.max()) <= 1.0
    mask = provider(image)
    assert mask is not None and mask.shape == (61, 97)
    strict = DeepLabV3Mask(
        backbone="mobilenet_v3_large", pretrained=False, size=64, min_area=0.5, threshold=0.99
    )
    strict._model = provider._model
    assert strict(image) is None  # random weights: nowhere near certain of a person
    out, used = MaskCompositor(feather=3, threshold=0.0).composite(image, invert_at_256, provider)
    assert out.size == image.size and used is not None


def test_deeplabv3_weights_file(tmp_path):
    pytest.importorskip("torchvision")
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    model = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    path = tmp_path / "deeplab.pth"
    torch.save(model.state_dict(), path)
    provider = DeepLabV3Mask(weights=str(path), backbone="mobilenet_v3_large", size=48, min_area=0.0)
    loaded = provider._load()
    assert torch.equal(loaded.state_dict()["classifier.4.weight"], model.state_dict()["classifier.4.weight"])
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(GanforgeError, match="cannot read weights"):
        DeepLabV3Mask(weights=str(bad), backbone="mobilenet_v3_large")._load()
    with pytest.raises(GanforgeError, match="does not exist"):
        DeepLabV3Mask(weights=str(tmp_path / "missing.pth"))
    with pytest.raises(GanforgeError, match="do not fit"):
        DeepLabV3Mask(weights=str(path), backbone="resnet50")._load()


def test_deeplabv3_offline_without_cache_says_where(monkeypatch, tmp_path):
    pytest.importorskip("torchvision")

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    provider = DeepLabV3Mask(backbone="mobilenet_v3_large")
    with pytest.raises(GanforgeError) as info:
        provider(noise_free_photo(40, 30))
    message = str(info.value)
    assert "deeplabv3_mobilenet_v3_large-" in message and str(tmp_path / "checkpoints") in message
    assert "\n" not in message


def test_warning_is_not_an_error():
    photo = noise_free_photo(20, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoMaskWarning)
        out, mask = MaskCompositor().composite(photo, invert_at_256, lambda image: None)
    assert mask is None and out.size == (20, 20)
