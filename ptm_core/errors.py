"""User-facing errors: one line that says what went wrong and what to do instead."""
from ptm_core.text import printable


class PTMError(Exception):
    """An error whose message is fit to show a user as-is (UI banner, CLI stderr).

    Messages often quote names the user (or a zip) supplied; control characters in them are
    escaped here, once, so no message can drive a terminal.
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(printable(message))


class Cancelled(Exception):
    """Raised inside a job when the user asked it to stop."""
