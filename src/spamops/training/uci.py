"""Fetch the public UCI "SMS Spam Collection" and convert it to our ``label,message`` CSV.

The archive holds ``SMSSpamCollection``: one ``label<TAB>message`` line per SMS.
Its sha256 is checked before anything is extracted, so a truncated or altered
download never becomes training data.
"""

from __future__ import annotations

import csv
import hashlib
import io
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from spamops.errors import BadInputError, SpamopsError

UCI_URL = "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip"
UCI_SHA256 = "1587ea43e58e82b14ff1f5425c88e17f8496bfcdb67a583dbff9eefaf9963ce3"
MEMBER = "SMSSpamCollection"
TIMEOUT_SECONDS = 60


def download(url: str) -> bytes:
    """The archive bytes from ``url`` (``file://`` works too, for offline use)."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - user-chosen URL
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise SpamopsError(
            f"{url}: download failed ({getattr(exc, 'reason', exc)}); check the network or pass --url"
        ) from None


def convert(archive: bytes, expected_sha256: str, source: str) -> list[tuple[str, str]]:
    """Verify the archive's checksum and return its ``(label, message)`` rows."""
    actual = hashlib.sha256(archive).hexdigest()
    if actual != expected_sha256:
        raise BadInputError(f"{source}: sha256 {actual} does not match the expected {expected_sha256}; refusing it")
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            raw = zf.read(MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise BadInputError(f"{source}: not the SMS Spam Collection archive ({exc})") from None
    rows = []
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        label, sep, message = line.partition("\t")
        if not sep or label not in ("ham", "spam"):
            raise BadInputError(f"{source}:{MEMBER}: line {number}: expected 'ham|spam<TAB>message'")
        rows.append((label, message))
    return rows


def write_csv(rows: list[tuple[str, str]], out: Path) -> None:
    """Write rows as ``label,message`` CSV, atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["label", "message"])
        writer.writerows(rows)
    tmp.replace(out)
