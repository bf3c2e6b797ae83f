"""The backend boundary: everything the registry needs from a place that holds bytes.

Keys are ``/``-separated paths relative to the store's root.  Conditional writes
(``if_absent``, ``if_token``) are what make versions immutable and pointer updates
safe against concurrent writers; every backend must honour them.

An object whose last key segment starts with :data:`TEMP_PREFIX` is temporary: the local
backend writes every object under such a name first and renames it into place, so one that is
left over belongs to a write that was interrupted.  :meth:`ObjectStore.list` never shows them;
:meth:`ObjectStore.temporaries` does, for ``spamops models gc``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

TEMP_PREFIX = ".tmp-"


def is_temporary(key: str) -> bool:
    """Whether ``key`` names a temporary object (see :data:`TEMP_PREFIX`)."""
    return key.rsplit("/", 1)[-1].startswith(TEMP_PREFIX)


@dataclass(frozen=True)
class Blob:
    """Bytes plus the opaque token (ETag or content hash) a conditional write compares against."""

    data: bytes
    token: str


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object as a listing describes it: key, size and when it was last written (UTC)."""

    key: str
    size: int
    modified: datetime  # mtime locally, LastModified on S3


ObjectInfos = list[ObjectInfo]  # an alias: inside ObjectStore, `list` is the method


class ObjectStore(ABC):
    """A flat key/value store of immutable-or-conditionally-updated objects."""

    root_uri: str

    def uri(self, key: str = "") -> str:
        """The URI of ``key`` (a prefix when it ends in ``/``), as handed to KServe."""
        return f"{self.root_uri.rstrip('/')}/{key}" if key else self.root_uri

    @abstractmethod
    def get(self, key: str) -> Blob:
        """Read an object; raises :class:`~spamops.errors.NotFoundError` when absent."""

    @abstractmethod
    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_token: str | None = None) -> str:
        """Write an object and return its new token.

        ``if_absent`` refuses to overwrite; ``if_token`` overwrites only the version
        the caller read.  A lost race raises :class:`~spamops.errors.ConflictError`.
        """

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """All keys under ``prefix`` (recursive), sorted; temporary objects are not listed."""

    @abstractmethod
    def scan(self, prefix: str) -> ObjectInfos:
        """The objects :meth:`list` names, with their size and last-modified time, sorted by key."""

    @abstractmethod
    def temporaries(self, prefix: str = "") -> ObjectInfos:
        """The temporary objects under ``prefix`` (leftovers of interrupted writes), sorted by key."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object; one that is already gone is not an error."""

    def check_exists(self) -> None:
        """Raise :class:`~spamops.errors.BadInputError` when the store itself does not exist.

        Reading commands call it so that a mistyped ``--store`` is reported as such,
        not as an empty store.  Backends that cannot tell cheaply accept every root.
        """
        return None

    def check_writable(self) -> None:
        """Fail fast (exit 2) when nothing could be written here, before a run spends minutes training.

        The default trusts the first real write; the local backend probes the directory.
        """
        return None

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds an object."""
        from spamops.errors import NotFoundError

        try:
            self.get(key)
        except NotFoundError:
            return False
        return True
