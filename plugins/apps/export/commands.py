"""``ganforge export`` and ``ganforge convert``: inference networks to files, other projects' files in."""

from __future__ import annotations

from typing import Any

import click


def get_registry() -> Any:
    from ganforge.plugins import get_registry as registry

    return registry()


# -- export and convert ------------------------------------------------------------------------


@click.command("export")
@click.argument("checkpoint", type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["safetensors", "onnx"]),
    default="safetensors",
    show_default=True,
    help="safetensors: for translate/sample/eval and ganforge.load; onnx: for onnxruntime and others.",
)
@click.option(
    "--direction",
    "directions",
    multiple=True,
    help="A direction to include (repeatable; default: every one, or the first for onnx).",
)
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="The file to write.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def export_command(
    checkpoint: str, fmt: str, directions: tuple[str, ...], dtype: str, out: str, force: bool
) -> None:
    """Write a run's inference network(s) alone, with everything needed to rebuild them.

    CHECKPOINT is a run folder, a checkpoint or an exported file. The safetensors file works
    wherever a run does (translate, sample, eval, ganforge.load).
    """
    from .export import export_checkpoint, size_text

    path, info = export_checkpoint(
        checkpoint, out, format=fmt, directions=directions, dtype=dtype, force=force
    )
    nets = ", ".join(
        f"{n} ({s['component']}, {s['parameters']:,} parameters)" for n, s in info["networks"].items()
    )
    what = ", ".join(info["directions"]) or "samples from noise"
    click.echo(f"wrote {path} ({size_text(path.stat().st_size)}, {fmt} {dtype}): {what}; {nets}", err=True)


@click.command("convert")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--from",
    "source",
    required=True,
    help="The project the .pth file comes from: a converter (ganforge list converters).",
)
@click.option(
    "--direction",
    default=None,
    help="The direction the file translates, or the one to keep of a file holding both "
    "(default: what the converter reads from the file).",
)
@click.option(
    "--image-size", type=int, default=None, help="The training image size (default: inferred, else 256)."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a network option the file cannot tell (variance='biased' for U-GAT-IT, n_heads=8 for UVCGAN2), "
    "or classes=NAME,NAME,...: a class-conditional generator's class names in index order (default 0..N-1).",
)
@click.option(
    "--key",
    default=None,
    help="The entry of a checkpoint dict that holds the generator's state dict (dotted for nested "
    "dicts, e.g. state_dict.G_A; default: the usual ones, such as state_dict, netG, params_ema).",
)
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="The .safetensors file.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def convert_command(
    file: str,
    source: str,
    direction: str | None,
    image_size: int | None,
    overrides: tuple[str, ...],
    key: str | None,
    out: str,
    force: bool,
) -> None:
    """Turn a generator .pth of another project (see 'ganforge list converters') into an export.

    Only plain state dicts are read (torch.load with weights_only=True). A translator's export
    works with translate, a generator's from noise (--from r3gan) with sample.
    """
    from .convert import convert_file
    from .export import size_text

    path, info = convert_file(
        file,
        source,
        out,
        get_registry(),
        direction=direction,
        image_size=image_size,
        overrides=list(overrides),
        force=force,
        key=key,
    )
    nets = ", ".join(
        f"{n} ({s['component']}, {s['parameters']:,} parameters)" for n, s in info["networks"].items()
    )
    what = ", ".join(info["directions"]) or "samples from noise"
    classes = (info.get("condition") or {}).get("values") or []
    if classes:
        what += (
            f" of {len(classes)} classes ({', '.join(classes[:10])}{', ...' if len(classes) > 10 else ''})"
        )
    click.echo(f"wrote {path} ({size_text(path.stat().st_size)}): {what}; {nets}", err=True)
