"""The tour's take-home: "Download this lesson", one self-contained HTML file with every step that has run.

The tour page opens a lesson as it starts drawing (`begin_lesson`), and each step writes to the page through the
functions here, which also note what they wrote: `section` (a step's header), `text`, `caption`; every chart
(`pages.ui.i18n.show_chart`) and accuracy (`pages.ui.intervals.accuracy_metric`) notes itself while a lesson is
open. `tour_views.tour_step` marks a step as run when its result is shown; a step that has not run (a button,
or a run still in progress) stays out of the file. `end_lesson` closes it (a fragment's later reruns add
nothing) and fills the download button, whose file is built only when clicked: the charts are drawn as PNG
images then (pages/ui/static_figures.py) and the HTML written (ptm_core.base.lesson). All of it is the text the
page showed, in the page's language.
"""
from __future__ import annotations

import datetime as dt
import io
import threading
from dataclasses import dataclass, field

import streamlit as st

from pages.ui.i18n import _, language
from pages.ui.static_figures import figure_png
from ptm_core.base import Lesson, LessonFigure, LessonMetric, LessonSection, lesson_html
from ptm_core.flows import capabilities

NOTES_KEY = "lesson-notes"
HTML_LANG = {"en": "en", "zh": "zh-CN"}
_DRAWING = threading.Lock()  # matplotlib's rc settings are process-wide: one lesson's figures at a time


@dataclass
class SectionNotes:
    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)  # "figures" hold plotly figures until drawn
    ran: bool = False


@dataclass
class LessonNotes:
    title: str
    intro: str
    lang: str
    meta: list[str]
    sections: list[SectionNotes] = field(default_factory=list)
    open: bool = True
    # The script run writing it: a run cut short (st.rerun, a page switch) never reaches end_lesson, and another
    # page's charts must not pile up in it.
    owner: threading.Thread = field(default_factory=threading.current_thread)

    def add(self, kind: str, value: object) -> None:
        if not self.open or not self.sections:
            return
        blocks = self.sections[-1].blocks
        if kind in ("figures", "metrics") and blocks and blocks[-1][0] == kind:
            blocks[-1][1].append(value)  # side by side on the page, side by side in the file
        else:
            blocks.append((kind, [value] if kind in ("figures", "metrics") else value))

    def ran_sections(self) -> list[SectionNotes]:
        return [section for section in self.sections if section.ran]


def notes() -> LessonNotes | None:
    """The lesson this page run is writing, or None (another page, or after `end_lesson`)."""
    found = st.session_state.get(NOTES_KEY)
    if isinstance(found, LessonNotes) and found.open and found.owner is threading.current_thread():
        return found
    return None


def begin_lesson(title: str, intro: str) -> None:
    machine = capabilities().describe()
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    meta = [_("Computed live by PTM Explorer on {when}, on {machine}.").format(when=when, machine=machine),
            _("Every number below is what the tour showed on screen, with its 95 % CI and the test it showed; "
              "each step says what produced it.")]
    st.session_state[NOTES_KEY] = LessonNotes(title, intro, HTML_LANG.get(language(), language()), meta)


def section(title: str) -> None:
    """A step's header, on the page and in the lesson."""
    st.header(title)
    found = notes()
    if found is not None:
        found.sections.append(SectionNotes(title))


def text(body: str) -> None:
    st.markdown(body)
    note("text", body)


def caption(body: str) -> None:
    st.caption(body)
    note("caption", body)


def note(kind: str, value: object) -> None:
    """Note one thing the page showed: "text", "caption", "figures" (a plotly figure), "metrics" or "images" (a
    gallery: [(PIL image, caption), ...])."""
    found = notes()
    if found is not None:
        found.add(kind, value)


def note_metric(label: str, value: str, interval: str, how: str) -> None:
    note("metrics", LessonMetric(label, value, interval, how))


def mark_ran() -> None:
    """The current step's result is on the page: its section goes into the lesson."""
    found = notes()
    if found is not None and found.sections:
        found.sections[-1].ran = True


def figure_width(side_by_side: int) -> float:
    """Inches: a chart alone spans the page; charts side by side on the page are drawn narrower (and so as tall
    for their width as on the page) rather than squashed."""
    return 8.0 if side_by_side == 1 else 4.0


def image_png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def build_lesson(found: LessonNotes, ran: list[SectionNotes]) -> bytes:
    """The HTML file of the steps that ran, their figures drawn now (this runs when the button is clicked)."""
    sections = []
    with _DRAWING:
        for step in ran:
            blocks = [(kind, [LessonFigure(figure_png(fig, width=figure_width(len(value))), step.title)
                              for fig in value] if kind == "figures"
                       else [LessonFigure(image_png(image), text) for image, text in value] if kind == "images"
                       else value) for kind, value in step.blocks]
            sections.append(LessonSection(step.title, blocks))
    return lesson_html(Lesson(found.title, found.lang, found.meta, found.intro, sections)).encode("utf-8")


def end_lesson(where) -> None:
    """Close this run's lesson and put its download button in `where` (a placeholder near the page's top)."""
    found = notes()
    if found is None:
        return
    found.open = False
    done = found.ran_sections()
    with where.container():
        st.download_button(_("Download this lesson"), data=lambda: build_lesson(found, done),
                           file_name=f"pretraining-lesson-{found.lang}.html", mime="text/html", icon=":material/download:",
                           on_click="ignore", disabled=not done, key="lesson-download",
                           help=_("One HTML file with every step that has run: its numbers with their 95 % "
                                  "CIs, its captions, its figures as images, and what produced them, in "
                                  "this page's language. It opens offline and prints."))
        if done:
            st.caption(_("The lesson holds {n} of {total} steps: those that have run.").format(
                n=len(done), total=len(found.sections)))
        else:
            st.caption(_("Run a step first: the lesson holds the steps that have run."))
