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
    """One JSON document on stdout."""
    print(json.dumps(obj, indent=2, sort_keys=True))


def parent_parsers() -> dict[str, argparse.ArgumentParser]:
    """Option groups shared by several commands: ``common`` (store, config, model name) and ``json``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="run configuration YAML (see 'spamops config defaults')")
    common.add_argument("--store", metavar="URI", help="artifact store: path, file:// or s3://bucket/prefix")
    common.add_argument("--model-name", metavar="NAME", help="model name (default: spam)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="machine-readable output")
    return {"common": common, "json": as_json}
