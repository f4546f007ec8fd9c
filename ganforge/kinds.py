"""The component kinds the engine itself builds, registered like any plugin's kinds; every other
kind (networks, losses, pools, metrics, ...) comes from plugins."""

from __future__ import annotations

from typing import Annotated

from ganforge.hookspecs import hookimpl
from ganforge.registry import Kind, Range

KINDS = (
    Kind(
        "objective",
        "Training objectives: subclasses of ``ganforge.Objective`` that declare their parts and write "
        "``train_step(batch, step)``. Context: ``builder`` (builds the recipe sections the objective "
        "declares) and ``runtime`` (device, precision, channels_last). Every objective also takes ``ema``: "
        "the decay of a moving average of its inference networks (0: off).",
        context=("builder", "runtime"),
        section="objective",
        # read by the training engine (the average is its job, not the method's)
        common=(("ema", Annotated[float, Range(0.0, 1.0, max_open=True)], 0.0),),
    ),
    Kind(
        "dataset",
        "Datasets (``torch.utils.data.Dataset`` factories). Context: ``seed`` (int). The class declares "
        "``yields`` (batch key -> description) and, for pairs of one scene, ``aligned`` (the keys that come "
        "aligned); items are dicts with those keys; ``holdout(n)`` gives fixed sample images and "
        "``classes`` the class names of a labelled dataset (see ``ganforge.protocols``).",
        context=("seed",),
        section="data",
    ),
    Kind(
        "callback",
        "Training callbacks. A callback may define any of ``on_train_start(trainer)``, "
        "``on_step_end(trainer, step, losses)``, ``on_log(trainer, step, scalars)``, "
        "``on_log_info(trainer, step, info)`` (non-numeric facts of a log step, e.g. the eval protocol), "
        "``on_samples(trainer, step, grid)`` (after the ``samples`` callback writes a grid: ``[3, H, W]`` "
        "float in [0, 1] on the CPU), ``on_epoch_end(trainer, epoch)``, ``on_checkpoint(trainer, path)`` "
        "and ``on_train_end(trainer)``.",
        section="callbacks",
        many=True,
        defaults=("progress", "metrics-log", "samples", "checkpoint", "tensorboard"),
    ),
    Kind("optimizer", "Optimizers. Context: ``params`` (the parameters to optimise).", context=("params",)),
    Kind(
        "scheduler",
        "Learning-rate schedules. Context: ``steps_per_epoch`` and ``total_steps`` (ints). The factory "
        "returns ``factor(step) -> float``, which multiplies each base learning rate.",
        context=("steps_per_epoch", "total_steps"),
        section="schedule",
    ),
    Kind(
        "augment",
        "Differentiable augmentations of every image a discriminator sees (DiffAugment): a callable "
        "``images -> images`` in [-1, 1]; the recipe's ``[augment]`` section, applied by objectives through "
        "``Objective.d_input``. No host syncs: it runs inside the step.",
        section="augment",
    ),
)


@hookimpl
def register_kinds(register):
    for kind in KINDS:
        register(kind)
