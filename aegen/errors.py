"""The exception types the CLI turns into a one-line message."""


class AegenError(Exception):
    """A user-facing error: the message says what went wrong and what to do."""


class DivergenceError(AegenError):
    """Training produced a NaN/inf loss or tensor; no checkpoint holding it is written."""
