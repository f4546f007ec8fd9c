"""The documentation site (mkdocs with mkdocstrings: the guides plus an API reference generated
from the docstrings) builds in strict mode, and a broken reference fails the build."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import REPO

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")


def build(root, out):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(root / "mkdocs.yml"),
            "-d",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )


def test_the_site_builds_with_every_reference_resolved(tmp_path):
    result = build(REPO, tmp_path / "site")
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "site" / "reference" / "model" / "index.html").read_text()
    assert 'id="ganforge.model.Model.load"' in page and "model card" in page  # from the docstrings
    assert (tmp_path / "site" / "objectives" / "index.html").is_file()


def test_a_broken_reference_fails_the_build(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs", ignore=shutil.ignore_patterns("examples", "img"))
    (root / "docs" / "img").mkdir()
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(REPO / "ganforge", root / "ganforge")
    page = root / "docs" / "reference" / "protocols.md"
    page.write_text(page.read_text() + "\n::: ganforge.protocols.NoSuchCapability\n")
    result = build(root, tmp_path / "site")
    assert result.returncode != 0 and "NoSuchCapability" in result.stderr
