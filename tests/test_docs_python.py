"""The Python API's documentation runs: every ``python`` block of docs/python.md and of README's
"Python API in five lines", in order, in a scratch folder laid out like a checkout.

The folder has ``recipes/`` (this repository's), ``selfie.jpg``, ``photos/`` and a
``latest_net_G_A.pth`` in the official CycleGAN's layout; ``GANFORGE_DATA_ROOT`` is a data root
with tiny real selfie2anime and anime-face folders, where the recipes' ``data.source`` looks.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from conftest import REPO, SHARED_DATA, _real_images, _synthetic, make_folder
from PIL import Image


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    work = tmp_path / "ganforge"
    work.mkdir()
    (work / "recipes").symlink_to(REPO / "recipes")
    data = tmp_path / "shared" / "data"
    a = _real_images(SHARED_DATA / "selfie2anime" / "trainA", 12) or _synthetic(12, 1)
    b = _real_images(SHARED_DATA / "selfie2anime" / "trainB", 12) or _synthetic(12, 2)
    make_folder(data / "selfie2anime" / "trainA", a)
    make_folder(data / "selfie2anime" / "trainB", b)
    faces = _real_images(SHARED_DATA / "anime_faces_64", 16) or _synthetic(16, 3)
    make_folder(data / "anime_faces_64", faces, size=64)
    a[0].resize((50, 40)).save(work / "selfie.jpg")
    make_folder(work / "photos", a[:2])
    from ganforge_plugins.networks.resnet import ResnetGenerator

    torch.save(ResnetGenerator(ngf=4, blocks=9).state_dict(), work / "latest_net_G_A.pth")
    monkeypatch.chdir(work)
    monkeypatch.setenv("GANFORGE_DATA_ROOT", str(data))  # what `ganforge data get` fills
    return work


def run_blocks(blocks: list[str], where: str) -> dict:
    namespace: dict = {"__name__": "__docs__"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{where} block {i + 1}", "exec"), namespace)
    return namespace


def test_docs_python_md_runs(checkout, one_thread):
    blocks = python_blocks((REPO / "docs" / "python.md").read_text())
    assert len(blocks) >= 6
    ns = run_blocks(blocks, "docs/python.md")
    assert ns["run"].step == 2 and list(ns["model"].directions) == ["a2b", "b2a"]
    assert Image.open("anime.png").size == (50, 40) and ns["selfie"].size == (50, 40)
    assert sorted(p.name for p in Path("anime").iterdir()) == ["img_000.png", "img_001.png"]
    assert len(ns["images"]) == 8 and ns["images"][0].size == (32, 32)
    assert ns["y"].shape == (1, 3, 64, 48) and list(ns["official"].directions) == ["a2b"]


def test_readme_python_api_in_five_lines_runs(checkout, one_thread):
    section = readme_section("Python API in five lines")
    (block,) = python_blocks(section)
    code = [line for line in block.splitlines() if line and not line.startswith(("import", "from"))]
    assert len(code) == 5, code
    run_blocks([block], "README.md")
    assert Image.open("anime.png").size == (50, 40) and Path("quick.safetensors").is_file()
