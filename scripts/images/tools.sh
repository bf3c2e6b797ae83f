#!/usr/bin/env bash
# Build (first time) or reuse (afterwards) the Go-module tools of the image
# pipeline: actionlint (make lint), syft (SBOMs) and cosign (signatures).
# Each is `go install <module>/cmd/<tool>@<version>` (versions.env), cached as
#   ${SPAMOPS_CACHE:-$HOME/.cache/spamops}/tools/<tool>-<version>/<tool>
# and shares the machine's Go build cache.
#
# Usage: scripts/images/tools.sh [--print-env] [TOOL...]   (default: all three)
#   --print-env  print TOOL=path lines (ACTIONLINT=..., SYFT=..., COSIGN=...)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

print_env=false
tools=()
for arg in "$@"; do
  case "$arg" in
    --print-env) print_env=true ;;
    actionlint | syft | cosign) tools+=("$arg") ;;
    *) printf 'tools.sh: unknown argument %q (tools: actionlint syft cosign)\n' "$arg" >&2; exit 2 ;;
  esac
done
((${#tools[@]})) || tools=(actionlint syft cosign)

cache_root="${SPAMOPS_CACHE:-$HOME/.cache/spamops}/tools"
mkdir -p "$cache_root"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false" GOTOOLCHAIN="${SPAMOPS_GOTOOLCHAIN:-local}"
log() { printf '[tools %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

build() { # tool module version -> path of the cached binary
  local tool=$1 module=$2 version=$3 dir bin
  dir="$cache_root/$tool-$version"
  bin="$dir/$tool"
  if [[ ! -x "$bin" ]]; then
    (
      flock 9
      [[ -x "$bin" ]] && exit 0
      command -v go >/dev/null || { log "error: building $tool needs Go in PATH (https://go.dev/dl/)"; exit 1; }
      local start=$SECONDS ld="-s -w"
      # syft and cosign print their version from these variables.
      case "$tool" in
        syft) ld+=" -X main.version=${version#v}" ;;
        cosign) ld+=" -X sigs.k8s.io/release-utils/version.gitVersion=$version" ;;
      esac
      log "building $tool $version from $module (first time only)"
      mkdir -p "$dir.tmp"
      GOBIN="$dir.tmp" go install -trimpath -ldflags "$ld" "$module/cmd/$tool@$version"
      rm -rf "$dir"; mv "$dir.tmp" "$dir"
      printf 'built_at=%s\nbuild_seconds=%s\n' "$(date -u +%FT%TZ)" "$((SECONDS - start))" >"$dir/.complete"
      log "$tool $version built in $((SECONDS - start)) s"
    ) 9>"$cache_root/.$tool.lock"
  fi
  printf '%s\n' "$bin"
}

for tool in "${tools[@]}"; do
  case "$tool" in
    actionlint) path="$(build actionlint "$ACTIONLINT_MODULE" "$ACTIONLINT_VERSION")"; var=ACTIONLINT ;;
    syft) path="$(build syft "$SYFT_MODULE" "$SYFT_VERSION")"; var=SYFT ;;
    cosign) path="$(build cosign "$COSIGN_MODULE" "$COSIGN_VERSION")"; var=COSIGN ;;
  esac
  if $print_env; then printf '%s=%s\n' "$var" "$path"; fi
done
