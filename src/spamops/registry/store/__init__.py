"""One entry point for every storage URI: ``open_store`` for a root, ``read_uri`` for one object.

``file://`` URIs and plain paths map to :class:`LocalStore` (``local``); ``s3://bucket/prefix``
maps to the S3 backend (``s3``); both implement ``base``'s :class:`ObjectStore`.  Nothing else in
spamops parses storage URIs.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from spamops.errors import BadInputError, NotFoundError
from spamops.registry.store.base import Blob, ObjectStore
from spamops.registry.store.local import LocalStore

__all__ = ["Blob", "ObjectStore", "LocalStore", "open_store", "read_uri", "split_last", "split_uri"]


def split_uri(uri: str) -> tuple[str, str]:
    """``(scheme, location)``; a plain path is ``("file", path)``."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return "file", unquote(parsed.path) if parsed.scheme else uri
    if len(parsed.scheme) == 1:  # a Windows drive letter is not a scheme
        return "file", uri
    return parsed.scheme, uri


def split_last(uri: str) -> tuple[str, str]:
    """``(parent URI, last segment)`` of an object or prefix URI, so callers can open its parent as a store."""
    parent, _, last = uri.rstrip("/").rpartition("/")
    if not parent or not last or parent.endswith(":/"):
        raise BadInputError(f"{uri}: expected a URI with at least one segment below the store root")
    return parent, last


def open_store(uri: str) -> ObjectStore:
    """The backend for a store root URI."""
    scheme, location = split_uri(uri)
    if scheme == "file":
        return LocalStore(location)
    if scheme == "s3":
        from spamops.registry.store.s3 import S3Store

        return S3Store.from_uri(location)
    raise BadInputError(f"{uri}: unsupported storage scheme {scheme!r}; use a path, file:// or s3://")


def open_uri(uri: str) -> BinaryIO:
    """One object named by a full URI or path (e.g. a CSV data source) as a binary stream.

    A local file is streamed from disk; an S3 object is read whole (it comes in one GET).
    """
    scheme, location = split_uri(uri)
    if scheme == "file":
        path = Path(location)
        if not path.exists():
            raise BadInputError(f"{uri}: file does not exist")
        if path.is_dir():
            raise BadInputError(f"{uri}: is a directory, expected a file")
        try:
            return path.open("rb")
        except OSError as exc:
            raise BadInputError(f"{uri}: cannot read: {exc.strerror}") from None
    parent, key = split_last(uri)
    try:
        return io.BytesIO(open_store(parent).get(key).data)
    except NotFoundError:
        raise BadInputError(f"{uri}: object does not exist") from None


def read_uri(uri: str) -> bytes:
    """The bytes of one object named by a full URI or path."""
    with open_uri(uri) as stream:
        try:
            return stream.read()
        except OSError as exc:
            raise BadInputError(f"{uri}: cannot read: {exc.strerror}") from None
