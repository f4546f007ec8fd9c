"""The ``tensorboard`` callback, read back with TensorBoard's own event reader."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DCGAN_TINY, RECIPES, TINY, no_callbacks, sets

from ganforge.cli import cli
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer

needs_tensorboard = pytest.mark.skipif(
    find_spec("tensorboard") is None, reason="the tensorboard extra is not installed"
)

SCREENSHOT_DIR_ENV = "GANFORGE_TEST_ARTIFACTS"  # set it to keep the screenshot (docs, CI artifacts)
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
CHROMIUM_ARGS += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
CYCLE_LOSSES = ("G_AB", "G_BA", "cycle_A", "cycle_B", "D_A", "D_B", "idt_A", "idt_B")


def train(recipe: str, overrides: list[str], run_dir, resume: bool = False) -> Trainer:
    registry = get_registry()
    trainer = Trainer(Recipe.load(RECIPES / recipe, overrides).resolve(registry), run_dir, registry)
    if resume:
        trainer.resume(run_dir)
    trainer.fit()
    return trainer


def events(run_dir):
    """TensorBoard's own reader over RUN/tensorboard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    return acc


def steps(acc, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


def session_hparams(folder) -> dict:
    """The HParams tab's values (EventAccumulator skips that plugin's tensor-less summaries)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    found = {}
    for file in sorted(folder.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(file)).Load():
            for value in event.summary.value:
                if value.tag == "_hparams_/session_start_info":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    found.update(data.session_start_info.hparams)
    return found


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory, selfie_root):
    """A 4-step tiny CycleGAN logging every 2 steps, samples every 2, then resumed to 6 steps."""
    run = tmp_path_factory.mktemp("tb") / "run"
    base = [*TINY, f"data.root={json.dumps(str(selfie_root))}", "train.device='cpu'"]
    base += ["callbacks.samples.every=2", "callbacks.checkpoint.every=100"]
    # Listed after tensorboard: its end-of-training values arrive once tensorboard has closed.
    base.append("callbacks.eval={every = 100, count = 2}")
    train("cyclegan_selfie2anime.toml", [*base, "train.max_steps=4"], run)
    first = events(run)
    train("cyclegan_selfie2anime.toml", [*base, "train.max_steps=6"], run, resume=True)
    return run, first, events(run)


@needs_tensorboard
def test_losses_lr_throughput_images_and_recipe(cyclegan_run):
    run, first, _ = cyclegan_run
    tags = first.Tags()
    for name in CYCLE_LOSSES:
        assert steps(first, f"loss/{name}") == [2, 4]
    g_ab = [e.value for e in first.Scalars("loss/G_AB")]
    assert all(v > 0 for v in g_ab)
    assert [e.value for e in first.Scalars("lr/g")] == pytest.approx([2e-4, 2e-4])
    assert steps(first, "lr/d") == [2, 4]
    for key in ("steps_per_s", "samples_per_s", "data_wait_share"):
        assert steps(first, f"throughput/{key}") == [2, 4]
    assert steps(first, "eval/a2b/cycle_l1") == steps(first, "eval/b2a/cycle_l1") == [4]
    share = [e.value for e in first.Scalars("throughput/data_wait_share")]
    assert all(0 <= v <= 1 for v in share)

    images = first.Images("samples")
    assert [im.step for im in images] == [2, 4]
    # rows of 6 tiles (A, A->B, A->B->A, B, B->A, B->A->B), 32 px each with 2 px padding
    assert (images[0].width, images[0].height) == (6 * 34 + 2, 2 * 34 + 2)
    assert images[0].encoded_image_string.startswith(b"\x89PNG")

    assert "recipe/text_summary" in tags["tensors"]
    text = first.Tensors("recipe/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "[objective]" in text and 'name = "cyclegan"' in text and "ngf = 8" in text
    hparams = session_hparams(run / "tensorboard")
    assert hparams["optim.g.lr"].number_value == pytest.approx(2e-4)
    assert hparams["generator.name"].string_value == "resnet"
    assert not any(k.startswith("callbacks.") for k in hparams)


@needs_tensorboard
def test_resume_continues_the_curves_without_duplicates(cyclegan_run):
    run, _, resumed = cyclegan_run
    for name in CYCLE_LOSSES:
        assert steps(resumed, f"loss/{name}") == [2, 4, 6]
    assert steps(resumed, "lr/g") == [2, 4, 6]
    assert [im.step for im in resumed.Images("samples")] == [2, 4, 6]
    assert steps(resumed, "eval/a2b/cycle_l1") == [4, 6]  # each session's end-of-training eval


@needs_tensorboard
def test_resume_purges_what_a_crashed_run_logged_after_its_checkpoint(tmp_path, selfie_root):
    run = tmp_path / "run"
    base = [*TINY, f"data.root={json.dumps(str(selfie_root))}", "train.device='cpu'"]
    base += no_callbacks("checkpoint", "tensorboard")
    tb = ["callbacks.checkpoint.every=2", "callbacks.tensorboard.images=false"]
    train("cyclegan_selfie2anime.toml", [*base, *tb, "train.max_steps=4"], run)
    (run / "checkpoints" / "step-00000004.safetensors").unlink()  # as if it crashed before step 4's
    (run / "checkpoints" / "latest").write_text("step-00000002.safetensors")
    train("cyclegan_selfie2anime.toml", [*base, *tb, "train.max_steps=4"], run, resume=True)
    acc = events(run)
    assert steps(acc, "loss/G_AB") == [2, 4]
    second = [e.wall_time for e in acc.Scalars("loss/G_AB")]
    assert second[1] > second[0]


@needs_tensorboard
def test_dcgan_recipe_logs_its_losses(tmp_path, anime_root):
    run = tmp_path / "dc"
    items = [*DCGAN_TINY, f"data.root={json.dumps(str(anime_root))}", "train.device='cpu'"]
    train("dcgan_anime.toml", [*items, "train.max_steps=2", "train.batch_size=8"], run)
    acc = events(run)
    assert steps(acc, "loss/D") == [2] and steps(acc, "loss/G") == [2]
    assert steps(acc, "lr/g") == [2] and steps(acc, "lr/d") == [2]
    assert [im.step for im in acc.Images("samples")] == [2]  # the end-of-training grid


def test_on_by_default_and_off_with_enabled_false(tmp_path, selfie_root):
    assert "tensorboard" in get_registry().kind("callback").defaults  # every run gets it unless turned off
    for recipe in RECIPES.glob("*.toml"):
        assert "[callbacks.tensorboard]" in recipe.read_text(), recipe.name
    overrides = [*TINY, f"data.root={json.dumps(str(selfie_root))}", "train.max_steps=1"]
    overrides.append("callbacks.tensorboard.enabled=false")
    args = ["run", str(RECIPES / "cyclegan_selfie2anime.toml"), *sets(*overrides)]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "off"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "off" / "metrics.jsonl").is_file() and not (tmp_path / "off" / "tensorboard").exists()


def test_without_tensorboard_it_warns_once_and_does_nothing(tmp_path, selfie_root, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    run = tmp_path / "run"
    base = [
        *TINY,
        f"data.root={json.dumps(str(selfie_root))}",
        "train.device='cpu'",
        *no_callbacks("tensorboard"),
    ]
    train("cyclegan_selfie2anime.toml", [*base, "callbacks.tensorboard={}", "train.max_steps=2"], run)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "tensorboard" in line]
    assert len(warnings) == 1 and "pip install 'ganforge[tensorboard]'" in warnings[0]
    assert not (run / "tensorboard").exists()


@needs_tensorboard
def test_tensorboard_shows_the_run_in_chromium(cyclegan_run, tmp_path):
    """``tensorboard --logdir`` on the runs' parent folder, its scalars page in headless Chromium."""
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    run, _, _ = cyclegan_run
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(run.parent), "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*cmd, "--port", str(port), "--load_fast", "false"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            for _ in range(60):  # until the server answers
                try:
                    page.goto(f"http://127.0.0.1:{port}/#scalars", wait_until="networkidle")
                    break
                except sync_api.Error:
                    assert server.poll() is None, server.stderr.read().decode()[-2000:]
                    time.sleep(0.5)
            page.get_by_text("loss/G_AB").first.wait_for(timeout=60_000)
            page.wait_for_selector("svg path.line, canvas", timeout=60_000)  # a chart was drawn
            page.wait_for_timeout(1000)
            # The dashboard lives in shadow DOM: Playwright's text locators look inside it.
            names = (
                "run/tensorboard",
                "loss/cycle_A",
                "eval/a2b/cycle_l1",
                "throughput",
            )  # the last: a group
            shown = {name: page.get_by_text(name, exact=True).count() for name in names}
            page.locator("tf-tag-filterer input").fill("^(loss|lr)/")  # losses first, for the screenshot
            page.get_by_text("lr/g", exact=True).first.wait_for(timeout=30_000)
            page.wait_for_timeout(1000)
            shot = tmp_path / "tensorboard.png"
            page.screenshot(path=str(shot))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert all(shown.values()), shown
    if os.environ.get(SCREENSHOT_DIR_ENV):
        target = Path(os.environ[SCREENSHOT_DIR_ENV])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / "tensorboard.png")
