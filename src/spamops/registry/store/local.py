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
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from spamops.errors import BadInputError, ConflictError, NotFoundError, StoreError, StoreSettingsError
from spamops.registry.store.base import TEMP_PREFIX, Blob, ObjectInfo, ObjectInfos, ObjectStore

_LOCK_SUFFIX = ".lock"
_TMP_PREFIX = TEMP_PREFIX
_WRITE_ATTEMPTS = 3  # a temporary file removed under a write (by `models gc`) is written again
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
        """Probe with a temporary file; directories made for the probe are removed again.

        The store's directories appear with its first object, so a run that fails before it
        wrote anything (bad data, say) leaves no empty store behind.
        """
        missing = [p for p in (self.root, *self.root.parents) if not p.exists()]
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StoreSettingsError(
                f"{self.root}: store cannot be written ({exc.strerror}); choose a writable --store"
            ) from None
        finally:
            for made in missing:  # deepest first
                with contextlib.suppress(OSError):
                    made.rmdir()

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
            for attempt in range(1, _WRITE_ATTEMPTS + 1):
                path.parent.mkdir(parents=True, exist_ok=True)
                with self._locked(path) if if_token is not None else contextlib.nullcontext():
                    if if_token is not None:
                        current = self.get(key).token if path.exists() else None
                        if current != if_token:
                            raise ConflictError(f"{self.uri(key)}: changed since it was read; re-read and retry")
                    try:
                        self._place(key, path, data, if_absent)
                        break
                    except FileNotFoundError:  # our temporary file (or its directory) was removed meanwhile
                        if attempt == _WRITE_ATTEMPTS:
                            raise
        except OSError as exc:
            raise self._write_error(exc, key, "write") from None
        return _token(data)

    def _write_error(self, exc: OSError, key: str, verb: str) -> StoreError:
        if exc.errno in _UNWRITABLE:  # a retry cannot fix permissions or a read-only mount
            return StoreSettingsError(
                f"{self.root}: store cannot be written ({exc.strerror}: {self.uri(key)}); "
                "choose a writable --store or fix its permissions"
            )
        return StoreError(f"{self.uri(key)}: cannot {verb}: {exc.strerror}")

    def _place(self, key: str, path: Path, data: bytes, if_absent: bool) -> None:
        """Write ``data`` to a temporary file beside ``path``, then link (create-only) or rename it there."""
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

    def list(self, prefix: str) -> list[str]:
        return [info.key for info in self.scan(prefix)]

    def scan(self, prefix: str) -> ObjectInfos:
        return self._files(prefix, temporary=False)

    def temporaries(self, prefix: str = "") -> ObjectInfos:
        return self._files(prefix, temporary=True)

    def _files(self, prefix: str, *, temporary: bool) -> ObjectInfos:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        found = []
        for path in base.rglob("*"):
            if path.name.endswith(_LOCK_SUFFIX) or path.name.startswith(_TMP_PREFIX) != temporary:
                continue
            try:
                st = path.lstat()
            except FileNotFoundError:  # removed while we walked
                continue
            if stat.S_ISREG(st.st_mode):
                modified = datetime.fromtimestamp(st.st_mtime, UTC)
                found.append(ObjectInfo(path.relative_to(self.root).as_posix(), st.st_size, modified))
        return sorted(found, key=lambda info: info.key)

    def delete(self, key: str) -> None:
        """Remove the file, then each parent directory it leaves empty (never the store root)."""
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise self._write_error(exc, key, "remove") from None
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:  # not empty (or gone): stop here
                break
            parent = parent.parent

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
