"""The one exception type for errors a user can cause."""


class GanforgeError(Exception):
    """A problem with user input (recipe, data, plugin, checkpoint).

    The CLI prints its message on one line and exits with code 2; anything else is a bug and
    keeps its traceback.
    """

    exit_code = 2
