"""The S3 backend against a real SeaweedFS: conditional writes, idempotent retries, errors."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError
from tcpproxy import TcpProxy

from spamops.errors import BadInputError, ConflictError, NotFoundError, StoreError, StoreSettingsError
from spamops.registry.store import open_store
from spamops.registry.store.s3 import S3Settings, S3Store

pytestmark = pytest.mark.s3

# A permanent error must not be retried: with the deadline at its 30 s default, anything that
# waited it out takes >= 30 s, so half of it separates "failed at once" from "retried", also on a
# loaded machine. SLACK is how far past a short deadline an operation may end (scheduling noise).
NOT_RETRIED = 15.0
SLACK = 8.0


def test_roundtrip_list_and_uri(s3_uri, s3env):
    store = open_store(s3_uri)
    assert isinstance(store, S3Store)
    token = store.put("a/one.txt", b"1")
    store.put("a/b/two.txt", b"22")
    store.put("c.txt", b"333")
    blob = store.get("a/one.txt")
    assert (blob.data, blob.token) == (b"1", token)
    assert store.list("a/") == ["a/b/two.txt", "a/one.txt"]
    assert store.list("") == ["a/b/two.txt", "a/one.txt", "c.txt"]
    assert store.uri("a/") == f"{s3_uri}/a/"
    bucket, prefix = s3_uri[5:].split("/", 1)
    s3env.client().delete_object(Bucket=bucket, Key=f"{prefix}/a/one.txt")  # spamops itself never deletes
    with pytest.raises(NotFoundError):
        store.get("a/one.txt")
    assert not store.exists("a/one.txt") and store.exists("c.txt")
    with pytest.raises(BadInputError):
        store.get("../escape")


def test_seaweedfs_honours_conditional_writes(s3_uri, s3env):
    """The server itself refuses: raw boto3 first, then through the store."""
    client = s3env.client()
    bucket, prefix = s3_uri[5:].split("/", 1)
    key = f"{prefix}/raw"
    first = client.put_object(Bucket=bucket, Key=key, Body=b"first", IfNoneMatch="*")
    for condition in ({"IfNoneMatch": "*"}, {"IfMatch": '"0123456789abcdef0123456789abcdef"'}):
        with pytest.raises(ClientError) as info:
            client.put_object(Bucket=bucket, Key=key, Body=b"lost", **condition)
        assert info.value.response["Error"]["Code"] == "PreconditionFailed"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    client.put_object(Bucket=bucket, Key=key, Body=b"second", IfMatch=first["ETag"])
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"second"

    store = open_store(s3_uri)
    token = store.put("pointer", b"v1", if_absent=True)
    with pytest.raises(ConflictError, match="already exists"):
        store.put("pointer", b"v1-again", if_absent=True)
    newer = store.put("pointer", b"v2", if_token=token)
    with pytest.raises(ConflictError, match="changed since it was read"):
        store.put("pointer", b"v3", if_token=token)  # stale token: someone moved it
    assert store.get("pointer") == type(store.get("pointer"))(b"v2", newer)
    store.put("gone", b"x", if_absent=True)
    gone = store.get("gone").token
    bucket, prefix = s3_uri[5:].split("/", 1)
    s3env.client().delete_object(Bucket=bucket, Key=f"{prefix}/gone")
    with pytest.raises(ConflictError):
        store.put("gone", b"y", if_token=gone)  # deleted since it was read
    assert not store.exists("gone")
    # The conditional-write probe cleaned up after itself.
    assert store.list("") == ["pointer", "raw"]


def test_sha256_checksum_header_is_verified_by_the_server(s3_uri, s3env):
    """Uploads carry x-amz-checksum-sha256; SeaweedFS rejects a body that does not match it."""
    client = s3env.client()
    bucket, prefix = s3_uri[5:].split("/", 1)
    wrong = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # sha256 of b""
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=bucket, Key=f"{prefix}/x", Body=b"not empty", ChecksumSHA256=wrong)
    assert info.value.response["Error"]["Code"] == "BadDigest"
    store = open_store(s3_uri)
    store.put("y", b"payload")
    head = client.head_object(Bucket=bucket, Key=f"{prefix}/y", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == "I59Z7VXnN8dxR89VrQwbAwttfudIp0JpUvm4UtWpNeU="


@contextlib.contextmanager
def stub_endpoint(handler: type[BaseHTTPRequestHandler], monkeypatch) -> Iterator[str]:
    """A stand-in S3 endpoint on loopback, set as AWS_ENDPOINT_URL for the test's duration."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        yield endpoint
    finally:
        httpd.shutdown()
        httpd.server_close()


class _LossyProxy(TcpProxy):
    """Loopback TCP proxy to the real server that can swallow the next successful response.

    Models a PUT that landed on the server while its answer was lost on the way back.
    """

    def __init__(self, upstream_port: int) -> None:
        self.armed = threading.Event()
        self.puts = 0
        self.dropped = 0
        super().__init__(upstream_port)

    def on_chunk(self, chunk: bytes, upstream: bool) -> bool:
        if upstream and chunk.startswith(b"PUT "):
            self.puts += 1
        if not upstream and self.armed.is_set() and chunk.startswith(b"HTTP/1.1 200"):
            self.armed.clear()
            self.dropped += 1
            return False  # the server answered 200; the client never hears it
        return True


@pytest.mark.parametrize("mode", ["if_absent", "if_token"])
def test_conditional_put_whose_answer_was_lost_is_not_a_bogus_conflict(s3_uri, s3env, monkeypatch, mode):
    proxy = _LossyProxy(s3env.s3_port)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
        store = open_store(s3_uri)
        token = store.put("warm-up", b"first", if_absent=True)  # probe and first write pass untouched
        proxy.armed.set()
        puts_before = proxy.puts
        if mode == "if_absent":
            new_token = store.put("created", b"data", if_absent=True)
            key = "created"
        else:
            new_token = store.put("warm-up", b"second", if_token=token)
            key = "warm-up"
        assert proxy.dropped == 1, "the proxy must really have swallowed the server's 200"
        assert proxy.puts - puts_before >= 2, "the client must have retried the PUT"
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3env.endpoint)
        direct = open_store(s3_uri)
        assert direct.get(key).token == new_token
        # And a genuinely different writer is still refused.
        with pytest.raises(ConflictError):
            direct.put(key, b"other writer", if_absent=True)
    finally:
        proxy.close()


class _NaiveS3(BaseHTTPRequestHandler):
    """A toy S3 endpoint that accepts every PUT, ignoring If-None-Match/If-Match."""

    protocol_version = "HTTP/1.1"

    def _reply(self, status: int) -> None:
        self.send_response(status)
        self.send_header("ETag", '"d41d8cd98f00b204e9800998ecf8427e"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._reply(200)

    def do_DELETE(self) -> None:  # noqa: N802
        self._reply(204)

    def log_message(self, *args) -> None:
        pass


def test_server_that_ignores_conditional_writes_is_refused(s3env, monkeypatch):
    with stub_endpoint(_NaiveS3, monkeypatch):
        store = open_store("s3://naive/models")
        with pytest.raises(StoreError, match="ignores conditional writes") as info:
            store.put("spam/production.json", b"{}", if_absent=True)
        assert "If-None-Match: IGNORED" in str(info.value)
        store.put("plain-object", b"x")  # unconditional writes need no such guarantee


class _NoConditionalS3(BaseHTTPRequestHandler):
    """A toy S3 endpoint that answers 501 NotImplemented to If-None-Match/If-Match, like AWS before 2024."""

    protocol_version = "HTTP/1.1"
    conditional_puts = 0

    def _reply(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("ETag", '"d41d8cd98f00b204e9800998ecf8427e"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("If-None-Match") or self.headers.get("If-Match"):
            type(self).conditional_puts += 1
            self._reply(
                501,
                b"<Error><Code>NotImplemented</Code><Message>A header you provided implies functionality "
                b"that is not implemented</Message></Error>",
            )
        else:
            self._reply(200)

    def do_DELETE(self) -> None:  # noqa: N802
        self._reply(204)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("probe", ["1", "0"])
def test_server_without_conditional_writes_501_fails_fast_as_a_settings_error(s3env, monkeypatch, probe):
    """501 NotImplemented is permanent: no retrying until the deadline, no hint to wait longer."""
    with stub_endpoint(_NoConditionalS3, monkeypatch) as endpoint:
        monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", "30")
        monkeypatch.setenv("SPAMOPS_S3_CHECK_CONDITIONAL", probe)  # "0": the write itself meets the 501
        _NoConditionalS3.conditional_puts = 0
        store = open_store("s3://old-s3/models")
        start = time.monotonic()
        with pytest.raises(StoreSettingsError) as info:
            store.put("spam/production.json", b"{}", if_absent=True)
        assert time.monotonic() - start < NOT_RETRIED, "a 501 must not be retried until the deadline"
        message = str(info.value)
        assert "does not support conditional writes" in message
        assert endpoint in message and "bucket 'old-s3'" in message
        assert "SPAMOPS_S3_DEADLINE_SECONDS" not in message
        assert info.value.exit_code == 2
        assert _NoConditionalS3.conditional_puts == 1
        store.put("plain-object", b"x")  # unconditional writes still work


def test_wrong_secret_fails_fast_naming_endpoint_and_bucket(s3_uri, s3env, monkeypatch, cli):
    secret = "definitely-not-the-secret-" + "x" * 12
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", "30")
    for args in (("models", "list"), ("train", "--quiet")):
        start = time.monotonic()
        result = cli(*args, "--store", s3_uri)
        elapsed = time.monotonic() - start
        assert result.code == 2, result.err  # a settings error: the Job must not retry it
        assert elapsed < NOT_RETRIED, f"{args}: took {elapsed:.2f} s; a permanent error must not be retried"
        message = result.out + result.err
        assert "access denied (SignatureDoesNotMatch)" in message
        assert s3env.endpoint in message and "bucket 'spamops'" in message
        assert secret not in message and s3env.secret_key not in message
        assert "Traceback" not in message


def test_missing_bucket_fails_fast(s3env, cli, monkeypatch):
    monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", "30")
    start = time.monotonic()
    result = cli("models", "list", "--store", "s3://no-such-bucket/models")
    assert result.code == 2
    assert time.monotonic() - start < NOT_RETRIED
    assert "bucket 'no-such-bucket' does not exist" in result.err and s3env.endpoint in result.err


def test_unreachable_endpoint_retries_until_the_deadline(s3env, monkeypatch, cli):
    with socket.socket() as sock:  # a loopback port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", "2")
    start = time.monotonic()
    result = cli("models", "list", "--store", "s3://spamops/models")
    elapsed = time.monotonic() - start
    assert result.code == 1
    assert 2.0 <= elapsed < 2.0 + SLACK, elapsed
    assert "gave up after 2 s" in result.err and f"127.0.0.1:{port}" in result.err


def test_endpoint_settings_follow_kserve_conventions(monkeypatch):
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("S3_ENDPOINT", "minio.storage:9000")
    monkeypatch.setenv("S3_USE_HTTPS", "0")
    monkeypatch.setenv("S3_VERIFY_SSL", "0")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    s = S3Settings.from_env()
    assert (s.endpoint_url, s.verify_ssl, s.region) == ("http://minio.storage:9000", False, "eu-west-1")
    monkeypatch.delenv("S3_USE_HTTPS")
    assert S3Settings.from_env().endpoint_url == "https://minio.storage:9000"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://seaweedfs:8333/")
    assert S3Settings.from_env().endpoint_url == "http://seaweedfs:8333"
    monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", "soon")
    with pytest.raises(BadInputError, match="SPAMOPS_S3_DEADLINE_SECONDS"):
        S3Settings.from_env()
    with pytest.raises(BadInputError):
        S3Store.from_uri("s3:///no-bucket")


def test_invalid_max_attempts_is_refused_naming_the_variable(monkeypatch, cli):
    """Like an invalid deadline: a typo in AWS_MAX_ATTEMPTS is an error, not silently the default."""
    monkeypatch.delenv("SPAMOPS_S3_DEADLINE_SECONDS", raising=False)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    assert S3Settings.from_env().max_attempts == S3Settings().max_attempts
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "5")
    assert S3Settings.from_env().max_attempts == 5
    for bad in ("three", "2.5", "0", "-1"):
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", bad)
        with pytest.raises(BadInputError, match=re.escape(f"AWS_MAX_ATTEMPTS={bad!r}")):
            S3Settings.from_env()
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "three")
    result = cli("models", "list", "--store", "s3://spamops/models")
    assert result.code == 2 and "AWS_MAX_ATTEMPTS='three'" in result.err and "Traceback" not in result.err


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 SlowDown to the first ``failures`` requests, then 200 like a healthy server."""

    protocol_version = "HTTP/1.1"
    failures = 0
    seen = 0

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen += 1
        if type(self).seen <= type(self).failures:
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            self.send_response(503)
        else:
            body = b"payload"
            self.send_response(200)
            self.send_header("ETag", '"abc"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_throttling_and_5xx_are_retried_then_give_up_at_the_deadline(s3env, monkeypatch):
    with stub_endpoint(_Flaky, monkeypatch):
        monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", "20")
        _Flaky.failures, _Flaky.seen = 3, 0  # botocore tries 3 times, then our deadline loop once more
        assert open_store("s3://flaky/x").get("k").data == b"payload"
        assert _Flaky.seen == 4
        monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", "2")
        _Flaky.failures, _Flaky.seen = 10_000, 0
        start = time.monotonic()
        with pytest.raises(StoreError, match="SlowDown from the server.*gave up after 2 s"):
            open_store("s3://flaky/x").get("k")
        assert time.monotonic() - start < 2.0 + SLACK and _Flaky.seen > 3


def test_server_that_never_answers_is_abandoned_near_the_deadline(s3env, monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never replies
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", "3")
        start = time.monotonic()
        with pytest.raises(StoreError, match="read timeout.*gave up after 3 s"):
            open_store("s3://silent/x").get("k")
        assert time.monotonic() - start < 3.0 + SLACK


def test_tls_settings_follow_kserve_conventions(s3_uri, s3env, monkeypatch, cli):
    """S3_ENDPOINT host:port + S3_USE_HTTPS / S3_VERIFY_SSL / AWS_CA_BUNDLE against a TLS port."""
    if not s3env.https_port:
        pytest.skip("the cryptography package is missing: no certificate for the TLS port")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("S3_ENDPOINT", f"127.0.0.1:{s3env.https_port}")
    monkeypatch.delenv("S3_USE_HTTPS")  # default: https
    monkeypatch.delenv("S3_VERIFY_SSL")  # default: verify
    monkeypatch.setenv("SPAMOPS_S3_DEADLINE_SECONDS", "30")

    start = time.monotonic()
    refused = cli("models", "list", "--store", s3_uri)
    assert refused.code == 2 and time.monotonic() - start < NOT_RETRIED
    assert "TLS failure" in refused.err and "certificate verify failed" in refused.err
    assert f"https://127.0.0.1:{s3env.https_port}" in refused.err

    monkeypatch.setenv("AWS_CA_BUNDLE", s3env.tls_cert)  # trust the private CA
    store = open_store(s3_uri)
    token = store.put("over-tls", b"secret-free payload", if_absent=True)
    assert store.get("over-tls").token == token

    monkeypatch.delenv("AWS_CA_BUNDLE")
    monkeypatch.setenv("S3_VERIFY_SSL", "0")  # or do not check certificates at all
    assert open_store(s3_uri).get("over-tls").data == b"secret-free payload"
