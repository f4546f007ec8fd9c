"""Training guards (issue 22): values inside their declared ranges that the data, the machine or
the run cannot support end in one line (or a bounded value said once); a loss that grows by
orders of magnitude is said, or stops the run; short runs off a terminal are not silent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import NO_CALLBACKS, RECIPES, TINY, make_folder, no_callbacks, sets
from PIL import Image
from test_reliability import _edit_meta, _edit_tree, _parts, _write, assert_one_line_error, invoke

from ganforge import GanforgeError
from ganforge import checkpoint as ckpt
from ganforge.errors import NonFiniteError
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe
from ganforge.training.state import check_state
from ganforge.training.trainer import DIVERGENCE_FACTOR, Trainer

RECIPE = RECIPES / "cyclegan_selfie2anime.toml"


def trainer(root: Path, out: Path, *items: str) -> Trainer:
    base = [*TINY, f"data.root={root}", "train.device='cpu'", *NO_CALLBACKS]
    registry = get_registry()
    return Trainer(Recipe.load(RECIPE, [*base, *items]).resolve(registry), out, registry)


# -- 10. image sizes Pillow refuses to crop ----------------------------------------------------------


def test_an_image_size_over_the_pixel_limit_is_one_line_before_training(selfie_root, tmp_path):
    """16384 is inside the declared range, but a 16384 px square is 268 megapixels: Pillow's crop
    raised DecompressionBombError from the first sample grid (a traceback)."""
    args = sets(*TINY, f"data.root={selfie_root}", "data.image_size=16384", "data.load_size=16384")
    result = invoke("run", RECIPE, *args, "--out", tmp_path / "RUN", "--device", "cpu")
    assert_one_line_error(result, "[data] image_size 16384", "268,435,456 pixels", "at most 9459")
    assert not (tmp_path / "RUN" / "checkpoints").exists()
    registry = get_registry()
    for table in (
        {"name": "image-folder", "root": str(selfie_root / "trainA"), "image_size": 9460},
        {"name": "unpaired-folders", "root": str(selfie_root), "image_size": 12000, "load_size": 12000},
    ):
        with pytest.raises(GanforgeError, match=r"image_size \d+: .* image_size can be at most 9459$"):
            registry.build("dataset", table)
    # the largest side Pillow crops without complaint is accepted
    registry.build(
        "dataset", {"name": "image-folder", "root": str(selfie_root / "trainA"), "image_size": 9459}
    )


# -- 11. losses that grow by orders of magnitude ----------------------------------------------------


def test_a_diverging_loss_is_warned_about_once_per_loss(selfie_root, tmp_path, capfd):
    big = ("optim.g.lr=1e6", "optim.d.lr=1e6", "train.max_steps=4", "train.log_every=2")
    summary = trainer(selfie_root, tmp_path / "RUN", *big).fit()  # trains on, exit 0
    assert summary["step"] == 4
    warnings = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning:")]
    named = [line.split("loss '")[1].split("'")[0] for line in warnings]
    assert warnings and len(named) == len(set(named)), warnings  # once per loss, over 2 log steps
    assert all(f"over {DIVERGENCE_FACTOR:,.0f} times its first value" in line for line in warnings)
    assert "train.stop_on_divergence = true" in warnings[0]
    trainer(selfie_root, tmp_path / "CALM", "train.max_steps=2", "train.log_every=1").fit()
    assert "warning:" not in capfd.readouterr().err  # the recipe's own rates: nothing to say


def test_stop_on_divergence_stops_with_exit_3(selfie_root, tmp_path):
    items = [*TINY, f"data.root={selfie_root}", "optim.g.lr=1e6", "optim.d.lr=1e6", "train.max_steps=20"]
    items += ["train.stop_on_divergence=true", *no_callbacks("checkpoint")]
    result = invoke("run", RECIPE, *sets(*items), "--out", tmp_path / "RUN", "--device", "cpu")
    line = assert_one_line_error(result, "train.stop_on_divergence", "times its first value", code=3)
    assert line.startswith("error: step 2: loss '")  # the first log step (log_every 2)
    with pytest.raises(NonFiniteError):  # the same in Python, a subclass of GanforgeError
        trainer(selfie_root, tmp_path / "PY", *items[len(TINY) + 1 :]).fit()


# -- 12. values the data or the machine bound -------------------------------------------------------


def test_a_holdout_larger_than_the_data_is_halved_and_said_once(selfie_root, tmp_path, capfd):
    few = tmp_path / "few"
    for domain in ("trainA", "trainB"):
        make_folder(few / domain, [Image.open(p) for p in sorted((selfie_root / domain).iterdir())[:5]])
    dataset = get_registry().build(
        "dataset", {"name": "unpaired-folders", "root": str(few), "holdout": 100000}
    )
    assert (len(dataset.files_a), len(dataset.held_a)) == (3, 2)  # it trained on 1 image
    notes = [line for line in capfd.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: [data] holdout 100,000 is more than half the images (domain A (trainA) has 5, domain B "
        "(trainB) has 5): holding out half of each instead"
    ]
    default = get_registry().build("dataset", {"name": "unpaired-folders", "root": str(selfie_root)})
    assert len(default.held_a) == 4 and "note:" in capfd.readouterr().err  # 8 images, default 8


def test_loader_workers_are_bounded_by_the_cpus(selfie_root, tmp_path, capfd):
    from ganforge.training.trainer import _usable_cpus

    run = trainer(selfie_root, tmp_path / "RUN", "train.num_workers=1024")
    assert run._loader(0).num_workers == _usable_cpus()
    notes = [line for line in capfd.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: train.num_workers=1024 is more than the {_usable_cpus()} CPU(s) this process may use: "
        f"using {_usable_cpus()} loader workers"
    ]
    assert trainer(selfie_root, tmp_path / "ONE", "train.num_workers=1")._loader(0).num_workers == 1


# -- 13. steps no run can reach ------------------------------------------------------------------------


def test_an_impossible_step_is_refused(tiny_cyclegan_run, selfie_root, tmp_path):
    """A step whose sample positions (step x batch x world size) do not fit int64 was accepted:
    eval printed it, --resume said "nothing to do"."""
    assert check_state({"trainer": {"step": 2**62, "epoch": 0}, "rng": {}, "objective": {}}) == [
        "trainer/step 4,611,686,018,427,387,904 is impossible (a run stops before 2**62 sample positions)"
    ]
    for step, batch in ((2**62, 1), (2**61, 2)):
        run = tmp_path / f"RUN-{step}"
        shutil.copytree(tiny_cyclegan_run, run)
        file = ckpt.resolve(run)
        tensors, header = _parts(file)
        _edit_meta(header, lambda m, s=step, b=batch: {**m, "step": s, "recipe": _batch(m["recipe"], b)})
        _edit_tree(header, lambda t, s=step: t["trainer"].update(step=s))
        _write(file, tensors, header)  # a consistent file: checksums made to match
        data = (selfie_root / "trainA", selfie_root / "trainB")
        for args in (
            ["eval", run, "--data", *data, "--metrics", "cycle", "--device", "cpu"],
            ["run", "--resume", run, "--device", "cpu"],
            ["translate", run, selfie_root / "trainA", "--out", tmp_path / "t", "--device", "cpu"],
        ):
            assert_one_line_error(invoke(*args), file.name, f"metadata 'step' {step:,} is impossible")
    ok = check_state({"trainer": {"step": 2**62 - 1, "epoch": 0}, "rng": {}, "objective": {}})
    assert not any("impossible" in p for p in ok)


def _batch(recipe: dict, batch: int) -> dict:
    return {**recipe, "train": {**recipe["train"], "batch_size": batch}}


# -- 15. off a terminal, short and slow runs still print --------------------------------------------


def test_a_short_run_off_a_terminal_prints_its_last_step(selfie_root, tmp_path, capfd):
    """``log_every`` (50 by default) longer than the run: the last step is logged all the same."""
    items = ["train.max_steps=3", "train.log_every=50", "callbacks.progress.enabled=true"]
    trainer(selfie_root, tmp_path / "RUN", *items).fit()
    lines = capfd.readouterr().err.splitlines()
    assert lines[0] == "training cyclegan" and any(line.startswith("plan        3 steps") for line in lines)
    assert [line.split()[1] for line in lines if line.startswith("step ")] == ["3/3"]


def test_off_a_terminal_a_line_comes_every_few_minutes_between_log_steps(tmp_path, capsys, monkeypatch):
    from test_progress import fake_trainer

    import ganforge_plugins.callbacks.progress as progress_mod
    from ganforge_plugins.callbacks.progress import Progress

    clock = [1000.0]
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: clock[0])
    progress = Progress(every_s=120)
    progress.console = progress_mod.Console(file=open(tmp_path / "not-a-terminal", "w"))
    run = fake_trainer(tmp_path, total=1000)
    run.cfg = {"log_every": 500}
    progress.on_train_start(run)
    capsys.readouterr()
    for step in range(1, 11):  # a step every 30 s: a line after 4 steps (120 s), then 4 more
        clock[0] += 30
        progress.on_step_end(run, step, {"G_AB": torch.tensor(1.0)})
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "step 4/1000 epoch 0 0.03 it/s ETA 29880s  (losses every 500 steps)",
        "step 8/1000 epoch 0 0.03 it/s ETA 29760s  (losses every 500 steps)",
    ]
    progress.on_log(run, 10, {"G_AB": 1.0})  # a logged line restarts the count
    clock[0] += 100
    progress.on_step_end(run, 11, {})
    assert len(capsys.readouterr().err.splitlines()) == 1  # the log line alone


def test_progress_every_s_is_a_declared_option():
    options = {p.name: p for p in get_registry().options(get_registry().get("callback", "progress"))}
    assert options["every_s"].default == 120.0
    with pytest.raises(GanforgeError, match="every_s"):
        get_registry().build("callback", {"name": "progress", "every_s": 0})
    assert json.dumps(options["every_s"].to_json())  # listed by `ganforge list callbacks --json`
