"""Local-directory backend for ``file://`` URIs and plain paths.

Writes go to a temporary file first and are renamed (or hard-linked, for
create-only writes) into place, so a crash never leaves a half-written object.
Conditional overwrites hold an ``flock`` on a sidecar lock file while comparing.
Files get the permissions the process umask allows (``0o666 & ~umask``), like any
file the user creates; a temporary file's private mode is not kept.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from spamops.errors import BadInputError, ConflictError, NotFoundError, StoreError, StoreSettingsError
from spamops.registry.store.base import Blob, ObjectStore

_LOCK_SUFFIX = ".lock"
_TMP_PREFIX = ".tmp-"
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def _token(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_mode() -> int:
    """``0o666`` less the process umask (read without changing it for long: umask is process-wide)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


class LocalStore(ObjectStore):
    """Objects as files under a root directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.root_uri = self.root.as_uri()
        self._mode = _file_mode()

    def check_exists(self) -> None:
        if not self.root.exists():
            raise BadInputError(f"{self.root}: store does not exist; check --store (or train into it first)")
        if not self.root.is_dir():
            raise BadInputError(f"{self.root}: is not a directory, so it cannot be a store; check --store")

    def check_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StoreSettingsError(
                f"{self.root}: store cannot be written ({exc.strerror}); choose a writable --store"
            ) from None

    def _path(self, key: str) -> Path:
        path = (self.root / key).absolute()
        if key.startswith("/") or ".." in Path(key).parts:
            raise BadInputError(f"{key!r}: store keys must be relative paths without '..'")
        return path

    def get(self, key: str) -> Blob:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"{self.uri(key)}: no such object") from None
        except OSError as exc:
            raise StoreError(f"{self.uri(key)}: cannot read: {exc.strerror}") from None
        return Blob(data, _token(data))

    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_token: str | None = None) -> str:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked(path) if if_token is not None else contextlib.nullcontext():
                if if_token is not None:
                    current = self.get(key).token if path.exists() else None
                    if current != if_token:
                        raise ConflictError(f"{self.uri(key)}: changed since it was read; re-read and retry")
                tmp = self._write_temp(path, data)
                try:
                    if if_absent:
                        try:
                            os.link(tmp, path)
                        except FileExistsError:
                            raise ConflictError(f"{self.uri(key)}: already exists and is immutable") from None
                    else:
                        os.replace(tmp, path)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
        except OSError as exc:
            if exc.errno in _UNWRITABLE:  # a retry cannot fix permissions or a read-only mount
                raise StoreSettingsError(
                    f"{self.root}: store cannot be written ({exc.strerror}: {self.uri(key)}); "
                    "choose a writable --store or fix its permissions"
                ) from None
            raise StoreError(f"{self.uri(key)}: cannot write: {exc.strerror}") from None
        return _token(data)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith(_TMP_PREFIX) and not path.name.endswith(_LOCK_SUFFIX):
                keys.append(path.relative_to(self.root).as_posix())
        return sorted(keys)

    def _write_temp(self, path: Path, data: bytes) -> str:
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
        os.fchmod(fd, self._mode)  # mkstemp's 0600 would make every stored file private
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return tmp

    @staticmethod
    @contextlib.contextmanager
    def _locked(path: Path) -> Iterator[None]:
        with open(path.with_name(path.name + _LOCK_SUFFIX), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
