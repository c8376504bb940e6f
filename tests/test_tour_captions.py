"""The tour's captions say what the tests say: "beats" only where McNemar's (or Welch's) test supports it."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ptm_core.base.configs import DatasetConfig
from ptm_core.base.stats import draws_test, paired_test
from ptm_core.flows.tour import ContrastResult, ContrastRow, EfficiencyClaim


def _test(n: int, a_only: int, b_only: int, both: int):
    """A paired test of n images: `both` right for both, a_only / b_only right for one, the rest wrong for both."""
    truth = np.zeros(n, dtype=int)
    a = np.ones(n, dtype=int)
    b = np.ones(n, dtype=int)
    a[:both + a_only] = 0
    b[:both] = 0
    b[both + a_only:both + a_only + b_only] = 0
    return paired_test(truth, a, b)


def _contrast(tests: dict) -> ContrastResult:
    result = ContrastResult(DatasetConfig("digits"), "", np.zeros(1, int), ["0"])
    for kind, accuracy in (("pixels", 0.915), ("random", 0.83), ("pretrained", 0.9025)):
        result.rows.append(ContrastRow(kind, kind, accuracy, 400, None))
    result.tests = tests
    return result


def test_digits_tie_is_worded_as_a_tie_with_the_images_needed():
    from pages.ui.tour_views import contrast_notice

    tie = _test(400, 25, 30, 336)  # step 3's default data: pretrained vs pixels, p = 0.59
    assert tie.verdict == "tie"
    text = contrast_notice(_contrast({"pixels": tie, "random": _test(400, 56, 27, 305)}), "digits")
    assert "pretraining is not shown to help" in text and "beat" not in text.replace("beats", "")
    assert "Pretrained backbone and Raw pixels cannot be told apart on these 400 test images (p = 0.59)" in text
    assert "telling them apart would take about 6,905 test images" in text


def test_digits_win_and_shapes_wins_name_the_p_values():
    from pages.ui.tour_views import contrast_notice

    win = _test(400, 56, 27, 305)
    assert "Notice: pretrained features beat pixels (90.2% vs 91.5%, p = 0.0019 on 400 test images)" in \
        contrast_notice(_contrast({"pixels": win, "random": win}), "digits")
    shapes = contrast_notice(_contrast({"pixels": _test(200, 143, 3, 25), "random": _test(200, 141, 6, 27)}), "shapes")
    assert "only the pretrained features separate the shapes" in shapes and "p < 0.001 and p < 0.001" in shapes
    # One of the two not supported: no "only the pretrained features" claim, each pair worded by its own test.
    mixed = contrast_notice(_contrast({"pixels": _test(200, 143, 3, 25), "random": _test(200, 10, 8, 100)}), "shapes")
    assert "only" not in mixed and "Pretrained backbone beats Raw pixels on these 200 test images (p < 0.001)." in mixed
    assert "Pretrained backbone and Random-init backbone cannot be told apart on these 200 test images" in mixed


def test_efficiency_notice_and_finetune_notice_follow_their_tests():
    from pages.ui.tour_views import efficiency_notice, finetune_notice

    supported = EfficiencyClaim(5, 25, draws_test([0.78, 0.8, 0.79, 0.81, 0.8], [0.7, 0.72, 0.71, 0.69, 0.7]))
    assert efficiency_notice(supported, "shapes", 5).startswith(
        "On shapes, pretrained features with 5 labels per class beat pixels with 25 (79.6% vs 70.4%; Welch's t-test "
        "over 5 draws, p < 0.001).")
    none = EfficiencyClaim(None, 25, draws_test([0.9, 0.91, 0.9, 0.92, 0.9], [0.9, 0.92, 0.91, 0.9, 0.9]))
    text = efficiency_notice(none, "digits", 5)
    assert "are not shown to beat pixels with 25 labels per class" in text and "beat pixels with 25 (" not in text
    result = SimpleNamespace(test_accuracy=0.85, lp_test_accuracy=0.83)
    tie = finetune_notice(result, _test(200, 16, 14, 150))
    assert tie.startswith("Notice: with this little training, adapting is not shown to help (+2.0 points).")
    assert "LP-FT and the frozen probe cannot be told apart on these 200 test images (p = 0.86)" in tie
    win = finetune_notice(SimpleNamespace(test_accuracy=0.91, lp_test_accuracy=0.886), _test(1000, 56, 32, 830))
    assert win == ("Notice: adapting the backbone added +2.4 points to the frozen features. LP-FT beats the frozen "
                   "probe on these 1,000 test images (p = 0.014).")
