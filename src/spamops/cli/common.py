"""What every command shares: settings with flag overrides, the registry, output helpers, parent parsers."""

from __future__ import annotations

import argparse
import json

from pydantic import ValidationError

from spamops.config import RunConfig, load_config
from spamops.errors import BadInputError


def settings(args: argparse.Namespace) -> RunConfig:
    """The config file with command-line overrides, validated like the file itself."""
    cfg = load_config(args.config)
    raw = cfg.model_dump(mode="json")
    flags = {}
    if getattr(args, "store", None):
        raw["store"], flags["store"] = args.store, "--store"
    if getattr(args, "model_name", None):
        raw["model_name"], flags["model_name"] = args.model_name, "--model-name"
    if getattr(args, "data", None):
        raw["data"]["sources"], flags["data"] = list(args.data), "--data"
    if getattr(args, "no_promote", False):
        raw["promote"] = False
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = flags.get(str(err["loc"][0]), ".".join(str(p) for p in err["loc"]))
        raise BadInputError(f"{flag}: {err['msg']}") from None


def registry(args: argparse.Namespace):
    """The registry of the configured store and model name (imported late: boto3 is slow to import)."""
    from spamops.registry.store import open_store
    from spamops.registry.versions import Registry

    cfg = settings(args)
    return Registry(open_store(cfg.store), cfg.model_name)


def print_json(obj: object) -> None:
    """One JSON document on stdout; everything else a command says goes to stderr."""
    print(json.dumps(obj, indent=2, sort_keys=True))


OUTPUT_FORMATS = ("table", "wide", "json")


class _OutputFormat(argparse.Action):
    """``-o FORMAT`` and its alias ``--json``; also sets ``args.json`` (bool) that commands read."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        fmt = self.const if self.const is not None else values
        namespace.output = fmt
        namespace.json = fmt == "json"


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    example: str | list[str],
    parents: list[argparse.ArgumentParser] | None = None,
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` repeats its one-line help and ends with a runnable example."""
    examples = [example] if isinstance(example, str) else example
    return sub.add_parser(
        name,
        parents=parents or [],
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog="example:\n" + "\n".join(f"  {e}" for e in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_group(sub: argparse._SubParsersAction, name: str, *, help: str) -> argparse._SubParsersAction:
    """A command group (``spamops models ...``); bare, it prints its own help (see cli.main)."""
    group = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
    nested = group.add_subparsers(dest=f"{name}_command", metavar="COMMAND", title="commands")
    group.set_defaults(func=None, help_parser=group)
    return nested


def parent_parsers() -> dict[str, argparse.ArgumentParser]:
    """Option groups shared by several commands: ``common`` (store, config, model name) and the output format.

    ``json`` offers ``-o table|json`` (and ``--json``); ``wide`` adds ``-o wide`` for listings with more columns.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="run configuration YAML (see 'spamops config defaults')")
    common.add_argument("--store", metavar="URI", help="artifact store: path, file:// or s3://bucket/prefix")
    common.add_argument("--model-name", metavar="NAME", help="model name (default: spam)")
    return {"common": common, "json": _output_parser(("table", "json")), "wide": _output_parser(OUTPUT_FORMATS)}


def _output_parser(formats: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "-o",
        "--output",
        choices=formats,
        action=_OutputFormat,
        metavar="FORMAT",
        help=f"output format: {', '.join(formats)} (default: table); json is one document on stdout",
    )
    parser.add_argument(
        "--json", nargs=0, const="json", action=_OutputFormat, help="same as -o json (kept for scripts)"
    )
    parser.set_defaults(output="table", json=False)
    return parser
