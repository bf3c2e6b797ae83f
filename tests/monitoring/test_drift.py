"""Data drift over all replicas: real data replayed through two predictors, scraped by a real Prometheus.

The expected values are computed here, offline, from the rows sent and the card's
reference counts, with the PSI formula written out again (not spamops' code).
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from spamops.features import FEATURE_BUCKETS
from spamops_dev.daemon import free_port, wait_for

pytestmark = pytest.mark.realdata

EPS = 1e-4


def offline_counts(values, bounds) -> list[int]:
    """Prometheus ``le`` buckets: value <= bound, the last entry above every bound."""
    counts = [0] * (len(bounds) + 1)
    for v in values:
        counts[next((i for i, b in enumerate(bounds) if v <= b), len(bounds))] += 1
    return counts


def offline_psi(reference, production) -> float:
    q = [max(c / sum(reference), EPS) for c in reference]
    p = [max(c / sum(production), EPS) for c in production]
    return sum((pi - qi) * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


@pytest.fixture(scope="module")
def real_rows(real_data) -> list[list[int]]:
    with open(real_data / "smsspamcollection-1k.csv", newline="") as fh:
        return [[int(r["length"]), int(r["punct"])] for r in csv.DictReader(fh)]


def send(predictor, rows) -> None:
    for start in range(0, len(rows), 50):
        reply = predictor.post_json("/v1/models/spam:predict", {"instances": rows[start : start + 50]})
        assert reply.status == 200, reply.body


def monitor_json(cli, prometheus, store, *extra) -> dict:
    res = cli("monitor", "--prometheus", prometheus.url, "--store", store, "--window", "30m", "--json", *extra)
    assert res.code == 0, res.err
    return res.json()


def length_of(doc, version) -> dict:
    [report] = [v for v in doc["versions"] if v["model_version"] == version]
    return next(f for f in report["features"] if f["feature"] == "length")


def test_length_drift_is_computed_over_both_replicas_together(
    real_model, real_rows, start_predictor, start_prometheus, cli
):
    store, version, model_dir, card = real_model
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: start_predictor(model_dir), range(2))
    prometheus = start_prometheus([a, b])
    prometheus.wait_for_targets_up(2)
    rows_a, rows_b = real_rows[0::2], real_rows[1::2]
    send(a, rows_a)
    send(b, rows_b)
    prometheus.wait_for_value("sum(spamops_input_length_characters_count)", len(real_rows))

    bounds = FEATURE_BUCKETS["length"]
    reference = card.feature_reference.buckets["length"].counts
    real = length_of(monitor_json(cli, prometheus, store, "--min-samples", "200"), version)
    expected = offline_psi(reference, offline_counts([r[0] for r in real_rows], bounds))
    assert real["samples"] == len(real_rows)
    assert real["psi"] == pytest.approx(expected, abs=1e-9)
    assert real["psi"] < 0.1, "real messages like the training data's: below the warning threshold"

    short = [[n % 15 + 1, n % 2] for n in range(800)]  # a stream of much shorter messages, all to replica b
    send(b, short)
    prometheus.wait_for_value("sum(spamops_input_length_characters_count)", len(real_rows) + len(short))
    both = length_of(monitor_json(cli, prometheus, store, "--min-samples", "200"), version)
    combined = [r[0] for r in real_rows] + [r[0] for r in short]
    assert both["samples"] == len(combined)
    assert both["psi"] == pytest.approx(offline_psi(reference, offline_counts(combined, bounds)), abs=1e-9)
    assert both["psi"] > 0.2, "above the alert threshold"

    only_a = length_of(
        monitor_json(cli, prometheus, store, "--min-samples", "200", "--match", f'instance="127.0.0.1:{a.port}"'),
        version,
    )
    assert only_a["samples"] == len(rows_a)
    assert only_a["psi"] == pytest.approx(
        offline_psi(reference, offline_counts([r[0] for r in rows_a], bounds)), abs=1e-9
    )
    assert only_a["psi"] < 0.1 < 0.2 < both["psi"], "one replica alone would miss the drift"

    # The exporter: the same value as a gauge; below the minimum sample size no series at all.
    exported = run_exporter(prometheus, store, "--min-samples", "200")
    assert exported[f'spamops_feature_drift_psi{{feature="length",model_version="{version}"}}'] == pytest.approx(
        both["psi"]
    )
    assert f'spamops_reference_spam_rate{{model_version="{version}"}}' in exported
    starved = run_exporter(prometheus, store, "--min-samples", "100000")
    assert not [k for k in starved if k.startswith(("spamops_feature_drift_psi", "spamops_feature_drift_ks"))]
    assert starved[f'spamops_feature_drift_samples{{feature="length",model_version="{version}"}}'] == len(combined)
    below = length_of(monitor_json(cli, prometheus, store, "--min-samples", "100000"), version)
    assert below["psi"] is None and below["ks"] is None


def run_exporter(prometheus, store, *extra) -> dict[str, float]:
    """``spamops monitor --serve`` as a process; its /metrics after the first pass."""
    port = free_port()
    cmd = [sys.executable, "-m", "spamops", "monitor", "--serve", "--prometheus", prometheus.url, "--store", str(store)]
    cmd += ["--window", "30m", "--bind", "127.0.0.1", "--port", str(port), "--interval", "1", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:

        def scrape():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                    text = resp.read().decode()
            except OSError:
                return None
            if "spamops_monitor_last_success_timestamp_seconds " not in text:
                return None
            return {
                line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
                for line in text.splitlines()
                if line and not line.startswith("#")
            }

        return wait_for(scrape, 60, what="the monitor's first pass")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_offline_reference_counts_match_the_card(real_model, real_rows):
    """The card's reference counts the training split in the predictor's buckets: its total is the split size."""
    _, _, _, card = real_model
    ref = card.feature_reference
    assert sum(ref.buckets["length"].counts) == card.training.train_rows
    assert ref.buckets["length"].bounds == list(FEATURE_BUCKETS["length"])
    spam = card.data.class_counts["spam"]
    assert ref.spam_rate == pytest.approx(spam / card.data.rows)
    assert np.isclose(sum(ref.buckets["punct"].counts), card.training.train_rows)
    json.dumps(ref.model_dump(mode="json"))
