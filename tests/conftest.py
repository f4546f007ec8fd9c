"""Shared fixtures: tiny real image folders, tiny recipes, and a CLI runner."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# Real images from ../shared/data where it is beside the checkout, synthetic ones elsewhere (a
# fresh clone). GANFORGE_TEST_SHARED_DATA=0 hides it, so one machine can run both ways: .ci/run
# runs the suite a second time like that; every test must pass either way.
SHARED_DATA_ENV = "GANFORGE_TEST_SHARED_DATA"
USE_SHARED_DATA = os.environ.get(SHARED_DATA_ENV, "1").strip().lower() not in ("0", "false", "no", "off")
SHARED_DATA = REPO.parent / "shared" / "data" if USE_SHARED_DATA else REPO / ".no-shared-data"
RECIPES = REPO / "recipes"

# Small, fast overrides that keep the recipe's structure (a CPU step takes well under a second).
TINY = [
    "data.image_size=32",
    "data.load_size=36",
    "data.holdout=2",
    "generator.ngf=8",
    "generator.blocks=2",
    "discriminator.ndf=8",
    "train.log_every=2",
    "train.num_workers=0",
]


# The default callbacks (the callback kind's defaults) and the recipes' eval turned off: a test
# that needs no outputs but the final checkpoint runs faster. A partial [callbacks] table never
# drops them.
def no_callbacks(*keep: str) -> list[str]:
    """``--set`` items turning the default callbacks and eval off, but those in ``keep``."""
    defaults = ("progress", "metrics-log", "samples", "checkpoint", "tensorboard", "eval")
    return [f"callbacks.{name}.enabled=false" for name in defaults if name not in keep]


NO_CALLBACKS = no_callbacks()

# The same for the DCGAN recipe (32 px, narrow networks, a 4-image sample grid).
DCGAN_TINY = [
    "data.image_size=32",
    "generator.image_size=32",
    "discriminator.image_size=32",
    "generator.ngf=8",
    "discriminator.ndf=8",
    "generator.latent_dim=16",
    "train.log_every=2",
    "train.num_workers=0",
    "objective.sample_count=4",
    "callbacks.samples.count=4",
]


def _real_images(folder: Path, n: int) -> list[Image.Image]:
    if not folder.is_dir():
        return []
    files = sorted(folder.iterdir())[:n]
    return [Image.open(f).convert("RGB") for f in files]


def _synthetic(n: int, seed: int) -> list[Image.Image]:
    """Stand-ins for photos and drawings where ../shared/data is not (a fresh clone): smooth
    shading under a few soft-edged shapes, a little sensor noise.

    Not white noise: on noise images the L1 gradient sign(reconstruction - input) is noise too,
    so the generators' weight gradients are sums of terms of random sign that nearly cancel, and
    float32 rounding of those sums (which DDP's all-reduce or bf16 changes) becomes a percent of
    what is left. Images with smooth regions and edges keep such comparisons as well conditioned
    as on the real faces (DDP against one process: 1e-5 of the update either way).
    """
    from PIL import ImageDraw, ImageFilter

    r = random.Random(seed)
    out = []
    for _ in range(n):
        big = Image.linear_gradient("L").resize((96, 96)).rotate(r.uniform(0, 360), Image.BILINEAR)
        shade = big.crop((24, 24, 72, 72))  # the middle: no corners the rotation left black
        gains = [r.uniform(0.3, 0.9) for _ in range(3)]
        channels = [shade.point(lambda v, k=k, a=a: int(v * a + 40 * k)) for k, a in enumerate(gains)]
        img = Image.merge("RGB", channels)
        draw = ImageDraw.Draw(img)
        for _ in range(r.randrange(2, 5)):
            x, y = r.randrange(0, 36), r.randrange(0, 36)
            box = (x, y, x + r.randrange(8, 24), y + r.randrange(8, 24))
            fill = tuple(r.randrange(256) for _ in range(3))
            draw.ellipse(box, fill=fill, outline=(20, 20, 20), width=1)
        noise = Image.effect_noise((48, 48), 10).convert("RGB")
        out.append(Image.blend(img.filter(ImageFilter.GaussianBlur(0.8)), noise, 0.1))
    return out


def make_folder(path: Path, images: list[Image.Image], size: int = 48) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        img.resize((size, size), Image.BICUBIC).save(path / f"img_{i:03d}.jpg", quality=92)
    return path


@pytest.fixture(scope="session")
def selfie_root(tmp_path_factory) -> Path:
    """A tiny selfie2anime: 8 real selfies in trainA, 8 real anime faces in trainB (48 px)."""
    root = tmp_path_factory.mktemp("selfie2anime")
    a = _real_images(SHARED_DATA / "selfie2anime" / "trainA", 8) or _synthetic(8, 1)
    b = _real_images(SHARED_DATA / "selfie2anime" / "trainB", 8) or _synthetic(8, 2)
    make_folder(root / "trainA", a)
    make_folder(root / "trainB", b)
    return root


@pytest.fixture(scope="session")
def anime_root(tmp_path_factory) -> Path:
    """A tiny anime-face folder: 16 real 64 px faces, resized to 32 px."""
    root = tmp_path_factory.mktemp("anime_faces")
    imgs = _real_images(SHARED_DATA / "anime_faces_64", 16) or _synthetic(16, 3)
    return make_folder(root, imgs, size=32)


@pytest.fixture(scope="session")
def tiny_cyclegan_run(selfie_root, tmp_path_factory) -> Path:
    """A run folder of a tiny CycleGAN after two CPU steps (trained weights: outputs differ per image)."""
    from ganforge.plugins import get_registry
    from ganforge.recipe import Recipe
    from ganforge.training.trainer import Trainer

    out = tmp_path_factory.mktemp("tiny-cyclegan") / "RUN"
    items = [*TINY, f"data.root={selfie_root}", "train.max_steps=2", "train.device='cpu'", *NO_CALLBACKS]
    registry = get_registry()
    Trainer(Recipe.load(RECIPES / "cyclegan_selfie2anime.toml", items).resolve(registry), out, registry).fit()
    return out


def bare_host():
    """A plugin host with only the bundled kinds (the engine's, the components' and the apps'; no
    components): tests add plugins to it."""
    import types

    import ganforge.kinds
    import ganforge_plugins.kinds
    from ganforge.plugins import PluginHost
    from ganforge_plugins import networks
    from ganforge_plugins.apps import composite, data, export
    from ganforge_plugins.apps import eval as eval_app

    host = PluginHost()
    host.register_module(ganforge.kinds, "core-kinds", "ganforge")
    host.register_module(ganforge_plugins.kinds, "bundled-kinds", "ganforge")
    apps = (
        ("network", networks),
        ("data", data),
        ("eval", eval_app),
        ("export", export),
        ("composite", composite),
    )
    for name, app in apps:
        host.register_module(
            types.SimpleNamespace(register_kinds=app.register_kinds), f"{name}-kinds", "ganforge"
        )
    return host


def without_kinds(module):
    """A bundled plugin module's hooks minus ``register_kinds``, which :func:`bare_host` has run."""
    import types

    names = [n for n in dir(module) if n.startswith("register_") and n != "register_kinds"]
    return types.SimpleNamespace(**{n: getattr(module, n) for n in names})


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: int = 900
) -> subprocess.CompletedProcess:
    """Run the real ``ganforge`` command in a subprocess.

    ``timeout`` only stops a hang: commands that take seconds alone take minutes on a machine
    loaded by other test runs.
    """
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ganforge", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
        timeout=timeout,
    )


@pytest.fixture
def one_thread():
    """One CPU thread: a fixed summation order, so equivalence tests compare bit-exact runs.

    Small GANs amplify rounding differences quickly, and a parallel reduction's order can vary
    between runs.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cli():
    return run_cli


def sets(*items: str) -> list[str]:
    """['a=1', 'b=2'] -> ['--set', 'a=1', '--set', 'b=2']."""
    out: list[str] = []
    for item in items:
        out += ["--set", item]
    return out


def write_plugin_dist(root: Path, dist: str, module: str, body: str, version: str = "0.1.0") -> Path:
    """A minimal third-party plugin distribution (pyproject.toml plus one module)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "{version}"

        [project.entry-points.ganforge]
        {module} = "{module}"

        [tool.setuptools]
        py-modules = ["{module}"]
    """)
    )
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    return root


GOOD_PLUGIN = '''
    """An example third-party plugin."""
    import torch
    from ganforge import hookimpl


    class MyGen(torch.nn.Module):
        """A one-layer generator from an outside distribution."""

        def __init__(self, channels: int = 3, scale: float = 1.0):
            super().__init__()
            self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
            self.scale = scale

        def forward(self, x):
            return torch.tanh(self.conv(x) * self.scale)


    @hookimpl
    def register_generators(register):
        register("my-gen", MyGen)
'''

BROKEN_PLUGIN = """
    raise RuntimeError("this plugin is broken on purpose")
"""

DUPLICATE_PLUGIN = '''
    from ganforge import hookimpl


    def another_resnet(blocks: int = 2):
        """Claims a name the bundled plugins already use."""
        raise AssertionError("never built")


    @hookimpl
    def register_generators(register):
        register("resnet", another_resnet)
'''


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """Three real distributions installed with pip into one folder (good, broken, duplicate)."""
    site = tmp_path_factory.mktemp("site")
    src = tmp_path_factory.mktemp("src")
    dists = [
        write_plugin_dist(src / "good", "ganforge-example-plugin", "ganforge_example", GOOD_PLUGIN, "1.2.3"),
        write_plugin_dist(src / "broken", "ganforge-broken-plugin", "ganforge_broken", BROKEN_PLUGIN),
        write_plugin_dist(src / "dup", "ganforge-dup-plugin", "ganforge_dup", DUPLICATE_PLUGIN, "0.0.7"),
    ]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            *map(str, dists),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return site


@pytest.fixture
def plugin_env(plugin_site) -> dict[str, str]:
    """Environment in which the installed example plugins are importable."""
    existing = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": f"{plugin_site}{os.pathsep}{existing}" if existing else str(plugin_site)}
