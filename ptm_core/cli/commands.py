"""`python -m ptm_core ...`: the same engine as the app, headless.

Errors end with a non-zero exit and one line on stderr (set PTM_DEBUG=1 for the traceback).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

from ptm_core.base.files import atomic_write_bytes
from ptm_core.cli.args import build_parser
from ptm_core.cli.bench import cmd_bench
from ptm_core.cli.similarity import cmd_similarity
from ptm_core.cli.quality import cmd_quality
from ptm_core.cli.zoo import cmd_predict, print_bundled
from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig, ProbeConfig, ProjectionConfig
from ptm_core.data.imaging import first_line
from ptm_core.data.ingest import clean_stale_extractions
from ptm_core.base.errors import PTMError
from ptm_core.base.logs import route_warnings_to_log
from ptm_core.base.outputs import check_output
from ptm_core.base.text import csv_safe_frame, dumps, printable

SHOW_SKIPPED = 5


def _progress(fraction: float, message: str) -> None:
    if sys.stderr.isatty():
        # A finished bar ends its line: what is printed next starts on its own.
        sys.stderr.write(f"\r{fraction:6.1%} {message:<60}" + ("\n" if fraction >= 1.0 else ""))
        sys.stderr.flush()


def _print_preview(preview) -> None:
    """The answer forming (a terminal only): the probe on the images extracted so far, on its own line."""
    if preview.accuracy is not None:
        sys.stderr.write(f"\r{'':<67}\rpreview: probe {preview.accuracy:.1%} on {preview.n_test} held-out of the "
                         f"{preview.n_done:,}/{preview.n_total:,} images so far\n")


def _configs(args: argparse.Namespace) -> tuple[DatasetConfig, BackboneConfig, ExtractionConfig]:
    return (DatasetConfig(args.dataset, args.limit),
            BackboneConfig(args.backbone, args.weights, args.init_seed),
            ExtractionConfig(args.image_size, args.batch_size, args.device, precision=args.precision,
                             runtime=args.runtime))


def _cmd_models(args: argparse.Namespace) -> int:
    from ptm_core.models.catalog import catalog, model_card

    if args.bundled:
        return print_bundled(args.json)
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

    rows = [{"name": e.name, "takes_argument": e.takes_argument, "description": e.description,
             "unavailable": e.unavailable()} for e in list_datasets()]
    if args.json:
        print(dumps(rows))
    else:
        for row in rows:
            hint = f" [{row['unavailable']}]" if row["unavailable"] else ""
            print(f"{row['name'] + (':ARG' if row['takes_argument'] else ''):<12} {row['description']}{hint}")
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    from ptm_core.features.extraction import extract

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
    _report_not_cached(features.meta)
    _write_output(out, features.to_npz, features.key, features.meta.get("cached") is not False)
    n, dim = features.features.shape
    meta = features.meta
    summary = {"n": n, "dim": dim, "seconds": time.perf_counter() - started, "cache_hit": meta["cache_hit"],
               "images_per_s": meta.get("images_per_s"), "out": args.out, "key": features.key,
               "precision": meta.get("precision"), "runtime": meta.get("runtime"),
               # What computed them, as measured and read back: OpenVINO's own precision, the choice and the machine.
               "openvino_precision": meta.get("openvino_precision"), "path_choice": meta.get("path_choice"),
               "machine": meta.get("machine"), "batchnorms_folded": meta.get("batchnorms_folded"),
               "cached": meta.get("cached") is not False, **_skipped(meta)}
    speed = "cache" if summary["cache_hit"] else f"{summary['images_per_s']:.0f} img/s"
    speed += f", {meta.get('precision_label', meta.get('precision', 'fp32'))}"
    _report_skipped(features.meta, args.json)
    print(dumps(summary) if args.json else f"{n} x {dim} features -> {printable(args.out)} ({speed})")
    return 0


def _extract_ray(args: argparse.Namespace):
    from ptm_core.features.ray_engine import RayOptions, extract_ray

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


def _report_not_cached(meta: dict) -> None:
    """Features delivered but not cached (a full disk, a read-only data folder): one warning line, not an error."""
    if meta.get("cached") is False:
        print(f"warning: the features could not be cached ({printable(str(meta.get('cache_error')))}); "
              f"this run has them, a rerun computes them again", file=sys.stderr)


def _write_output(out: Path, write, key: str, cached: bool = True) -> None:
    """Write --out; if that fails now, say whether the computed result is safe in the cache."""
    try:
        write(out)
    except OSError as exc:
        if not cached:
            raise PTMError(f"Could not write {out} ({exc.strerror or exc}), and the result could not be cached "
                           f"either; free some space and run the command again.") from None
        raise PTMError(f"Could not write {out} ({exc.strerror or exc}); the result is kept in the cache "
                       f"(key {key}): run the same command with another --out to get it instantly.") from None


def _load_features(args: argparse.Namespace):
    from ptm_core.features.extraction import extract
    from ptm_core.features.user_files import read_features_file

    if args.features:
        features = read_features_file(args.features)
    elif args.backbone and args.dataset:
        from ptm_core.features.preview import ProgressivePreview

        preview = ProgressivePreview(_print_preview) if args.command == "probe" and sys.stderr.isatty() else None
        features = extract(*_configs(args), progress=_progress, preview=preview)
        _report_not_cached(features.meta)
    else:
        raise PTMError(f"{args.command} needs --features FILE.npz, or --backbone and --dataset.")
    return features


def _cmd_probe(args: argparse.Namespace) -> int:
    from ptm_core.probes.linear import run_linear_probe

    features = _load_features(args)
    if args.method == "knn":
        from ptm_core.base.configs import KNNConfig
        from ptm_core.probes.knn import run_knn_probe
        from ptm_core.probes.retrieval import retrieval_text

        knn = run_knn_probe(features.features, features.labels, KNNConfig(args.k, args.temperature, args.seed), retrieval=True)
        _report_skipped(features.meta, args.json)
        print(dumps({**knn.summary(), **_skipped(features.meta)}) if args.json else
              f"k-NN test accuracy {knn.test_accuracy:.4f} (k={knn.k}, T={knn.temperature:g}, "
              f"{knn.n_train} train / {knn.n_test} test)\n{retrieval_text(knn.retrieval)}")
        return 0
    result = run_linear_probe(features.features, features.labels, ProbeConfig(seed=args.seed, solver=args.solver),
                              device=args.device)
    from ptm_core.evals.quality import duplicated_in_train  # test images with a near-duplicate in train

    summary = {**result.summary(), "test_near_duplicates": duplicated_in_train(features.features, result.test_indices),
               **_skipped(features.meta)}
    _report_skipped(features.meta, args.json)
    print(dumps(summary) if args.json else
          f"test accuracy {result.test_accuracy:.4f} (C={result.best_C:g}, {result.n_train} train / {result.n_test} test; "
          f"{result.solver}, {result.seconds:.1f} s)\nC: {result.c_rule_text}")
    return 0


def _cmd_versus(args: argparse.Namespace) -> int:
    from ptm_core.evals.versus import probe_versus
    from ptm_core.features.user_files import read_features_file

    result = probe_versus(read_features_file(args.a), read_features_file(args.b),
                    ProbeConfig(seed=args.seed, solver=args.solver), device=args.device)
    summary = result.summary()
    if args.json:
        print(dumps(summary))
        return 0
    words = {"a": "A is better", "b": "B is better", "tie": "A and B cannot be told apart"}[summary["verdict"]]
    for name in ("a", "b"):
        side = summary[name]
        low, high = side["test_accuracy_ci95"]
        print(f"{name.upper()}: test accuracy {side['test_accuracy']:.4f} (95 % CI {low:.4f}-{high:.4f})")
    print(f"{words} on these {summary['n_test']} test images: A alone right on {summary['a_only_right']}, "
          f"B alone on {summary['b_only_right']} (McNemar exact p = {summary['p_value']:.3g})")
    return 0


def _cmd_map(args: argparse.Namespace) -> int:
    from ptm_core.flows.explore import compute_map
    from ptm_core.maps.projection import validate
    from ptm_core.flows.tables import point_frame

    out = check_output(args.out, ".csv")
    config = ProjectionConfig(method=args.method, n_components=args.dims, n_neighbors=args.n_neighbors,
                              min_dist=args.min_dist, metric=args.metric, seed=args.seed, perplexity=args.perplexity)
    validate(config, 4)  # settings first: never extract, then refuse the map
    features = _load_features(args)
    result = compute_map(features, config)
    frame = point_frame(features, None, result.coords)  # the same rows as the app's map export
    _write_output(out, lambda path: atomic_write_bytes(path, csv_safe_frame(frame).to_csv(index=False).encode()),
                  features.key, features.meta.get("cached") is not False)
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
    from ptm_core.base.configs import FinetuneConfig
    from ptm_core.finetune.finetuning import finetune

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


def _ci_text(low: float, high: float) -> str:
    return f"95 % CI {low:.1%}-{high:.1%}"


def _cmd_efficiency(args: argparse.Namespace) -> int:
    from ptm_core.base.configs import KNNConfig
    from ptm_core.evals.label_efficiency import DEFAULT_KS, DEFAULT_SEEDS, run_label_efficiency

    features = _load_features(args)
    seeds = DEFAULT_SEEDS if args.draws is None else tuple(range(args.draws))
    rows = run_label_efficiency(features.features, features.labels, ks=args.ks or DEFAULT_KS, seeds=seeds,
                                probe_config=ProbeConfig(seed=args.seed),
                                knn_config=KNNConfig(args.k, args.temperature, args.seed), progress=_progress)
    _report_skipped(features.meta, args.json)
    if args.json:
        print(dumps({"seeds": list(seeds), "rows": [row.to_dict() for row in rows], **_skipped(features.meta)}))
    for row in rows if not args.json else []:
        how = f"t over {row.draws} draws" if row.interval_kind == "t" else f"Wilson, 1 run on {row.n_test} test images"
        print(f"{'all' if row.k is None else row.k:>4} per class  {row.method:<7} {row.mean:.1%} "
              f"({_ci_text(*row.ci95)}, {how})")
    return 0


def _cmd_layers(args: argparse.Namespace) -> int:
    from ptm_core.evals.layer_sweep import inner_vs_final, run_layer_sweep

    data, backbone, extraction = _configs(args)
    results = run_layer_sweep(data, backbone, extraction, ProbeConfig(seed=args.seed), progress=_progress)
    comparison = inner_vs_final(results)
    if args.json:
        print(dumps({"rows": [r.to_dict() for r in results], "inner_vs_final": comparison}))
        return 0
    for r in results:
        print(f"{r.index:>2} {r.name:<24} {r.dim:>5}-d  {r.test_accuracy:.1%} ({_ci_text(*r.test_accuracy_ci95)}, "
              f"Wilson on {r.n_test} test images)")
    if comparison:
        print(f"{comparison['inner']} scores above {comparison['final']}: McNemar exact p = {comparison['p_value']:.3g} "
              f"({comparison['a_only_right']} vs {comparison['b_only_right']} images only one got right)")
    return 0


def _cmd_baselines(args: argparse.Namespace) -> int:
    from ptm_core.evals.baselines import run_pixel_baseline, run_random_weights_baseline

    if not args.dataset:
        raise PTMError("baselines needs --dataset (and --backbone for the random-weights baseline).")
    data, backbone, extraction = _configs(args)
    results = {"pixels": run_pixel_baseline(data, ProbeConfig(seed=args.seed)),
               "random": run_random_weights_baseline(data, backbone, extraction, ProbeConfig(seed=args.seed),
                                                     _progress) if args.backbone else None}
    if args.json:
        print(dumps({name: None if r is None else {k: v for k, v in r.summary().items() if k != "val_curve"}
                     for name, r in results.items()}))
    for name, r in results.items() if not args.json else []:
        if r is not None:
            print(f"{name:<7} test accuracy {r.test_accuracy:.1%} ({_ci_text(*r.test_accuracy_ci95)}, Wilson on "
                  f"{r.n_test} test images)")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    return cmd_bench(args, progress=_progress)


COMMANDS = {"models": _cmd_models, "datasets": _cmd_datasets, "extract": _cmd_extract, "probe": _cmd_probe,
            "finetune": _cmd_finetune, "map": _cmd_map, "versus": _cmd_versus, "efficiency": _cmd_efficiency,
            "layers": _cmd_layers, "baselines": _cmd_baselines, "predict": cmd_predict, "bench": _cmd_bench,
            "similarity": cmd_similarity, "quality": lambda args: cmd_quality(args, _load_features)}


def _use_data_dir(path: str | None) -> None:
    from ptm_core.base.paths import set_data_dir

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
