"""ganforge: a plugin-based GAN toolkit for PyTorch.

Users train and use models with ``train``, ``load``, ``Run`` and ``Model`` (docs/python.md). Plugin
authors use ``hookimpl``, ``Kind``, ``Range`` (a value's valid range, declared next to its type), ``Seed``,
the objective contract (``Objective``, ``Declaration``, ``Section``, ``Network``, ``Optimizer``, ``Part``,
``Direction``, ``Condition``) and its helpers (``ScheduledOptimizer``, ``minimize``, ``frozen``,
``set_requires_grad``, ``make_capturable``, ``outputs_probabilities``, ``local``, ``unwrap``, ``Runtime``);
typed capabilities are in ``ganforge.protocols``. Errors: ``GanforgeError`` (a user error, one clean line),
``NonFiniteError`` (exit code 3: NaN or infinity in training). Names load on first use, so ``import
ganforge`` stays cheap (no torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ganforge.errors import GanforgeError as GanforgeError
from ganforge.errors import NonFiniteError as NonFiniteError

__version__ = "0.2.0"

_LAZY = {  # name -> the module it loads from
    name: module
    for module, names in [
        ("ganforge.api", "train Run"),
        ("ganforge.model", "load Model"),
        ("ganforge.hookspecs", "hookimpl"),
        ("ganforge.registry", "Kind Range Seed"),
        ("ganforge.runtime", "Runtime"),
        ("ganforge.method.objective", "Objective"),
        ("ganforge.method.declaration", "Declaration Section Network Optimizer Part Direction Condition"),
        ("ganforge.method.toolkit", "ScheduledOptimizer frozen set_requires_grad make_capturable minimize"),
        ("ganforge.method.toolkit", "outputs_probabilities local unwrap"),
    ]
    for name in names.split()
}

__all__ = ["__version__", "GanforgeError", "NonFiniteError", *_LAZY]  # pyright: ignore[reportUnsupportedDunderAll]

if TYPE_CHECKING:  # the lazy names; ``as`` marks a re-export for type checkers (``__all__`` is computed)
    from ganforge.api import Run as Run
    from ganforge.api import train as train
    from ganforge.hookspecs import hookimpl as hookimpl
    from ganforge.method.declaration import Condition as Condition
    from ganforge.method.declaration import Declaration as Declaration
    from ganforge.method.declaration import Direction as Direction
    from ganforge.method.declaration import Network as Network
    from ganforge.method.declaration import Optimizer as Optimizer
    from ganforge.method.declaration import Part as Part
    from ganforge.method.declaration import Section as Section
    from ganforge.method.objective import Objective as Objective
    from ganforge.method.toolkit import ScheduledOptimizer as ScheduledOptimizer
    from ganforge.method.toolkit import frozen as frozen
    from ganforge.method.toolkit import local as local
    from ganforge.method.toolkit import make_capturable as make_capturable
    from ganforge.method.toolkit import minimize as minimize
    from ganforge.method.toolkit import outputs_probabilities as outputs_probabilities
    from ganforge.method.toolkit import set_requires_grad as set_requires_grad
    from ganforge.method.toolkit import unwrap as unwrap
    from ganforge.model import Model as Model
    from ganforge.model import load as load
    from ganforge.registry import Kind as Kind
    from ganforge.registry import Range as Range
    from ganforge.registry import Seed as Seed
    from ganforge.runtime import Runtime as Runtime


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ganforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
