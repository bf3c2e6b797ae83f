"""Benchmark (not a test): the full train → gate → store run at growing data sizes, new search vs exhaustive.

Rows are drawn with replacement from a real ``label,length,punct`` file (the
shared 1k sample when SPAMOPS_REAL_DATA is set, else the bundled demo data), so
they follow the real joint distribution.  Each size runs ``spamops train`` in a
fresh process and reports wall time, µs per row, peak resident memory, the chosen
parameters and the held-out spam F1, for

* ``search``: today's code path (the exact grid search priced by distinct rows), and
* ``exhaustive``: the same run with scikit-learn's ``GridSearchCV`` doing the search
  (what spamops did before), for sizes up to ``--exhaustive-max`` rows,

so the ratio is measured side by side in one run.  The machine's load average is
printed with the table, and each run's CPU seconds (user + system) next to its wall time:
on a shared machine wall times are only comparable within a run.
With ``--serve-check`` the predictor's artifact load and decision table build are timed
for the model of the largest size.

Usage: python scripts/bench_train.py [--sizes 5000 100000 1000000] [--exhaustive-max 100000] [--serve-check]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

from spamops.features import LABELS
from spamops.training.data import load_dataset
from spamops.training.demo_data import demo_data_path


def default_source() -> Path:
    real = os.environ.get("SPAMOPS_REAL_DATA")
    if real and (Path(real) / "smsspamcollection-1k.csv").is_file():
        return Path(real) / "smsspamcollection-1k.csv"
    return demo_data_path()


def write_sample(source: Path, rows: int, out: Path, seed: int = 0) -> None:
    """``rows`` rows resampled from ``source`` as a numeric CSV, written in chunks."""
    data = load_dataset([str(source)])
    lines = [f"{LABELS[label]},{int(x[0])},{int(x[1])}\n" for x, label in zip(data.X, data.y, strict=True)]
    rng = np.random.default_rng(seed)
    with out.open("w") as fh:
        fh.write("label,length,punct\n")
        for start in range(0, rows, 1_000_000):
            pick = rng.integers(0, len(lines), size=min(1_000_000, rows - start))
            fh.write("".join(lines[i] for i in pick))


# The child runs the real CLI.  For "exhaustive" it swaps only the search for GridSearchCV,
# exactly as train.fit did before the distinct-row search.
_CHILD = """
import resource, sys
mode = sys.argv[1]
if mode == "exhaustive":
    import warnings
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedKFold
    from spamops.training import pipeline, train
    from spamops.training.search import build_pipeline, grid

    def exhaustive_fit(split, cfg, progress=None):
        g = grid(cfg, len(split.y_train))
        search = GridSearchCV(build_pipeline(), g, scoring=cfg.scoring, n_jobs=cfg.n_jobs, refit=True,
                              cv=StratifiedKFold(n_splits=cfg.cv_folds, shuffle=True, random_state=cfg.seed),
                              error_score="raise")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            search.fit(split.X_train, split.y_train)
        params = {k.removeprefix("knn__"): v for k, v in search.best_params_.items()}
        return train.TrainResult(search.best_estimator_, params, float(search.best_score_), len(ParameterGrid(g)))

    pipeline.fit = exhaustive_fit
from spamops.cli import main
code = main(sys.argv[2:])
usage = resource.getrusage(resource.RUSAGE_SELF)
print(usage.ru_utime + usage.ru_stime, usage.ru_maxrss, file=sys.stderr)
sys.exit(code)
"""

_SERVE_CHECK = """
import json, resource, sys, time
from spamops.serving.artifact import load_artifact
from spamops.serving.lookup import DecisionTable, grid_bounds
from spamops.serving.settings import ServingSettings
s = ServingSettings()
t0 = time.perf_counter()
artifact = load_artifact(sys.argv[1])
t1 = time.perf_counter()
bounds = grid_bounds(artifact.feature_statistics, s.table_max_length, s.table_max_punct, s.table_max_cells)
table = DecisionTable(artifact.pipeline, *bounds)
t2 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "table_s": t2 - t1, "cells": table.cells,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_once(mode: str, csv: Path, store: Path) -> dict:
    """One fresh ``spamops train`` process: wall seconds, peak RSS, exit code, chosen params, held-out F1."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, "train", "--data", str(csv), "--store", str(store), "--quiet", "--json"],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 3):
        sys.exit(f"{mode} train failed on {csv}: {proc.stderr.strip()}")
    out = json.loads(proc.stdout)
    card = json.loads((store / "spam" / out["version"] / "model-card.json").read_text())
    cpu_s, peak_kib = proc.stderr.strip().splitlines()[-1].split()
    return {
        "seconds": elapsed,
        "cpu_s": float(cpu_s),
        "peak_mib": int(peak_kib) / 1024,
        "code": proc.returncode,
        "params": card["params"],
        "spam_f1": card["metrics"]["spam_f1"],
        "version_dir": store / "spam" / out["version"],
    }


def serve_check(version_dir: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _SERVE_CHECK, str(version_dir)], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"serve check failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def _params(p: dict) -> str:
    return f"k={p['n_neighbors']} {p['weights']} p={p['p']}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[5_000, 100_000, 1_000_000])
    parser.add_argument("--exhaustive-max", type=int, default=100_000, help="largest size also run with GridSearchCV")
    parser.add_argument("--source", type=Path, default=None)
    parser.add_argument("--serve-check", action="store_true", help="time the predictor's load for the largest model")
    args = parser.parse_args()
    source = args.source or default_source()
    load_before = os.getloadavg()
    rows = []
    served = None
    with tempfile.TemporaryDirectory(prefix="spamops-bench-") as tmp:
        for n in sorted(args.sizes):
            csv = Path(tmp) / f"rows-{n}.csv"
            write_sample(source, n, csv)
            modes = ["search"] + (["exhaustive"] if n <= args.exhaustive_max else [])
            for mode in modes:
                r = run_once(mode, csv, Path(tmp) / f"store-{mode}-{n}")
                rows.append((n, mode, r))
                print(
                    f"{n:>10,} rows {mode:>10}: {r['seconds']:7.1f} s ({r['cpu_s']:.1f} s CPU), peak RSS {r['peak_mib']:6.0f} MiB, "
                    f"{_params(r['params'])}, spam F1 {r['spam_f1']:.4f}",
                    file=sys.stderr,
                    flush=True,
                )
            if args.serve_check and n == max(args.sizes):
                served = serve_check(rows[-len(modes)][2]["version_dir"])
            csv.unlink()
    by_size = {(n, mode): r for n, mode, r in rows}
    table = []
    for n, mode, r in rows:
        ref = by_size.get((n, "exhaustive"))
        table.append(
            (
                f"{n:,}",
                mode,
                f"{r['seconds']:.1f}",
                f"{r['cpu_s']:.1f}",
                f"{r['seconds'] / n * 1e6:.1f}",
                f"{r['peak_mib']:.0f}",
                _params(r["params"]),
                f"{r['spam_f1']:.4f}",
                {0: "promoted", 3: "refused"}[r["code"]],
                f"{ref['seconds'] / r['seconds']:.1f}x" if ref and mode == "search" else "",
                ("same" if ref["params"] == r["params"] and ref["spam_f1"] == r["spam_f1"] else "DIFFERENT")
                if ref and mode == "search"
                else "",
            )
        )
    print(
        f"source distribution: {source.name}; {os.cpu_count()} CPUs; load average "
        f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print(
        tabulate(
            table,
            headers=(
                "rows",
                "search",
                "wall s",
                "CPU s",
                "µs/row",
                "peak RSS MiB",
                "chosen params",
                "held-out spam F1",
                "gate",
                "speed-up vs exhaustive",
                "params & F1 vs exhaustive",
            ),
            tablefmt="github",
        )
    )
    if served:
        print(
            f"\npredictor on the {max(args.sizes):,}-row model: artifact load {served['load_s']:.1f} s, "
            f"decision table {served['cells']:,} cells in {served['table_s']:.1f} s, peak RSS {served['rss_mib']:.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
