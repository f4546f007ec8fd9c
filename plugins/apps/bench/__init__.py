"""The bench app: ``ganforge bench`` times training steps of a recipe (and its ``[baseline]``)."""

from __future__ import annotations

from typing import Any

from ganforge import hookimpl


@hookimpl
def register_commands(cli: Any) -> None:
    from .commands import bench_command

    cli.add_command(bench_command)
