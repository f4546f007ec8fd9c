"""The export app: ``ganforge export`` (safetensors, and other formats through the kind
``exporter``: ONNX here) and ``ganforge convert`` (other projects' weight files, through
converters: kind ``converter``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ganforge import Kind, hookimpl


def convert_file(
    file: str | Path,
    source: str,
    out: str | Path,
    direction: str | None = None,
    image_size: int | None = None,
    options: list[str] | tuple[str, ...] = (),
    force: bool = False,
) -> Path:
    """``ganforge convert`` from Python: another project's generator file (``source`` names a
    converter, ``ganforge list converters``) into an exported file; returns its path."""
    from ganforge.plugins import get_registry

    from .convert import convert_file as convert

    path, _ = convert(file, source, out, get_registry(), direction, image_size, list(options), force)
    return path


@hookimpl
def register_kinds(register: Any) -> None:
    register(
        Kind(
            "converter",
            "Converters of other projects' weight files for ``ganforge convert --from NAME``: an "
            "object with ``objective`` (the bundled objective of the same method) and "
            "``convert(raw, file, direction) -> list[Converted]`` (one per network: direction, "
            "network name, domains, generator component, options, state dict; a generator from "
            "noise has no direction nor domains, and a build context and class names instead; see "
            "the export app's ``convert`` module).",
        )
    )
    register(
        Kind(
            "exporter",
            "Model file formats for ``ganforge export --format NAME`` and ``Model.export``: an object "
            "with ``write(model, path, directions, dtype) -> card`` (safetensors is the engine's own "
            "``Model.save``).",
        )
    )


@hookimpl
def register_exporters(register: Any) -> None:
    from .export import ONNXExporter

    register("onnx", ONNXExporter)


@hookimpl
def register_converters(register: Any) -> None:
    from .converters import CONVERTERS

    for name, converter in CONVERTERS.items():
        register(name, converter)


@hookimpl
def register_commands(cli: Any) -> None:
    from .commands import convert_command, export_command

    cli.add_command(export_command)
    cli.add_command(convert_command)
