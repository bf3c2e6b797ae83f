"""The entrypoint: KServe's flags kept, --storage-uri pulls (verified) first, limits validated."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from spamops.serving import server as predictor_server
from spamops.serving.__main__ import DEFAULT_MODEL_DIR, build_parser
from spamops.serving.settings import ServingSettings
from spamops_dev.predictor import Predictor, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_kserve_flags_are_kept_and_defaults_documented():
    args = build_parser().parse_args(["--http_port", "9000", "--grpc_port", "9001", "--enable_grpc", "false"])
    assert (args.http_port, args.grpc_port, args.enable_grpc, args.model_name) == (9000, 9001, False, "spam")
    assert args.model_dir is None and DEFAULT_MODEL_DIR == "/mnt/models"  # None: /mnt/models, or scratch on a pull
    assert args.max_batch_size == 1000 == ServingSettings().max_batch
    assert args.bind == "0.0.0.0"  # KServe's, for the pod network
    help_text = subprocess.run(
        [sys.executable, "-m", "spamops.serving", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in ("--http_port", "--workers", "--max_asyncio_workers", "--storage-uri", "--max_batch_size", "--bind"):
        assert flag in help_text


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) of the sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_bind_listens_on_the_address_given_only(start_predictor, model_dir):
    server = start_predictor("--model_dir", str(model_dir), "--bind", "127.0.0.1")
    assert listening_addresses(server.port) == {"0100007F"}  # 127.0.0.1, not 0.0.0.0


def test_two_workers_share_one_port_and_one_table_build(start_predictor, model_dir):
    server = start_predictor("--model_dir", str(model_dir), "--bind", "127.0.0.1", "--workers", "2")
    workers = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    assert len(workers) == 2
    assert len(listening_addresses(server.port)) == 1  # both on 127.0.0.1
    for _ in range(20):  # a new connection each: the kernel spreads them over both workers
        assert server.post_json("/v1/models/spam:predict", {"instances": ["hi", [30, 1]]}).status == 200
    log = server.log()
    assert log.count("decision table") == 1 and "serving with 2 worker processes" in log
    server.stop()
    assert server.proc.returncode == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_workers_below_one_are_refused_with_a_reason():
    proc = subprocess.run(
        [sys.executable, "-m", "spamops.serving", "--workers", "0"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "--workers must be at least 1" in proc.stderr


def test_storage_uri_pulls_a_version_then_serves_it(start_predictor, trained_store: Path, production_version, tmp_path):
    uri = f"file://{trained_store}/spam/{production_version}/"
    server = start_predictor("--model_dir", str(tmp_path / "pulled"), "--storage-uri", uri)
    assert server.get("/v1/models/spam").json()["version"] == production_version
    assert (tmp_path / "pulled" / "model.joblib").is_file()
    assert "checksums verified" in server.log()


def test_storage_uri_of_a_model_prefix_serves_its_production(
    start_predictor, trained_store, production_version, tmp_path
):
    server = start_predictor("--model_dir", str(tmp_path / "m"), "--storage-uri", f"file://{trained_store}/spam")
    assert server.get("/v1/models/spam").json()["version"] == production_version


def test_storage_uri_that_names_nothing_fails_fast_naming_it(trained_store, tmp_path):
    for uri in (f"file://{tmp_path}/nostore/spam/v1/", f"file://{trained_store}/spam/spam_model_19990101_000000/"):
        proc = subprocess.run(
            [sys.executable, "-m", "spamops.serving", "--storage-uri", uri, "--enable_grpc", "false"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert uri in proc.stderr and "neither a complete model version" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_storage_uri_without_model_dir_pulls_into_scratch_removed_at_exit(trained_store, production_version, tmp_path):
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    server = Predictor(
        ["--storage-uri", f"file://{trained_store}/spam"], tmp_path / "p.log", env={"TMPDIR": str(scratch_root)}
    ).start()
    try:
        assert server.get("/v1/models/spam").json()["version"] == production_version
        assert len(list(scratch_root.iterdir())) == 1
    finally:
        server.stop()
    assert list(scratch_root.iterdir()) == []


def test_a_cell_limit_below_the_punct_axis_is_refused_at_start():
    proc = subprocess.run(
        [sys.executable, "-m", "spamops.serving", "--table_max_punct", "100", "--table_max_cells", "50"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "table_max_cells (50) must be at least table_max_punct + 1" in proc.stderr


def test_storage_uri_pull_into_a_scratch_dir_is_removed_at_exit(trained_store, production_version, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "other.txt").write_text("not ours")  # a non-empty --model_dir: the pull goes to a scratch dir
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    server = Predictor(
        ["--model_dir", str(busy), "--storage-uri", f"file://{trained_store}/spam/{production_version}/"],
        tmp_path / "predictor.log",
        env={"TMPDIR": str(scratch_root)},
    ).start()
    try:
        assert server.get("/v1/models/spam").json()["version"] == production_version
        assert [p.name[:14] for p in scratch_root.iterdir()] == ["spamops-model-"]
    finally:
        server.stop()
    assert server.proc.returncode is not None
    assert list(scratch_root.iterdir()) == []


def test_storage_uri_with_a_model_dir_that_is_a_file_is_refused_clearly(trained_store, tmp_path):
    not_a_dir = tmp_path / "models"
    not_a_dir.write_text("oops")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spamops.serving",
            "--model_dir",
            str(not_a_dir),
            "--storage-uri",
            f"file://{trained_store}/spam",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "is not a directory" in proc.stderr and "Traceback" not in proc.stderr


def test_make_serve_binds_what_it_prints_and_leaves_no_temp_dir(trained_store, production_version, tmp_path):
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    port = free_port()
    make = subprocess.Popen(
        ["make", "--no-print-directory", "serve", f"STORE={trained_store}", f"SERVE_PORT={port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "TMPDIR": str(scratch_root)},
        start_new_session=True,  # its own process group, as a terminal gives it: Ctrl-C reaches make and the server
    )
    try:
        printed = make.stdout.readline().decode()
        assert f"on http://127.0.0.1:{port}" in printed, printed
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not listening_addresses(port):
            assert make.poll() is None, make.stdout.read().decode()
            time.sleep(0.2)
        assert listening_addresses(port) == {"0100007F"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/spam", timeout=10) as reply:
            assert json.loads(reply.read())["version"] == production_version
    finally:
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C
        make.wait(timeout=30)
    assert list(scratch_root.iterdir()) == []


def test_make_serve_of_a_version_that_does_not_exist_exits_at_once(trained_store):
    proc = subprocess.run(
        ["make", "--no-print-directory", "serve", f"STORE={trained_store}", "VERSION=spam_model_19990101_000000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "spam_model_19990101_000000" in proc.stderr
    assert "neither a complete model version" in proc.stderr


def test_the_listening_socket_sends_small_responses_at_once():
    # uvloop sets TCP_NODELAY only on sockets it binds itself; ours must, or each small answer
    # waits for the client's delayed ACK (about 40 ms).
    sock = predictor_server.listening_socket("127.0.0.1", 0, reuse_port=False)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        sock.close()


# -- start-up order: the address first, then the model (issue: a port in use was a traceback after the load) --

# What a model load writes (the pull, then the model's READY or NOT READY line): none may appear
# when the address is refused.
LOAD_LINES = ("pulled ", " READY", "NOT READY", "decision table")


def start_up(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m spamops.serving ARGS`` as a user runs it; one that is still serving after ``timeout`` fails."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "spamops.serving", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: forked workers are stopped with it
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"still running after {timeout} s: it started serving instead of refusing\n{err[-2000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_refused_before_loading(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2, exactly one line on stderr that says each fragment, and no trace of a pull or a load."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("python -m spamops.serving: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    for line in LOAD_LINES:
        assert line not in proc.stderr + proc.stdout


@pytest.mark.parametrize("workers", ["1", "2"])
def test_starting_a_second_predictor_on_the_same_port_is_refused_before_it_loads(
    start_predictor, model_dir, trained_store, workers
):
    # The first one runs two workers: their SO_REUSEPORT sockets must not let a second predictor
    # (one worker or two) join the port silently.
    first = start_predictor("--model_dir", str(model_dir), "--bind", "127.0.0.1", "--workers", "2")
    second = start_up(
        "--storage-uri", f"file://{trained_store}/spam", "--bind", "127.0.0.1", "--http_port", str(first.port),
        "--workers", workers, "--enable_grpc", "false",
    )  # fmt: skip
    assert_refused_before_loading(second, f"--http_port {first.port}", "already in use")
    assert first.get("/v2/health/ready").status == 200  # the first one never noticed


def test_a_port_out_of_range_is_refused_naming_the_flag(trained_store):
    proc = start_up("--storage-uri", f"file://{trained_store}/spam", "--http_port", "99999", "--enable_grpc", "false")
    assert_refused_before_loading(proc, "--http_port 99999", "1-65535")


def test_an_address_that_is_not_this_machines_is_refused_naming_the_flag(trained_store):
    # Binding sends nothing anywhere: the kernel refuses an address no interface has.
    proc = start_up("--storage-uri", f"file://{trained_store}/spam", "--bind", "10.255.255.1", "--enable_grpc", "false")
    assert_refused_before_loading(proc, "--bind 10.255.255.1", "not an address of this machine")


def test_a_grpc_port_in_use_is_refused_naming_the_flag(start_predictor, model_dir, trained_store):
    taken = start_predictor("--model_dir", str(model_dir), "--bind", "127.0.0.1")
    proc = start_up(
        "--storage-uri", f"file://{trained_store}/spam", "--bind", "127.0.0.1", "--http_port", str(free_port()),
        "--enable_grpc", "true", "--grpc_port", str(taken.port),
    )  # fmt: skip
    assert_refused_before_loading(proc, f"--grpc_port {taken.port}", "already in use")
    out_of_range = start_up("--model_dir", str(model_dir), "--http_port", "0", "--grpc_port", "70000")
    assert_refused_before_loading(out_of_range, "--grpc_port 70000")


# -- a version pulled anywhere serves (issue: a shallow directory was "expected a URI with at least one segment") --


def test_a_version_pulled_to_a_shallow_directory_serves(start_predictor, trained_store, production_version):
    # d=$(mktemp -d); spamops models pull V "$d" && python -m spamops.serving --storage-uri "$d"
    d = Path(tempfile.mkdtemp())  # directly under the temporary root, as mktemp -d makes it
    try:
        pulled = subprocess.run(
            [sys.executable, "-m", "spamops", "models", "pull", production_version, str(d), "--store", str(trained_store)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert pulled.returncode == 0, pulled.stderr
        for uri in (str(d), d.as_uri()):
            server = start_predictor("--storage-uri", uri)
            assert server.get("/v1/models/spam").json()["version"] == production_version
            assert server.post_json("/v1/models/spam:predict", {"instances": ["hi", [30, 1]]}).status == 200
            server.stop()
        # Still checked against its card on the way in: an altered copy is refused, naming the file.
        (d / "model.joblib").write_bytes((d / "model.joblib").read_bytes() + b"x")
        proc = start_up("--storage-uri", str(d), "--enable_grpc", "false")
        assert proc.returncode == 1 and f"{d.as_uri()}/model.joblib: checksum mismatch" in proc.stderr, proc.stderr
    finally:
        shutil.rmtree(d)


def test_a_directory_without_a_version_names_what_it_expected(tmp_path):
    empty = Path(tempfile.mkdtemp())
    try:
        for uri in (str(empty), "/"):
            proc = start_up("--storage-uri", uri, "--enable_grpc", "false")
            assert proc.returncode == 2 and "neither a complete model version" in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stderr
    finally:
        empty.rmdir()
