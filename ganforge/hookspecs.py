"""Every ganforge hook, documented in one place.

Each component kind has one ``register_<kinds>(register)`` hook. An implementation calls
``register(name, factory)`` once per component it provides. ``factory`` is a class or a
function; its keyword parameters, with their type hints and defaults, are the options a recipe
table may set. Parameters listed as *context* for a kind are supplied by ganforge when it builds
the component and are not recipe options.

docs/plugins.md has the same reference with examples; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("ganforge")
hookimpl = pluggy.HookimplMarker("ganforge")

Register = Callable[[str, Callable[..., Any]], None]


@hookspec
def register_generators(register: Register) -> None:
    """Register generator networks (``torch.nn.Module`` factories).

    Context: none. Every generator table also accepts ``init`` and ``init_gain`` (weight
    initialisation applied after construction).
    """


@hookspec
def register_discriminators(register: Register) -> None:
    """Register discriminator networks (``torch.nn.Module`` factories).

    Context: none. Like generators, they also accept ``init`` and ``init_gain``.
    """


@hookspec
def register_losses(register: Register) -> None:
    """Register adversarial losses.

    Context: none. The object has ``d_loss(real_logits, fake_logits)``,
    ``g_loss(fake_logits)`` and optionally ``penalty(discriminator, real, fake)``.
    """


@hookspec
def register_pools(register: Register) -> None:
    """Register image pools (history buffers of generated images for the discriminator).

    Context: none. The object has ``query(images) -> images`` plus ``state_dict`` and
    ``load_state_dict``.
    """


@hookspec
def register_callbacks(register: Register) -> None:
    """Register training callbacks.

    Context: none. A callback may define any of ``on_train_start(trainer)``,
    ``on_step_end(trainer, step, losses)``, ``on_log(trainer, step, scalars)``,
    ``on_samples(trainer, step, grid)`` (fired by the ``samples`` callback after it writes a
    grid: ``[3, H, W]`` float in [0, 1] on the CPU), ``on_epoch_end(trainer, epoch)``,
    ``on_checkpoint(trainer, path)`` and ``on_train_end(trainer)``.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets (``torch.utils.data.Dataset`` factories).

    Context: ``seed`` (int). The dataset returns dicts of tensors and exposes
    ``holdout(n)`` for fixed sample images.
    """


@hookspec
def register_optimizers(register: Register) -> None:
    """Register optimizers.

    Context: ``params`` (the parameters to optimise, passed positionally first).
    """


@hookspec
def register_schedulers(register: Register) -> None:
    """Register learning-rate schedules.

    Context: ``steps_per_epoch`` and ``total_steps`` (ints). The factory returns a function
    ``factor(step) -> float`` that multiplies each optimizer's base learning rate.
    """


@hookspec
def register_metrics(register: Register) -> None:
    """Register evaluation metrics.

    Context: none. The object has ``compute(real, fake) -> dict[str, float]``.
    """


@hookspec
def register_feature_extractors(register: Register) -> None:
    """Register image feature extractors used by distribution metrics (FID, KID).

    Context: none. The object maps a batch of images in [0, 1] to a ``[N, D]`` tensor.
    """


@hookspec
def register_mask_providers(register: Register) -> None:
    """Register mask providers: an RGB photo in, a soft [0, 1] person or face mask out.

    Context: none.
    """


@hookspec
def register_compositors(register: Register) -> None:
    """Register compositors that paste a stylized image back into the original photo.

    Context: none.
    """


@hookspec
def register_objectives(register: Register) -> None:
    """Register training objectives (CycleGAN, DCGAN, ...).

    Context: ``recipe`` (the resolved recipe dict), ``build`` (a function
    ``build(section, **context)`` that builds the component a recipe section names) and
    ``runtime`` (device, precision, channels_last). The objective owns its networks, optimizers
    and pools and exposes ``train_step(batch, step)``, ``state_dict()`` and
    ``load_state_dict(state)``.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``ganforge`` command line.

    ``cli`` is the root ``click.Group``; decorate new functions with ``@cli.command()``.
    """
