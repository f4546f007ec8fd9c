"""The report app: ``ganforge report`` (a self-contained HTML page about a run) and the
``loss-plot`` callback (loss curves as a PNG, drawn like the report's charts)."""

from __future__ import annotations

from typing import Any

from ganforge import hookimpl


@hookimpl
def register_callbacks(register: Any) -> None:
    from .loss_plot import LossPlot

    register("loss-plot", LossPlot)


@hookimpl
def register_commands(cli: Any) -> None:
    from .commands import report_command

    cli.add_command(report_command)
