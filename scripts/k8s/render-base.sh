#!/usr/bin/env bash
# Render the kustomize base (manifests/base/spamops.yaml) from the Helm chart
# with its default values: the chart is the single source of truth.
# Usage: scripts/k8s/render-base.sh [OUT]   (default: manifests/base/spamops.yaml)
# HELM may point at a helm binary; otherwise the pinned, cached one is used
# (built on first use by `scripts/envtest/build.sh helm`). SPAMOPS_ROOT renders
# another checkout's chart (`make pin PIN_ROOT=...`); default: this one.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
root="${SPAMOPS_ROOT:-$repo}"
out="${1:-$root/manifests/base/spamops.yaml}"
if [[ -z "${HELM:-}" ]]; then
  HELM="$(bash "$repo/scripts/envtest/build.sh" --print-env helm | sed -n 's/^HELM=//p')"
fi
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
{
  echo "# GENERATED from helm/spamops with its default values by scripts/k8s/render-base.sh"
  echo "# (make manifests). Do not edit: change the chart and re-render; a test fails on drift."
  (cd "$root" && "$HELM" template spamops helm/spamops --namespace spamops)
} >"$tmp"
mkdir -p "$(dirname "$out")"
mv "$tmp" "$out"
trap - EXIT
