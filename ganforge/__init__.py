"""ganforge: a plugin-based GAN toolkit for PyTorch.

Plugin authors import ``hookimpl`` (to mark hook implementations) and, where useful,
``GanforgeError`` (to report a user error as one clean line).
"""

from ganforge.errors import GanforgeError
from ganforge.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["GanforgeError", "hookimpl", "__version__"]
