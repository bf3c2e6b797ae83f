"""`spamops data fetch-uci` on an archive built here (no network): checksum first, then convert."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile

from spamops.training.data import load_dataset


def _archive(lines: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("SMSSpamCollection", "\n".join(lines) + "\n")
        zf.writestr("readme", "SMS Spam Collection v.1")
    return buf.getvalue()


def test_fetch_converts_a_verified_archive_to_label_message_csv(tmp_path, cli):
    archive = _archive(
        [
            "ham\tGo until jurong point, crazy.. Available only in bugis n great world la e buffet... Cine there got amore wat...",
            "spam\tFree entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005.",
            'ham\tHe said "ok", then left',
        ]
    )
    source = tmp_path / "sms.zip"
    source.write_bytes(archive)
    out = tmp_path / "uci.csv"

    result = cli(
        "data", "fetch-uci", "--url", source.as_uri(), "--sha256", hashlib.sha256(archive).hexdigest(), "--out", out
    )

    assert result.code == 0, result.err
    assert "3 messages (1 spam)" in result.out
    with out.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["label", "message"]
    assert rows[3] == ["ham", 'He said "ok", then left']
    assert load_dataset([str(out)]).X[0].tolist() == [111.0, 9.0]


def test_fetch_refuses_an_archive_whose_checksum_differs(tmp_path, cli):
    source = tmp_path / "sms.zip"
    source.write_bytes(_archive(["ham\thello"]))
    out = tmp_path / "uci.csv"

    result = cli("data", "fetch-uci", "--url", source.as_uri(), "--out", out)

    assert result.code == 2
    assert "does not match the expected" in result.err
    assert not out.exists()


def test_fetch_reports_an_unreachable_source(tmp_path, cli):
    result = cli("data", "fetch-uci", "--url", (tmp_path / "missing.zip").as_uri(), "--out", tmp_path / "x.csv")
    assert result.code == 1
    assert "download failed" in result.err
