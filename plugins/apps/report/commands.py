"""``ganforge report``: a self-contained HTML page about a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def get_registry() -> Any:
    from ganforge.plugins import get_registry as registry

    return registry()


# -- report ----------------------------------------------------------------------------------


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default=None,
    help="HTML file to write (default: RUN_DIR/report.html).",
)
def report_command(run_dir: str, out: str | None) -> None:
    """Write a self-contained HTML page about a run: recipe, curves, metrics, samples, environment."""
    from .report import write_report

    path = write_report(Path(run_dir), Path(out) if out else None)
    click.echo(f"wrote {path}", err=True)
