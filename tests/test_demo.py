"""``ganforge demo``: the page in a real headless Chromium, bad uploads through gradio_client."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import DCGAN_TINY, NO_CALLBACKS, RECIPES
from PIL import Image

from ganforge.cli import cli
from ganforge.errors import GanforgeError
from ganforge.plugins import get_registry
from ganforge_plugins.apps.demo import demo as demo_mod
from ganforge_plugins.apps.export.export import read_header
from ganforge_plugins.callbacks.samples import sample_grid, save_grid

SCREENSHOT_DIR_ENV = "GANFORGE_TEST_ARTIFACTS"  # set it to keep the screenshot (docs, CI artifacts)
needs_gradio = pytest.mark.skipif(
    find_spec("gradio") is None, reason="the demo extra (gradio) is not installed"
)
RESULT = "document.querySelector('#result img')"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def png_claiming(width: int, height: int, path: Path) -> Path:
    """A few-hundred-byte PNG whose header declares ``width`` x ``height`` (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    body = zlib.compress(b"\x00" * (width // 8 + 1) * 16, 9)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture(scope="module")
def photo(selfie_root, tmp_path_factory) -> Path:
    """A real selfie at a size and aspect the model never saw (160 x 128)."""
    out = tmp_path_factory.mktemp("photo") / "selfie.png"
    with Image.open(sorted((selfie_root / "trainA").iterdir())[0]) as img:
        img.convert("RGB").resize((160, 128), Image.BICUBIC).save(out)
    return out


@pytest.fixture(scope="module")
def drawing(selfie_root, tmp_path_factory) -> Path:
    """A real anime face (domain B), portrait 128 x 160: no person in the screenshot docs keep."""
    out = tmp_path_factory.mktemp("drawing") / "anime.png"
    with Image.open(sorted((selfie_root / "trainB").iterdir())[0]) as img:
        img.convert("RGB").resize((128, 160), Image.BICUBIC).save(out)
    return out


@pytest.fixture(scope="module")
def server(tiny_cyclegan_run, selfie_root, tmp_path_factory):
    """``ganforge demo RUN --examples trainB`` in a subprocess on a free local port; yields its URL."""
    if find_spec("gradio") is None:
        pytest.skip("the demo extra (gradio) is not installed")
    tmp = tmp_path_factory.mktemp("demo-server")
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp / "gradio"), "OMP_NUM_THREADS": "1"}
    log = open(tmp / "server.log", "w+")  # read back if it fails to start
    # A free port can be taken by another process before the server binds it (many test runs on
    # one machine): a server that exits at start-up gets another port, twice. Start-up (Gradio's
    # import) takes seconds alone and minutes on a loaded machine: the deadline is generous.
    for attempt in range(3):
        port = free_port()
        cmd = [sys.executable, "-m", "ganforge", "demo", str(tiny_cyclegan_run), "--port", str(port)]
        cmd += ["--device", "cpu", "--examples", str(selfie_root / "trainB")]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 300
        while not answers(url) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        if proc.poll() is None and answers(url):
            break
        proc.kill()
        proc.wait()
        if attempt == 2 or time.monotonic() >= deadline:
            log.seek(0)
            pytest.fail(f"the demo did not start:\n{log.read()[-3000:]}")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def test_demo_translates_an_upload_in_chromium(server, photo, drawing, tmp_path):
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server, wait_until="networkidle")
            assert (
                page.title() == "ganforge demo: cyclegan: A -> B, B -> A at 32 px (step-00000002.safetensors)"
            )
            page.locator("#photo input[type=file]").set_input_files(str(photo))
            result = page.locator("#result img")
            result.wait_for(state="visible", timeout=60_000)
            page.wait_for_function(
                f"() => {{ const i = {RESULT}; return i && i.complete && i.naturalWidth > 0 }}"
            )
            size = page.evaluate(f"() => {{ const i = {RESULT}; return [i.naturalWidth, i.naturalHeight] }}")
            assert size == [160, 128]  # the photo's resolution, not the model's 32 px

            button = page.locator("#download")
            button.wait_for(state="visible", timeout=30_000)
            with page.expect_download(timeout=30_000) as download:
                button.click()
            saved = tmp_path / download.value.suggested_filename
            download.value.save_as(saved)

            # The other direction, from the switch: an anime face back to a "photo".
            page.locator("#photo button[aria-label='Remove Image']").click()
            page.wait_for_function(f"() => !{RESULT}")  # the result goes with the photo
            page.get_by_label("B -> A").check()  # the domains, not the direction's name
            page.locator("#photo input[type=file]").set_input_files(str(drawing))
            page.wait_for_function(
                f"() => {{ const i = {RESULT}; return i && i.complete && i.naturalWidth > 0 }}"
            )
            assert page.evaluate(f"() => [{RESULT}.naturalWidth, {RESULT}.naturalHeight]") == [128, 160]
            shot = tmp_path / "demo.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert saved.name == "selfie-a2b.png"
    with Image.open(saved) as out, Image.open(photo) as original:
        assert out.size == original.size == (160, 128)
        diff = np.abs(
            np.asarray(out.convert("RGB"), np.int16) - np.asarray(original.convert("RGB"), np.int16)
        )
    assert diff.mean() > 5  # translated, not the photo handed back
    assert errors == []
    if os.environ.get(SCREENSHOT_DIR_ENV):
        target = Path(os.environ[SCREENSHOT_DIR_ENV])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / "demo.png")


def test_bad_uploads_get_a_message_and_the_server_stays_up(server, photo, tmp_path):
    client_mod = pytest.importorskip("gradio_client", reason="gradio_client is not installed")
    client = client_mod.Client(server, verbose=False)
    text = tmp_path / "notes.png"
    text.write_text("not an image\n")
    data = photo.read_bytes()
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(data[: len(data) // 2])
    bad = {
        text: "is not an image Pillow can read",
        truncated: "is truncated or damaged",
        png_claiming(
            11_000, 10_000, tmp_path / "big.png"
        ): "11000 x 10000 = 110 megapixels; this demo takes at most 89 megapixels",
        png_claiming(50_000, 50_000, tmp_path / "bomb.png"): "(a decompression bomb?); refused",
    }
    for path, message in bad.items():
        with pytest.raises(client_mod.exceptions.AppError) as caught:
            client.predict(client_mod.handle_file(str(path)), "a2b", "none", 15, api_name="/translate")
        assert message in str(caught.value), (path.name, str(caught.value))
    with pytest.raises(client_mod.exceptions.AppError) as caught:
        client.predict(client_mod.handle_file(str(photo)), "sideways", "none", 15, api_name="/translate")
    assert "direction" in str(caught.value)
    # Still up, and still right: both directions, and compositing through the face-box provider.
    for direction in ("a2b", "b2a"):
        result, download = client.predict(
            client_mod.handle_file(str(photo)), direction, "none", 15, api_name="/translate"
        )
        with Image.open(result) as out:
            assert out.size == (160, 128)
        assert Path(download["value"]).name == f"selfie-{direction}.png"
    if find_spec("skimage") is not None:
        result, _ = client.predict(
            client_mod.handle_file(str(photo)), "a2b", "face-box", 5, api_name="/translate"
        )
        with Image.open(result) as out:
            assert out.size == (160, 128)
    assert answers(server)


def test_many_concurrent_requests_all_get_their_files(server, photo):
    """30 clients at once, the same photo: each result and download arrives whole.

    Every result was the same image, which Gradio rewrote in place in its cache while other
    clients fetched it: some got RemoteProtocolError (1-5 of 30 in each of 4 runs before the fix).
    """
    client_mod = pytest.importorskip("gradio_client", reason="gradio_client is not installed")
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> tuple[tuple[int, int], str]:
        client = client_mod.Client(server, verbose=False)
        direction = ("a2b", "b2a")[i % 2]
        result, download = client.predict(
            client_mod.handle_file(str(photo)), direction, "none", 15, api_name="/translate"
        )
        with Image.open(result) as out, Image.open(download["value"]) as offered:
            out.load()  # a cut-short file fails here
            offered.load()
            assert offered.size == out.size
            return out.size, Path(download["value"]).name

    with ThreadPoolExecutor(30) as pool:
        results = list(pool.map(one, range(30)))
    assert [size for size, _ in results] == [(160, 128)] * 30
    assert {name for _, name in results} == {"selfie-a2b.png", "selfie-b2a.png"}
    assert answers(server)


def test_results_are_kept_by_age_within_a_total_size(tiny_cyclegan_run, monkeypatch):
    model = demo_mod.DemoModel(tiny_cyclegan_run, get_registry(), device="cpu")
    image = Image.new("RGB", (64, 64), (200, 30, 30))
    files = [model._result_file(image, f"r{i}") for i in range(40)]
    assert all(f.is_file() for f in files)  # 40 young results: none deleted (it kept the newest 16)
    size = files[0].stat().st_size
    now = time.time()

    def age(path: Path, seconds: float) -> None:
        os.utime(path, (now - seconds, now - seconds))

    for f in files[:5]:
        age(f, demo_mod.CACHE_AGE_S + 1)  # past Gradio's cache: nobody can fetch them any more
    for i, f in enumerate(files[5:10]):
        age(f, demo_mod.RESULT_MIN_AGE_S + 10 - i)  # old enough to go, only when over the size limit
    model._result_file(image, "new")
    assert [f.is_file() for f in files[:10]] == [False] * 5 + [True] * 5
    monkeypatch.setattr(demo_mod, "RESULT_MAX_BYTES", 33 * size)  # 36 results held: over it
    model._result_file(image, "newer")
    assert [f.is_file() for f in files[5:10]] == [False, False, False, True, True]  # the oldest, to fit
    assert all(f.is_file() for f in files[10:])  # young ones never go
    monkeypatch.setattr(demo_mod, "RESULT_MAX_BYTES", 10 * size)  # only young results left: refuse
    with pytest.raises(GanforgeError, match=r"^the demo holds .* MB of results from the last 10 minutes"):
        model._result_file(image, "refused")
    assert all(f.is_file() for f in files[10:])


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, for the 100 MP file
def test_the_demo_and_translate_share_one_pixel_limit(photo, tmp_path, tiny_cyclegan_run):
    from ganforge.data import open_rgb

    limit = Image.MAX_IMAGE_PIXELS
    assert demo_mod.pixel_limit() == limit == 89_478_485  # Pillow's, which translate's decoder keeps
    square = png_claiming(10_000, 10_000, tmp_path / "square.png")  # 100 megapixels: between 1x and 2x
    with pytest.raises(GanforgeError, match="not a readable image"):
        open_rgb(square)  # translate refuses it...
    with pytest.raises(GanforgeError, match=r"= 100 megapixels; this demo takes at most 89 megapixels"):
        demo_mod.open_upload(square)  # ... and so does the demo (it took up to 100 megapixels)
    assert demo_mod.pixel_limit(1000) == 1000  # --max-pixels lowers it
    with pytest.raises(GanforgeError, match="above the limit of ganforge's decoder .* it can only lower it"):
        demo_mod.pixel_limit(100_000_000)
    result = CliRunner().invoke(cli, ["demo", str(tiny_cyclegan_run), "--max-pixels", "100000000"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "--max-pixels 100,000,000 is above the limit" in result.output


def test_open_upload_limits(photo, tmp_path):
    assert demo_mod.open_upload(photo).size == (160, 128)
    with pytest.raises(
        GanforgeError, match=r"^selfie.png is 160 x 128 = 20480 pixels; this demo takes at most 15000 "
    ):
        demo_mod.open_upload(photo, max_pixels=15_000)
    with pytest.raises(GanforgeError, match="decompression bomb"):
        demo_mod.open_upload(png_claiming(40_000, 40_000, tmp_path / "b.png"), max_pixels=10_000_000)
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(GanforgeError):
        demo_mod.open_upload(png_claiming(5000, 5000, tmp_path / "c.png"), max_pixels=1000)
    assert Image.MAX_IMAGE_PIXELS == before  # the limit is set only while one file is opened
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[274] = 6  # "rotate 90 degrees clockwise to display"
    Image.open(photo).convert("RGB").save(rotated, exif=exif)
    assert demo_mod.open_upload(rotated).size == (128, 160)


@pytest.fixture(scope="module")
def dcgan_run(anime_root, tmp_path_factory) -> Path:
    from ganforge.recipe import Recipe
    from ganforge.training.trainer import Trainer

    out = tmp_path_factory.mktemp("dc") / "RUN"
    items = [*DCGAN_TINY, f"data.root={json.dumps(str(anime_root))}", "train.device='cpu'"]
    items += ["train.max_steps=1", "train.batch_size=8", *NO_CALLBACKS]
    registry = get_registry()
    Trainer(Recipe.load(RECIPES / "dcgan_anime.toml", items).resolve(registry), out, registry).fit()
    return out


def test_dcgan_grid_by_seed(dcgan_run):
    model = demo_mod.DemoModel(dcgan_run, get_registry(), device="cpu")
    assert model.generates and not model.translates
    first, file = model.generate(seed=3, count=9)
    assert first.size == (3 * 34 + 2, 3 * 34 + 2) and file.is_file()
    again, _ = model.generate(seed=3, count=9)
    other, _ = model.generate(seed=4, count=9)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))
    with pytest.raises(GanforgeError, match="does not translate"):
        model.translate("x.png", "a2b")


@needs_gradio
@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # its pandas 3 deprecations, not ours
def test_dcgan_page_serves_the_grid(dcgan_run):
    from gradio_client import Client

    model = demo_mod.DemoModel(dcgan_run, get_registry(), device="cpu")
    page = demo_mod.build_demo(model)
    for attempt in range(3):  # the free port may be taken before it is bound (see `server`)
        port = free_port()
        try:
            demo_mod.launch(page, "127.0.0.1", port, block=False)
            break
        except GanforgeError:
            if attempt == 2:
                raise
    try:
        grid, download = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            2, 4, api_name="/generate"
        )
        with Image.open(grid) as image:
            assert image.size == (2 * 34 + 2, 2 * 34 + 2)
        assert Path(download["value"]).name == "samples-seed2.png"
        with pytest.raises(GanforgeError, match=f"^cannot serve on 127.0.0.1:{port}: "):
            demo_mod.launch(demo_mod.build_demo(model), "127.0.0.1", port, block=False)  # taken
    finally:
        page.close()


@needs_gradio
def test_export_space(tiny_cyclegan_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_cyclegan_run, run)
    model = demo_mod.DemoModel(run, get_registry(), device="cpu")
    holdout = {k: torch.rand(2, 3, 32, 32) * 2 - 1 for k in "AB"}
    save_grid(sample_grid(model.model, holdout), run / "samples" / "latest.png")  # as `samples` does

    out = tmp_path / "space"
    result = CliRunner().invoke(cli, ["demo", str(run), "--export-space", str(out)])
    assert result.exit_code == 0, result.output
    # the inference networks and their card (an export), not the whole training checkpoint
    card = read_header(out / "model.safetensors")
    assert set(card["networks"]) == {"G_AB", "G_BA"} and card["image_size"] == 32
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
    assert (out / "requirements.txt").read_text().startswith("ganforge[demo]==")
    assert "sdk: gradio" in (out / "README.md").read_text()
    assert sorted(p.name for p in (out / "examples").iterdir()) == [
        "A-0.png",
        "A-1.png",
        "B-0.png",
        "B-1.png",
    ]
    space = runpy.run_path(str(out / "app.py"), run_name="space_app")  # builds the page, does not serve
    assert space["model"].translates and space["model"].directions == ("a2b", "b2a")
    assert len(space["examples"]) == 4
    with Image.open(out / "examples" / "B-1.png") as tile, Image.open(run / "samples" / "latest.png") as grid:
        assert tile.size == (32, 32)
        assert np.array_equal(np.asarray(tile), np.asarray(grid)[36:68, 104:136])  # row 2, column 4
    again = CliRunner().invoke(cli, ["demo", str(run), "--export-space", str(out)])
    assert again.exit_code == 2 and "is not empty" in again.output


@needs_gradio
def test_the_title_and_direction_buttons_come_from_the_model_card(tiny_cyclegan_run):
    """What this run does, read from its card: the method, the domains, the training size."""
    import gradio as gr

    model = demo_mod.DemoModel(tiny_cyclegan_run, get_registry(), device="cpu")
    assert model.title == "cyclegan: A -> B, B -> A at 32 px (step-00000002.safetensors)"
    page = demo_mod.build_demo(model)
    try:
        assert page.title == f"ganforge demo: {model.title}"
        radios = [block for block in page.blocks.values() if isinstance(block, gr.Radio)]
        assert [radio.choices for radio in radios] == [[("A -> B", "a2b"), ("B -> A", "b2a")]]
        headings = [b.value for b in page.blocks.values() if isinstance(b, gr.Markdown)]
        assert any(text.startswith("## cyclegan: A -> B, B -> A at 32 px") for text in headings)
    finally:
        page.close()


@needs_gradio
def test_export_space_on_a_full_disk_names_it_and_leaves_nothing(tiny_cyclegan_run, tmp_path):
    from test_reliability import assert_one_line_error, tmpfs

    with tmpfs(tmp_path / "small", "size=16k") as disk:  # the model alone is larger
        result = CliRunner().invoke(
            cli, ["demo", str(tiny_cyclegan_run), "--export-space", str(disk / "space")]
        )
        line = assert_one_line_error(result, "No space left on device", "nothing was written")
        space = disk / "space"
        assert line.startswith(f"error: --export-space {space}: cannot write {space / 'model.safetensors'}: ")
        assert list(disk.iterdir()) == []  # neither the Space nor its staging folder


KILLED_SPACE = """
import os, signal, sys
from ganforge.cli import cli
from ganforge.model import Model

def dying_save(self, path, *args, **kwargs):  # killed while the model is written
    path.write_bytes(b"partial" * 1000)
    os.kill(os.getpid(), signal.SIGKILL)

Model.save = dying_save
cli(["demo", sys.argv[1], "--export-space", sys.argv[2]])
"""


@needs_gradio
def test_a_killed_export_space_leaves_nothing_that_blocks_the_rerun(tiny_cyclegan_run, tmp_path):
    out = tmp_path / "space"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_SPACE, str(tiny_cyclegan_run), str(out)], capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert not out.exists()  # only the hidden staging folder, with the partial model
    assert [p.name for p in tmp_path.iterdir()] == [".space.ganforge-space"]
    again = CliRunner().invoke(cli, ["demo", str(tiny_cyclegan_run), "--export-space", str(out)])
    assert again.exit_code == 0, again.output
    assert [p.name for p in tmp_path.iterdir()] == ["space"]
    assert read_header(out / "model.safetensors")["image_size"] == 32


def test_demo_command_errors(tiny_cyclegan_run, tmp_path, monkeypatch):
    result = CliRunner().invoke(cli, ["demo", str(tiny_cyclegan_run), "--max-pixels", "0"])
    assert result.exit_code == 2 and result.output.strip() == "error: --max-pixels must be >= 1, got 0"
    monkeypatch.setitem(sys.modules, "gradio", None)  # as if the extra were not installed
    result = CliRunner().invoke(cli, ["demo", str(tiny_cyclegan_run)])
    assert result.exit_code == 2 and "pip install 'ganforge[demo]'" in result.output


@needs_gradio
def test_demo_of_a_missing_run(tmp_path):
    result = CliRunner().invoke(cli, ["demo", str(tmp_path / "nothing")])
    assert (
        result.exit_code == 2
        and result.output.startswith("error: checkpoint ")
        and "not found" in result.output
    )
