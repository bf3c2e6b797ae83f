#!/usr/bin/env bash
# Build (first time) or reuse (afterwards) the binaries and CRDs of the test
# control plane: kube-apiserver + kubectl (k8s.io/kubernetes), etcd
# (go.etcd.io/etcd/server/v3), helm (helm.sh/helm/v3), helm-docs
# (github.com/norwoodj/helm-docs: the chart README from values.yaml's `# --`
# comments), and the KServe / Argo CD CRDs read from their Go modules' source trees.
#
# Everything is cached outside the repo, keyed by version:
#   ${SPAMOPS_CACHE:-$HOME/.cache/spamops}/envtest/<component>-<version>/
# Versions are pinned in scripts/envtest/versions.env (the one place).
#
# Usage: scripts/envtest/build.sh [--print-env] [COMPONENT...]
#   COMPONENT    crds, etcd, helm, helm-docs or kubernetes (kube-apiserver + kubectl);
#                default: all of them. `build.sh helm` is all `make lint-k8s`
#                and `make manifests` need.
#   --print-env  after building, print KEY=path lines for those artifacts.
#
# Needs Go >= GO_VERSION (versions.env) in PATH, only when something is built.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; }

print_env=false
components=()
for arg in "$@"; do
  case "$arg" in
    --print-env) print_env=true ;;
    crds | etcd | helm | helm-docs | kubernetes) components+=("$arg") ;;
    -h | --help) usage; exit 0 ;;
    *) printf 'build.sh: unknown argument %q (components: crds etcd helm helm-docs kubernetes)\n' "$arg" >&2; exit 2 ;;
  esac
done
((${#components[@]})) || components=(crds etcd helm helm-docs kubernetes)
wanted() { [[ " ${components[*]} " == *" $1 "* ]]; }

cache_root="${SPAMOPS_CACHE:-$HOME/.cache/spamops}/envtest"
mkdir -p "$cache_root"

export CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"
# The machine's own Go builds everything except where noted; a toolchain line in
# a dependency's go.mod must not trigger a toolchain download.
export GOTOOLCHAIN="${SPAMOPS_GOTOOLCHAIN:-local}"

log() { printf '[envtest-build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Go is needed only to build (or download) what is not cached yet; checked once.
go_checked=false
require_go() {
  $go_checked && return 0
  if ! command -v go >/dev/null 2>&1; then
    log "error: 'go' is not in PATH; building the test control plane needs Go >= $GO_VERSION (https://go.dev/dl/)"
    exit 1
  fi
  local have
  have="$(go env GOVERSION 2>/dev/null)" || have=""
  have="${have#go}"; have="${have%%[!0-9.]*}"
  if [[ -z "$have" || "$(printf '%s\n%s\n' "$GO_VERSION" "$have" | sort -V | head -n1)" != "$GO_VERSION" ]]; then
    log "error: Go ${have:-of unknown version} at $(command -v go) is too old; need >= $GO_VERSION (GO_VERSION in versions.env)"
    exit 1
  fi
  go_checked=true
}

# Serialise concurrent builds (two test sessions, make -j, ...).
exec 9>"$cache_root/.build.lock"
flock 9

module_dir() { # module@version -> directory in the module cache (downloads it)
  require_go
  local dir
  dir="$(cd "$cache_root" && go mod download -json "$1" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$dir" && -d "$dir" ]] || { log "cannot download $1"; return 1; }
  printf '%s\n' "$dir"
}

done_stamp() { grep -qx "revision=$BUILD_REVISION" "$1/.complete" 2>/dev/null; }

finish() { # dir seconds
  printf 'revision=%s\nbuilt_at=%s\nbuild_seconds=%s\n' "$BUILD_REVISION" "$(date -u +%FT%TZ)" "$2" >"$1/.complete"
}

# ---------------------------------------------------------------- kubernetes
build_kubernetes() {
  local v="$KUBERNETES_VERSION"
  local apiserver_dir="$cache_root/kube-apiserver-$v" kubectl_dir="$cache_root/kubectl-$v"
  if done_stamp "$apiserver_dir" && done_stamp "$kubectl_dir"; then return 0; fi
  require_go
  local start=$SECONDS
  log "building kube-apiserver and kubectl $v (first time: tens of minutes on 2 cores)"
  local minor="${v#v1.}"; minor="${minor%%.*}"
  local staging="v0.${v#v1.}"
  local kdir work
  kdir="$(module_dir "k8s.io/kubernetes@$v")"
  work="$cache_root/build/kubernetes-$v"
  rm -rf "$work"; mkdir -p "$work"
  # The documented way to consume k8s.io/kubernetes as a module: require it and
  # pin every staging module (k8s.io/api, k8s.io/apimachinery, ...) to v0.Y.Z.
  {
    printf 'module spamops.local/envtest-build\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$GO_VERSION" "$v"
    grep -E '^\s+k8s.io/[a-z0-9-]+ => \./staging/' "$kdir/go.mod" |
      awk -v s="$staging" '{printf "\t%s => %s %s\n", $1, $1, s}'
    printf ')\n'
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
  (cd "$work" && go mod tidy)
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$apiserver_dir" "$kubectl_dir"
  go_install "$work" "$apiserver_dir" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$ld" "$start"
  go_install "$work" "$kubectl_dir" kubectl k8s.io/kubernetes/cmd/kubectl "$ld" "$SECONDS"
}

# --------------------------------------------------------- go module helpers
# A throw-away module in WORK that requires MODULE@VERSION and imports PKG, tidied.
tool_module() {
  local work=$1 module=$2 version=$3 pkg=$4
  rm -rf "$work"; mkdir -p "$work"
  printf 'module spamops.local/%s\n\ngo %s\n\nrequire %s %s\n' "$(basename "$work")" "$GO_VERSION" "$module" "$version" >"$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >"$work/tools.go"
  (cd "$work" && go mod tidy)
}

# Build PKG from module WORK into OUT/NAME (atomically), stamp OUT and log the time since START.
go_install() {
  local work=$1 out=$2 name=$3 pkg=$4 ld=$5 start=$6
  mkdir -p "$out"
  (cd "$work" && go build -trimpath -ldflags "$ld" -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
  finish "$out" $((SECONDS - start))
  log "$name built in $((SECONDS - start)) s"
}

# ---------------------------------------------------------------------- etcd
build_etcd() {
  local v="$ETCD_VERSION"; local out="$cache_root/etcd-$v"
  done_stamp "$out" && return 0
  require_go
  local start=$SECONDS work="$cache_root/build/etcd-$v"
  log "building etcd $v"
  tool_module "$work" go.etcd.io/etcd/server/v3 "$v" go.etcd.io/etcd/server/v3
  go_install "$work" "$out" etcd go.etcd.io/etcd/server/v3 "-s -w" "$start"
}

# ---------------------------------------------------------------------- helm
build_helm() {
  local v="$HELM_VERSION"; local out="$cache_root/helm-$v"
  done_stamp "$out" && return 0
  require_go
  local start=$SECONDS work="$cache_root/build/helm-$v"
  log "building helm $v"
  tool_module "$work" helm.sh/helm/v3 "$v" helm.sh/helm/v3/cmd/helm
  # Like helm's own Makefile: the default Kubernetes version of `helm template`
  # and `helm lint` is that of the client-go it was built with (1 + v0.Y).
  local cg major minor ld
  cg="$(cd "$work" && go list -m -f '{{.Version}}' k8s.io/client-go)"; cg="${cg#v}"
  major=$(( ${cg%%.*} + 1 )); minor="${cg#*.}"; minor="${minor%%.*}"
  ld="-s -w -X helm.sh/helm/v3/internal/version.version=$v"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ld+=" -X $pkg.k8sVersionMajor=$major -X $pkg.k8sVersionMinor=$minor"
  done
  go_install "$work" "$out" helm helm.sh/helm/v3/cmd/helm "$ld" "$start"
}

# ----------------------------------------------------------------- helm-docs
build_helm_docs() {
  local v="$HELM_DOCS_VERSION"; local out="$cache_root/helm-docs-$v"
  done_stamp "$out" && return 0
  require_go
  local start=$SECONDS work="$cache_root/build/helm-docs-$v"
  log "building helm-docs $v"
  tool_module "$work" github.com/norwoodj/helm-docs "$v" github.com/norwoodj/helm-docs/cmd/helm-docs
  go_install "$work" "$out" helm-docs github.com/norwoodj/helm-docs/cmd/helm-docs "-s -w -X main.version=$v" "$start"
}

# ---------------------------------------------------------------------- CRDs
fetch_crds() {
  local kv="$KSERVE_VERSION" av="$ARGOCD_VERSION"
  local kout="$cache_root/kserve-crds-$kv" aout="$cache_root/argocd-crds-$av"
  if ! done_stamp "$kout"; then
    log "reading KServe $kv CRDs from its module"
    local kdir; kdir="$(module_dir "github.com/kserve/kserve@$kv")"
    rm -rf "$kout"; mkdir -p "$kout"
    for crd in inferenceservices servingruntimes clusterservingruntimes inferencegraphs trainedmodels; do
      install -m 0644 "$kdir/config/crd/full/serving.kserve.io_$crd.yaml" "$kout/"
    done
    finish "$kout" 0
  fi
  if ! done_stamp "$aout"; then
    log "reading Argo CD $av CRDs from its module"
    local adir; adir="$(GOTOOLCHAIN="$ARGOCD_GOTOOLCHAIN" module_dir "github.com/argoproj/argo-cd/v3@$av")"
    rm -rf "$aout"; mkdir -p "$aout"
    for crd in application appproject; do
      install -m 0644 "$adir/manifests/crds/$crd-crd.yaml" "$aout/"
    done
    finish "$aout" 0
  fi
}

total=$SECONDS
wanted crds && fetch_crds
wanted etcd && build_etcd
wanted helm && build_helm
wanted helm-docs && build_helm_docs
wanted kubernetes && build_kubernetes
log "${components[*]} ready in $((SECONDS - total)) s under $cache_root"

if $print_env; then
  if wanted kubernetes; then
    echo "KUBE_APISERVER=$cache_root/kube-apiserver-$KUBERNETES_VERSION/kube-apiserver"
    echo "KUBECTL=$cache_root/kubectl-$KUBERNETES_VERSION/kubectl"
  fi
  if wanted etcd; then echo "ETCD=$cache_root/etcd-$ETCD_VERSION/etcd"; fi
  if wanted helm; then echo "HELM=$cache_root/helm-$HELM_VERSION/helm"; fi
  if wanted helm-docs; then echo "HELM_DOCS=$cache_root/helm-docs-$HELM_DOCS_VERSION/helm-docs"; fi
  if wanted crds; then
    echo "KSERVE_CRDS=$cache_root/kserve-crds-$KSERVE_VERSION"
    echo "ARGOCD_CRDS=$cache_root/argocd-crds-$ARGOCD_VERSION"
  fi
fi
