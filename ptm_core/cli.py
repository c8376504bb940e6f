"""`python -m ptm_core ...`: the same engine as the app, headless.

Errors end with a non-zero exit and one line on stderr (set PTM_DEBUG=1 for the traceback).
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

from ptm_core.artifacts import atomic_write_bytes
from ptm_core.configs import (PRECISIONS, PROBE_SOLVERS, BackboneConfig, DatasetConfig, ExtractionConfig, ProbeConfig,
                              ProjectionConfig)
from ptm_core.checks import MAX_SEED
from ptm_core.data.imaging import first_line
from ptm_core.data.ingest import clean_stale_extractions
from ptm_core.errors import PTMError
from ptm_core.logs import route_warnings_to_log
from ptm_core.outputs import check_output
from ptm_core.text import csv_safe_frame, dumps, printable

SHOW_SKIPPED = 5


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


def _add_source_args(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--backbone", required=required, help="timm model name, e.g. tf_efficientnet_lite0")
    parser.add_argument("--weights", default="bundled", help="bundled, hub, random, or a path to a checkpoint")
    parser.add_argument("--dataset", required=required, help="mnist5k, digits, shapes[:n=..,classes=..], folder:PATH")
    parser.add_argument("--image-size", type=_positive_int, default=None, help="square input size (default: the model's)")
    parser.add_argument("--limit", type=_positive_int, default=None, help="seeded stratified subset of N images")
    parser.add_argument("--batch-size", type=_positive_int, default=64)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="auto: bf16 autocast where the CPU/GPU has native bf16, else fp32")
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
    _add_finetune_parser(sub)
    _add_map_parser(sub)
    return parser


def _add_map_parser(sub) -> None:
    from ptm_core.projection import METHODS, METRICS

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
    from ptm_core.configs import FINETUNE_MODES, FinetuneConfig

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


def _progress(fraction: float, message: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{fraction:6.1%} {message:<60}")
        sys.stderr.flush()


def _configs(args: argparse.Namespace) -> tuple[DatasetConfig, BackboneConfig, ExtractionConfig]:
    return (DatasetConfig(args.dataset, args.limit),
            BackboneConfig(args.backbone, args.weights, args.init_seed),
            ExtractionConfig(args.image_size, args.batch_size, args.device, precision=args.precision))


def _cmd_models(args: argparse.Namespace) -> int:
    from ptm_core.backbones import catalog, model_card

    names = catalog(args.filter)
    rows = [model_card(n).to_dict() if args.card else {"name": n} for n in names]
    if args.json:
        print(dumps(rows))
    else:
        for row in rows:
            print("\t".join(str(v) for v in row.values()))
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from ptm_core.data import list_datasets

    rows = [{"name": e.name, "takes_argument": e.takes_argument, "description": e.description} for e in list_datasets()]
    if args.json:
        print(dumps(rows))
    else:
        for row in rows:
            print(f"{row['name'] + (':ARG' if row['takes_argument'] else ''):<12} {row['description']}")
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    from ptm_core.extraction import extract

    out = check_output(args.out, ".npz")
    started = time.perf_counter()
    if args.engine == "ray":
        features = _extract_ray(args)
    else:
        ray_only = [flag for flag, value in (("--address", args.address), ("--workers", args.workers),
                                             ("--gpus-per-worker", args.gpus_per_worker)) if value is not None]
        if ray_only:
            raise PTMError(f"{', '.join(ray_only)} only apply to --engine ray.")
        features = extract(*_configs(args), progress=_progress)  # cached before --out is written
    _write_output(out, features.to_npz, features.key)
    n, dim = features.features.shape
    meta = features.meta
    summary = {"n": n, "dim": dim, "seconds": time.perf_counter() - started, "cache_hit": meta["cache_hit"],
               "images_per_s": meta.get("images_per_s"), "out": args.out, "key": features.key,
               "precision": meta.get("precision"), "batchnorms_folded": meta.get("batchnorms_folded"),
               **_skipped(meta)}
    speed = "cache" if summary["cache_hit"] else f"{summary['images_per_s']:.0f} img/s"
    speed += f", {meta.get('precision_label', meta.get('precision', 'fp32'))}"
    _report_skipped(features.meta, args.json)
    print(dumps(summary) if args.json else f"{n} x {dim} features -> {printable(args.out)} ({speed})")
    return 0


def _extract_ray(args: argparse.Namespace):
    from ptm_core.ray_engine import RayOptions, extract_ray

    options = RayOptions(args.address, args.workers or 1, args.gpus_per_worker)
    return extract_ray(*_configs(args), options, progress=_progress)  # shards kept by a Ctrl-C; rerun resumes


def _skipped(meta: dict) -> dict:
    return {"n_skipped": int(meta.get("n_skipped") or 0), "skipped": meta.get("skipped") or []}


def _report_skipped(meta: dict, as_json: bool) -> None:
    """Skipped files are promised as "skipped, not fatal": the count and the first few go to stderr."""
    info = _skipped(meta)
    n, entries = info["n_skipped"], info["skipped"]
    if n and not as_json:
        shown = "; ".join(f"{printable(path)}: {printable(reason)}" for path, reason in entries[:SHOW_SKIPPED])
        more = f" (+{n - SHOW_SKIPPED} more)" if n > SHOW_SKIPPED else ""
        print(f"skipped {n} file{'s' * (n != 1)}: {shown}{more}", file=sys.stderr)


def _write_output(out: Path, write, key: str) -> None:
    """Write --out; if that fails now, say that the computed result is safe in the cache."""
    try:
        write(out)
    except OSError as exc:
        raise PTMError(f"Could not write {out} ({exc.strerror or exc}); the result is kept in the cache "
                       f"(key {key}): run the same command with another --out to get it instantly.") from None


def _load_features(args: argparse.Namespace):
    from ptm_core.extraction import extract
    from ptm_core.feature_files import read_features_file

    if args.features:
        features = read_features_file(args.features)
    elif args.backbone and args.dataset:
        features = extract(*_configs(args), progress=_progress)
    else:
        raise PTMError(f"{args.command} needs --features FILE.npz, or --backbone and --dataset.")
    return features


def _cmd_probe(args: argparse.Namespace) -> int:
    from ptm_core.probes import run_linear_probe

    features = _load_features(args)
    if args.method == "knn":
        from ptm_core.configs import KNNConfig
        from ptm_core.knn import run_knn_probe

        knn = run_knn_probe(features.features, features.labels, KNNConfig(args.k, args.temperature, args.seed))
        _report_skipped(features.meta, args.json)
        print(dumps({**knn.summary(), **_skipped(features.meta)}) if args.json else
              f"k-NN test accuracy {knn.test_accuracy:.4f} (k={knn.k}, T={knn.temperature:g}, "
              f"{knn.n_train} train / {knn.n_test} test)")
        return 0
    result = run_linear_probe(features.features, features.labels, ProbeConfig(seed=args.seed, solver=args.solver),
                              device=args.device)
    summary = {**result.summary(), **_skipped(features.meta)}
    _report_skipped(features.meta, args.json)
    print(dumps(summary) if args.json else
          f"test accuracy {result.test_accuracy:.4f} (C={result.best_C:g}, {result.n_train} train / {result.n_test} test; "
          f"{result.solver}, {result.seconds:.1f} s)")
    return 0


def _cmd_map(args: argparse.Namespace) -> int:
    from ptm_core.explore import compute_map
    from ptm_core.projection import validate
    from ptm_core.tables import point_frame

    out = check_output(args.out, ".csv")
    config = ProjectionConfig(method=args.method, n_components=args.dims, n_neighbors=args.n_neighbors,
                              min_dist=args.min_dist, metric=args.metric, seed=args.seed, perplexity=args.perplexity)
    validate(config, 4)  # settings first: never extract, then refuse the map
    features = _load_features(args)
    result = compute_map(features, config)
    frame = point_frame(features, None, result.coords)  # the same rows as the app's map export
    _write_output(out, lambda path: atomic_write_bytes(path, csv_safe_frame(frame).to_csv(index=False).encode()),
                  features.key)
    f = result.faithfulness
    summary = {"out": args.out, "method": args.method, "dims": args.dims, "seconds": result.meta.get("seconds"),
               "cache_hit": result.meta.get("cache_hit"), **{k: f[k] for k in ("trustworthiness", "knn_accuracy_features",
                                                                              "knn_accuracy_map", "pca_variance_2d", "summary")}}
    _report_skipped(features.meta, args.json)
    print(dumps({**summary, **_skipped(features.meta)}) if args.json else
          f"{len(frame)} points -> {printable(args.out)}\n{f['summary']}")
    return 0


def _step_progress(record: dict) -> None:
    if record.get("phase") == "linear-probe":
        _progress(record.get("run_fraction", 0.0), "fitting the linear probe for the head")
    elif record.get("total_steps"):
        loss = f"loss {record['train_loss']:.3f}" if record.get("phase") == "train" else ""
        val = f" val {record['val_accuracy']:.3f}" if record.get("val_accuracy") is not None else ""
        fraction = record.get("run_fraction", record["step"] / record["total_steps"])
        _progress(fraction, f"epoch {record['epoch']} step {record['step']} {loss}{val}")


def _first_interrupt_stops() -> threading.Event:
    """First Ctrl-C ends training early and keeps the best checkpoint; a second one aborts."""
    stop = threading.Event()

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        sys.stderr.write("\nstopping after this step (Ctrl-C again to abort)\n")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
    return stop


def _cmd_finetune(args: argparse.Namespace) -> int:
    from ptm_core.configs import FinetuneConfig
    from ptm_core.finetune import finetune

    data, backbone, _ = _configs(args)
    config = FinetuneConfig(mode=args.mode, epochs=args.epochs, lr_head=args.lr_head, lr_backbone=args.lr_backbone,
                            batch_size=args.batch_size, image_size=args.image_size, augment=not args.no_augment,
                            last_n=args.last_n, seed=args.seed, split_seed=args.seed, precision=args.precision)
    stop = _first_interrupt_stops()
    result = finetune(data, backbone, config, on_step=_step_progress, cancelled=stop.is_set, device=args.device)
    skipped = {"n_skipped": len(result.skipped), "skipped": [list(e) for e in result.skipped[:200]]}
    summary = {k: v for k, v in result.summary().items() if k != "val_curve"} | skipped
    _report_skipped(skipped, args.json)
    print(dumps(summary) if args.json else
          f"test accuracy {result.test_accuracy:.4f} (mode {args.mode}, best epoch {result.best_epoch}, "
          f"{result.seconds:.0f} s, {result.precision}{', stopped early' if result.stopped_early else ''}) "
          f"-> {result.checkpoint}")
    return 0


COMMANDS = {"models": _cmd_models, "datasets": _cmd_datasets, "extract": _cmd_extract, "probe": _cmd_probe,
            "finetune": _cmd_finetune, "map": _cmd_map}


def _use_data_dir(path: str | None) -> None:
    from ptm_core.paths import set_data_dir

    if path:
        set_data_dir(path)  # a PTMError naming the folder when it cannot be one


def main(argv: list[str] | None = None) -> int:
    # Building the parser imports sklearn & co.; their warnings wait here until the log is set up.
    with warnings.catch_warnings(record=True) as early:
        warnings.simplefilter("default")
        args = build_parser().parse_args(argv)
    try:
        _use_data_dir(args.data_dir)
        route_warnings_to_log(early)
        clean_stale_extractions()  # a killed run's half-written zip extraction
        return COMMANDS[args.command](args)
    except PTMError as exc:
        if os.environ.get("PTM_DEBUG"):
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("PTM_DEBUG"):
            traceback.print_exc()
        print(f"error: {type(exc).__name__}: {printable(first_line(exc))}", file=sys.stderr)
        return 1
    finally:
        if sys.stderr.isatty():
            sys.stderr.write("\n")
