#!/usr/bin/env bash
# Generate helm/spamops/README.md with helm-docs from README.md.gotmpl and the
# `# --` comments in values.yaml (make chart-docs), then copy the same comments
# into values.schema.json's descriptions: values.yaml is the one source.
# Usage: scripts/k8s/chart-docs.sh [--dry-run]   (--dry-run: print the README, write nothing)
# HELM_DOCS may point at a helm-docs binary; otherwise the pinned, cached one is
# used (built on first use by `scripts/envtest/build.sh helm-docs`).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -z "${HELM_DOCS:-}" ]]; then
  HELM_DOCS="$(bash "$repo/scripts/envtest/build.sh" --print-env helm-docs | sed -n 's/^HELM_DOCS=//p')"
fi
# Not --documentation-strict-mode: in v1.14 it reports every value as undocumented
# and skips the chart. chart_values_docs.py --check finds undocumented values instead.
args=(--chart-search-root "$repo/helm" --sort-values-order file --skip-version-footer --log-level warning)
if [[ "${1:-}" == "--dry-run" ]]; then
  exec "$HELM_DOCS" "${args[@]}" --dry-run
fi
"$HELM_DOCS" "${args[@]}"
python3 "$repo/scripts/k8s/chart_values_docs.py" --write
