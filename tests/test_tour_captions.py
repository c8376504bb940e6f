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


def test_digits_tie_is_worded_as_no_difference_detected_with_the_images_needed():
    from pages.ui.tour_views import contrast_notice

    tie = _test(400, 25, 30, 336)  # step 3's default data: pretrained vs pixels, p = 0.59
    assert tie.verdict == "tie"
    text = contrast_notice(_contrast({"pixels": tie, "random": _test(400, 56, 27, 305)}), "digits")
    assert text.startswith("Notice: on digits, no difference detected between pretrained features and raw pixels on "
                           "400 test images (90.2% vs 91.5%, McNemar's test, p = 0.59).")
    assert "telling them apart would take about 6,905 test images" in text
    assert "As far as this test can tell, pixels do as well here" in text
    assert "beat" not in text and "lead" not in text


def test_digits_leads_name_who_leads_and_the_p_value():
    from pages.ui.tour_views import contrast_notice

    win = _test(400, 56, 27, 305)
    assert contrast_notice(_contrast({"pixels": win, "random": win}), "digits").startswith(
        "Notice: on digits, pretrained features lead raw pixels on the same 400 test images (90.2% vs 83.0%, "
        "McNemar's test, p = 0.0019). Pretraining helps")
    # Pixels ahead (the 1.7 points, backed by the test): said as a lead of the pixels, never "as well".
    lost = contrast_notice(_contrast({"pixels": _test(400, 10, 40, 320), "random": win}), "digits")
    assert lost.startswith("Notice: on digits, raw pixels lead pretrained features on the same 400 test images "
                           "(90.0% vs 82.5%, McNemar's test, p < 0.001).")
    assert "as well" not in lost
    shapes = contrast_notice(_contrast({"pixels": _test(200, 143, 3, 25), "random": _test(200, 141, 6, 27)}), "shapes")
    assert "only the pretrained features separate the shapes" in shapes and "p < 0.001 and p < 0.001" in shapes
    # One of the two not supported: no "only the pretrained features" claim, each pair worded by its own test.
    mixed = contrast_notice(_contrast({"pixels": _test(200, 143, 3, 25), "random": _test(200, 10, 8, 100)}), "shapes")
    assert "only" not in mixed and "Pretrained features lead raw pixels on the same 200 test images" in mixed
    assert "No difference detected between pretrained features and random-init features on 200 test images" in mixed


def _claim(*pairs):
    return EfficiencyClaim(tuple((k, draws_test(a, b)) for k, a, b in pairs))


LOW, MID, HIGH = [0.50, 0.52, 0.51, 0.49, 0.50], [0.70, 0.72, 0.71, 0.69, 0.70], [0.80, 0.81, 0.80, 0.79, 0.80]


def test_efficiency_notice_covers_the_whole_label_range_with_singular_and_plural_labels():
    from pages.ui.tour_views import efficiency_notice

    # The MNIST case: pixels lead at 1, 2, 5 and 10 labels, pretrained at 25.
    claim = _claim((1, LOW, MID), (2, LOW, MID), (5, LOW, HIGH), (10, MID, HIGH), (25, HIGH, MID))
    text = efficiency_notice(claim, "MNIST digits", 5)
    assert text == ("On MNIST digits (Welch's t-test over 5 draws at each budget): pixels lead pretrained features "
                    "with 1, 2, 5 and 10 labels per class (p < 0.001 at each); pretrained features lead pixels with "
                    "25 labels per class (80.0% vs 70.4%, p < 0.001).")
    one = efficiency_notice(_claim((1, HIGH, LOW), (2, LOW, [0.5, 0.53, 0.5, 0.48, 0.5])), "shapes", 5)
    assert "pretrained features lead pixels with 1 label per class (80.0% vs 50.4%, p < 0.001)" in one
    assert "no difference detected with 2 labels per class (50.4% vs 50.2%, p = 0.84)" in one
    assert "1 labels" not in one


def test_finetune_notice_follows_its_test():
    from pages.ui.tour_views import finetune_notice

    result = SimpleNamespace(test_accuracy=0.85, lp_test_accuracy=0.83)
    tie = finetune_notice(result, _test(200, 16, 14, 150))
    assert tie.startswith("Notice: with this little training, adapting is not shown to help (+2.0 points).")
    assert ("No difference detected between the adapted features (LP-FT) and the frozen features (linear probe) on "
            "200 test images (83.0% vs 82.0%, McNemar's test, p = 0.86)") in tie
    win = finetune_notice(SimpleNamespace(test_accuracy=0.91, lp_test_accuracy=0.886), _test(1000, 56, 32, 830))
    assert win == ("Notice: adapting the backbone added +2.4 points to the frozen features. The adapted features "
                   "(LP-FT) lead the frozen features (linear probe) on the same 1,000 test images (88.6% vs 86.2%, "
                   "McNemar's test, p = 0.014).")


def test_a_loss_is_said_without_a_minus_sign():
    from pages.ui.tour_views import finetune_notice

    lost = finetune_notice(SimpleNamespace(test_accuracy=0.42, lp_test_accuracy=0.553), _test(150, 4, 24, 60))
    assert lost.startswith("Notice: with this little training, adapting lost 13.3 points to the frozen features. "
                           "The frozen features (linear probe) lead the adapted features (LP-FT)")


def test_plural_forms_of_epochs_and_labels_in_both_languages(monkeypatch):
    from pages.ui import i18n
    from pages.ui.tour_views import labels_per_class

    assert [i18n.ngettext("{n} epoch", "{n} epochs", n).format(n=n) for n in (1, 6)] == ["1 epoch", "6 epochs"]
    assert labels_per_class([1]) == "1 label per class" and labels_per_class([2]) == "2 labels per class"
    monkeypatch.setattr(i18n, "language", lambda: "zh")
    assert i18n.ngettext("{n} epoch", "{n} epochs", 6).format(n=6) == "6 个轮次"
    assert labels_per_class([1, 2]) == "每类 1 和 2 个标签"
