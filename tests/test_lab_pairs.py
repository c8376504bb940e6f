"""The Compare tab's intervals and paired tests: which runs pair, on which test images, and what McNemar says."""
import numpy as np
import pytest

from ptm_core.base import wilson_interval
from ptm_core.flows import compare_frame, compare_pairs
from ptm_core.flows.pairs import per_image


def _run(run_id: str, method: str, right: list[bool], indices=None, **metrics) -> dict:
    n = len(right)
    indices = np.arange(n) if indices is None else np.asarray(indices)
    labels = np.zeros(int(indices.max()) + 1, dtype=int)
    predictions = np.where(right, 0, 1)
    images = per_image(indices, predictions, labels)
    return {"id": run_id, "config": {}, "metrics": {"method": method, "test_accuracy": float(np.mean(right)),
                                                     "method_seconds": 1.0, "image_size": 32, **images, **metrics}}


def test_per_image_keys_the_test_images_and_orders_correctness_by_index():
    record = per_image(np.array([4, 1, 2]), np.array([0, 1, 1]), np.array([9, 1, 2, 9, 0]))
    assert record["n_test"] == 3 and record["test_correct"] == "101"  # images 1, 2, 4: right, wrong, right
    assert per_image(np.array([1, 2, 4]), np.array([1, 1, 0]), np.array([9, 1, 2, 9, 0]))["test_split"] == \
        record["test_split"]
    assert per_image(np.array([1, 2, 3]), np.array([1, 1, 0]), np.array([9, 1, 2, 0]))["test_split"] != \
        record["test_split"]


def test_the_best_method_is_paired_with_each_other_and_mcnemar_decides():
    n = 200
    best = [True] * 190 + [False] * 10
    close = [True] * 185 + [False] * 15  # 5 discordant, all one way: p = 0.0625, a tie
    far = [True] * 150 + [False] * 50  # 40 discordant, all one way: p far below 0.05
    runs = [_run("r1", "linear-probe", best), _run("r2", "pixels", far), _run("r3", "random-probe", close)]
    frame = compare_frame(runs)
    low, high = wilson_interval(190, n)
    row = frame.loc[frame["kind"] == "linear-probe"].iloc[0]
    assert row["ci95 low"] == pytest.approx(low) and row["ci95 high"] == pytest.approx(high)
    assert "(" in row["label"]  # the bar's text carries the interval
    pairs = {p.b: p for p in compare_pairs(frame)}
    assert set(pairs) == {"Raw pixels (logistic regression)", "Random-init backbone + linear probe"}
    tie = pairs["Random-init backbone + linear probe"].test
    assert tie.verdict == "tie" and tie.n_test == n and tie.p_value == pytest.approx(0.0625)
    assert (tie.a_only_right, tie.b_only_right) == (5, 0)
    win = pairs["Raw pixels (logistic regression)"].test
    assert win.verdict == "a" and win.p_value < 1e-9


def test_runs_without_per_image_results_or_on_other_images_are_not_tested():
    old = _run("r2", "pixels", [True] * 5 + [False] * 5)
    for key in ("test_split", "test_correct", "n_test"):
        del old["metrics"][key]
    other = _run("r3", "random-probe", [True] * 9 + [False], indices=np.arange(1, 11))
    frame = compare_frame([_run("r1", "linear-probe", [True] * 10), old, other])
    assert frame.loc[frame["kind"] == "pixels", "ci95 low"].isna().all()  # no n, no interval
    pairs = {p.b: p for p in compare_pairs(frame)}
    assert pairs["Raw pixels (logistic regression)"].test is None
    assert pairs["Raw pixels (logistic regression)"].missing == "no per-image results"
    assert pairs["Random-init backbone + linear probe"].missing == "other test images"


def test_knn_pairs_from_the_probes_run():
    probes = _run("r1", "linear-probe", [True] * 8 + [False] * 2, knn_accuracy=0.6)
    probes["metrics"].update(per_image(np.arange(10), np.where([True] * 6 + [False] * 4, 0, 1), np.zeros(10, int),
                                       prefix="knn_"))
    pairs = compare_pairs(compare_frame([probes]))
    assert [(p.a, p.b) for p in pairs] == [("Pretrained + linear probe", "Pretrained + k-NN")]
    assert pairs[0].test.verdict == "tie" and pairs[0].test.a_only_right == 2


def test_the_page_words_each_pair_and_draws_bars_without_a_known_n():
    from pages.ui.intervals import pair_sentence
    from pages.ui.lab_charts import compare_chart

    runs = [_run("r1", "linear-probe", [True] * 190 + [False] * 10),
            _run("r2", "random-probe", [True] * 185 + [False] * 15),
            _run("r3", "pixels", [True] * 150 + [False] * 50)]
    sentences = [pair_sentence(p) for p in compare_pairs(compare_frame(runs))]
    # A tie says how many test images would tell them apart: Connor's formula for 5 and 0 discordant of 200.
    assert "Pretrained + linear probe and Random-init backbone + linear probe cannot be told apart on these 200 test " \
           "images (p = 0.062). At the rate they disagree here, telling them apart would take about 312 test " \
           "images." in sentences
    assert "Pretrained + linear probe beats Raw pixels (logistic regression) on these 200 test images (p < 0.001)." \
        in sentences
    old = _run("r4", "pixels", [True] * 5 + [False] * 5)
    for key in ("test_split", "test_correct", "n_test"):
        del old["metrics"][key]
    frame = compare_frame([old])
    assert frame["ci95 low"].isna().all() and compare_pairs(frame) == []
    assert len(compare_chart(frame, "digits").data) == 1
