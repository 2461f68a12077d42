"""The one exception type users see: a bad input, config or state, named in one line."""


class SmartError(ValueError):
    """A problem with the input, the config or the output tables; the message names it.

    The job prints ``str(error)`` as its single stderr line and exits non-zero.
    """
