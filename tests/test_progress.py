"""The progress view's first screen and its grouped, width-fitted losses."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from ganforge import Declaration, Network, Optimizer
from ganforge.runtime import Runtime
from ganforge_plugins.callbacks.progress import Progress, group_losses, plan_lines, wrap_groups
from ganforge_plugins.objectives.cut import CUT
from ganforge_plugins.objectives.cyclegan import CycleGAN

SCALARS = {
    "G_AB": 0.312,
    "G_BA": 0.298,
    "cycle_A": 1.204,
    "cycle_B": 1.187,
    "D_A": 0.251,
    "D_B": 0.244,
    "idt_A": 0.61,
    "idt_B": 0.58,
    "lr_g": 2e-4,
}


def fake_trainer(tmp_path: Path, total: int = 678_400, step: int = 0) -> SimpleNamespace:
    """What the callback reads of a trainer: the main command's plan (200 epochs of 3,392 pairs)."""
    return SimpleNamespace(
        is_main=True,
        recipe={"objective": {"name": "cyclegan"}},
        runtime=Runtime.create("cpu"),
        run_dir=tmp_path / "runs" / "cyclegan_selfie2anime-20261201",
        total_steps=total,
        steps_per_epoch=3_392,
        dataset=[None] * 3_392,
        global_batch=1,
        step=step,
        epoch=0,
        objective=SimpleNamespace(declares=CycleGAN.declares),
        throughput={"steps_per_s": 4.0},
    )


def test_losses_group_by_the_optimizer_that_minimises_them(tmp_path):
    groups = group_losses(fake_trainer(tmp_path), SCALARS)
    assert list(groups) == ["generator", "discriminator"]
    assert groups["discriminator"] == ["D_A 0.251", "D_B 0.244"]
    assert (
        groups["generator"][:3] == ["G_AB 0.312", "G_BA 0.298", "cycle_A 1.204"]
        and len(groups["generator"]) == 6
    )
    assert CUT.declares.loss_groups(["G", "NCE", "NCE_idt", "D"]) == {
        "generator": ["G", "NCE", "NCE_idt"],
        "discriminator": ["D"],
    }
    # a group is named by the kinds its optimizer steps; keys no optimizer declares are "other"
    # (declared, never guessed from their names)
    bare = Declaration(
        networks={"G": Network("generator"), "F": Network("projector")},
        optimizers={"gf": Optimizer("optim.g", ("G", "F"), losses=("nce",))},
    )
    assert bare.loss_groups(["nce", "G", "D", "gp"]) == {
        "generator+projector": ["nce"],
        "other": ["G", "D", "gp"],
    }


def test_wrapped_lines_fit_the_width():
    groups = {"generator": [f"loss_{i} 1.000" for i in range(9)], "discriminator": ["D_A 0.2"]}
    lines = wrap_groups(groups, 48)
    assert all(len(line) <= 48 for line in lines) and len(lines) > 2
    assert lines[0].startswith("generator      loss_0 1.000") and lines[1].startswith(" " * 15 + "loss_")
    assert lines[-1] == "discriminator  D_A 0.2"
    assert sum(line.count("loss_") for line in lines) == 9


def test_first_screen_says_where_how_and_how_long(tmp_path):
    lines = plan_lines(fake_trainer(tmp_path))
    assert lines[0] == f"run folder  {(tmp_path / 'runs' / 'cyclegan_selfie2anime-20261201').resolve()}"
    assert lines[1] == "device      cpu (fp32)"
    assert lines[2] == "plan        678,400 steps = 200 epochs of 3,392 steps (3,392 pairs, batch 1)"
    assert "--set train.max_steps=2000" in lines[3]
    short = plan_lines(fake_trainer(tmp_path, total=200, step=100))
    assert len(short) == 3 and short[2].endswith("; resuming at step 100")
    assert short[2].startswith("plan        200 steps = 5.9% of an epoch of 3,392 steps")


def test_terminal_view_prints_the_plan_then_grouped_losses_within_the_width(tmp_path):
    progress = Progress()
    out = io.StringIO()
    progress.console = Console(file=out, force_terminal=True, width=64, color_system=None)
    trainer = fake_trainer(tmp_path)
    progress.on_train_start(trainer)
    progress.on_step_end(trainer, 2, {})
    progress.on_log(trainer, 2, SCALARS)
    progress.on_train_end(trainer)
    text = out.getvalue()
    screen = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
    assert screen[0] == "ganforge run: cyclegan"
    assert screen[1].startswith("run folder  ")  # the long path wraps onto the next line
    assert any(line.startswith("plan        678,400 steps") for line in screen)
    assert any(line.startswith("note        a long plan") for line in screen)
    assert any(line.startswith("generator      G_AB 0.312") for line in screen)
    assert any(line.startswith("discriminator  D_A 0.251  D_B 0.244") for line in screen)
    losses = [line for line in screen if "0." in line and not line.startswith(("plan", "note"))]
    assert losses and all(len(line) <= 64 for line in losses)
