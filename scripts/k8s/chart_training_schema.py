"""values.schema.json's ``training.config``: generated from the trainer's ``RunConfig`` (pydantic's JSON Schema).

The trainer validates its config.yaml with ``spamops.config.RunConfig``; the chart validates
the same document at ``helm install`` time. So the chart's schema for it is not written by
hand: it is RunConfig's JSON Schema with every ``$ref`` inlined (the chart's own ``$defs``
are the chart's) and ``title``s dropped, plus the few bounds that hold only in a cluster
(:data:`CHART_ONLY`: stricter, never looser), plus the old name of every renamed setting the
trainer still reads (``spamops.config.RENAMED_SETTINGS``), marked deprecated, so values that
the trainer accepts are not refused by ``helm install``. The node's ``description`` is the `# --`
comment in values.yaml (``chart_values_docs.py`` writes it) and is kept as it is.

``--check`` (tests/k8s/test_chart.py) fails when the committed schema differs from what
``--write`` (``make chart-schema``) would write.

Usage: python scripts/k8s/chart_training_schema.py [--check | --write]
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

CHART = Path(__file__).resolve().parents[2] / "helm" / "spamops"
SCHEMA = CHART / "values.schema.json"
URI = "^(s3|file)://.+"  # in a pod a relative path is meaningless: a URI, s3:// or a mounted file://
DNS_LABEL = {"pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}

# (path into the generated node, keywords added there): what the chart demands beyond RunConfig.
CHART_ONLY: list[tuple[tuple[str | int, ...], dict[str, Any]]] = [
    ((), {"required": ["model_name", "store", "data"]}),
    (("properties", "store"), {"pattern": URI}),
    (("properties", "data"), {"required": ["sources"]}),
    (("properties", "data", "properties", "sources"), {"minItems": 1}),
    (("properties", "data", "properties", "sources", "items", "oneOf", 0), {"pattern": URI}),
    (("properties", "rollout", "properties", "inference_service"), DNS_LABEL),
    (("properties", "rollout", "properties", "namespace"), DNS_LABEL),
]
DROPPED = ("title",)


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``#/$defs/X`` replaced by a copy of X (siblings of the ``$ref`` win)."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _inline({**copy.deepcopy(defs[name]), **siblings}, defs)
    return {k: _inline(v, defs) for k, v in node.items() if k not in DROPPED}


def generated(description: str | None = None) -> dict[str, Any]:
    """The ``training.config`` node for RunConfig as this checkout defines it."""
    from spamops.config import RunConfig

    model = RunConfig.model_json_schema()
    defs = model.pop("$defs", {})
    node = _inline(model, defs)
    node.pop("description", None)  # RunConfig's docstring; the chart's text is the values.yaml comment
    for path, keywords in CHART_ONLY:
        target: Any = node
        for step in path:
            try:
                target = target[step]
            except (KeyError, IndexError, TypeError):
                raise SystemExit(
                    f"chart_training_schema: RunConfig has no {'.'.join(map(str, path))}; "
                    "update CHART_ONLY beside the model"
                ) from None
        target.update(copy.deepcopy(keywords))
    _old_names(node)
    if description is not None:
        node["description"] = description
    return {"$comment": "Generated from spamops.config.RunConfig by `make chart-schema`: edit the model.", **node}


def _old_names(node: dict[str, Any]) -> None:
    """Each renamed setting the trainer still reads, under its old name beside the new one (deprecated)."""
    from spamops.config import RENAMED_SETTINGS

    def at(path: str) -> tuple[dict[str, Any], str]:
        *sections, leaf = path.split(".")
        target = node
        for section in sections:
            target = target["properties"][section]
        return target["properties"], leaf

    for old, entry in RENAMED_SETTINGS.items():
        if not entry.read_by():
            continue
        old_parent, old_leaf = at(old)
        if entry.new is None:  # retired: read with a warning and ignored, whatever its value
            old_parent[old_leaf] = {
                "deprecated": True,
                "description": f"Retired ({entry.note}): ignored, with a warning, until spamops {entry.until}.",
            }
            continue
        new_parent, new_leaf = at(entry.new)
        if entry.convert is not None:  # its meaning changed: the new name's bounds do not apply to it
            old_parent[old_leaf] = {
                "deprecated": True,
                "description": f"Old name of {entry.new} ({entry.note}), read until spamops {entry.until}.",
            }
            continue
        old_parent[old_leaf] = {
            **{k: v for k, v in copy.deepcopy(new_parent[new_leaf]).items() if k != "default"},
            "deprecated": True,
            "description": f"Old name of {entry.new}, read until spamops {entry.until}.",
        }


def current() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text())["properties"]["training"]["properties"]["config"]


def stale(committed: dict[str, Any] | None = None) -> bool:
    """Whether ``committed`` (default: the chart's node) differs from the generated one."""
    committed = current() if committed is None else committed
    return committed != generated(committed.get("description"))


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        schema = json.loads(SCHEMA.read_text())
        config = schema["properties"]["training"]["properties"]
        config["config"] = generated(config.get("config", {}).get("description"))
        SCHEMA.write_text(json.dumps(schema, indent=2) + "\n")
        return 0
    if stale():
        print("helm/spamops/values.schema.json: training.config differs from RunConfig: run `make chart-schema`")
        return 1
    print("values.schema.json training.config matches RunConfig", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
