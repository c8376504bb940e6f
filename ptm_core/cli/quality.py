"""`python -m ptm_core quality`: label issues, near-duplicates, train/test leaks and outliers of a feature set."""
from __future__ import annotations

import argparse
from typing import Callable

from ptm_core.base.text import dumps, printable

SHOWN = 5  # of each list, in the text output


def add_quality_parser(sub, add_source_args: Callable, seed_type: Callable, positive_int: Callable,
                       positive_float: Callable) -> None:
    from ptm_core.base.quality import QualityConfig

    d = QualityConfig()
    quality = sub.add_parser("quality", help="data quality: label issues (cleanlab on out-of-fold probe "
                                             "probabilities), near-duplicates, train/test leaks, outliers")
    quality.add_argument("--features", help="npz written by extract")
    add_source_args(quality, required=False)
    quality.add_argument("--seed", type=seed_type, default=d.seed, help="fold shuffle and the probe's split seed")
    quality.add_argument("--folds", type=positive_int, default=d.folds, help="folds for out-of-fold probabilities")
    quality.add_argument("--k", type=positive_int, default=d.k, help="neighbours on the cosine k-NN graph")
    quality.add_argument("--threshold", type=float, default=d.duplicate_similarity,
                         help="cosine similarity at or above which two images are near-duplicates")
    quality.add_argument("--C", type=positive_float, default=d.C, help="the probe's inverse regularisation")
    quality.add_argument("--json", action="store_true")


def cmd_quality(args: argparse.Namespace, load_features: Callable) -> int:
    from ptm_core.base.quality import QualityConfig
    from ptm_core.evals.quality import quality

    config = QualityConfig(seed=args.seed, folds=args.folds, k=args.k, C=args.C,
                           duplicate_similarity=args.threshold).check()  # settings first: never extract, then refuse
    features = load_features(args)
    report = quality(features, config)
    if args.json:
        print(dumps(report.to_dict()))
        return 0
    counts = report.counts()
    how = f"cosine >= {config.duplicate_similarity:g}" + ("" if report.duplicate_method == "features" else
                                                            f", or >= {config.candidate_similarity:g} confirmed by pixels")
    print(f"{report.n:,} images: {counts['label_issues']} label issues, {counts['near_duplicates']} near-duplicate "
          f"pairs ({how}), {counts['leaks']} train/test leaks, "
          f"{counts['outliers']} outliers ({report.seconds:.1f} s)")
    for note in report.notes:
        print(f"note: {note}")
    for issue in report.label_issues[:SHOWN]:
        print(f"label    {printable(issue['id'])}: given {printable(issue['given'])}, suggested "
              f"{printable(issue['suggested'])} (score {issue['score']:.3f})")
    for pair in report.near_duplicates[:SHOWN]:
        pixels = "" if pair["found_by"] == "features" else f", pixels {pair['correlation']:.4f}"
        print(f"dup      {printable(pair['ids'][0])} ~ {printable(pair['ids'][1])} ({pair['similarity']:.4f}{pixels})")
    for leak in report.leaks[:SHOWN]:
        print(f"leak     test {printable(leak['test_id'])} ~ train {printable(leak['train_id'])} "
              f"({leak['similarity']:.4f})")
    for outlier in report.outliers[:SHOWN]:
        print(f"outlier  {printable(outlier['id'])} (score {outlier['score']:.3f})")
    return 0
