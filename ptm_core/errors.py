"""User-facing errors: one line that says what went wrong and what to do instead."""


class PTMError(Exception):
    """An error whose message is fit to show a user as-is (UI banner, CLI stderr)."""


class Cancelled(Exception):
    """Raised inside a job when the user asked it to stop."""
