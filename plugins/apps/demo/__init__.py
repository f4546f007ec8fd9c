"""The demo app: ``ganforge demo`` (a local Gradio page to try a model) and ``--export-space``."""

from __future__ import annotations

from typing import Any

from ganforge import hookimpl


@hookimpl
def register_commands(cli: Any) -> None:
    from .commands import demo_command

    cli.add_command(demo_command)
