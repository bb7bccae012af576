"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class HGMambaError(Exception):
    """A user-facing error: bad input, missing file, wrong checkpoint. Message is one line."""

    exit_code = 2
