"""User-facing errors: one line that says what went wrong and what to do instead."""


class PTMError(Exception):
    """An error whose message is fit to show a user as-is (UI banner, CLI stderr).

    `ui_message`, when given, says the same in the app's own words (its buttons and choices rather
    than command-line options); the CLI shows the plain message.
    """

    def __init__(self, message: str, ui_message: str | None = None):
        super().__init__(message)
        self.ui_message = ui_message

    def for_ui(self) -> str:
        return self.ui_message or str(self)


class Cancelled(Exception):
    """Raised inside a job when the user asked it to stop."""
