"""ganforge: a plugin-based GAN toolkit for PyTorch.

Users train and use models from here: ``train``, ``load``, ``Run``, ``Model`` and
``convert_file`` (docs/python.md). Plugin authors import from here: ``hookimpl`` (to mark
hook implementations), ``Kind`` (to register a component kind), the objective contract
(``Objective`` and its declarations, ``ScheduledOptimizer``, ``frozen``,
``set_requires_grad``, ``make_capturable``), ``Range`` (a value's valid range, declared next to
its type) and ``GanforgeError`` (a user error, reported as one clean line; ``NonFiniteError``,
exit code 3, when training produced NaN or infinity). Names load on first
use, so ``import ganforge`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ganforge.errors import GanforgeError, NonFiniteError

__version__ = "0.1.0"

_LAZY = {
    "train": "ganforge.api",
    "load": "ganforge.api",
    "Run": "ganforge.api",
    "Model": "ganforge.api",
    "convert_file": "ganforge.api",
    "hookimpl": "ganforge.hookspecs",
    "Kind": "ganforge.registry",
    "Range": "ganforge.registry",
    "Objective": "ganforge.objective",
    "Declaration": "ganforge.objective",
    "Section": "ganforge.objective",
    "Network": "ganforge.objective",
    "Optimizer": "ganforge.objective",
    "Part": "ganforge.objective",
    "Direction": "ganforge.objective",
    "ScheduledOptimizer": "ganforge.objective",
    "frozen": "ganforge.objective",
    "set_requires_grad": "ganforge.objective",
    "make_capturable": "ganforge.objective",
    "minimize": "ganforge.objective",
    "outputs_probabilities": "ganforge.objective",
}

__all__ = [
    "Declaration",
    "Model",
    "Run",
    "convert_file",
    "load",
    "train",
    "Direction",
    "GanforgeError",
    "NonFiniteError",
    "Kind",
    "Network",
    "Objective",
    "Optimizer",
    "Part",
    "Range",
    "ScheduledOptimizer",
    "Section",
    "__version__",
    "frozen",
    "hookimpl",
    "make_capturable",
    "minimize",
    "outputs_probabilities",
    "set_requires_grad",
]

if TYPE_CHECKING:
    from ganforge.api import Model, Run, convert_file, load, train
    from ganforge.hookspecs import hookimpl
    from ganforge.objective import (
        Declaration,
        Direction,
        Network,
        Objective,
        Optimizer,
        Part,
        ScheduledOptimizer,
        Section,
        frozen,
        make_capturable,
        minimize,
        outputs_probabilities,
        set_requires_grad,
    )
    from ganforge.registry import Kind, Range


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ganforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
