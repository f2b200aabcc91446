#!/usr/bin/env bash
# Build the e2e control plane (etcd, kube-apiserver, -controller-manager, -scheduler), kwok and
# helm from Go modules, once, into ~/.cache/voxscale/bin/<k8s version>/ (outside the repo).
#
# Why from source: no container engine runs here, so kind cannot; the real control-plane
# binaries plus kwok's simulated nodes are what the Kubernetes community uses for controller
# tests. Each tool is built inside a small wrapper module because k8s.io/kubernetes and
# go.etcd.io/etcd/server/v3 carry `replace` directives that `go install pkg@version` refuses.
#
# Usage: e2e/cluster/build.sh            (prints the bin dir on the last line of stdout)
# Env:   VOXSCALE_CACHE (default ~/.cache/voxscale), BUILD_JOBS (default 2)
set -euo pipefail

# Pinned, mutually compatible versions. kubectl on PATH (v1.32) supports an apiserver of
# 1.31–1.33, hence Kubernetes 1.33; etcd 3.5.x is what 1.33 is tested against; kwok 0.7 and
# helm 3.18 are built against the 1.33 client libraries.
K8S_VERSION="${K8S_VERSION:-v1.33.13}"
ETCD_VERSION="${ETCD_VERSION:-v3.5.35}"
KWOK_VERSION="${KWOK_VERSION:-v0.7.0}"
HELM_VERSION="${HELM_VERSION:-v3.18.6}"

CACHE="${VOXSCALE_CACHE:-$HOME/.cache/voxscale}"
BIN="$CACHE/bin/$K8S_VERSION"
WORK="$CACHE/build"
LOG="$WORK/build.log"
JOBS="${BUILD_JOBS:-2}"
mkdir -p "$BIN" "$WORK"

die() { echo "build.sh: $*" >&2; exit 1; }

stamp_ok() { # name version -> 0 if the binary exists and was built from that version
  [[ -x "$BIN/$1" && -f "$BIN/.$1.version" && "$(cat "$BIN/.$1.version")" == "$2" ]]
}

check_go() {
  command -v go >/dev/null || die "Go is not installed: install Go >= 1.24 (https://go.dev/doc/install) or set PATH"
  local proxy; proxy="$(go env GOPROXY)"
  [[ "$proxy" != "off" ]] || die "GOPROXY=off: the module proxy is needed to fetch Kubernetes sources"
  if ! go list -m -versions "k8s.io/kubernetes" >/dev/null 2>&1; then
    die "cannot reach the Go module proxy ($proxy): check the network or GOPROXY"
  fi
}

export GOFLAGS="-trimpath -buildvcs=false -mod=mod" CGO_ENABLED=0 GOMAXPROCS="$JOBS" GOTOOLCHAIN=local

# wrapper NAME MODULE VERSION [REPLACES...]: make $WORK/NAME a module that requires MODULE@VERSION.
wrapper() {
  local name="$1" module="$2" version="$3"; shift 3
  local dir="$WORK/$name"
  rm -rf "$dir"; mkdir -p "$dir"
  {
    echo "module voxscale.local/build/$name"
    echo
    echo "go 1.24.0"
    echo
    echo "require $module $version"
    local r; for r in "$@"; do echo "replace $r"; done
  } >"$dir/go.mod"
  echo "$dir"
}

# gobuild DIR OUT PKG VERSION [LDFLAGS]: `go get` records the package's dependencies (pinned to
# VERSION: a bare `go get pkg` would upgrade the module to its latest release), then build.
gobuild() {
  local dir="$1" out="$2" pkg="$3" version="$4" ld="${5:-}"
  (cd "$dir" && go get "$pkg@$version" >>"$LOG" 2>&1 \
    && go build -p "$JOBS" -ldflags="-s -w $ld" -o "$BIN/$out" "$pkg" >>"$LOG" 2>&1) \
    || die "building $out failed; see $LOG"
}

build_etcd() {
  stamp_ok etcd "$ETCD_VERSION" && return
  echo "building etcd $ETCD_VERSION" | tee -a "$LOG"
  local dir; dir="$(wrapper etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION")"
  gobuild "$dir" etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  echo "$ETCD_VERSION" >"$BIN/.etcd.version"
}

# k8s.io/kubernetes points every k8s.io/* staging module at ./staging/src/...; outside its own
# tree those must be pinned to the published twin: v1.33.13 -> v0.33.13.
k8s_replaces() {
  local gomod staging="v0.${K8S_VERSION#v1.}"
  gomod="$(cd "$WORK" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION go.mod"
  grep -Eo '^[[:space:]]*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" \
    | awk -v v="$staging" '{print $1 " => " $1 " " v}'
}

k8s_ldflags() {
  local minor="${K8S_VERSION#v1.}" p; minor="${minor%%.*}"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean ' \
      "$p" "$K8S_VERSION" "$p" "$p" "$minor" "$p"
  done
}

kubectl_usable() { # a kubectl on PATH within one minor of the apiserver
  local v want="${K8S_VERSION#v1.}"; want="${want%%.*}"
  v="$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"minor": "\([0-9]*\).*/\1/p' | head -1)"
  [[ -n "$v" ]] && (( v >= want - 1 && v <= want + 1 ))
}

build_kubernetes() {
  local want=(kube-apiserver kube-controller-manager kube-scheduler) c missing=()
  kubectl_usable || want+=(kubectl)
  for c in "${want[@]}"; do stamp_ok "$c" "$K8S_VERSION" || missing+=("$c"); done
  ((${#missing[@]})) || return 0
  echo "building ${missing[*]} $K8S_VERSION" | tee -a "$LOG"
  local dir replaces=(); mapfile -t replaces < <(k8s_replaces)
  ((${#replaces[@]} > 20)) || die "found only ${#replaces[@]} staging replaces in k8s go.mod"
  dir="$(wrapper kubernetes k8s.io/kubernetes "$K8S_VERSION" "${replaces[@]}")"
  for c in "${missing[@]}"; do
    echo "  $c" | tee -a "$LOG"
    gobuild "$dir" "$c" "k8s.io/kubernetes/cmd/$c" "$K8S_VERSION" "$(k8s_ldflags)"
    echo "$K8S_VERSION" >"$BIN/.$c.version"
  done
}

build_kwok() {
  stamp_ok kwok "$KWOK_VERSION" && return
  echo "building kwok $KWOK_VERSION" | tee -a "$LOG"
  local dir; dir="$(wrapper kwok sigs.k8s.io/kwok "$KWOK_VERSION")"
  gobuild "$dir" kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" \
    "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
  echo "$KWOK_VERSION" >"$BIN/.kwok.version"
}

build_helm() {
  stamp_ok helm "$HELM_VERSION" && return
  echo "building helm $HELM_VERSION" | tee -a "$LOG"
  local dir; dir="$(wrapper helm helm.sh/helm/v3 "$HELM_VERSION")"
  # The Kubernetes version helm assumes for `template` (capabilities, kubeVersion checks): as
  # helm's own Makefile sets it; without it a plain build assumes 1.20 and refuses the chart.
  local kv="${K8S_VERSION#v}" major minor
  major="${kv%%.*}"; minor="${kv#*.}"; minor="${minor%%.*}"
  gobuild "$dir" helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
     -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
     -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  echo "$HELM_VERSION" >"$BIN/.helm.version"
}

main() {
  local start=$SECONDS all_ok=1 c
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kwok helm; do
    [[ -x "$BIN/$c" ]] || all_ok=0
  done
  ((all_ok)) || check_go
  echo "=== build $(date -Is) k8s=$K8S_VERSION etcd=$ETCD_VERSION kwok=$KWOK_VERSION helm=$HELM_VERSION" >>"$LOG"
  build_etcd
  build_kubernetes
  build_kwok
  build_helm
  echo "binaries ready in $((SECONDS - start)) s (log: $LOG)" >&2
  echo "$BIN"
}

main "$@"
