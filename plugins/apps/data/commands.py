"""``ganforge data list|get``: the downloadable datasets."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

_HOST: Any = None


def source_host() -> Any:
    """A plugin host for ``ganforge data``: the engine's kinds, this app and third parties only
    (the bundled networks and the rest import torch; this command starts in well under a second)."""
    global _HOST
    if _HOST is None:
        from ganforge.plugins import PluginHost

        _HOST = PluginHost()
        _HOST.load_entry_points(bundled=("kinds", "data"))
        _HOST.collect()
    return _HOST


# -- data ------------------------------------------------------------------------------------
# Self-contained and torch-free (`ganforge data list` starts in well under a second): it uses a
# plugin host that loads ganforge's data_sources plugin and third-party plugins only.


@click.group("data")
def data_group() -> None:
    """Download the datasets the recipes read (docs/data.md)."""


@data_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON array.")
def data_list_command(as_json: bool) -> None:
    """List the downloadable datasets: source, checksum origin, image counts, where installed."""
    from rich.markup import escape

    from . import download

    host = source_host()
    for info in host.failures():
        click.echo(f"warning: plugin '{info.name}' skipped: {info.error}", err=True)
    rows = []
    for source in download.sources(host.registry).values():
        folder = download.dataset_dir(source.dataset)
        marker = download.read_marker(folder)
        installed = str(folder) if marker is not None else ""
        rows.append(
            {
                **source.to_json(),
                "path": str(folder),
                "installed": installed,
                "installed_from": (marker or {}).get("source"),
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=escape(f"datasets (data root: {download.data_root_text()})"), title_justify="left")
    for col in ("name", "folder", "images", "verified by", "installed"):
        table.add_column(col, overflow="fold")
    for row in rows:
        counts = ", ".join(f"{k or '.'} {v:,}" for k, v in row["counts"].items())
        where = row["installed"] or "-"
        if row["installed_from"] and row["installed_from"] != row["name"]:
            where += f" (from {row['installed_from']})"
        cells = (row["name"], row["dataset"], counts, _checksum_origin(row), where)
        table.add_row(*(escape(cell) for cell in cells))  # a path may hold "[...]": not markup
    Console().print(table)


def _checksum_origin(row: dict[str, Any]) -> str:
    """``sha256 (github.com/owner/repo)``: where the checksums were published, short (full URLs: --json).

    A file with only an md5 makes it ``md5 only (...)``: it detects damage, not a substitute.
    """
    import urllib.parse

    origins: dict[str, list[str]] = {"sha256": [], "md5": []}
    for file in row["files"]:
        if not (file["sha256"] or file.get("md5")):
            return row["checksum"]  # the no-checksum sentence
        for algorithm, key in (("sha256", "checksum_from"), ("md5", "md5_from")):
            if not file.get(algorithm):
                continue
            parsed = urllib.parse.urlsplit(file.get(key) or "")
            parts = parsed.path.strip("/").split("/")
            repo = "/".join(parts[:3] if parts[0] in ("datasets", "spaces") else parts[:2])
            origin = f"{parsed.netloc}/{repo}".strip("/") or "the source declaration"
            if origin not in origins[algorithm]:
                origins[algorithm].append(origin)
    md5_only = any(not file["sha256"] for file in row["files"])
    texts = [f"{name} ({', '.join(found)})" for name, found in origins.items() if found]
    return ("md5 only " + texts[-1][4:]) if md5_only and len(texts) == 1 else " + ".join(texts)


@data_group.command("get")
@click.argument("name")
@click.option(
    "--to",
    "to",
    type=click.Path(file_okay=False),
    default=None,
    help="The dataset folder (default: DATA_ROOT/FOLDER, see `ganforge data list`).",
)
@click.option(
    "--force", is_flag=True, help="Download again and replace a folder an earlier `data get` wrote."
)
@click.option(
    "--from",
    "local",
    multiple=True,
    metavar="FILE",
    help="Install from an archive you already have instead of downloading it (verified the same way; "
    "repeat it for each file of a multi-file source, matched by file name).",
)
def data_get_command(name: str, to: str | None, force: bool, local: tuple[str, ...]) -> None:
    """Download, verify and unpack dataset NAME where the recipes find it."""
    from . import download

    source = download.get_source(source_host().registry, name)
    result = download.get_dataset(source, to, force=force, local=local)
    counts = ", ".join(f"{k or '.'} {v:,}" for k, v in result.marker.get("counts", {}).items())
    if result.already:
        click.echo(
            f"{source.dataset} is already in {result.path} (from source '{result.marker.get('source')}': "
            f"{counts}); nothing to do (--force downloads it again)",
            err=True,
        )
    else:
        swapped = (result.marker.get("orientation") or {}).get("swapped")
        note = "A and B were swapped in the source: fixed" if swapped else source.notes
        note = f"; {note}" if note else ""
        click.echo(f"{source.dataset} is ready in {result.path} ({counts}{note})", err=True)
