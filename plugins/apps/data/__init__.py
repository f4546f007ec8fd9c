"""The data app: downloadable datasets (kind ``data_source``) and ``ganforge data list|get``."""

from __future__ import annotations

from typing import Any

from ganforge import Kind, hookimpl


@hookimpl
def register_kinds(register: Any) -> None:
    register(
        Kind(
            "data_source",
            "Downloadable datasets for ``ganforge data get`` "
            "(``ganforge_plugins.apps.data.download.DataSource``): pass a ``DataSource`` (it is its own "
            "factory) or a zero-argument function returning one: its files (relative URLs, sha256 or md5 "
            "and where each was published), its layout and its expected image counts.",
        )
    )


@hookimpl
def register_data_sources(register: Any) -> None:
    from .sources import SOURCES

    for source in SOURCES:
        register(source.name, source)


@hookimpl
def register_commands(cli: Any) -> None:
    from .commands import data_group

    cli.add_command(data_group)
