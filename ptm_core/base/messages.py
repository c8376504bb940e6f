"""Engine text with a message id, so the interface can show it in the user's language.

`M_("{done}/{total} images", done=480, total=1500)` is a `Message`: a `str` whose value is the English line
(so the CLI, logs, f-strings and tests read exactly what they read before) that also keeps its template (the
English text with `{named}` fields, the catalogue's message id) and its parameters. The interface
(pages/ui/i18n.py `tr`) looks the template up in its catalogue and formats the parameters into the
translation; a parameter that is itself a Message is translated the same way. Babel extracts `M_` as a
keyword (assets/locale/babel.cfg, README "Translating"), so every template marked here lands in ptm.pot.
Text built from a Message by `+` or an f-string is a plain `str` again and stays English: compose with `M_`.
"""
from __future__ import annotations

from typing import Any


class Message(str):
    """An English line that remembers its template and parameters (see the module docstring)."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, params: dict[str, Any] | None = None) -> "Message":
        params = dict(params or {})
        text = super().__new__(cls, template.format(**params) if params else template)
        text.template, text.params = template, params
        return text

    def map_params(self, function) -> "Message":
        """The same message with `function` applied to each text parameter (nested messages included)."""
        def convert(value):
            if isinstance(value, Message):
                return value.map_params(function)
            return function(value) if isinstance(value, str) else value
        return Message(self.template, {key: convert(value) for key, value in self.params.items()})

    def __reduce__(self):  # pickling (job results cross process boundaries) keeps the template
        return (Message, (self.template, self.params))


def M_(template: str, **params: Any) -> Message:
    """Marks engine text for the catalogue; `params` fill the template's `{named}` fields."""
    return Message(template, params)


def join(parts: list, separator: str = ", ") -> Message:
    """Messages joined by `separator`, each still translatable (a list of settings, of notes)."""
    fields = {f"p{i}": part for i, part in enumerate(parts)}
    return Message(separator.join("{" + key + "}" for key in fields), fields)
