"""User-facing errors: one line that says what went wrong and what to do instead."""
from ptm_core.base.messages import Message
from ptm_core.base.text import printable


class PTMError(Exception):
    """An error whose message is fit to show a user as-is (UI banner, CLI stderr).

    Messages often quote names the user (or a zip) supplied; control characters in them are
    escaped here, once, so no message can drive a terminal. `ui_message`, when given, says the same
    in the app's own words (its buttons and choices rather than command-line options); the CLI
    shows the plain message. Either may be a `Message` (base/messages.py): `str(exc)` is still the English
    line, and `for_ui()` returns the Message, which the interface translates.
    """

    def __init__(self, message: object = "", ui_message: str | None = None) -> None:
        super().__init__(printable(message))
        self.message = _safe(message)
        self.ui_message = None if ui_message is None else _safe(ui_message)

    def for_ui(self) -> str:
        return self.ui_message or self.message


def _safe(message: object) -> str:
    """`printable` for a plain line, or for each text parameter of a Message (its template is ours)."""
    return message.map_params(printable) if isinstance(message, Message) else printable(message)


class Cancelled(Exception):
    """Raised inside a job when the user asked it to stop."""
