"""The exception types for errors a user can cause."""


class GanforgeError(Exception):
    """A problem with user input (recipe, data, plugin, checkpoint): the CLI prints its message on
    one line and exits with code 2 (anything else is a bug and keeps its traceback)."""

    exit_code = 2


class NonFiniteError(GanforgeError):
    """Training produced a NaN or infinite loss or weight: the run stops, exit code 3 (the last
    finite checkpoint is kept; none with non-finite values is ever written)."""

    exit_code = 3


class WriteError(GanforgeError, OSError):
    """A file ganforge had to write could not be written (read-only folder, full disk); also an
    ``OSError``, so code that handles I/O errors keeps working."""
