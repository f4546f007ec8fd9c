"""``ganforge composite``: stylise the person or face in photos and keep the rest of each photo."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("composite")
@click.argument("checkpoint", type=click.Path())
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--mask",
    default=None,
    help="A mask provider (or a compositor) from 'ganforge list mask-providers' "
    "(default: the run's [compositor], else face-box).",
)
@click.option("--feather", type=int, default=None, help="Mask feathering in pixels.")
@click.option("--save-mask", is_flag=True, help="Also write the mask used, as NAME.mask.png.")
@click.option("--direction", default=None, help="A direction the model translates (default: its first).")
@click.option("--out", "out", type=click.Path(file_okay=False), default="composited", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--size",
    type=int,
    default=None,
    help="Square size the model sees (default: the training image size; 0: native).",
)
def composite_command(
    checkpoint: str,
    inputs: tuple[str, ...],
    mask: str | None,
    feather: int | None,
    save_mask: bool,
    direction: str | None,
    out: str,
    device: str,
    size: int | None,
) -> None:
    """Translate photos with CHECKPOINT and paste the result back through a person or face mask."""
    from .composite import composite_files

    failures = composite_files(
        checkpoint, list(inputs), Path(out), mask, feather, save_mask, direction, device, size
    )
    if failures:
        sys.exit(2)
