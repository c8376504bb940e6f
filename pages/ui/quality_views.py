"""The explorer's "Data quality" panel: label issues, near-duplicates, train/test leaks and outliers of the features
shown, each as a gallery, with a CSV of every find; the probe's count of test images with a near-duplicate in train.

The report runs on demand (a button; seconds to minutes) and is cached per feature set, probe split and settings;
once it exists the map can colour points by issue (flows.issue_kinds).
"""
from __future__ import annotations

import streamlit as st

from pages.ui.gallery import gallery
from pages.ui.i18n import _
from pages.ui.services import load_dataset
from pages.ui.text import md
from ptm_core.base import DatasetConfig, PTMError, csv_safe_frame
from ptm_core.flows import FeatureSet, QualityConfig, quality_frame, quality_report, train_duplicates

SHOWN = 24  # thumbnails per list (pairs: 12 pairs)
CONFIG = QualityConfig()


def _split_key(probe) -> str:
    return str(hash(probe.test_indices.tobytes()))


def _wanted(fs: FeatureSet) -> str:
    return f"quality-wanted-{fs.key}"


@st.cache_data(show_spinner=False, max_entries=8)
def _report(feature_key: str, split_key: str, config_key: str, dataset_key: str, _fs, _probe, _config, _dataset):
    return quality_report(_fs, _probe, _config, _dataset)


def _images(dataset: DatasetConfig | None):
    """The dataset whose pixels confirm near-duplicates, or None (the engine then tries the one the features name,
    and says when it falls back to features alone)."""
    try:
        return None if dataset is None else load_dataset(dataset)
    except PTMError:
        return None


@st.cache_data(show_spinner=False, max_entries=32)
def _train_duplicates(feature_key: str, split_key: str, threshold: float, _fs, _probe) -> tuple[int, int]:
    return train_duplicates(_fs, _probe, threshold)


def current_report(fs: FeatureSet, probe, dataset: DatasetConfig | None = None):
    """The quality report of these features once its button was pressed (computed here the first time, cached
    after), else None; None after an error, which it shows. Near-duplicates are confirmed on `dataset`'s pixels."""
    if not st.session_state.get(_wanted(fs)):
        return None
    try:
        with st.spinner(_("Checking data quality: out-of-fold probe, cleanlab, the k-NN graph, thumbnails…")):
            return _report(fs.key, _split_key(probe), CONFIG.key(), repr(dataset), fs, probe, CONFIG, _images(dataset))
    except PTMError as exc:
        st.error(md(exc.for_ui()), icon=":material/error:")
        return None


def leak_caption(column, fs: FeatureSet, probe) -> None:
    """Under the probe's accuracy: how many of its test images have a near-duplicate in train."""
    found, n_test = _train_duplicates(fs.key, _split_key(probe), CONFIG.duplicate_similarity, fs, probe)
    if found:
        column.caption(_("{n} of {m} test images have a near-duplicate in train (cosine ≥ {t}) — they may inflate "
                         "this score.").format(n=f"{found:,}", m=f"{n_test:,}", t=f"{CONFIG.duplicate_similarity:g}"))
    else:
        column.caption(_("No test image has a near-duplicate in train (cosine ≥ {t}).").format(
            t=f"{CONFIG.duplicate_similarity:g}"))


def _pairs_gallery(dataset: DatasetConfig, fs: FeatureSet, pairs: list[tuple[int, int, str, str]]) -> None:
    rows = [r for a, b, _a, _b in pairs[:SHOWN // 2] for r in (a, b)]
    captions = [c for _a, _b, ca, cb in pairs[:SHOWN // 2] for c in (ca, cb)]
    gallery(dataset, rows, captions, feature_ids=fs.ids, empty=_("None found."))


def _evidence(pair: dict) -> str:
    """A pair's caption: its feature cosine, and its pixels' correlation when that is what confirmed it."""
    if pair["found_by"] == "features":
        return f"{pair['similarity']:.3f}"
    return _("{s} · pixels {r}").format(s=f"{pair['similarity']:.3f}", r=f"{pair['correlation']:.3f}")


def _pairs_caption(report) -> str:
    config = report.config
    if report.duplicate_method == "features":
        return _("Pairs side by side, most similar first, by their features alone (cosine ≥ {t}): the images were "
                 "not available to compare, so copies shifted by a pixel may be missed.").format(
            t=f"{config.duplicate_similarity:g}")
    return _("Pairs side by side, most similar first: features at cosine ≥ {t}, or at cosine ≥ {c} when their "
             "greyscale thumbnails match up to a {shift} px shift (correlation ≥ {r}, shown as “pixels”).").format(
        t=f"{config.duplicate_similarity:g}", c=f"{config.candidate_similarity:g}", shift=config.max_shift,
        r=f"{config.pixel_correlation:g}")


def _galleries(dataset: DatasetConfig, fs: FeatureSet, report) -> None:
    names = [_("Label issues"), _("Near-duplicates"), _("Train/test leaks"), _("Outliers")]
    tabs = st.tabs([f"{name} ({n:,})" for name, n in zip(names, report.counts().values())])
    with tabs[0]:
        st.caption(_("Worst first: images whose given label the out-of-fold probe doubts most (cleanlab's "
                     "self-confidence score, low is doubtful). Caption: given → suggested (score)."))
        shown = report.label_issues[:SHOWN]
        gallery(dataset, [i["row"] for i in shown], [f"{i['given']} → {i['suggested']} ({i['score']:.2f})"
                                                     for i in shown], feature_ids=fs.ids, empty=_("None found."))
    with tabs[1]:
        st.caption(_pairs_caption(report))
        _pairs_gallery(dataset, fs, [(p["rows"][0], p["rows"][1], f"#{p['rows'][0]}",
                                      f"≈ #{p['rows'][0]} · {_evidence(p)}") for p in report.near_duplicates])
    with tabs[2]:
        st.caption(_("Near-duplicates with one image in the probe's test split and the other in its train split: "
                     "the probe has, in effect, seen these test images."))
        _pairs_gallery(dataset, fs, [(leak["test_row"], leak["train_row"], _("test #{row}").format(row=leak["test_row"]),
                                      _("train #{row} · {s}").format(row=leak["train_row"], s=f"{leak['similarity']:.3f}"))
                                     for leak in report.leaks])
    with tabs[3]:
        st.caption(_("Farthest from their {k} nearest neighbours (mean cosine distance), highest first.").format(
            k=report.config.k))
        shown = report.outliers[:SHOWN]
        gallery(dataset, [o["row"] for o in shown], [f"#{o['row']} · {o['score']:.3f}" for o in shown],
                feature_ids=fs.ids, empty=_("None found."))


def quality_panel(dataset: DatasetConfig, fs: FeatureSet, probe, report) -> None:
    """The panel: a button until the report exists, then its counts, a gallery per list and the CSV."""
    st.subheader(_("Data quality"))
    if report is None:
        st.caption(_("Mislabelled images (cleanlab on out-of-fold probe probabilities), near-duplicates and train/test "
                     "leaks (close features, confirmed on the pixels), outliers (k-NN distance). Takes seconds to "
                     "minutes."))
        st.button(_("Check data quality"), icon=":material/fact_check:", key="quality-run",
                  on_click=lambda: st.session_state.__setitem__(_wanted(fs), True))
        return
    cols = st.columns(4)
    labels = (_("Label issues"), _("Near-duplicate pairs"), _("Train/test leaks"), _("Outliers"))
    for column, label, n in zip(cols, labels, report.counts().values()):
        column.metric(label, f"{n:,}")
    st.caption(_("{n} images checked in {seconds} s; {folds} folds of a standardised logistic regression (C = {C}); "
                 "near-duplicates by {method}; the top {share} as outliers. Colour the map by "
                 "“Data quality issue” to see where they are.").format(
        n=f"{report.n:,}", seconds=f"{report.seconds:.1f}", folds=report.folds, C=f"{report.config.C:g}",
        method=_("features alone") if report.duplicate_method == "features" else _("features and pixels"),
        share=f"{report.config.outlier_share:.0%}"))
    for note in report.notes:
        st.caption(md(note))
    _galleries(dataset, fs, report)
    st.download_button(_("All finds as CSV"), lambda: csv_safe_frame(quality_frame(report)).to_csv(index=False),
                       f"quality-{fs.key[:10]}.csv", "text/csv", icon=":material/download:", key="quality-csv",
                       on_click="ignore", help=_("One row per find: kind, id, other id, given, suggested, score; for near-duplicates how "
                                              "they were found and their pixels' correlation."))
