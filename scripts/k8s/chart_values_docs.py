"""The `# --` comments of helm/spamops/values.yaml, by dotted key: the one source of the chart's value docs.

helm-docs renders them into the chart README; values.schema.json carries the same text as
`description`s. `--check` (tests/k8s/test_chart_docs.py) fails when a schema description differs
from its comment; `--write` copies the comments into the schema.

Usage: python scripts/k8s/chart_values_docs.py [--check | --write]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

CHART = Path(__file__).resolve().parents[2] / "helm" / "spamops"
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w-]*):")
_TYPE = re.compile(r"^\((?P<type>[\w/]+)\)\s*")


def value_comments(text: str) -> dict[str, str]:
    """{"s3.endpoint": "host[:port] without scheme ..."} for every key with a `# --` comment above it."""
    return {k: v for k, v in value_keys(text).items() if v is not None}


def value_keys(text: str) -> dict[str, str | None]:
    """Every key of values.yaml by dotted path, with its `# --` comment or None."""
    docs: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#") and pending is not None:
            pending.append(stripped[1:].strip())
            continue
        match = _KEY.match(line)
        if match:
            indent = len(match["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match["key"]))
            docs[".".join(k for _, k in stack)] = None if pending is None else _TYPE.sub("", " ".join(pending))
        pending = None
    return docs


def schema_nodes(schema: dict, prefix: str = "") -> dict[str, dict]:
    """{"s3.endpoint": its schema node} for every property (not inside training.config: RunConfig's)."""
    nodes = {}
    for key, node in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        nodes[path] = node
        if path != "training.config":
            nodes.update(schema_nodes(node, f"{path}."))
    return nodes


def mismatches(values_yaml: str | None = None, schema: dict | None = None) -> list[str]:
    """What keeps values.yaml's comments and the schema's descriptions from being one text (default: the chart's)."""
    keys = value_keys(values_yaml if values_yaml is not None else (CHART / "values.yaml").read_text())
    comments = {k: v for k, v in keys.items() if v is not None}
    nodes = schema_nodes(schema if schema is not None else json.loads((CHART / "values.schema.json").read_text()))
    problems = [
        f"{k}: `# --` comment in values.yaml, no such schema property" for k in sorted(set(comments) - set(nodes))
    ]
    for key, node in sorted(nodes.items()):
        if key in comments and node.get("description") != comments[key]:
            problems.append(f"{key}: schema description differs from its `# --` comment")
        elif key not in comments and (("properties" not in node and key in keys) or not node.get("description")):
            problems.append(
                f"{key}: undocumented (a `# --` comment in values.yaml; a group may have a schema description)"
            )
    return problems


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        path = CHART / "values.schema.json"
        schema = json.loads(path.read_text())
        comments = value_comments((CHART / "values.yaml").read_text())
        for key, node in schema_nodes(schema).items():
            if key in comments:
                node["description"] = comments[key]
        path.write_text(json.dumps(schema, indent=2) + "\n")
        return 0
    problems = mismatches()
    print("\n".join(problems) or "values.schema.json descriptions match values.yaml", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
