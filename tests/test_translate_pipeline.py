"""``ganforge translate`` in batches: pipelined outputs equal one image at a time, names, failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.model import Model
from ganforge.translate import translate_files


@pytest.fixture
def mixed(selfie_root, tmp_path) -> Path:
    """11 real selfies at three sizes (7 of 32x32, 3 of 40x24, 1 of 37x29) and an unreadable file.

    ``dup.jpg`` and ``dup.png`` share a stem and a size (so a bucket).
    """
    sources = sorted((selfie_root / "trainA").iterdir())
    folder = tmp_path / "in"
    folder.mkdir()
    for i, src in enumerate(sources[:5]):
        Image.open(src).resize((32, 32)).save(folder / f"s{i}.png")
    Image.open(sources[5]).resize((32, 32)).save(folder / "dup.jpg", quality=95)
    Image.open(sources[6]).resize((32, 32)).save(folder / "dup.png")
    for i, src in enumerate(sources[:3]):
        Image.open(src).resize((40, 24)).save(folder / f"w{i}.png")
    Image.open(sources[7]).resize((37, 29)).save(folder / "odd.png")  # the model sees 36x28
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


def alone(objective, path: Path, size: int) -> np.ndarray:
    """The reference: one image through ``objective.translate``, back at the input's size."""
    img = Image.open(path).convert("RGB")
    shape = (size, size) if size else (img.width // 4 * 4, img.height // 4 * 4)
    model_in = img if img.size == shape else img.resize(shape, Image.BICUBIC)
    x = torch.from_numpy(np.array(model_in)).permute(2, 0, 1).unsqueeze(0)
    y = objective.translate(objective.runtime.to_input(x), "a2b")[0]
    result = Image.fromarray(y.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(1, 2, 0).cpu().numpy())
    return np.asarray(result if result.size == img.size else result.resize(img.size, Image.BICUBIC))


def outputs(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.iterdir())}


def assert_same_image(got: np.ndarray, expected: np.ndarray, name: str) -> None:
    """Equal up to rounding.

    The model's float sums depend on the batch size (CPU convolutions differ by ~1e-6), which
    moves the odd value across a .5 rounding tie. An image from another file, or a buffer
    overwritten under a writer, differs in most values and by tens of levels.
    """
    assert got.shape == expected.shape, name
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (
        f"{name}: {(diff > 0).sum()} differ, max {diff.max()}"
    )


@pytest.mark.parametrize("size", [0, 32], ids=["native", "square"])
def test_batches_equal_one_image_at_a_time(tiny_cyclegan_run, mixed, tmp_path, capfd, one_thread, size):
    handed: list[int] = []
    out = tmp_path / "out"
    failures = translate_files(
        Model.load(tiny_cyclegan_run, "cpu"), [str(mixed)], out, "a2b", 3, size, on_batch=handed.append
    )
    assert failures == [str(mixed / "broken.png")]
    lines = capfd.readouterr().err.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "broken.png" in errors[0]
    assert lines[-1] == f"translated 11 image(s) a2b into {out}; 1 failed"

    objective = Model.load(tiny_cyclegan_run, "cpu")
    # Same stem, same bucket: named in input order.
    sources = {f"{p.stem}.png": p for p in sorted(mixed.iterdir()) if p.stem != "broken" and p.stem != "dup"}
    sources |= {"dup.png": mixed / "dup.jpg", "dup-1.png": mixed / "dup.png"}
    got = outputs(out)
    assert got.keys() == sources.keys()
    for name, source in sources.items():
        expected = alone(objective, source, size)
        assert_same_image(got[name], expected, name)
    assert np.abs(got["s0.png"].astype(int) - got["s1.png"]).mean() > 5  # so a mix-up would show
    # 11 images in batches of at most 3: native sizes give buckets of 7, 3 and 1; square one of 11.
    steps = np.diff([0, *handed])
    assert handed[-1] == 11 and all(1 <= s <= 3 for s in steps)
    assert len(handed) == (5 if size == 0 else 4)


@pytest.fixture
def instrumented(tiny_cyclegan_run):
    """A model that records each batch it sees and each hand-over to the writers, in one timeline.

    It reports ``compile`` on (as under ``--compile``) but runs eagerly, so the batching that
    compile asks for is tested without a compile.
    """
    events: list[tuple] = []
    fail_at: list[int] = []  # raise on this model call (1-based), if set
    model = Model.load(tiny_cyclegan_run, "cpu")
    eager = model.translate

    def translate(x: torch.Tensor, direction: str = "a2b", **kwargs) -> torch.Tensor:
        events.append(("model", x.shape[0], tuple(x.shape[2:])))
        if fail_at and sum(e[0] == "model" for e in events) == fail_at[0]:
            raise RuntimeError("out of memory (simulated)")
        compiled, model.compile = model.compile, False
        try:
            return eager(x, direction, **kwargs)
        finally:
            model.compile = compiled

    model.translate = translate
    return model, events, fail_at


def test_compiled_short_batches_are_padded_and_batches_overlap(
    tiny_cyclegan_run, mixed, tmp_path, instrumented, one_thread
):
    model, events, _ = instrumented
    eager_out, compiled_out = tmp_path / "eager", tmp_path / "compiled"
    translate_files(model, [str(mixed)], eager_out, batch_size=3, size=0)
    events.clear()
    translate_files(
        model,
        [str(mixed)],
        compiled_out,
        batch_size=3,
        size=0,
        compile=True,
        on_batch=lambda n: events.append(("handed", n)),
    )
    full, wide, odd = (32, 32), (24, 40), (28, 36)
    assert events == [
        ("model", 3, full),
        ("model", 3, full),
        ("handed", 3),  # batch k goes to the writers only once batch k+1 is queued
        ("model", 3, wide),
        ("handed", 6),
        ("model", 3, full),  # the 7th 32x32 image, padded: a new batch size would recompile
        ("handed", 9),
        ("model", 1, odd),  # never ran at full size, so not padded
        ("handed", 10),
        ("handed", 11),
    ]
    eager, compiled = outputs(eager_out), outputs(compiled_out)
    assert eager.keys() == compiled.keys() and len(eager) == 11
    for name in eager:
        assert_same_image(compiled[name], eager[name], name)


def test_batches_before_a_model_error_are_still_written(tiny_cyclegan_run, mixed, tmp_path, instrumented):
    model, events, fail_at = instrumented
    fail_at.append(3)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="simulated"):
        translate_files(model, [str(mixed)], out, batch_size=3, size=0)
    # Two batches were translated (one still in flight when the third failed); both are written.
    assert [e[1] for e in events] == [3, 3, 3]
    written = sorted(p.name for p in out.iterdir())
    assert written == ["dup-1.png", "dup.png", "s0.png", "s1.png", "s2.png", "s3.png"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pipelined_cuda_batches_equal_one_image_at_a_time(tiny_cyclegan_run, mixed, tmp_path):
    # Pinned staging, non-blocking copies both ways, events, two batches in flight, bf16.
    out = tmp_path / "out"
    handed: list[int] = []
    objective = Model.load(tiny_cyclegan_run, "cuda")
    failures = translate_files(objective, [str(mixed)], out, "a2b", 2, 32, on_batch=handed.append)
    assert failures == [str(mixed / "broken.png")] and handed[-1] == 11
    got = outputs(out)
    for name in ("s0.png", "s4.png", "w2.png", "odd.png", "dup-1.png"):
        source = mixed / ("dup.png" if name == "dup-1.png" else name)
        diff = np.abs(got[name].astype(int) - alone(objective, source, 32))
        # bf16 kernels may differ by batch size; another image or a reused buffer differs by tens.
        assert diff.mean() < 1.0 and diff.max() <= 16, (name, diff.mean(), diff.max())
