"""`similarity`: CKA between two feature files of the same images, matched by id."""
from __future__ import annotations

import argparse

from ptm_core.base.text import dumps


def add_similarity_parser(sub) -> None:
    # No imports from ptm_core.evals here: importing it loads torch, and every command builds the parser.
    sim = sub.add_parser("similarity", help="CKA (Kornblith et al. 2019) between two feature sets of the same "
                                            "images, on the rows whose ids both hold")
    sim.add_argument("--a", required=True, metavar="FEATURES_A", help="npz written by extract")
    sim.add_argument("--b", required=True, metavar="FEATURES_B", help="npz of (some of) the same images")
    sim.add_argument("--kernel", default="linear", choices=["linear", "rbf"],
                     help="rbf: also CKA with a Gaussian kernel, sigma = 0.8 x the median pairwise distance")
    sim.add_argument("--seed", type=int, default=0, help="seed of the minibatches (only above 10,000 rows)")
    sim.add_argument("--json", action="store_true")


def cmd_similarity(args: argparse.Namespace) -> int:
    from ptm_core.base.checks import seed
    from ptm_core.evals.similarity import matched_cka
    from ptm_core.features.user_files import read_features_file

    seed("--seed", args.seed)
    a, b = read_features_file(args.a), read_features_file(args.b)
    linear = matched_cka(a, b, "linear", seed=args.seed)
    shown = linear.to_dict()
    if args.kernel == "rbf":
        rbf = matched_cka(a, b, "rbf", seed=args.seed)
        shown = {**shown, **rbf.to_dict(), "linear_cka": linear.cka}
    if args.json:
        print(dumps(shown))
        return 0
    for kernel in ("linear", "rbf")[: 2 if args.kernel == "rbf" else 1]:
        print(f"{kernel} CKA: {shown[f'{kernel}_cka']:.4f}")
    print(f"{shown['matched']}; {shown['estimator']}")
    return 0
