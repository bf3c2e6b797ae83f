"""The command tree as a user meets it: help on a bare call, plain help texts, an example per command,
and one output switch (-o table|wide|json, --json) everywhere."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from spamops.cli import build_parser, commands

COMMANDS = dict(commands())
# reStructuredText / Sphinx markup that docstrings may carry but a terminal must not show.
MARKUP = re.compile(r"``|:(?:class|func|meth|mod|attr|data|exc|obj|ref):`")


def _all_parsers(parser: argparse.ArgumentParser, path: str = ""):
    yield path or "spamops", parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _all_parsers(child, f"{path} {name}".strip())


ALL_PARSERS = dict(_all_parsers(build_parser()))


def test_the_command_tree_is_walked_completely():
    assert {"train", "models list", "models show", "promote", "config defaults", "data fetch-uci"} <= set(COMMANDS)


@pytest.mark.parametrize("argv", [[], ["models"], ["config"], ["rollout"], ["data"]], ids=" ".join)
def test_a_bare_command_prints_its_help_and_exits_0(cli, argv):
    result = cli(*argv)
    assert result.code == 0, result.err
    assert result.out.startswith(f"usage: spamops {' '.join(argv)}".rstrip())
    subcommands = {name.split()[len(argv)] for name in COMMANDS if name.split()[: len(argv)] == argv}
    for name in subcommands:
        assert re.search(rf"^\s+{re.escape(name)}\s", result.out, flags=re.MULTILINE), name


def test_bare_help_documents_the_exit_codes_and_output_formats(cli):
    out = cli().out
    assert "exit codes: 0 ok, 1 retryable or unexpected, 2 bad input or config, 3 gate refused" in out
    assert "-o json" in out


@pytest.mark.parametrize("name", sorted(ALL_PARSERS))
def test_help_is_plain_text(name):
    text = ALL_PARSERS[name].format_help()
    assert not MARKUP.search(text), MARKUP.search(text).group(0)


@pytest.mark.parametrize("name", sorted(ALL_PARSERS))
def test_every_argument_and_subcommand_has_help_text(name):
    parser = ALL_PARSERS[name]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"spamops {name} {choice.dest}: no help text"
        else:
            label = "/".join(action.option_strings) or action.dest
            assert action.help and action.help != argparse.SUPPRESS, f"spamops {name} {label}: no help text"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_help_ends_with_examples_that_parse(name):
    """The examples are real invocations of that command: they parse, and the parser picks that command."""
    text = COMMANDS[name].format_help()
    assert "\nexample:\n" in text, f"spamops {name} --help has no example"
    examples = [line.strip() for line in text.split("\nexample:\n", 1)[1].splitlines() if line.strip()]
    assert examples
    for example in examples:
        argv = shlex.split(example)
        assert argv[0] == "spamops" and " ".join(argv[1:]).startswith(name), example
        args = build_parser().parse_args(argv[1:])  # SystemExit(2) on a broken example
        assert args.func is COMMANDS[name].get_default("func"), example


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_takes_o_json_and_the_json_alias(name):
    parser = build_parser()
    base = _required_args(COMMANDS[name])
    table = parser.parse_args([*name.split(), *base])
    as_o = parser.parse_args([*name.split(), *base, "-o", "json"])
    alias = parser.parse_args([*name.split(), *base, "--json"])
    assert (table.output, table.json) == ("table", False)
    assert (as_o.output, as_o.json) == (alias.output, alias.json) == ("json", True)
    assert parser.parse_args([*name.split(), *base, "--output", "table"]).json is False


def test_wide_is_offered_where_it_means_more_columns_and_refused_elsewhere(cli):
    assert build_parser().parse_args(["models", "list", "-o", "wide"]).output == "wide"
    result = cli("promote", "v1", "-o", "wide")
    assert result.code == 2 and "invalid choice: 'wide'" in result.err


def test_an_unknown_output_format_is_a_usage_error(cli):
    result = cli("models", "list", "-o", "yaml")
    assert result.code == 2
    assert "argument -o/--output: invalid choice: 'yaml'" in result.err


def _required_args(parser: argparse.ArgumentParser) -> list[str]:
    return [
        "x"
        for a in parser._actions
        if not a.option_strings and a.nargs not in ("?", "*") and not isinstance(a, argparse._SubParsersAction)
    ]
