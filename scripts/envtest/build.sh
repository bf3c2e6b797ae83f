#!/usr/bin/env bash
# Build (first time) or reuse (afterwards) the binaries and CRDs of the test
# cluster: kube-apiserver, kube-controller-manager, kube-scheduler + kubectl
# (k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3), helm (helm.sh/helm/v3),
# helm-docs (the chart README from values.yaml's `# --` comments),
# kwok and its Stage objects (sigs.k8s.io/kwok), the KServe manager
# (github.com/kserve/kserve cmd/manager), traefik (the Gateway API
# implementation, github.com/traefik/traefik/v3), and the KServe, Knative Serving,
# Gateway API and Argo CD CRDs plus KServe's inferenceservice-config ConfigMap,
# read from their Go modules' source trees.
#
# Everything is cached outside the repo, keyed by version:
#   ${SPAMOPS_CACHE:-$HOME/.cache/spamops}/envtest/<component>-<version>/
# Versions are pinned in scripts/envtest/versions.env (the one place).
#
# Usage: scripts/envtest/build.sh [--print-env] [COMPONENT...]
#   COMPONENT    crds, etcd, helm, helm-docs, kubernetes (kube-apiserver, kube-
#                controller-manager, kube-scheduler, kubectl), kwok, kserve (manager)
#                or traefik (the cluster's Gateway);
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
    crds | etcd | helm | helm-docs | kubernetes | kwok | kserve | traefik) components+=("$arg") ;;
    -h | --help) usage; exit 0 ;;
    *) printf 'build.sh: unknown argument %q (components: crds etcd helm helm-docs kubernetes kwok kserve traefik)\n' "$arg" >&2; exit 2 ;;
  esac
done
((${#components[@]})) || components=(crds etcd helm helm-docs kubernetes kwok kserve traefik)
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

# Serialise concurrent builds of one component (two test sessions, make -j, ...);
# a component already cached never waits for another one being built.
locked() { # component command... : run the command holding that component's lock
  local component=$1; shift
  (flock 9 && "$@") 9>"$cache_root/.$component.lock"
}

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
# The binaries built from k8s.io/kubernetes, each cached in <name>-<version>/.
KUBERNETES_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

build_kubernetes() {
  local v="$KUBERNETES_VERSION" missing=() cmd
  for cmd in "${KUBERNETES_CMDS[@]}"; do
    done_stamp "$cache_root/$cmd-$v" || missing+=("$cmd")
  done
  ((${#missing[@]})) || return 0
  require_go
  local start=$SECONDS
  log "building ${missing[*]} $v (first time: tens of minutes on 2 cores)"
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
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for cmd in "${KUBERNETES_CMDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
    printf ')\n'
  } >"$work/tools.go"
  (cd "$work" && go mod tidy)
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for cmd in "${missing[@]}"; do
    go_install "$work" "$cache_root/$cmd-$v" "$cmd" "k8s.io/kubernetes/cmd/$cmd" "$ld" "$start"
    start=$SECONDS
  done
}

# --------------------------------------------------------- go module helpers
# The replace directives of a dependency's go.mod (single-line `replace a => b v`
# and `replace ( ... )` blocks, minus local paths): they apply only in the main
# module, so a throw-away module that builds its command copies them.
module_replaces() {
  awk '/^replace \($/ {blk=1; print; next} blk && /^\)/ {blk=0; print; next}
       blk {if ($0 !~ /=> \.\.?\//) print; next}
       /^replace / && $0 !~ /=> \.\.?\// {print}' "$1"
}

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

# ---------------------------------------------------------------------- kwok
# kwok plus its Stage objects (fast node init, node heartbeat, fast pod
# lifecycle) concatenated into the one --config file it reads.
build_kwok() {
  local v="$KWOK_VERSION"; local out="$cache_root/kwok-$v"
  done_stamp "$out" && return 0
  require_go
  local start=$SECONDS work="$cache_root/build/kwok-$v"
  log "building kwok $v"
  tool_module "$work" sigs.k8s.io/kwok "$v" sigs.k8s.io/kwok/cmd/kwok
  local kdir f; kdir="$(module_dir "sigs.k8s.io/kwok@$v")"
  mkdir -p "$out"
  for f in "$kdir"/kustomize/stage/{node/fast,node/heartbeat,pod/fast}/*.yaml; do
    [[ "$(basename "$f")" == kustomization.yaml ]] && continue
    printf -- '---\n'; sed '/^---$/d' "$f"
  done >"$out/stages.yaml"
  go_install "$work" "$out" kwok sigs.k8s.io/kwok/cmd/kwok \
    "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${v#v}" "$start"
}

# -------------------------------------------------------------------- kserve
# KServe's go.mod pins controller-runtime/k8s.io/grpc with replace directives,
# which only apply in the main module: the throw-away module copies them.
build_kserve() {
  local v="$KSERVE_VERSION"; local out="$cache_root/kserve-manager-$v"
  done_stamp "$out" && return 0
  require_go
  local start=$SECONDS work="$cache_root/build/kserve-manager-$v"
  log "building the KServe manager $v (first time: about 15 min on 2 cores)"
  local kdir; kdir="$(module_dir "github.com/kserve/kserve@$v")"
  rm -rf "$work"; mkdir -p "$work"
  {
    printf 'module spamops.local/kserve-manager\n\ngo %s\n\nrequire github.com/kserve/kserve %s\n\n' "$GO_VERSION" "$v"
    module_replaces "$kdir/go.mod"
  } >"$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/kserve/kserve/cmd/manager"\n' >"$work/tools.go"
  (cd "$work" && go mod tidy)
  go_install "$work" "$out" manager github.com/kserve/kserve/cmd/manager "-s -w" "$start"
}

# ------------------------------------------------------------------- traefik
# Traefik v3: the test cluster's Gateway API implementation (its Kubernetes
# Gateway provider) with Prometheus metrics. Like KServe, its go.mod's replace
# directives are copied into the throw-away module.
build_traefik() {
  local v="$TRAEFIK_VERSION"; local out="$cache_root/traefik-$v"
  done_stamp "$out" && return 0
  require_go
  local start=$SECONDS work="$cache_root/build/traefik-$v"
  log "building traefik $v (first time: about 6 min on 2 cores)"
  local tdir; tdir="$(module_dir "github.com/traefik/traefik/v3@$v")"
  rm -rf "$work"; mkdir -p "$work"
  {
    printf 'module spamops.local/traefik\n\ngo %s\n\nrequire github.com/traefik/traefik/v3 %s\n\n' "$GO_VERSION" "$v"
    module_replaces "$tdir/go.mod"
  } >"$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/traefik/traefik/v3/cmd/traefik"\n' >"$work/tools.go"
  (cd "$work" && go mod tidy)
  go_install "$work" "$out" traefik github.com/traefik/traefik/v3/cmd/traefik \
    "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$v" "$start"
}

# ---------------------------------------------------------------------- CRDs
# copy_yamls OUT DIR [FIND-ARGS...]: the YAML files under DIR (never the
# kustomization.yaml files, which are not objects) into OUT, flat.
copy_yamls() {
  local out=$1 dir=$2; shift 2
  find "$dir" -name '*.yaml' ! -name kustomization.yaml "$@" -print0 | sort -z |
    while IFS= read -r -d '' f; do install -m 0644 "$f" "$out/"; done
}

fetch_crds() {
  local kv="$KSERVE_VERSION" nv="$KNATIVE_SERVING_VERSION" gv="$GATEWAY_API_VERSION" av="$ARGOCD_VERSION"
  local kout="$cache_root/kserve-crds-$kv" cout="$cache_root/kserve-config-$kv"
  local nout="$cache_root/knative-serving-crds-$nv" gout="$cache_root/gateway-api-crds-$gv"
  local ncout="$cache_root/knative-serving-config-$nv"
  local aout="$cache_root/argocd-crds-$av"
  if ! done_stamp "$kout" || ! done_stamp "$cout"; then
    log "reading KServe $kv CRDs and its inferenceservice-config ConfigMap from its module"
    local kdir; kdir="$(module_dir "github.com/kserve/kserve@$kv")"
    rm -rf "$kout" "$cout"; mkdir -p "$kout" "$cout"
    # The CRDs cmd/manager watches; not LLMInferenceService (4 MB, its own manager, cmd/llmisvc)
    # nor the kustomize conversion-webhook patches, which are not objects.
    copy_yamls "$kout" "$kdir/config/crd/full" -name 'serving.kserve.io_*' ! -name '*llminferenceservice*'
    install -m 0644 "$kdir/config/configmap/inferenceservice.yaml" "$cout/"
    install -m 0644 "$kdir/config/webhook/manifests.yaml" "$cout/webhooks.yaml"
    finish "$kout" 0; finish "$cout" 0
  fi
  if ! done_stamp "$nout"; then
    log "reading Knative Serving $nv CRDs from its module"
    local ndir; ndir="$(module_dir "knative.dev/serving@$nv")"
    rm -rf "$nout"; mkdir -p "$nout"
    copy_yamls "$nout" "$ndir/config/core/300-resources"
    finish "$nout" 0
  fi
  if ! done_stamp "$ncout"; then
    # KServe's Serverless reconciler reads Knative's autoscaler defaults (initial scale).
    local ndir; ndir="$(module_dir "knative.dev/serving@$nv")"
    rm -rf "$ncout"; mkdir -p "$ncout"
    install -m 0644 "$ndir/config/core/configmaps/autoscaler.yaml" "$ncout/"
    finish "$ncout" 0
  fi
  if ! done_stamp "$gout"; then
    log "reading Gateway API $gv standard-channel CRDs from its module"
    local gdir; gdir="$(module_dir "sigs.k8s.io/gateway-api@$gv")"
    rm -rf "$gout"; mkdir -p "$gout"
    # CRDs only: the channel's ValidatingAdmissionPolicy (vap_safeupgrades) guards upgrades of them.
    copy_yamls "$gout" "$gdir/config/crd/standard" -name 'gateway.networking.k8s.io_*' ! -name '*_vap_*'
    finish "$gout" 0
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
  local pv="$PROMETHEUS_OPERATOR_VERSION" pout="$cache_root/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION"
  if ! done_stamp "$pout"; then
    log "reading prometheus-operator $pv CRDs from its module"
    local pdir; pdir="$(module_dir "github.com/prometheus-operator/prometheus-operator@$pv")"
    rm -rf "$pout"; mkdir -p "$pout"
    for crd in prometheusrules podmonitors servicemonitors; do
      install -m 0644 "$pdir/example/prometheus-operator-crd/monitoring.coreos.com_$crd.yaml" "$pout/"
    done
    finish "$pout" 0
  fi
}

total=$SECONDS
for component in "${components[@]}"; do
  case "$component" in
    crds) locked crds fetch_crds ;;
    helm-docs) locked helm-docs build_helm_docs ;;
    *) locked "$component" "build_$component" ;;
  esac
done
log "${components[*]} ready in $((SECONDS - total)) s under $cache_root"

if $print_env; then
  # Keys: the fields of spamops_dev.artifacts.Artifacts, upper-cased.
  if wanted kubernetes; then
    for cmd in "${KUBERNETES_CMDS[@]}"; do
      key="${cmd^^}"; echo "${key//-/_}=$cache_root/$cmd-$KUBERNETES_VERSION/$cmd"
    done
  fi
  if wanted etcd; then echo "ETCD=$cache_root/etcd-$ETCD_VERSION/etcd"; fi
  if wanted helm; then echo "HELM=$cache_root/helm-$HELM_VERSION/helm"; fi
  if wanted helm-docs; then echo "HELM_DOCS=$cache_root/helm-docs-$HELM_DOCS_VERSION/helm-docs"; fi
  if wanted kwok; then
    echo "KWOK=$cache_root/kwok-$KWOK_VERSION/kwok"
    echo "KWOK_STAGES=$cache_root/kwok-$KWOK_VERSION/stages.yaml"
  fi
  if wanted traefik; then echo "TRAEFIK=$cache_root/traefik-$TRAEFIK_VERSION/traefik"; fi
  if wanted kserve; then echo "KSERVE_MANAGER=$cache_root/kserve-manager-$KSERVE_VERSION/manager"; fi
  if wanted crds; then
    echo "KSERVE_CRDS=$cache_root/kserve-crds-$KSERVE_VERSION"
    echo "KSERVE_CONFIG=$cache_root/kserve-config-$KSERVE_VERSION/inferenceservice.yaml"
    echo "KSERVE_WEBHOOKS=$cache_root/kserve-config-$KSERVE_VERSION/webhooks.yaml"
    echo "KNATIVE_CRDS=$cache_root/knative-serving-crds-$KNATIVE_SERVING_VERSION"
    echo "KNATIVE_AUTOSCALER_CONFIG=$cache_root/knative-serving-config-$KNATIVE_SERVING_VERSION/autoscaler.yaml"
    echo "GATEWAY_API_CRDS=$cache_root/gateway-api-crds-$GATEWAY_API_VERSION"
    echo "ARGOCD_CRDS=$cache_root/argocd-crds-$ARGOCD_VERSION"
    echo "PROMETHEUS_OPERATOR_CRDS=$cache_root/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION"
  fi
fi
