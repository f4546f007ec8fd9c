"""The export app: ``ganforge export`` (safetensors, ONNX) and ``ganforge convert`` (other
projects' weight files, through converters: kind ``converter``)."""

from __future__ import annotations

from typing import Any

from ganforge import Kind, hookimpl


@hookimpl
def register_kinds(register: Any) -> None:
    register(
        Kind(
            "converter",
            "Converters of other projects' weight files for ``ganforge convert --from NAME``: an "
            "object with ``objective`` (the bundled objective of the same method) and "
            "``convert(raw, file, direction) -> list[Converted]`` (one per network: direction, "
            "network name, domains, generator component, options, state dict; see the export app's "
            "``convert`` module).",
        )
    )


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
