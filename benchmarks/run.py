"""Run every benchmark that has `rows()` and write benchmarks/RESULTS.md.

    python benchmarks/run.py [--quick] [--only MODULE[,MODULE]]

Each module's `rows(quick)` returns one dict per figure: figure, ours, baseline, ratio (higher = better,
the figure text says what it is), target, met, note; this script adds `cpu`: the CPU and the flags that decide
the fast paths (AVX2, AVX-512, native bf16), so a row from one kind of machine is never read as another's. The modules run one after another, never side by
side, so each has the machine to itself (apart from whatever else the machine is running: see the load).
A module that is missing or fails gets a row saying so instead of stopping the others.
`--only` runs the named modules and merges their rows into the existing RESULTS.md table: a row with
the same figure text is replaced, a new one appended, every other row kept, and a line under the
header says which rows came from which later command.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

MODULES = ("extraction_speed", "precision_paths", "finetune_speed", "probe_sweep", "first_umap", "browser_points",
           "large_map", "first_run", "eta_accuracy", "tour_claims", "bench_speed", "cka_heatmap",
           "cam_speed", "cluster_labels", "own_images_speed")
COLUMNS = ("figure", "cpu", "ours", "baseline", "ratio", "target", "met", "note")


def cpu_cell() -> str:
    """The row's machine in a few words, e.g. 'AMD EPYC, 2 cores: avx2 avx512f avx512_bf16' (the flags that decide
    the fast paths, as the engine reads them: ptm_core.base.capabilities)."""
    from ptm_core.base.capabilities import capabilities

    caps = capabilities()
    return f"{caps.cpu_name}, {caps.cores} cores: {' '.join(caps.cpu_flags) or 'no AVX2'}"


def machine() -> list[str]:
    import timm
    import torch

    from ptm_core.base.capabilities import FLAGS_OF_INTEREST, capabilities

    caps = capabilities()
    flags, absent = caps.cpu_flags, [f for f in FLAGS_OF_INTEREST if f not in caps.cpu_flags]
    return [f"- cores: {caps.cores}; CPU: {caps.cpu_name}",
            f"- CPU flags: {', '.join(flags) or 'none of those checked'} (absent: {', '.join(absent) or 'none'})",
            f"- torch {torch.__version__} ({torch.get_num_threads()} threads), timm {timm.__version__}, "
            f"Python {platform.python_version()}",
            f"- load average at the start: {os.getloadavg()[0]:.1f}"]


def _error_row(name: str, note: str) -> dict:
    return {"figure": name, "cpu": cpu_cell(), "ours": "-", "baseline": "-", "ratio": float("nan"), "target": "-",
            "met": False, "note": note}


def run_module(name: str, quick: bool) -> list[dict]:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return [_error_row(name, "skipped: module not present")]
    if not hasattr(module, "rows"):
        return [_error_row(name, "skipped: no rows()")]
    started = time.perf_counter()
    try:
        rows = module.rows(quick=quick)
    except Exception as exc:  # one broken benchmark must not cost the others' figures
        traceback.print_exc()
        return [_error_row(name, f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")]
    print(f"{name}: {len(rows)} figure(s) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return [dict(row, cpu=row.get("cpu") or cpu_cell()) for row in rows]


def _cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "-" if value != value else f"{value:.2f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def merge(text: str, rows: list[dict], note: str) -> str:
    """RESULTS.md text with `rows` merged into its table by figure text and CPU (a row of another kind of CPU is
    kept beside it), and `note` added above the table."""
    lines = text.rstrip("\n").split("\n")
    new = {(_cell(row["figure"]), _cell(row["cpu"])): "| " + " | ".join(_cell(row.get(c, "")) for c in COLUMNS) + " |"
           for row in rows}
    out, seen = [], set()
    for line in lines:
        figure = tuple(line.split(" | ")[:2]) if line.startswith("| ") else None
        figure = (figure[0][2:], figure[1]) if figure and len(figure) == 2 else None
        if figure in new:
            out.append(new[figure])
            seen.add(figure)
        else:
            out.append(line)
    out += [line for figure, line in new.items() if figure not in seen]
    first_row = next(i for i, line in enumerate(out) if line.startswith("| figure"))
    return "\n".join(out[:first_row] + [note, ""] + out[first_row:]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, one repeat: a smoke run")
    parser.add_argument("--only", help="comma-separated modules; their rows are merged into the existing --out")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.only:
        names = args.only.split(",")
        rows = [row for name in names for row in run_module(name, args.quick)]
        command = f"python benchmarks/run.py --only {args.only}" + (" --quick" if args.quick else "")
        note = f"Rows of {', '.join(names)}: `{command}`, {now}, load average at the start {os.getloadavg()[0]:.1f}."
        out = Path(args.out)
        out.write_text(merge(out.read_text(), rows, note) if out.exists() else table(rows) + "\n")
        print(table(rows))
        return
    header = machine()
    rows = [row for name in MODULES for row in run_module(name, args.quick)]
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    text = "\n".join(["# Benchmark results", "", f"`{command}`, {now}", "", *header, "",
                      "ratio: higher is better; each figure says what its ratio is.", "", table(rows), ""])
    Path(args.out).write_text(text)
    print(table(rows))


if __name__ == "__main__":
    main()
