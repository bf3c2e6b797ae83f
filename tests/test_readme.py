"""The README is the user's manual: its tables must say what the code does."""

import argparse
import json
import re
import shlex
from pathlib import Path

import pytest

from spamops.cli import commands
from spamops.config import defaults_markdown
from spamops.errors import ExitCode

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_settings_table_is_generated_from_the_config_models():
    table = README.split("<!-- settings:start -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert table == defaults_markdown(), "regenerate with: spamops config defaults --markdown"


def test_every_exit_code_is_documented():
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", README, flags=re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode}


def _section(title: str, text: str = README) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def command_table(text: str = README) -> dict[str, str]:
    """The README's command table: {"models list": its whole row}, parsed from the `spamops ...` cells."""
    rows = {}
    for line in _section("Command line", text).splitlines():
        cell = re.match(r"^\| `spamops ([a-z][a-z -]*?)(?: [\[A-Z].*?)?` \|", line)
        if cell:
            assert cell.group(1) not in rows, f"{cell.group(1)} has two rows"
            rows[cell.group(1)] = line
    return rows


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {
        s
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction | argparse._VersionAction)
        for s in a.option_strings
        if s.startswith("--") or len(s) == 2
    }


def test_the_command_table_lists_exactly_the_parsers_commands():
    assert set(command_table()) == {name for name, _ in commands()}


def test_every_flag_is_documented_in_its_row_or_as_a_shared_flag():
    """A flag of one command is in that command's row; a flag several commands share is named in
    the prose under the table (`Every command takes ...`)."""
    rows, leaves = command_table(), dict(commands())
    uses: dict[str, int] = {}
    for parser in leaves.values():
        for flag in _flags(parser):
            uses[flag] = uses.get(flag, 0) + 1
    prose = _section("Command line").split("\n### ", 1)[0]
    prose = "\n".join(line for line in prose.splitlines() if not line.startswith("|"))
    for name, parser in leaves.items():
        for flag in _flags(parser):
            where = prose if uses[flag] > 1 else rows[name]
            assert re.search(rf"[`\[ ]{re.escape(flag)}(?![\w-])", where), f"spamops {name} {flag} is not documented"
    assert re.search(r"`-o json`", prose) and re.search(r"`-o wide`", prose)


def test_the_command_table_parser_catches_a_missing_row():
    assert "rollback" in command_table()
    assert "rollback" not in command_table(README.replace("| `spamops rollback` |", "| rollback |"))


def _predict_example() -> tuple[list[str], list[dict]]:
    serving = _section("Serving with KServe")
    (curl,) = [line for line in serving.splitlines() if line.startswith("curl") and ":predict" in line]
    request = json.loads(shlex.split(curl)[shlex.split(curl).index("-d") + 1])
    answer = json.loads(serving.split("```json\n", 1)[1].split("```", 1)[0])
    return request["instances"], answer["predictions"]


@pytest.fixture(scope="module")
def real_model(real_data, tmp_path_factory):
    """The documented model: `spamops train` on the real 1k sample, pulled like KServe does, loaded by our predictor."""
    from spamops.cli import main
    from spamops.registry.store import open_store
    from spamops.registry.versions import Registry
    from spamops.serving.model import SpamModel

    store = tmp_path_factory.mktemp("readme-store")
    assert main(["train", "--store", str(store), "--data", str(real_data / "smsspamcollection-1k.csv"), "--quiet"]) == 0
    registry = Registry(open_store(str(store)), "spam")
    model_dir = tmp_path_factory.mktemp("readme-model") / "model"
    registry.pull(registry.production().version, model_dir)
    model = SpamModel("spam", model_dir)
    assert model.load(), model.load_error
    return model


def test_readme_predictions_are_what_the_real_data_model_answers(real_model):
    instances, documented = _predict_example()
    answered = real_model.predict({"instances": instances})["predictions"]
    assert [a["label"] for a in answered] == [d["label"] for d in documented]
    for a, d in zip(answered, documented, strict=True):
        assert abs(a["spam_probability"] - d["spam_probability"]) <= 0.01, (a, d)


def test_readme_short_spam_caveat_is_true(real_model):
    caveat = re.search(r'weak on short\s+spam: `"([^"]+)"` \((\d+) characters\) comes back\s+`(\w+)`', README)
    assert caveat, "the README's short-spam caveat moved; update this test"
    message, length, label = caveat.groups()
    assert len(message) == int(length)
    assert real_model.predict({"instances": [message]})["predictions"][0]["label"] == label == "ham"
