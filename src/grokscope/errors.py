"""The one exception type a user sees: its message is the whole story, printed as one line."""


class GrokscopeError(Exception):
    """A problem with the user's input or files (bad config, missing run, corrupt checkpoint).

    The CLI prints ``error: <message>`` on stderr and exits with status 2; no traceback.
    ``ValueError`` raised by config validation is turned into this at the CLI boundary.
    """
