"""The README is the user's manual: its tables must say what the code does."""

import re
from pathlib import Path

from spamops.cli import build_parser
from spamops.config import defaults_markdown
from spamops.errors import ExitCode

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_settings_table_is_generated_from_the_config_models():
    table = README.split("<!-- settings:start -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert table == defaults_markdown(), "regenerate with: spamops config defaults --markdown"


def test_every_exit_code_is_documented():
    documented = {int(code) for code in re.findall(r"^\| (\d) \|", README, flags=re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode}


def test_every_command_is_documented():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        nested = [a for a in command._actions if getattr(a, "choices", None) and a.dest.endswith("_command")]
        names = [f"{name} {n}" for a in nested for n in a.choices] or [name]
        for full in names:
            assert f"spamops {full}" in README, full
