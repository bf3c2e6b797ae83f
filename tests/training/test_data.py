"""Ingestion: every bad input is a one-line error naming file and line, exit 2, nothing stored."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from spamops.errors import BadInputError
from spamops.training.data import csv_chunks, load_dataset


def store_files(store: Path) -> list[str]:
    """Everything in a store, for asserting that nothing was written."""
    return sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()) if store.exists() else []


GOOD_ROWS = "".join(f"{'spam' if i % 5 == 0 else 'ham'},{40 + i},{i % 7}\n" for i in range(200))


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


BAD_INPUTS = [
    # (file name, content, expected fragments of the one-line message)
    ("empty.csv", "", ["empty.csv", "file is empty"]),
    ("header_only.csv", "label,length,punct\n", ["header_only.csv", "line 1", "header only"]),
    ("wrong_columns.csv", "label,size,marks\nham,1,2\n", ["wrong_columns.csv", "line 1", "unexpected columns"]),
    (
        "non_numeric.csv",
        "label,length,punct\nham,12,1\nham,abc,2\nspam,99,7\n",
        ["non_numeric.csv", "line 3", "length 'abc' is not a number"],
    ),
    ("negative.csv", "label,length,punct\nham,12,1\nspam,99,-3\n", ["negative.csv", "line 3", "punct '-3'"]),
    (
        "bad_label.csv",
        "label,length,punct\nham,12,1\nspamm,99,7\n",
        ["bad_label.csv", "line 3", "unknown label 'spamm'"],
    ),
    ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", ["binary.csv", "not a CSV text file"]),
    (
        "latin1.csv",
        "label,message\nham,caf\xe9 ok\n".encode("latin-1"),
        ["latin1.csv", "line 2", "undecodable byte 0xe9"],
    ),
    ("short_row.csv", "label,length,punct\nham,12\nham,3,1\n", ["short_row.csv", "line 2", "expected 3 fields"]),
]


@pytest.mark.parametrize(("name", "content", "fragments"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_refused_with_one_clear_line_and_nothing_stored(tmp_path, cli, store, name, content, fragments):
    path = _write(tmp_path, name, content)

    result = cli("train", "--store", store, "--data", path, "--quiet")

    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    for fragment in fragments:
        assert fragment in lines[0]
    assert store_files(store) == []


def test_missing_file_is_refused(tmp_path, cli, store):
    result = cli("train", "--store", store, "--data", tmp_path / "nope.csv", "--quiet")
    assert result.code == 2
    assert "nope.csv: file does not exist" in result.err
    assert store_files(store) == []


def test_a_bad_second_source_refuses_the_whole_run(tmp_path, cli, store):
    good = _write(tmp_path, "good.csv", "label,length,punct\n" + GOOD_ROWS)
    bad = _write(tmp_path, "bad.csv", "label,length,punct\nham,1,x\n")
    result = cli("train", "--store", store, "--data", good, bad, "--quiet")
    assert result.code == 2
    assert "bad.csv: 1 of 1 rows invalid" in result.err
    assert "line 2: punct 'x' is not a number" in result.err
    assert store_files(store) == []


def test_a_few_bad_rows_below_the_limit_are_skipped_and_reported(tmp_path):
    content = "label,length,punct\n" + GOOD_ROWS + "ham,oops,1\n"
    path = _write(tmp_path, "mostly_good.csv", content)

    dataset = load_dataset([str(path)], max_bad_row_share=0.01)

    assert len(dataset.y) == 200
    assert [str(b) for b in dataset.bad_rows] == [f"{path}: line 202: length 'oops' is not a number"]
    assert dataset.record()["bad_rows"] == 1


def test_the_bad_row_limit_is_configurable(tmp_path):
    path = _write(tmp_path, "noisy.csv", "label,length,punct\n" + GOOD_ROWS + "ham,oops,1\nham,-1,0\nspamm,3,3\n")
    with pytest.raises(BadInputError, match=r"noisy.csv: 3 of 203 rows invalid \(1\.5% > 1\.0% allowed\)"):
        load_dataset([str(path)], max_bad_row_share=0.01)
    assert len(load_dataset([str(path)], max_bad_row_share=0.02).y) == 200


def test_labels_are_case_insensitive_and_duplicates_are_kept_but_counted(tmp_path):
    path = _write(tmp_path, "dups.csv", "label,length,punct\nHAM,10,1\nham,10,1\nSpam,150,8\nham,10,1\n")
    dataset = load_dataset([str(path)])
    assert dataset.y.tolist() == [0, 0, 1, 0]
    assert dataset.duplicate_rows == 1  # "ham,10,1" twice is a repeat; "HAM,10,1" differs as written
    assert dataset.class_counts == {"ham": 3, "spam": 1}


def test_fingerprint_is_a_function_of_the_rows_and_their_order(tmp_path):
    a = _write(tmp_path, "a.csv", "label,length,punct\nham,10,1\nspam,150,8\n")
    b = _write(tmp_path, "b.csv", "label,length,punct\nspam,150,8\nham,10,1\n")
    copy = _write(tmp_path, "copy.csv", a.read_text())
    fa, fb, fcopy = (load_dataset([str(p)]) for p in (a, b, copy))
    assert fa.fingerprint == fcopy.fingerprint
    assert fa.fingerprint != fb.fingerprint
    assert fa.sources[0].sha256 == fcopy.sources[0].sha256
    combined = load_dataset([str(a), str(b)])
    assert [s.rows for s in combined.sources] == [2, 2]
    assert combined.record()["rows"] == 4


def test_text_schema_real_data_ingests_through_the_feature_module(real_data):
    from spamops.features import message_features

    path = real_data / "synthetic_sms_dataset_with_punct.csv"
    dataset = load_dataset([str(path)])

    assert dataset.sources[0].schema == "text"
    assert len(dataset.y) == 1000
    first_message = "account update; now ;today discount lunch update urgent today click acco.unt reminder call verification reminder gift update reply discount"
    assert dataset.X[0].tolist() == list(message_features(first_message))


def test_data_with_a_single_class_cannot_train(tmp_path, cli, store):
    path = _write(tmp_path, "only_ham.csv", "label,length,punct\n" + "ham,10,1\n" * 50)
    result = cli("train", "--store", store, "--data", path, "--quiet")
    assert result.code == 2
    assert "only_ham.csv: too few rows per class to train (ham=50, spam=0)" in result.err
    assert store_files(store) == []


# Bad-data rules (issue 8 item 7): every unusable row is a bad row, counted against the same 1% limit.
BAD_ROWS = [
    # (header, bad line as bytes, reason fragment)
    ("label,message", "ham,caf\xe9 ok\n".encode("latin-1"), "undecodable byte 0xe9; save the file as UTF-8"),
    ("label,message", b"ham,\n", "empty message"),
    ("label,message", b'spam,""\n', "empty message"),
    ("label,length,punct", b"spam,10.5,1\n", "length '10.5' must be a whole number"),
    ("label,length,punct", b",,\n", "empty row"),
]


@pytest.mark.parametrize(
    ("header", "bad", "reason"), BAD_ROWS, ids=["undecodable", "ham-comma", "empty-quoted", "fraction", "commas"]
)
def test_one_unusable_row_is_a_bad_row_within_the_tolerance_not_a_stop(tmp_path, header, bad, reason):
    good = (
        GOOD_ROWS
        if header == "label,length,punct"
        else "".join(f"{'spam' if i % 5 == 0 else 'ham'},{'x!' * (1 + i % 9)}\n" for i in range(200))
    )
    path = _write(tmp_path, "one_bad.csv", (header + "\n" + good).encode() + bad)

    dataset = load_dataset([str(path)], max_bad_row_share=0.01)

    assert len(dataset.y) == 200
    assert [f"line {b.line}" for b in dataset.bad_rows] == ["line 202"]
    assert reason in dataset.bad_rows[0].reason
    assert dataset.record()["bad_rows"] == 1


def test_an_extra_column_is_ignored_and_reported_once(tmp_path, cli, store):
    rows = "".join(f"{line.rstrip()},batch-{i % 3}\n" for i, line in enumerate(GOOD_ROWS.splitlines()))
    path = _write(tmp_path, "extra.csv", "label,length,punct,batch\n" + rows)
    plain = _write(tmp_path, "plain.csv", "label,length,punct\n" + GOOD_ROWS)

    dataset = load_dataset([str(path)])

    assert dataset.sources[0].ignored_columns == ["batch"]
    assert dataset.X.tolist() == load_dataset([str(plain)]).X.tolist()
    result = cli("train", "--store", store, "--data", path, "--quiet", "--no-promote")
    assert result.code in (0, 3), result.err
    assert result.err.count("ignoring extra column(s) 'batch'") == 1


def test_quiet_still_warns_about_skipped_rows_and_json_counts_them_per_source(tmp_path, cli, store):
    good = _write(tmp_path, "good.csv", "label,length,punct\n" + GOOD_ROWS)
    noisy = _write(tmp_path, "noisy.csv", "label,length,punct\n" + GOOD_ROWS + "ham,7.5,1\n")

    result = cli("train", "--store", store, "--data", good, noisy, "--quiet", "--json", "--no-promote")

    assert result.code in (0, 3), result.err
    assert f"skipped {noisy}: line 202: length '7.5' must be a whole number" in result.err
    assert [(s["uri"], s["rows"], s["bad_rows"]) for s in result.json()["sources"]] == [
        (str(good), 200, 0),
        (str(noisy), 200, 1),
    ]


def test_a_large_file_streams_and_keeps_only_examples_of_its_bad_rows(tmp_path):
    lines = [f"{'spam' if i % 5 == 0 else 'ham'},{40 + i % 300},{i % 7}\n" for i in range(30_000)]
    lines[::200] = ["ham,x,1\n"] * len(lines[::200])  # 150 bad rows: 0.5%
    path = _write(tmp_path, "big.csv", "label,length,punct\n" + "".join(lines))

    dataset = load_dataset([str(path)])

    assert dataset.record()["bad_rows"] == 150 and len(dataset.y) == 30_000 - 150
    assert len(dataset.bad_rows) == 100  # examples for people; the count stays exact
    assert dataset.sources[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_csv_chunks_write_the_rows_the_fingerprint_hashes(tmp_path):
    path = _write(tmp_path, "rows.csv", "label,length,punct\n" + GOOD_ROWS)
    dataset = load_dataset([str(path)])

    chunks = list(csv_chunks(dataset.X, dataset.y, chunk_rows=64))

    assert len(chunks) == 1 + 4
    assert chunks[0] == b"label,length,punct\n"
    assert f"sha256:{hashlib.sha256(b''.join(chunks[1:])).hexdigest()}" == dataset.fingerprint
    again = load_dataset([str(_write(tmp_path, "again.csv", b"".join(chunks)))])
    assert again.fingerprint == dataset.fingerprint and again.y.tolist() == dataset.y.tolist()


@pytest.mark.parametrize(
    "source, fragment",
    [
        ({"inference_log": "log/"}, "data.sources.0.labelled_log.feedback: Field required"),
        ({"inference_log": "log/", "feedback": "fb/", "labels": "x"}, "labels"),
        ({"inference_log": "", "feedback": "fb/"}, "data.sources.0"),
        (5, "data.sources.0: must be a CSV path or URI, or a mapping {inference_log: URI, feedback: URI}"),
    ],
)
def test_a_labelled_log_source_is_validated_with_the_config(tmp_path, cli, store, source, fragment):
    config = _write(tmp_path, "run.yaml", yaml.safe_dump({"data": {"sources": [source]}}))
    result = cli("train", "--config", config, "--store", store, "--quiet")
    assert result.code == 2
    assert "invalid config" in result.err and fragment in result.err
    assert store_files(store) == []


def test_a_labelled_log_without_labels_is_refused_saying_what_to_do(tmp_path, cli, store):
    source = {"inference_log": str(tmp_path / "log"), "feedback": str(tmp_path / "feedback")}
    config = _write(tmp_path, "run.yaml", yaml.safe_dump({"data": {"sources": [source]}}))
    result = cli("train", "--config", config, "--store", store, "--quiet")
    assert result.code == 2
    assert f"labelled-log:{tmp_path / 'log'}" in result.err and "spamops monitor feedback" in result.err
    assert store_files(store) == []
