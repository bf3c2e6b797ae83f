"""S3-compatible backend for ``s3://bucket/prefix`` URIs (AWS S3, SeaweedFS, MinIO, Ceph RGW, …).

Settings come from the environment, with the names KServe's storage initializer
uses, so one Kubernetes Secret serves the trainer and the model server alike
(the full table is in ``docs/s3.md``):

* credentials: boto3's own chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``,
  profiles, web identity);
* endpoint: ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL`` or ``S3_ENDPOINT``; a bare
  ``host:port`` gets ``https://`` unless ``S3_USE_HTTPS=0``;
* ``S3_VERIFY_SSL=0`` turns certificate checks off; ``AWS_DEFAULT_REGION`` / ``AWS_REGION``;
* ``SPAMOPS_S3_DEADLINE_SECONDS`` (default 30) bounds how long one operation keeps
  retrying transient failures; ``AWS_MAX_ATTEMPTS`` (default 3) is botocore's tries
  per call inside it.

Writes are conditional where the registry asks for it: ``If-None-Match: *`` for
create-only objects and ``If-Match: <etag>`` for compare-and-swap; the token is the
ETag.  Before its first conditional write a process checks once that the server
really refuses a conflicting write, and refuses to go on against one that does not.
Every PUT carries a random write id in its metadata, so a retried PUT whose first
attempt landed (but whose answer was lost) is recognised as our own write instead
of being reported as a conflict.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypedDict, TypeVar, Unpack
from urllib.parse import urlparse

from spamops.errors import BadInputError, ConflictError, NotFoundError, StoreError, StoreSettingsError
from spamops.registry.store.base import Blob, ObjectInfo, ObjectInfos, ObjectStore, is_temporary

if TYPE_CHECKING:  # botocore is imported lazily at run time: a local store never loads it
    from botocore.exceptions import ClientError
    from mypy_boto3_s3.type_defs import PutObjectRequestTypeDef  # boto3-stubs (dev extra): types only

T = TypeVar("T")


class _Condition(TypedDict, total=False):
    """The conditional-write headers of a PUT (boto3's parameter names)."""

    IfNoneMatch: str
    IfMatch: str


DEADLINE_ENV = "SPAMOPS_S3_DEADLINE_SECONDS"
MAX_ATTEMPTS_ENV = "AWS_MAX_ATTEMPTS"
PROBE_ENV = "SPAMOPS_S3_CHECK_CONDITIONAL"
CHECKSUM_ENV = "SPAMOPS_S3_CHECKSUM"
DEFAULT_DEADLINE = 30.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_REGION = "us-east-1"

# Timeouts and backoff, in seconds.  botocore makes up to max_attempts tries per call, each
# bounded by the connect and read timeouts, so both are the deadline split over those tries
# (a silent server is abandoned near the deadline), clamped: at least MIN_TIMEOUT so a tiny
# deadline still allows a handshake, at most the caps so a long deadline does not wait minutes
# on one dead connection.  Between rounds of spamops' own deadline loop the wait is "full
# jitter": uniform in [0, min(BACKOFF_CAP, BACKOFF_BASE * 2**round)].
MIN_TIMEOUT = 1.0
CONNECT_TIMEOUT_CAP = 5.0
READ_TIMEOUT_CAP = 60.0
BACKOFF_BASE = 0.2
BACKOFF_CAP = 4.0
WRITE_ID_META = "spamops-write-id"
PROBE_PREFIX = ".spamops-probe/"

_FALSE = {"0", "false", "no", "off"}
# Error codes that a retry can fix; everything else in the 4xx range is permanent.
_TRANSIENT_CODES = {
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequests",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalError",
    "BadDigest",  # the body was damaged on the way; sending it again fixes that
    "XAmzContentSHA256Mismatch",
}
_AUTH_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "AuthorizationHeaderMalformed",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidSecurity",
    "AllAccessDisabled",
    "403",
}
_CONFLICT_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict"}

_probed: dict[tuple[str, str], bool] = {}
_probe_lock = threading.Lock()


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value not in _FALSE


@dataclass(frozen=True)
class S3Settings:
    """Where and how to reach the S3 server; read from the environment by :meth:`from_env`."""

    endpoint_url: str | None = None
    region: str = DEFAULT_REGION
    verify_ssl: bool = True
    deadline: float = DEFAULT_DEADLINE
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    send_checksum: bool = True
    check_conditional: bool = True

    @classmethod
    def from_env(cls) -> S3Settings:
        """Settings from KServe's variable names, so one Secret serves trainer and model server.

        Invalid numbers raise :class:`BadInputError` naming the variable instead of silently
        falling back to a default the user did not choose.
        """
        endpoint = _env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT")
        if endpoint and "://" not in endpoint:
            endpoint = ("https://" if _flag("S3_USE_HTTPS", True) else "http://") + endpoint
        raw_deadline = _env(DEADLINE_ENV)
        try:
            deadline = float(raw_deadline) if raw_deadline else DEFAULT_DEADLINE
        except ValueError:
            raise BadInputError(f"{DEADLINE_ENV}={raw_deadline!r}: expected a number of seconds") from None
        if deadline <= 0:
            raise BadInputError(f"{DEADLINE_ENV}={raw_deadline!r}: must be positive")
        raw_attempts = _env(MAX_ATTEMPTS_ENV)
        try:
            max_attempts = int(raw_attempts) if raw_attempts else DEFAULT_MAX_ATTEMPTS
        except ValueError:
            raise BadInputError(f"{MAX_ATTEMPTS_ENV}={raw_attempts!r}: expected a whole number of attempts") from None
        if max_attempts < 1:
            raise BadInputError(f"{MAX_ATTEMPTS_ENV}={raw_attempts!r}: must be at least 1")
        return cls(
            endpoint_url=endpoint.rstrip("/") if endpoint else None,
            region=_env("AWS_DEFAULT_REGION", "AWS_REGION") or DEFAULT_REGION,
            verify_ssl=_flag("S3_VERIFY_SSL", True),
            deadline=deadline,
            max_attempts=max_attempts,
            send_checksum=_flag(CHECKSUM_ENV, True),
            check_conditional=_flag(PROBE_ENV, True),
        )


class _Transient(Exception):
    """A failure worth another attempt; carries a user-facing description."""


class S3Store(ObjectStore):
    """Objects under ``s3://bucket/prefix``."""

    def __init__(self, bucket: str, prefix: str = "", settings: S3Settings | None = None) -> None:
        import boto3
        from botocore.config import Config

        if len(bucket) < 3 or "/" in bucket:
            raise BadInputError(f"s3://{bucket}: not a valid bucket name")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.settings = settings or S3Settings.from_env()
        self.root_uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        s = self.settings
        if not s.verify_ssl:  # the user chose this (S3_VERIFY_SSL=0); don't warn on every request
            from urllib3.exceptions import InsecureRequestWarning

            warnings.filterwarnings("ignore", category=InsecureRequestWarning)
        config = Config(
            region_name=s.region,
            retries={"mode": "standard", "max_attempts": s.max_attempts},
            # The deadline split over botocore's tries, clamped (see MIN_TIMEOUT).
            connect_timeout=max(MIN_TIMEOUT, min(CONNECT_TIMEOUT_CAP, s.deadline / s.max_attempts)),
            read_timeout=max(MIN_TIMEOUT, min(READ_TIMEOUT_CAP, s.deadline / s.max_attempts)),
            # Path-style addressing works on every S3-compatible server; AWS still accepts it.
            s3={"addressing_style": "path" if s.endpoint_url else "auto"},
            # Checksums only when an operation needs one: aws-chunked trailers confuse some
            # S3-compatible servers.  Uploads carry an explicit x-amz-checksum-sha256 instead.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            user_agent_extra="spamops",
        )
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=s.endpoint_url,
            # None (not True) lets botocore pick up AWS_CA_BUNDLE for a private CA.
            verify=None if s.verify_ssl else False,
            config=config,
        )

    @classmethod
    def from_uri(cls, uri: str, settings: S3Settings | None = None) -> S3Store:
        """The store rooted at ``s3://bucket[/prefix]``, for ``open_store``; settings default to the environment."""
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise BadInputError(f"{uri}: expected s3://bucket[/prefix]")
        return cls(parsed.netloc, parsed.path, settings)

    # -- where --------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """Where requests go, for messages and the probe cache: the URL, or AWS S3 and its region."""
        return self.settings.endpoint_url or f"AWS S3 ({self.settings.region})"

    def _where(self) -> str:
        return f"endpoint {self.endpoint}, bucket {self.bucket!r}"

    def _full(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise BadInputError(f"{key!r}: store keys must be relative paths without '..'")
        return self.prefix + key

    # -- the interface --------------------------------------------------------
    def get(self, key: str) -> Blob:
        def call() -> Blob:
            response = self._client.get_object(Bucket=self.bucket, Key=self._full(key))
            return Blob(response["Body"].read(), response["ETag"])

        return self._call(key, "read", call)

    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_token: str | None = None) -> str:
        if if_absent or if_token is not None:
            self._ensure_conditional_writes()
        write_id = uuid.uuid4().hex
        params: PutObjectRequestTypeDef = {
            "Bucket": self.bucket,
            "Key": self._full(key),
            "Body": data,
            "Metadata": {WRITE_ID_META: write_id},
        }
        if self.settings.send_checksum:
            params["ChecksumSHA256"] = base64.b64encode(hashlib.sha256(data).digest()).decode()
        if if_absent:
            params["IfNoneMatch"] = "*"
        if if_token is not None:
            params["IfMatch"] = if_token

        def call() -> str:
            from botocore.exceptions import ClientError

            try:
                return self._client.put_object(**params)["ETag"]
            except ClientError as exc:
                if (if_absent or if_token is not None) and _not_implemented(exc):
                    raise self._no_conditional_writes() from None
                code = _code(exc)
                if if_token is not None and (code == "NoSuchKey" or _status(exc) == 404):
                    # If-Match on an object deleted since it was read: the caller lost a race too.
                    raise ConflictError(f"{self.uri(key)}: deleted since it was read; re-read and retry") from None
                if code not in _CONFLICT_CODES:
                    raise
                # An earlier attempt of this very PUT may have landed with its answer lost:
                # then the object carries our write id, and the write succeeded.
                ours = self._own_write(params["Key"], write_id)
                if ours is not None:
                    return ours
                what = "already exists and is immutable" if if_absent else "changed since it was read"
                raise ConflictError(f"{self.uri(key)}: {what}; re-read and retry") from None

        return self._call(key, "write", call)

    def list(self, prefix: str) -> list[str]:
        return [info.key for info in self.scan(prefix)]

    def scan(self, prefix: str) -> ObjectInfos:
        return [info for info in self._objects(prefix) if not is_temporary(info.key)]

    def temporaries(self, prefix: str = "") -> ObjectInfos:
        return [info for info in self._objects(prefix) if is_temporary(info.key)]

    def _objects(self, prefix: str) -> ObjectInfos:
        def call() -> ObjectInfos:
            found = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._full(prefix)):
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    if not key.endswith("/") and not key.startswith(PROBE_PREFIX):
                        found.append(ObjectInfo(key, int(item["Size"]), item["LastModified"].astimezone(UTC)))
            return sorted(found, key=lambda info: info.key)

        return self._call(prefix, "list", call)

    def delete(self, key: str) -> None:
        def call() -> None:
            self._client.delete_object(Bucket=self.bucket, Key=self._full(key))  # absent: 204 all the same

        self._call(key, "remove", call)

    # -- conditional writes ---------------------------------------------------
    def _own_write(self, full_key: str, write_id: str) -> str | None:
        """The ETag of ``full_key`` when its current content is the write ``write_id``."""
        from botocore.exceptions import ClientError

        try:
            head = self._client.head_object(Bucket=self.bucket, Key=full_key)
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise
        return head["ETag"] if head.get("Metadata", {}).get(WRITE_ID_META) == write_id else None

    def _ensure_conditional_writes(self) -> None:
        """Once per process and bucket: prove the server refuses conflicting conditional writes."""
        if not self.settings.check_conditional:
            return
        cache_key = (self.endpoint, self.bucket)
        with _probe_lock:
            if _probed.get(cache_key):
                return
            self._probe_conditional_writes()
            _probed[cache_key] = True

    def _probe_conditional_writes(self) -> None:
        from botocore.exceptions import ClientError

        key = f"{self.prefix}{PROBE_PREFIX}{uuid.uuid4().hex}"

        def put_probe(**condition: Unpack[_Condition]) -> None:
            try:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=b"probe", **condition)
            except ClientError as exc:
                if _not_implemented(exc):
                    raise self._no_conditional_writes() from None
                raise

        def attempt(**condition: Unpack[_Condition]) -> bool:
            """Whether the server refused the write as a precondition failure."""
            try:
                put_probe(**condition)
            except ClientError as exc:
                if _code(exc) in _CONFLICT_CODES:
                    return True
                raise
            return False

        def probe() -> None:
            honoured = []
            try:
                put_probe(IfNoneMatch="*")
                honoured.append(attempt(IfNoneMatch="*"))
                honoured.append(attempt(IfMatch='"00000000000000000000000000000000"'))
            finally:
                try:
                    self._client.delete_object(Bucket=self.bucket, Key=key)
                except ClientError:
                    pass  # a writer without delete rights leaves one tiny probe object behind
            if not all(honoured):
                raise StoreError(
                    f"{self.root_uri}: the S3 server ({self._where()}) ignores conditional writes "
                    f"(If-None-Match: {'ok' if honoured[0] else 'IGNORED'}, "
                    f"If-Match: {'ok' if honoured[1] else 'IGNORED'}); versions and the production "
                    "pointer could be overwritten by concurrent writers, so spamops refuses to write "
                    "there (see docs/s3.md)"
                )

        self._call(PROBE_PREFIX, "check conditional writes on", probe)

    def _no_conditional_writes(self) -> StoreSettingsError:
        """501 NotImplemented to If-None-Match / If-Match: permanent, so no retry can help."""
        return StoreSettingsError(
            f"{self.root_uri}: the S3 server ({self._where()}) does not support conditional writes "
            "(If-None-Match / If-Match answered 501 NotImplemented); versions and the production pointer "
            "need them, so spamops cannot use this server (see docs/s3.md)"
        )

    # -- retries and error translation ----------------------------------------
    def _call(self, key: str, verb: str, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying transient failures with jittered backoff until the deadline."""
        deadline = time.monotonic() + self.settings.deadline
        attempt = 0
        while True:
            try:
                return self._translate(key, verb, fn)
            except _Transient as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StoreError(
                        f"{self.uri(key)}: cannot {verb} it: {exc} ({self._where()}); "
                        f"gave up after {self.settings.deadline:g} s of retries "
                        f"(set {DEADLINE_ENV} to wait longer)"
                    ) from None
                if attempt == 0:  # one line, so a wait of up to the deadline is never silent
                    until = datetime.now(UTC) + timedelta(seconds=remaining)
                    print(
                        f"spamops: {self.uri(key)}: cannot {verb} it yet: {exc} ({self._where()}); "
                        f"retrying until {until:%H:%M:%S} UTC ({self.settings.deadline:g} s, {DEADLINE_ENV})",
                        file=sys.stderr,
                        flush=True,
                    )
                # "Full jitter" (see BACKOFF_BASE), never past the deadline.
                time.sleep(min(remaining, random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))))
                attempt += 1

    def _translate(self, key: str, verb: str, fn: Callable[[], T]) -> T:
        from botocore import exceptions as bex

        uri = self.uri(key)
        try:
            return fn()
        except ConflictError:
            raise
        except bex.ClientError as exc:
            code, status = _code(exc), _status(exc)
            if code in ("NoSuchKey", "NotFound") or (status == 404 and code in ("404", "")):
                raise NotFoundError(f"{uri}: no such object") from None
            if code == "NoSuchBucket":
                raise StoreSettingsError(
                    f"{uri}: bucket {self.bucket!r} does not exist at endpoint {self.endpoint}"
                ) from None
            if _not_implemented(exc):  # a 5xx that no retry fixes: the server lacks the feature
                raise StoreSettingsError(
                    f"{uri}: cannot {verb} it: the S3 server ({self._where()}) does not implement "
                    f"this request ({code or status})"
                ) from None
            if code in _TRANSIENT_CODES or status >= 500 or status in (408, 429):
                raise _Transient(f"{code or status} from the server") from None
            if code in _AUTH_CODES or status == 403:
                raise StoreSettingsError(
                    f"{uri}: cannot {verb} it: access denied ({code or status}) by {self._where()}; "
                    "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy"
                ) from None
            raise StoreError(f"{uri}: cannot {verb} it: {code or status} ({self._where()})") from None
        except bex.NoCredentialsError:
            raise StoreSettingsError(
                f"{uri}: no S3 credentials for {self._where()}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        except bex.SSLError as exc:
            raise StoreSettingsError(
                f"{uri}: TLS failure talking to {self._where()}: {_reason(exc)}; "
                "check S3_USE_HTTPS / S3_VERIFY_SSL / AWS_CA_BUNDLE"
            ) from None
        except (bex.ConnectionError, bex.HTTPClientError) as exc:
            raise _Transient(_reason(exc)) from None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _not_implemented(exc: ClientError) -> bool:
    """501 / ``NotImplemented``: the server lacks the feature (e.g. conditional writes); permanent."""
    return _code(exc) == "NotImplemented" or _status(exc) == 501


def _reason(exc: Exception) -> str:
    """A short cause without URLs carrying query strings (never credentials, but keep it short)."""
    text = str(exc)
    for needle, short in (
        ("Connection refused", "connection refused"),
        ("Could not connect", "cannot connect (refused or unreachable)"),
        ("Connection reset", "connection reset"),
        ("Read timeout", "read timeout"),
        ("Connect timeout", "connect timeout"),
        ("Connection was closed", "connection closed before a response"),
        ("Name or service not known", "unknown host"),
        ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed"),
        ("WRONG_VERSION_NUMBER", "the endpoint does not speak TLS"),
    ):
        if needle in text:
            return short
    return type(exc).__name__
