"""Make docs/img/demo.png and docs/img/tensorboard.png with the browser tests that take them.

The tests run in a temporary copy of ``tests/`` and ``recipes/`` whose ``shared/data`` beside it
holds scikit-image's sample pictures (a cat, a coffee cup, ...) instead of selfie2anime, so the
committed screenshots show nobody's photo. Needs Chromium, the ``tensorboard`` and ``demo``
extras, Playwright and scikit-image (all in ``.[test]``)::

    python docs/make_screenshots.py
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "img"
MAX_BYTES = 300_000
TESTS = [
    "tests/test_demo.py::test_demo_translates_an_upload_in_chromium",
    "tests/test_tensorboard.py::test_tensorboard_shows_the_run_in_chromium",
]
# Domain A and B stand-ins; the first of B is the photo in the demo screenshot, B the examples.
PICTURES = {
    "trainA": ("chelsea", "cat", "rocket", "coffee"),
    "trainB": ("coffee", "chelsea", "cat", "rocket"),
}


def sample_pictures(root: Path) -> None:
    from skimage import data

    for folder, names in PICTURES.items():
        (root / folder).mkdir(parents=True)
        for i, name in enumerate(names):
            img = ImageOps.fit(Image.fromarray(getattr(data, name)()), (256, 256))
            img.save(root / folder / f"{i}-{name}.png")
            ImageOps.mirror(img).save(root / folder / f"{i}-{name}-mirrored.png")  # 8 per folder


def small_png(src: Path, dst: Path) -> None:
    """Save ``src`` optimised, with a 256-colour palette if that is what keeps it under MAX_BYTES."""
    image = Image.open(src).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    if buffer.tell() > MAX_BYTES:
        buffer = io.BytesIO()
        image.quantize(256, dither=Image.Dither.NONE).save(buffer, "PNG", optimize=True)
    dst.write_bytes(buffer.getvalue())
    print(f"wrote {dst.relative_to(REPO)} ({len(buffer.getvalue()) // 1000} kB)")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "ganforge"
        for part in ("tests", "recipes"):
            shutil.copytree(REPO / part, work / part, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(REPO / "pyproject.toml", work)
        sample_pictures(Path(tmp) / "shared" / "data" / "selfie2anime")
        artifacts = Path(tmp) / "artifacts"
        env = {**os.environ, "GANFORGE_TEST_ARTIFACTS": str(artifacts)}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS], cwd=work, env=env
        )
        shots = {name: artifacts / name for name in ("demo.png", "tensorboard.png")}
        if done.returncode or not all(p.is_file() for p in shots.values()):
            print("the screenshot tests failed or were skipped (Chromium, extras?)", file=sys.stderr)
            return 1
        OUT.mkdir(parents=True, exist_ok=True)
        for name, path in shots.items():
            small_png(path, OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
