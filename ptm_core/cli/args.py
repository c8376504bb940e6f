"""The CLI's arguments: one parser per command, value checks that fail as one line, never a traceback."""
from __future__ import annotations

import argparse
import math

from ptm_core.base.checks import MAX_SEED
from ptm_core.base.configs import PRECISIONS, PROBE_SOLVERS, ProbeConfig, ProjectionConfig
from ptm_core.base.text import printable
from ptm_core.cli.similarity import add_similarity_parser
from ptm_core.cli.quality import add_quality_parser


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake prints one usage line and the error, not the whole usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"usage: {self.prog} [options] (see --help)\nerror: {printable(message)}\n")


def _whole(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {printable(text)!r}") from None


def _positive_int(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _seed(text: str) -> int:
    value = _whole(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to {MAX_SEED}, got {value}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {printable(text)!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {value:g}")
    return value


def _non_negative_float(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {value:g}")
    return value


def _budgets(text: str) -> tuple[int | None, ...]:
    """"1,2,5,all": labels per class for label efficiency (all: every training image)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("expected budgets such as 1,2,5,10,25,all")
    return tuple(None if part.lower() == "all" else _positive_int(part) for part in parts)


def _add_source_args(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--backbone", required=required, help="timm model name, e.g. tf_efficientnet_lite0")
    parser.add_argument("--weights", default="bundled", help="bundled, hub, random, or a path to a checkpoint")
    parser.add_argument("--dataset", required=required,
                        help="mnist5k, digits, fashion-mnist[:train|test], shapes[:n=..,classes=..], folder:PATH")
    parser.add_argument("--image-size", type=_positive_int, default=None, help="square input size (default: the model's)")
    parser.add_argument("--limit", type=_positive_int, default=None, help="seeded stratified subset of N images")
    parser.add_argument("--batch-size", type=_positive_int, default=64)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="auto: fp32, or bf16 where the CPU/GPU runs it natively and it measured faster here; "
                             "fp32/bf16: that precision (bf16 is emulated, slow, without native support)")
    parser.add_argument("--runtime", default="auto", choices=["auto", "torch", "openvino"],
                        help="auto: the fastest measured here of PyTorch and OpenVINO (a CPU, where installed; "
                             "converted once per model); fp32 features are the same either way, bf16 ones differ")
    parser.add_argument("--init-seed", type=_seed, default=0, help="seed for --weights random")


def _add_engine_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default="local", choices=["local", "ray"],
                        help="local: this process; ray: a Ray cluster (pip install -r requirements-scale.txt)")
    parser.add_argument("--address", default=None, help="Ray head, e.g. 10.0.0.5:6379 (default: a local Ray)")
    parser.add_argument("--workers", type=_positive_int, default=None, help="Ray model actors (default 1)")
    parser.add_argument("--gpus-per-worker", type=_non_negative_float, default=None,
                        help="GPUs per Ray actor (default: share the cluster's GPUs, if any)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m ptm_core", description="PTM Explorer engine, headless.")
    parser.add_argument("--data-dir", help="cache and store directory (default $PTM_DATA_DIR or ~/.cache/ptm-explorer)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    models = sub.add_parser("models", help="list timm backbones with pretrained weights")
    models.add_argument("--filter", default="", help="glob, e.g. '*efficientnet*'")
    models.add_argument("--card", action="store_true", help="also build each model and print its card")
    models.add_argument("--bundled", action="store_true",
                        help="only the backbones whose weights ship in installed packages (offline), with what they are")
    models.add_argument("--json", action="store_true")

    datasets = sub.add_parser("datasets", help="list dataset specs")
    datasets.add_argument("--json", action="store_true")

    extract = sub.add_parser("extract", help="extract pooled pre-logit features to an npz")
    _add_source_args(extract, required=True)
    extract.add_argument("--out", required=True, help="FILE.npz")
    extract.add_argument("--json", action="store_true")
    _add_engine_args(extract)

    probe = sub.add_parser("probe", help="linear probe on features (an npz, or extracted on the fly)")
    probe.add_argument("--features", help="npz written by extract")
    _add_source_args(probe, required=False)
    probe.add_argument("--seed", type=_seed, default=0, help="split seed")
    probe.add_argument("--method", default="logreg", choices=["logreg", "knn"],
                       help="logreg: linear probe with a C sweep; knn: DINO-style weighted k-NN")
    probe.add_argument("--k", type=_positive_int, default=20, help="neighbours for --method knn")
    probe.add_argument("--temperature", type=_positive_float, default=0.07, help="vote temperature for --method knn")
    probe.add_argument("--solver", default=ProbeConfig().solver, choices=PROBE_SOLVERS,
                       help="torch: every C at once as a batch of heads (a GPU if --device allows); "
                            "sklearn: one LogisticRegression per C (the reference)")
    probe.add_argument("--json", action="store_true")
    _add_predict_parser(sub)
    _add_finetune_parser(sub)
    _add_map_parser(sub)
    _add_versus_parser(sub)
    _add_eval_parsers(sub)
    _add_bench_parser(sub)
    add_similarity_parser(sub)
    add_quality_parser(sub, _add_source_args, _seed, _positive_int, _positive_float)
    return parser


def _names(text: str) -> tuple[str, ...]:
    """"A,B,C": backbone names, each checked against timm's catalog by the command (before any work)."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise argparse.ArgumentTypeError("expected backbone names such as tf_efficientnet_lite0,resnet18")
    return names


def _add_bench_parser(sub) -> None:
    bench = sub.add_parser("bench", help="leaderboard: per backbone (and random init), the linear probe and k-NN on "
                                         "seeded stratified splits, with a 95 %% interval over seeds")
    bench.add_argument("--backbones", type=_names, required=True, help="comma-separated timm names")
    bench.add_argument("--weights", default="bundled", help="bundled, hub or random: the weights of every backbone")
    bench.add_argument("--include-random", action="store_true", help="also each backbone with random weights")
    bench.add_argument("--dataset", required=True, help="mnist5k, digits, shapes[:n=..,classes=..], folder:PATH")
    bench.add_argument("--limit", type=_positive_int, default=None, help="seeded stratified subset of N images")
    bench.add_argument("--image-size", type=_positive_int, required=True, help="square input size")
    bench.add_argument("--seeds", type=_positive_int, default=3,
                       help="seeded splits per backbone, seeds 0..K-1; with 3 or more the interval is Student's t over "
                            "them, with fewer a bootstrap over the test images (default 3)")
    bench.add_argument("--out", required=True, help="DIR: DIR/runs/*.json and DIR/leaderboard.csv; a rerun resumes")
    bench.add_argument("--batch-size", type=_positive_int, default=64)
    bench.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    bench.add_argument("--precision", default="auto", choices=PRECISIONS)
    bench.add_argument("--runtime", default="auto", choices=["auto", "torch", "openvino"])
    bench.add_argument("--init-seed", type=_seed, default=0, help="seed of the random weights")
    bench.add_argument("--k", type=_positive_int, default=20, help="neighbours for k-NN")
    bench.add_argument("--temperature", type=_positive_float, default=0.07, help="vote temperature for k-NN")
    bench.add_argument("--json", action="store_true")


def _add_eval_parsers(sub) -> None:
    # No defaults from ptm_core.evals here: importing it loads torch, and every command builds this parser.
    eff = sub.add_parser("efficiency", help="label efficiency: linear probe and k-NN with k labels per class, "
                                            "mean and 95 %% t-interval over seeded draws")
    eff.add_argument("--features", help="npz written by extract")
    _add_source_args(eff, required=False)
    eff.add_argument("--seed", type=_seed, default=0, help="split seed (the test split every draw is scored on)")
    eff.add_argument("--draws", type=_positive_int, default=None,
                     help="seeded draws of the labelled images per budget (seeds 0..N-1); a 95 %% t-interval "
                          "needs several (default: the lab's, five)")
    eff.add_argument("--ks", type=_budgets, default=None,
                     help="labels per class (default: the lab's, 1,2,5,10,25,all)")
    eff.add_argument("--k", type=_positive_int, default=20, help="neighbours for k-NN")
    eff.add_argument("--temperature", type=_positive_float, default=0.07, help="vote temperature for k-NN")
    eff.add_argument("--json", action="store_true")

    layers = sub.add_parser("layers", help="layer sweep: a linear probe on each stage's pooled output")
    _add_source_args(layers, required=True)
    layers.add_argument("--seed", type=_seed, default=0, help="split seed")
    layers.add_argument("--json", action="store_true")

    baselines = sub.add_parser("baselines", help="raw pixels (32x32 grey) and, with --backbone, the same "
                                                 "architecture with random weights, each with a linear probe")
    _add_source_args(baselines, required=False)
    baselines.add_argument("--seed", type=_seed, default=0, help="split seed (as for probe)")
    baselines.add_argument("--json", action="store_true")


def _add_predict_parser(sub) -> None:
    predict = sub.add_parser("predict", help="what a pretrained classifier thinks one image is: its top classes")
    predict.add_argument("--backbone", required=True, help="a model with a classifier head, e.g. tf_efficientnet_lite0")
    predict.add_argument("--weights", default="bundled", help="bundled, hub, or a path to a checkpoint")
    predict.add_argument("--image", required=True, help="an image file (JPEG, PNG, ...)")
    predict.add_argument("--top", type=_positive_int, default=5, help="how many classes to show")
    predict.add_argument("--init-seed", type=_seed, default=0, help=argparse.SUPPRESS)
    predict.add_argument("--json", action="store_true")


def _add_versus_parser(sub) -> None:
    versus = sub.add_parser("versus", help="the same linear probe on two feature sets of the same images, "
                                           "compared image by image (McNemar's exact test)")
    versus.add_argument("--a", required=True, metavar="FEATURES_A", help="npz written by extract")
    versus.add_argument("--b", required=True, metavar="FEATURES_B", help="npz of the same images, another extractor")
    versus.add_argument("--seed", type=_seed, default=0, help="split seed (the same split for both)")
    versus.add_argument("--solver", default=ProbeConfig().solver, choices=PROBE_SOLVERS)
    versus.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                        help="where the torch solver runs (speed only)")
    versus.add_argument("--json", action="store_true")


def _add_map_parser(sub) -> None:
    from ptm_core.maps.projection import METHODS, METRICS

    d = ProjectionConfig()
    mp = sub.add_parser("map", help="2-D/3-D map of features as CSV, with how faithful it is")
    mp.add_argument("--features", help="npz written by extract")
    _add_source_args(mp, required=False)
    mp.add_argument("--method", default=d.method, choices=METHODS)
    mp.add_argument("--dims", type=int, default=d.n_components, choices=[2, 3])
    mp.add_argument("--n-neighbors", type=_positive_int, default=d.n_neighbors, help="UMAP")
    mp.add_argument("--min-dist", type=_non_negative_float, default=d.min_dist, help="UMAP")
    mp.add_argument("--perplexity", type=_positive_float, default=d.perplexity, help="t-SNE")
    mp.add_argument("--metric", default=d.metric, choices=METRICS)
    mp.add_argument("--seed", type=_seed, default=0)
    mp.add_argument("--out", required=True, help="FILE.csv: row, id, class, x, y[, z]")
    mp.add_argument("--json", action="store_true")


def _add_finetune_parser(sub) -> None:
    from ptm_core.base.configs import FINETUNE_MODES, FinetuneConfig

    d = FinetuneConfig()
    ft = sub.add_parser("finetune", help="fine-tune a backbone on the probes' train split, test once")
    _add_source_args(ft, required=True)
    ft.set_defaults(image_size=d.image_size, batch_size=d.batch_size)
    ft.add_argument("--mode", default=d.mode, choices=FINETUNE_MODES)
    ft.add_argument("--epochs", type=_positive_int, default=d.epochs)
    ft.add_argument("--lr-head", type=_positive_float, default=d.lr_head)
    ft.add_argument("--lr-backbone", type=_non_negative_float, default=d.lr_backbone)
    ft.add_argument("--last-n", type=_positive_int, default=d.last_n, help="trainable blocks for --mode last-n")
    ft.add_argument("--no-augment", action="store_true", help="no random resized crop / flip")
    ft.add_argument("--seed", type=_seed, default=0, help="split seed (as for probe) and init/shuffle seed")
    ft.add_argument("--json", action="store_true")
