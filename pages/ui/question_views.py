"""Predict, then reveal (issue 24): a one-click question before a tour step runs, the answer against the guess after
(ptm_core.flows.tour_questions words it), and class mode, where the next step's question fills the screen alone.

The guesses live in this browser session only (st.session_state), never in the settings or the URL: a guess is a
class's, not a link's. Class mode is a setting (URL `classroom=1`), so a teacher can bookmark it.
"""
from __future__ import annotations

import streamlit as st

from pages.ui import settings
from pages.ui.choices import ViewChoice
from pages.ui.i18n import _
from pages.ui.lesson_views import note
from pages.ui.services import job_manager
from pages.ui.text import md
from ptm_core.flows import DONE, FINISHED, JobSpec, question, reveal

GUESSES = "tour_guesses"  # question id -> the chosen option's key
POSTPONED = "tour_questions_postponed"  # questions class mode does not pose alone until the teacher asks
SEEN = "tour_question_next"  # the next step's question at the last run of this page, and whether class mode was on

# Projector-sized: the question and its options fill the page (the container's key names its CSS class).
CLASS_CSS = """
<style>
  .st-key-class-question [data-testid="stMarkdownContainer"] p { font-size: 3.2rem !important; line-height: 1.25;
                                                                 font-weight: 600; }
  .st-key-class-question button { min-height: 8rem; }
  /* A label that wraps to more lines than the others: every answer grows with it (one row, one height). */
  .st-key-class-question [data-testid="stHorizontalBlock"] { align-items: stretch; }
  .st-key-class-question [data-testid="stColumn"] > div, .st-key-class-question [data-testid="stColumn"] .stButton,
  .st-key-class-question [data-testid="stColumn"] [data-testid="stElementContainer"],
  .st-key-class-question [data-testid="stColumn"] button { height: 100%; }
  .st-key-class-question button p { font-size: 2.4rem !important; line-height: 1.2; }
  .st-key-class-question button * { white-space: normal !important; overflow: visible !important;
                                    text-overflow: clip !important; }
</style>
"""


def guesses() -> dict[str, str]:
    return st.session_state.setdefault(GUESSES, {})


def postponed() -> set[str]:
    return st.session_state.setdefault(POSTPONED, set())


def class_mode() -> bool:
    try:
        return settings.get(ViewChoice).classroom
    except KeyError:  # the settings are not loaded (a page run on its own in a test)
        return False


def class_toggle() -> None:
    """Class mode's switch, in the tour's sidebar (beside presenter mode)."""
    with st.sidebar:
        settings.bound(st.toggle, _("Class mode"), ViewChoice, "classroom", help=_(
            "For a class with a projector: before a step with a question runs, the question fills the screen alone, "
            "in large type, with its answers as big buttons; a click records the class's guess and brings the tour "
            "back. After a step has run its results stay on screen: the next question's \"Ask the class\" button "
            "poses it. Bookmark the page with class mode on to open it so."))


def step_started(spec: JobSpec) -> bool:
    """Whether the step is queued, running or done: from then on its guess can no longer change."""
    job = job_manager().attach(spec)
    return job is not None and (job.status == DONE or job.status not in FINISHED)


def _choose(question_id: str, key: str | None) -> None:
    if key is None:
        guesses().pop(question_id, None)
    else:
        guesses()[question_id] = key


def _commit(question_id: str) -> None:
    _choose(question_id, st.session_state.get(f"guess-{question_id}"))


def ask(question_id: str, started: bool) -> None:
    """The step's question and its options, one click, before the step runs; then the guess, fixed."""
    q, guess = question(question_id), guesses().get(question_id)
    if started:
        if guess is not None:
            st.caption(_("Your guess: {answer}").format(answer=md(q.label(guess))))
        return
    key = f"guess-{question_id}"
    st.session_state[key] = guess  # seeded from the guesses, which outlive the widget (class mode hides it)
    with st.container(border=True, key=f"ask-{question_id}"):
        st.markdown(":material/how_to_vote: " + _("Your guess, before it runs:") + " **" + md(q.prompt) + "**")
        st.segmented_control(md(q.prompt), [k for k, _l in q.options], format_func=lambda k: md(q.label(k)),
                             key=key, on_change=_commit, args=(question_id,), label_visibility="collapsed")
        if guess is not None:
            st.caption(_("Your guess: {answer}. You can change it until the step runs.").format(
                answer=md(q.label(guess))))
        elif class_mode() and question_id == next_question() and st.button(
                _("Ask the class"), key=f"pose-{question_id}", icon=":material/co_present:",
                help=_("The question alone, in large type, for the projector.")):
            postponed().discard(question_id)
            st.rerun()


def next_question() -> str | None:
    """The next step's question, as class_view last saw it (None before the tour page has drawn)."""
    return (st.session_state.get(SEEN) or (None, False))[0]


def reveal_view(question_id: str, outcome) -> None:
    """After the step's result: the answer against the guess, in one sentence; nothing where no guess was made."""
    guess = guesses().get(question_id)
    if guess is not None:
        sentence = md(reveal(question_id, guess, outcome))
        st.info(sentence, icon=":material/how_to_vote:")
        note("caption", sentence)  # the lesson file keeps the class's guess and its answer


def class_view(question_id: str | None) -> bool:
    """Class mode: `question_id` (the next step's, or None) alone on the page while unanswered. True when drawn, so
    the caller draws nothing else. A question whose step became the next one while the page was open (a step just
    ran) waits for "Ask the class", so the results just computed stay on screen; so does one sent back to the tour."""
    on, state = class_mode(), st.session_state
    last = state.get(SEEN)
    if last is not None and last[0] != question_id and question_id is not None:
        postponed().add(question_id)
    if on and last is not None and not last[1]:
        postponed().clear()  # class mode just turned on: pose the question now
    state[SEEN] = (question_id, on)
    if not on or question_id is None or question_id in guesses() or question_id in postponed():
        return False
    q = question(question_id)
    st.html(CLASS_CSS)
    with st.container(key="class-question"):
        st.markdown(md(q.prompt))
        for column, (key, label) in zip(st.columns(len(q.options)), q.options):
            column.button(md(label), key=f"class-{question_id}-{key}", width="stretch", type="primary",
                          on_click=_choose, args=(question_id, key))
    st.caption(_("Class mode: a click on an answer records the class's guess and brings the tour back."))
    if st.button(_("Back to the tour without a guess"), key=f"class-back-{question_id}",
                 icon=":material/arrow_back:"):
        postponed().add(question_id)
        st.rerun()
    return True
