"""A real SeaweedFS S3 server per test session, on free loopback ports, with credentials."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spamops.records import MODEL_FILE, CardContent
from spamops.registry.store import open_store
from spamops.registry.versions import Registry, utc_now
from spamops_dev import seaweedfs

# Settings that would point the client elsewhere if the developer's shell has them.
_FOREIGN_ENV = [
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "S3_ENDPOINT",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_MAX_ATTEMPTS",
    "AWS_CA_BUNDLE",
    "S3_USE_HTTPS",
    "S3_VERIFY_SSL",
    "SPAMOPS_S3_CHECK_CONDITIONAL",
    "SPAMOPS_S3_CHECKSUM",
]
TEST_DEADLINE = "4"


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory) -> Iterator:
    """The running server; tests that kill it must start it again before they return."""
    tls = _self_signed_cert(tmp_path_factory.mktemp("tls"))
    for attempt in range(3):  # a port picked as free can be taken before weed binds it
        server = seaweedfs.SeaweedFS.create(tmp_path_factory.mktemp("seaweedfs"), bucket="spamops")
        if tls:  # the same server also speaks TLS on a second port, for the S3_USE_HTTPS tests
            server.https_port = seaweedfs.free_ports(1)[0]
            server.tls_cert, server.tls_key = tls
        try:
            server.start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        yield server
    finally:
        server.kill()  # its data is temporary; a graceful stop takes 15 s+


def _self_signed_cert(directory: Path) -> tuple[str, str] | None:
    """A certificate for 127.0.0.1 that is its own CA; ``None`` without the cryptography package."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return None
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spamops test S3")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def s3env(seaweed, monkeypatch, tmp_path):
    """Point boto3 at the session server, the way the trainer's Secret does in a cluster."""
    for name in _FOREIGN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", TEST_DEADLINE)
    if not seaweed.running():  # a fault test before this one failed to restart it
        seaweed.start()
    return seaweed


@pytest.fixture
def s3_uri(s3env) -> str:
    """A store root of its own for each test: ``s3://spamops/t-<random>``."""
    return f"s3://{s3env.bucket}/t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def trained_files(tmp_path_factory) -> dict:
    """One demo training run (local store), whose artifacts seed S3 versions quickly."""
    from spamops.cli import main

    local = tmp_path_factory.mktemp("seed-store")
    assert main(["train", "--store", str(local), "--quiet", "--no-promote"]) == 0
    registry = Registry(open_store(str(local)), "spam")
    (info,) = registry.versions()
    card = registry.card(info.version)
    files = {name: registry.store.get(f"spam/{info.version}/{name}").data for name in card.files}
    datasets = {ref.rows: registry.dataset(ref.sha256) for ref in (card.datasets.train, card.datasets.test)}
    return {"card": card, "model": files.pop(MODEL_FILE), "files": files, "datasets": datasets}


_offset = iter(range(1, 10_000))


@pytest.fixture
def seed_version(trained_files):
    """``seed_version(registry)``: store a complete copy of the seed version via the write protocol."""

    def seed(registry: Registry) -> str:
        created = utc_now() + timedelta(seconds=next(_offset))
        version = registry.reserve_version(created, trained_files["model"])
        content = CardContent.model_validate(
            {name: getattr(trained_files["card"], name) for name in CardContent.model_fields}
        )
        for rows, data in trained_files["datasets"].items():  # the snapshots the card names
            registry.put_dataset(data, rows)
        registry.complete_version(version, trained_files["model"], trained_files["files"], content)
        registry.end_version(version)  # the writer is done: its lease goes
        return version

    return seed
