"""`ganforge composite`: stylise the face, keep the photo (end to end, CLI)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

skimage_data = pytest.importorskip("skimage.data")


def test_translate_with_face_box_composite(cli, tiny_cyclegan_run, tmp_path):
    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).crop((0, 0, 512, 400)).save(photo)  # non-square
    flat = tmp_path / "wall.png"
    Image.new("RGB", (90, 60), (120, 130, 140)).save(flat)
    out = tmp_path / "out"
    result = cli(
        "composite",
        str(tiny_cyclegan_run),
        str(photo),
        str(flat),
        "--mask",
        "face-box",
        "--feather",
        "4",
        "--save-mask",
        "--out",
        str(out),
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    composite = np.asarray(Image.open(out / "astronaut.png"))
    original = np.asarray(Image.open(photo))
    assert composite.shape == original.shape  # the input's resolution is kept
    mask = np.asarray(Image.open(out / "astronaut.mask.png"))
    assert mask.shape == original.shape[:2]
    face = mask[75:160, 185:265]  # the astronaut's face
    assert face.mean() > 0.5 * 255
    outside = mask == 0
    assert outside.mean() > 0.3 and np.array_equal(composite[outside], original[outside])
    assert not np.array_equal(composite[mask == 255], original[mask == 255])  # the face was stylised
    # a photo with no face comes back unchanged, with a one-line warning and no error
    assert np.array_equal(np.asarray(Image.open(out / "wall.png")), np.asarray(Image.open(flat)))
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "wall.png" in warnings[0]


def test_unknown_mask_provider_is_one_line(cli, tiny_cyclegan_run, tmp_path):
    photo = tmp_path / "p.png"
    Image.new("RGB", (32, 32)).save(photo)
    result = cli(
        "composite",
        str(tiny_cyclegan_run),
        str(photo),
        "--mask",
        "face-bx",
        "--out",
        str(tmp_path / "o"),
        "--device",
        "cpu",
    )
    assert (
        result.returncode == 2
        and "did you mean 'face-box'" in result.stderr
        and "Traceback" not in result.stderr
    )
