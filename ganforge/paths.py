"""Where ganforge keeps things: the data root (datasets by name) and the cache (torch-free, for
the light commands such as ``ganforge data``)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ROOT_ENV = "GANFORGE_DATA_ROOT"


def cache_root() -> Path:
    """``$GANFORGE_CACHE``, else ``$XDG_CACHE_HOME/ganforge``, else ``~/.cache/ganforge``."""
    if os.environ.get("GANFORGE_CACHE"):
        return Path(os.environ["GANFORGE_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganforge"


def data_root() -> Path:
    """The folder holding datasets by name: ``GANFORGE_DATA_ROOT`` or ``~/.cache/ganforge/datasets``."""
    return Path(os.environ.get(DATA_ROOT_ENV) or "~/.cache/ganforge/datasets").expanduser()


def data_root_text() -> str:
    """The data root and where it came from, for messages."""
    where = (
        DATA_ROOT_ENV if os.environ.get(DATA_ROOT_ENV) else f"the default; set {DATA_ROOT_ENV} to change it"
    )
    return f"{data_root().resolve()} ({where})"


def dataset_dir(folder: str) -> Path:
    """Where the dataset ``folder`` lives: ``<data root>/<folder>``."""
    return data_root() / folder
