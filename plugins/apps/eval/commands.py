"""``ganforge eval``: score a model on test images."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table


def get_registry() -> Any:
    from ganforge.plugins import get_registry as registry

    return registry()


# -- eval ------------------------------------------------------------------------------------


@click.command("eval")
@click.argument("checkpoint", type=click.Path())
@click.argument("more_data", nargs=-1, type=click.Path(), metavar="")
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(),
    metavar="A_DIR [B_DIR]",
    help="Test images: two folders (A B) for a translation model, one for a generator.",
)
@click.option(
    "--metrics",
    "metrics",
    default="fid,kid,cycle",
    show_default=True,
    help="Comma-separated metric names (see 'ganforge list metrics').",
)
@click.option("--weights", default="", help="FID Inception weights file (.pth or .safetensors).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option(
    "--max-images", type=int, default=0, show_default=True, help="At most N images per folder (0: all)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Noise seed for generator checkpoints.")
def eval_command(
    checkpoint: str,
    more_data: tuple[str, ...],
    data: tuple[str, ...],
    metrics: str,
    weights: str,
    as_json: bool,
    device: str,
    batch_size: int,
    max_images: int,
    seed: int,
) -> None:
    """Score CHECKPOINT on test images (FID, KID, cycle metrics per direction).

    Usage: ganforge eval CHECKPOINT --data A_DIR B_DIR [--metrics fid,kid,cycle]; a generator
    checkpoint takes one folder of real images (--data DIR).
    """
    from .evaluation import evaluate_checkpoint

    if more_data and not data:
        raise click.UsageError("give the test folders with --data A_DIR B_DIR")
    folders = [*data, *more_data]
    if not folders:
        raise click.UsageError("missing --data A_DIR B_DIR (or --data DIR for a generator)")
    if batch_size < 1:
        raise click.UsageError("--batch-size must be at least 1")
    if max_images < 0:
        raise click.UsageError("--max-images must be >= 0 (0: all)")
    if not 0 <= seed < 2**63:
        raise click.UsageError("--seed must be in [0, 2**63)")
    result = evaluate_checkpoint(
        checkpoint,
        folders,
        get_registry(),
        metrics,
        weights=weights,
        device=device,
        batch_size=batch_size,
        max_images=max_images,
        seed=seed,
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    console = Console()
    for direction, values in result.results.items():
        source, target = result.routes.get(direction, ("", ""))
        title = f"{direction} ({source} -> {target}, {result.images.get(source, 0)} images)"
        if not source:
            title = f"{direction} ({', '.join(f'{n} {k}' for k, n in result.images.items())} images)"
        table = Table(title=title, title_justify="left")
        table.add_column("metric", style="bold cyan")
        table.add_column("value", justify="right")
        for key, value in values.items():
            table.add_row(key, f"{value:.4f}")
        console.print(table)
