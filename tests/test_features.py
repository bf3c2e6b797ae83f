"""The feature contract: length is len(message), punct counts string.punctuation characters."""

import csv

import pytest

from spamops.features import FEATURE_NAMES, features_matrix, message_features
from spamops.training.data import load_dataset

FIRST_UCI_MESSAGE = (
    "Go until jurong point, crazy.. Available only in bugis n great world la e buffet... Cine there got amore wat..."
)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (FIRST_UCI_MESSAGE, (111, 9)),
        ("", (0, 0)),
        ("Ok lar... Joking wif u oni...", (29, 6)),
        ("Free entry!!! Text WIN to 80086 (T&C's apply) £1.50/msg", (55, 9)),
        ("naïve café — no ASCII punctuation here", (38, 0)),
    ],
)
def test_features_of_known_messages(message, expected):
    assert message_features(message) == expected


def test_matrix_layout_matches_feature_names():
    X = features_matrix(["a.b", "cd"])
    assert X.shape == (2, len(FEATURE_NAMES))
    assert X.tolist() == [[3.0, 1.0], [2.0, 0.0]]


def test_text_rows_and_numeric_rows_give_the_same_features(tmp_path):
    text = tmp_path / "text.csv"
    numeric = tmp_path / "numeric.csv"
    messages = [("ham", FIRST_UCI_MESSAGE), ("SPAM", "WIN £100!! call now, T&Cs"), ("Ham", 'He said "hi", ok?')]
    with text.open("w", newline="") as fh:
        csv.writer(fh).writerows([("label", "message"), *messages])
    with numeric.open("w", newline="") as fh:
        rows = [(label, *message_features(msg)) for label, msg in messages]
        csv.writer(fh).writerows([("label", "length", "punct"), *rows])
    from_text, from_numeric = load_dataset([str(text)]), load_dataset([str(numeric)])
    assert from_text.X.tolist() == from_numeric.X.tolist()
    assert from_text.y.tolist() == [0, 1, 0]
    assert from_text.fingerprint == from_numeric.fingerprint
