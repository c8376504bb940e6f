"""Predict, then reveal (issue 24): each reveal sentence says what the step's tests say against the guess, for every
verdict McNemar's or Welch's test can give; every question, option and sentence has its Chinese translation."""
import gettext
import re
from pathlib import Path

import numpy as np
import pytest

from ptm_core.base.configs import DatasetConfig
from ptm_core.base.messages import Message
from ptm_core.base.stats import DrawsTest, PairedTest
from ptm_core.flows.tour import ContrastResult, ContrastRow, EfficiencyClaim
from ptm_core.flows.tour_questions import QUESTIONS, contenders, reveal

N = 60
LOCALE = Path(__file__).resolve().parents[1] / "assets" / "locale"


def _test(a: float, b: float, p: float, verdict: str) -> PairedTest:
    return PairedTest(N, a, b, (0.0, 1.0), (0.0, 1.0), 0, 0, p, verdict)


def outcome(acc: dict, random: tuple[str, float], pixels: tuple[str, float]) -> ContrastResult:
    """A hand-built step 2/3 outcome: accuracies per kind, and (verdict, p) of pretrained against each other kind."""
    rows = [ContrastRow(kind, f"{kind} on test data", acc[kind], N, None) for kind in ("pixels", "random", "pretrained")]
    tests = {kind: _test(acc["pretrained"], acc[kind], p, verdict)
             for kind, (verdict, p) in (("random", random), ("pixels", pixels))}
    return ContrastResult(DatasetConfig("shapes:n=20"), "", np.zeros(N, int), ["a"], rows, tests)


PRE_BEST = outcome({"pixels": 0.35, "random": 0.40, "pretrained": 0.91}, ("a", 0.0001), ("a", 0.0002))
TIE_PIXELS = outcome({"pixels": 0.85, "random": 0.40, "pretrained": 0.91}, ("a", 0.0001), ("tie", 0.3))
PIXELS_LEAD = outcome({"pixels": 0.73, "random": 0.30, "pretrained": 0.55}, ("a", 0.001), ("b", 0.035))
BOTH_LEAD = outcome({"pixels": 0.73, "random": 0.70, "pretrained": 0.55}, ("b", 0.01), ("b", 0.035))
ALL_TIE = outcome({"pixels": 0.50, "random": 0.52, "pretrained": 0.55}, ("tie", 0.6), ("tie", 0.4))
PIXELS_LEAD_RANDOM_TIE = outcome({"pixels": 0.73, "random": 0.60, "pretrained": 0.55}, ("tie", 0.5), ("b", 0.03))


def test_contenders_follow_the_tests_not_the_numbers():
    assert contenders(PRE_BEST.tests) == {"pretrained"}
    assert contenders(TIE_PIXELS.tests) == {"pretrained", "pixels"}  # 91 % vs 85 %, but a tie
    assert contenders(PIXELS_LEAD.tests) == {"pixels"}  # pixels > pretrained > random init, both tested
    assert contenders(BOTH_LEAD.tests) == {"pixels", "random"}  # never tested against each other
    assert contenders(ALL_TIE.tests) == {"pixels", "random", "pretrained"}
    assert contenders(PIXELS_LEAD_RANDOM_TIE.tests) == {"pixels", "random"}


def test_pretrained_beats_both_right_and_wrong_guesses():
    right = reveal("shapes", "pretrained", PRE_BEST)
    assert right == ("You chose pretrained features, and you were right: pretrained features scored highest (91.0%) "
                     "and beat both random-init features (40.0%, p < 0.001) and raw pixels (35.0%, p < 0.001) on "
                     "the same 60 test images (McNemar's test).")
    wrong = reveal("shapes", "pixels", PRE_BEST)
    assert wrong.startswith("You chose raw pixels, but pretrained features scored highest (91.0%)")
    assert reveal("shapes", "random", PRE_BEST).startswith("You chose random-init features, but ")


def test_a_tie_is_called_a_tie_whoever_scored_highest():
    pixels = reveal("digits", "pixels", TIE_PIXELS)
    assert pixels == ("You chose raw pixels: pretrained features scored highest (91.0%), but no difference between "
                      "raw pixels and pretrained features was detected on the same 60 test images (McNemar's test, "
                      "p = 0.3), so your guess is as good as any here.")
    pretrained = reveal("digits", "pretrained", TIE_PIXELS)
    assert pretrained.startswith("You chose pretrained features: ") and "you were right" not in pretrained
    assert "no difference between pretrained features and raw pixels was detected" in pretrained
    # Random init was beaten by pretrained (p < 0.001): that guess was wrong, tie elsewhere or not.
    assert reveal("digits", "random", TIE_PIXELS) == (
        "You chose random-init features, but pretrained features did better than random-init features (91.0% vs "
        "40.0% on the same 60 test images, McNemar's test, p < 0.001).")
    everything = reveal("digits", "pretrained", ALL_TIE)
    assert "random-init features or raw pixels" in everything and "p = 0.6 and p = 0.4" in everything
    assert " beat" not in everything and "right" not in everything


def test_pixels_lead_through_both_tests():
    assert reveal("digits", "pixels", PIXELS_LEAD) == (
        "You chose raw pixels, and you were right: raw pixels beat pretrained features (73.0% vs 55.0%, p = 0.035), "
        "which beat random-init features (30.0%, p = 0.001), on the same 60 test images (McNemar's test).")
    assert reveal("digits", "pretrained", PIXELS_LEAD).startswith("You chose pretrained features, but raw pixels beat")
    assert reveal("digits", "random", PIXELS_LEAD).startswith("You chose random-init features, but ")


def test_kinds_never_tested_against_each_other_are_not_ranked():
    both = reveal("digits", "pixels", BOTH_LEAD)
    assert both.startswith("You chose raw pixels: raw pixels beat pretrained features (73.0% vs 55.0%")
    assert "raw pixels and random-init features were not tested against each other" in both
    assert "right" not in both
    assert reveal("digits", "pretrained", BOTH_LEAD).startswith(
        "You chose pretrained features, but both random-init features (70.0%, p = 0.01) and raw pixels (73.0%, "
        "p = 0.035) did better than pretrained features (55.0%)")
    random = reveal("digits", "random", PIXELS_LEAD_RANDOM_TIE)
    assert random.startswith("You chose random-init features: no difference between random-init features and "
                             "pretrained features was detected")
    assert "while raw pixels did better than pretrained features (p = 0.03)" in random
    assert reveal("digits", "pretrained", PIXELS_LEAD_RANDOM_TIE).startswith(
        "You chose pretrained features, but raw pixels did better than pretrained features")


def _claim(verdict: str, p: float, k: int = 1) -> EfficiencyClaim:
    means = {"a": (0.45, 0.28), "b": (0.28, 0.45), "tie": (0.40, 0.37)}[verdict]
    return EfficiencyClaim(((k, DrawsTest(*means, p, verdict)), (k + 4, DrawsTest(0.9, 0.5, 0.0001, "a"))))


@pytest.mark.parametrize("verdict,choice,start", [
    ("a", "pretrained", "You chose pretrained features, and you were right: with 1 labelled image per class, "
                        "pretrained features averaged 45.0% against 28.0% for raw pixels (Welch's t-test over the "
                        "label draws, p = 0.002)."),
    ("a", "tie", "You chose no difference, but with 1 labelled image per class, pretrained features averaged 45.0%"),
    ("b", "pixels", "You chose raw pixels, and you were right: with 1 labelled image per class, raw pixels averaged "
                    "45.0% against 28.0%"),
    ("b", "pretrained", "You chose pretrained features, but with 1 labelled image per class, raw pixels averaged"),
    ("tie", "tie", "You chose no difference, and none was detected: with 1 labelled image per class, no difference "
                   "was detected between pretrained features (40.0%) and raw pixels (37.0%)"),
    ("tie", "pixels", "You chose raw pixels: with 1 labelled image per class, no difference was detected"),
])
def test_efficiency_reads_welchs_test_at_the_smallest_budget(verdict, choice, start):
    p = {"a": 0.002, "b": 0.002, "tie": 0.3}[verdict]
    assert reveal("efficiency", choice, _claim(verdict, p)).startswith(start)


def test_efficiency_names_a_larger_smallest_budget_in_the_plural():
    assert "with 2 labelled images per class," in reveal("efficiency", "pretrained", _claim("a", 0.01, k=2))


def test_no_guess_and_a_bad_guess():
    for question_id, result in (("shapes", PRE_BEST), ("efficiency", _claim("a", 0.01))):
        line = reveal(question_id, None, result)
        assert line.startswith("No guess was made") and "right" not in line
    with pytest.raises(ValueError):
        reveal("shapes", "tie", PRE_BEST)  # not an option of a contrast question
    with pytest.raises(KeyError):
        reveal("nothing", "pixels", PRE_BEST)


def _templates(message: Message) -> list[str]:
    """A message's template and those of every message inside it."""
    nested = [t for value in message.params.values() if isinstance(value, Message) for t in _templates(value)]
    return [message.template, *nested]


def test_every_question_option_and_sentence_has_a_chinese_translation():
    zh = gettext.translation("ptm", LOCALE, languages=["zh_CN"])
    texts = [q.prompt.template for q in QUESTIONS.values()]
    texts += [label.template for q in QUESTIONS.values() for _key, label in q.options]
    sentences = [reveal(q, c, r) for q, r in (("shapes", PRE_BEST), ("digits", TIE_PIXELS), ("digits", PIXELS_LEAD),
                                             ("digits", BOTH_LEAD), ("digits", ALL_TIE),
                                             ("digits", PIXELS_LEAD_RANDOM_TIE))
                 for c in ("pixels", "random", "pretrained", None)]
    sentences += [reveal("efficiency", c, _claim(v, 0.01, k)) for v in ("a", "b", "tie") for k in (1, 2)
                  for c in ("pretrained", "pixels", "tie")]
    texts += [t for sentence in sentences for t in _templates(sentence)]
    missing = sorted({t for t in texts if zh.gettext(t) == t or not re.search(r"[\u4e00-\u9fff]", zh.gettext(t))
                      and re.search(r"[A-Za-z]{3}", t.replace("McNemar", "").replace("Welch", ""))})
    assert not missing, missing
