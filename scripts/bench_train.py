"""Benchmark (not a test): the full train → gate → store run at growing data sizes.

Rows are drawn with replacement from a real ``label,length,punct`` file (the
shared 1k sample when SPAMOPS_REAL_DATA is set, else the bundled demo data), so
they follow the real joint distribution.  Each size runs ``spamops train`` in a
fresh process and reports wall time and peak resident memory; the smallest size
is the baseline the others are compared with (time per row, memory ratio).

Usage: python scripts/bench_train.py [--sizes 5000 100000 1000000] [--source CSV]
"""

from __future__ import annotations

import argparse
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
    """``rows`` rows resampled from ``source`` as a numeric CSV."""
    data = load_dataset([str(source)])
    pick = np.random.default_rng(seed).integers(0, len(data.y), size=rows)
    with out.open("w") as fh:
        fh.write("label,length,punct\n")
        for i in pick:
            fh.write(f"{LABELS[data.y[i]]},{int(data.X[i, 0])},{int(data.X[i, 1])}\n")


_CHILD = (
    "import resource, sys\n"
    "from spamops.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def run_once(csv: Path, store: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB and exit code of one fresh ``spamops train`` process."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, "train", "--data", str(csv), "--store", str(store), "--quiet", "--json"],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 3):
        sys.exit(f"train failed on {csv}: {proc.stderr.strip()}")
    peak_kib = int(proc.stderr.strip().splitlines()[-1])
    return elapsed, peak_kib / 1024, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[5_000, 100_000, 1_000_000])
    parser.add_argument("--source", type=Path, default=None)
    args = parser.parse_args()
    source = args.source or default_source()
    sizes = sorted(args.sizes)
    results = []
    with tempfile.TemporaryDirectory(prefix="spamops-bench-") as tmp:
        for n in sizes:
            csv = Path(tmp) / f"rows-{n}.csv"
            write_sample(source, n, csv)
            seconds, peak_mib, code = run_once(csv, Path(tmp) / f"store-{n}")
            results.append((n, seconds, peak_mib, code))
            print(f"{n:>9} rows: {seconds:8.1f} s, peak RSS {peak_mib:7.0f} MiB", file=sys.stderr, flush=True)
    base_n, base_s, base_mem, _ = results[0]
    table = [
        (
            f"{n:,}",
            f"{s:.1f}",
            f"{s / n * 1e6:.1f}",
            f"{(s / n) / (base_s / base_n):.2f}x",
            f"{mem:.0f}",
            f"{mem / base_mem:.2f}x",
            {0: "promoted", 3: "refused"}[code],
        )
        for n, s, mem, code in results
    ]
    print(f"source distribution: {source.name}; baseline = {base_n:,} rows in this run")
    print(
        tabulate(
            table,
            headers=("rows", "wall s", "µs/row", "per-row vs baseline", "peak RSS MiB", "RSS vs baseline", "gate"),
            tablefmt="github",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
