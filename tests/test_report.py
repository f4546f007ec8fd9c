"""``ganforge report``: a self-contained page, opened in a real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import RECIPES, TINY, sets
from PIL import Image

from ganforge.cli import cli
from ganforge_plugins.apps.report.report import _thin, build_report, nice_ticks, svg_chart

SCREENSHOT_DIR_ENV = "GANFORGE_TEST_ARTIFACTS"  # set it to keep the screenshot (CI artifacts)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, selfie_root):
    """A 4-step tiny CycleGAN run with samples every 2 steps and the eval callback."""
    out = tmp_path_factory.mktemp("reportrun") / "run"
    overrides = sets(
        *TINY,
        f"data.root={json.dumps(str(selfie_root))}",
        "train.log_every=1",
        "train.max_steps=4",
        "callbacks.samples.every=2",
        "callbacks.eval={every = 2, count = 2}",
    )
    args = [
        "run",
        str(RECIPES / "cyclegan_selfie2anime.toml"),
        *overrides,
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def open_in_chromium(page: Path, tmp: Path, *extra: str) -> tuple[str, list[str]]:
    """Load ``page`` headless; (stdout, console messages logged while it ran)."""
    browser = chromium()
    if browser is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium)")
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return proc.stdout, console


def test_report_is_self_contained_with_all_sections(run_dir):
    result = CliRunner().invoke(cli, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "url(" not in page and "@import" not in page and "Content-Security-Policy" in page
    for anchor in ("summary", "environment", "throughput", "losses", "metrics", "samples", "recipe"):
        assert f'<section id="{anchor}">' in page
    assert page.count('<svg class="chart"') >= 5  # G and D losses, lr, throughput, metrics
    assert "cycle_l1" in page and "Generator losses" in page and "torch version" in page
    assert page.count('<img src="data:image/png;base64,') == 2  # samples at steps 2 and 4
    assert 'type="range"' in page and "[objective]" in page and "steps / s" in page
    other = run_dir.parent / "elsewhere" / "page.html"
    assert CliRunner().invoke(cli, ["report", str(run_dir), "--out", str(other)]).exit_code == 0
    assert other.is_file()


def test_report_renders_in_chromium_without_console_errors(run_dir, tmp_path):
    page = run_dir / "report.html"
    if not page.is_file():
        page.write_text(build_report(run_dir), encoding="utf-8")
    shot = tmp_path / "report.png"
    _, console = open_in_chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,2400")
    assert console == []
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2400) and shot.stat().st_size > 20_000
    assert len(image.getcolors(1 << 20) or range(1 << 20)) > 100  # charts and photos, not a blank page
    if os.environ.get(SCREENSHOT_DIR_ENV):
        target = Path(os.environ[SCREENSHOT_DIR_ENV])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / "report.png")

    dom, console = open_in_chromium(page, tmp_path, "--dump-dom")
    assert console == []
    assert dom.count('<svg class="chart"') >= 5 and dom.count("<polyline") >= 5
    assert dom.count('src="data:image/png;base64,') == 2
    assert re.search(r'<span id="sample-label">step 4</span>', dom)
    assert re.search(r'<button type="button" data-frame="1" class="on">', dom)  # the script ran


def test_report_slider_switches_the_sample_grid(run_dir, tmp_path):
    page = build_report(run_dir)
    driver = (
        '<script>var s = document.getElementById("sample-slider"); s.value = "0";'
        's.dispatchEvent(new Event("input"));</script></body>'
    )
    harness = tmp_path / "slider.html"
    harness.write_text(page.replace("</body>", driver), encoding="utf-8")
    dom, console = open_in_chromium(harness, tmp_path, "--dump-dom")
    assert console == []
    assert '<span id="sample-label">step 2</span>' in dom
    figures = re.findall(r"<figure[^>]*>", dom)
    assert len(figures) == 2 and "hidden" not in figures[0] and "hidden" in figures[1]


def test_console_errors_are_detected(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><p>x</p>'
        "<script>undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    _, console = open_in_chromium(bad, tmp_path, "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in console)


def test_report_of_a_run_without_metrics_or_samples(tmp_path):
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "recipe.resolved.toml").write_text('[objective]\nname = "cyclegan"\n', encoding="utf-8")
    page = build_report(run)
    assert "No losses logged yet" in page and "No sample grids yet" in page and "No run.json" in page
    assert "No evaluation metrics logged" in page and "sample-slider" not in page
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["report", str(empty)])
    assert result.exit_code == 2 and "is not a run folder" in result.stderr


def test_chart_helpers():
    assert nice_ticks(0, 1) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert "no data yet" in svg_chart({}, "empty")
    one = svg_chart({"a": [(5.0, 2.0)]}, "one point")
    assert "<circle" in one
    frames = list(range(100))
    thinned = _thin(frames, 10)
    assert len(thinned) == 10 and thinned[0] == 0 and thinned[-1] == 99
