"""``ganforge demo``: try a model in a local web page, or export a Hugging Face Space."""

from __future__ import annotations

from typing import Any

import click


def get_registry() -> Any:
    from ganforge.plugins import get_registry as registry

    return registry()


# -- demo (self-contained: Gradio is imported only when the command runs) -------------------


@click.command("demo")
@click.argument("checkpoint", type=click.Path())
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind (the default: this machine only)."
)
@click.option("--port", type=int, default=7860, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--max-pixels",
    type=int,
    default=None,
    help="Refuse photos larger than this many pixels (default and maximum: the limit `ganforge "
    "translate` has, Pillow's MAX_IMAGE_PIXELS, 89,478,485 unless changed; decompression bombs included).",
)
@click.option(
    "--examples",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of example photos (default: inputs cut from the run's latest sample grid).",
)
@click.option(
    "--export-space",
    type=click.Path(file_okay=False),
    default=None,
    help="Write app.py, requirements.txt, README.md and the model for a Hugging Face Space; don't serve.",
)
@click.option(
    "--requirement",
    default=None,
    help="With --export-space: the pip line that installs ganforge there (default: ganforge[demo]==VERSION).",
)
def demo_command(
    checkpoint: str,
    host: str,
    port: int,
    device: str,
    max_pixels: int | None,
    examples: str | None,
    export_space: str | None,
    requirement: str | None,
) -> None:
    """Try CHECKPOINT (a run folder or file) in a local web page: photos in, translations out."""
    from . import demo

    demo.pixel_limit(max_pixels)  # at most the decoder's limit: checked before anything loads
    registry = get_registry()
    files = demo.example_files(examples) if examples else None
    if export_space:
        written = demo.export_space(checkpoint, export_space, registry, files, max_pixels, requirement)
        click.echo(
            f"wrote {len(written)} files to {export_space}: {', '.join(p.name for p in written[:4])}",
            err=True,
        )
        return
    demo._gradio()  # a missing extra fails before the model loads
    model = demo.DemoModel(checkpoint, registry, device, max_pixels)
    page = demo.build_demo(model, files if files is not None else model.sample_examples())
    click.echo(f"ganforge demo of {model.file} on http://{host}:{port} (Ctrl-C stops it)", err=True)
    demo.launch(page, host, port)
