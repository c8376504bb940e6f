"""How sure each accuracy is, in words: Wilson's 95 % interval under every accuracy metric, and McNemar's verdict on
two methods scored on the same test images (ptm_core.flows.pairs computes both; this only words them)."""
from __future__ import annotations

from pages.ui.i18n import _
from pages.ui.lesson_views import note_metric
from pages.ui.text import md
from ptm_core.base import PairedTest
from ptm_core.flows import MethodPair, images_needed, interval, interval_text


def p_text(p: float) -> str:
    """"p = 0.41", "p = 0.003", or "p < 0.001" below that."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def accuracy_metric(column, label: str, accuracy: float, n_test: int, help_text: str = "") -> None:
    """An accuracy metric with its Wilson 95 % interval under the value and, in the help, how it was computed."""
    low, high = interval(accuracy, n_test)
    shown = interval_text(low, high)
    how = _("95 % CI {interval} (Wilson, n = {n} test images).").format(interval=shown, n=f"{n_test:,}")
    delta = _("95 % CI {interval}").format(interval=shown)
    column.metric(label, f"{accuracy:.1%}", delta=delta, delta_color="off", delta_arrow="off",
                  help=f"{help_text} {how}".strip())
    note_metric(label, f"{accuracy:.1%}", delta, f"{help_text} {how}".strip())


def pair_sentence(pair: MethodPair) -> str:
    """One sentence on a pair of methods: which wins on the same test images, a tie, or why they were not tested."""
    a, b = md(pair.a), md(pair.b)
    if pair.test is None:
        if pair.missing == "other test images":
            return _("{b} was scored on other test images than {a}, so the two are not tested against each "
                     "other.").format(a=a, b=b)
        return _("{b} has no per-image results recorded (its run predates them), so it is not tested against {a}; "
                 "run it again to test it.").format(a=a, b=b)
    return test_sentence(a, b, pair.test)


def test_sentence(a: str, b: str, test: PairedTest) -> str:
    """What McNemar's test says of a (first) and b on the same test images; a tie also says how many test images
    would tell them apart. `a` and `b` are already escaped for markdown."""
    values = {"a": a, "b": b, "n": f"{test.n_test:,}", "p": p_text(test.p_value)}
    if test.verdict != "tie":
        winner, loser = (a, b) if test.verdict == "a" else (b, a)
        return _("{winner} beats {loser} on these {n} test images ({p}).").format(
            winner=winner, loser=loser, n=values["n"], p=values["p"])
    sentence = _("{a} and {b} cannot be told apart on these {n} test images ({p}).").format(**values)
    needed = images_needed(test)
    if needed is None:
        return sentence + " " + _("Each gets as many of the other's mistakes right as it gets wrong: more test images "
                                  "would not separate them.")
    return sentence + " " + _("At the rate they disagree here, telling them apart would take about {m} test "
                              "images.").format(m=f"{needed:,}")
