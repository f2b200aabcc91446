#!/usr/bin/env bash
# Locate (or build once) the helm binary the chart tests use; one locator for tests and make.
#
# Usage: scripts/helm.sh path    print helm's path, or exit 1 saying how to get it
#        scripts/helm.sh build   build helm alone from its Go module (the version pinned in
#                                e2e/cluster/build.sh) into the same cache dir, then print its path
# Lookup order: $VOXSCALE_HELM, then $VOXSCALE_CACHE/bin/<k8s>/helm (e2e/cluster/build.sh's
# output; ~/.cache/voxscale by default), then helm on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/e2e/cluster/build.sh"
CACHE="${VOXSCALE_CACHE:-$HOME/.cache/voxscale}"

die() { echo "helm.sh: $*" >&2; exit 1; }

# The pins live in build.sh only: read them from there instead of repeating them here.
pin() { sed -n "s/^$1=\"\${$1:-\(v[0-9.]*\)}\"$/\1/p" "$BUILD"; }

locate() {
  if [[ -n "${VOXSCALE_HELM:-}" ]]; then
    [[ -x "$VOXSCALE_HELM" ]] || die "VOXSCALE_HELM=$VOXSCALE_HELM is not an executable"
    echo "$VOXSCALE_HELM"; return 0
  fi
  local k8s helm; k8s="$(pin K8S_VERSION)"; helm="$CACHE/bin/$k8s/helm"
  if [[ -x "$helm" ]]; then echo "$helm"; return 0; fi
  if command -v helm >/dev/null 2>&1; then command -v helm; return 0; fi
  return 1
}

build() {
  local k8s version bin dir log
  k8s="$(pin K8S_VERSION)"; version="$(pin HELM_VERSION)"
  [[ -n "$k8s" && -n "$version" ]] || die "could not read K8S_VERSION/HELM_VERSION from $BUILD"
  bin="$CACHE/bin/$k8s"; dir="$CACHE/build/helm-only"; log="$CACHE/build/helm.log"
  if [[ -x "$bin/helm" && "$(cat "$bin/.helm.version" 2>/dev/null)" == "$version" ]]; then
    echo "$bin/helm"; return 0
  fi
  command -v go >/dev/null || die "Go is not installed: install Go >= 1.24 to build helm $version"
  mkdir -p "$bin" "$dir"
  printf 'module voxscale.local/build/helm-only\n\ngo 1.24.0\n\nrequire helm.sh/helm/v3 %s\n' \
    "$version" >"$dir/go.mod"
  echo "building helm $version into $bin (log: $log)" >&2
  (
    cd "$dir"
    export GOFLAGS="-trimpath -buildvcs=false -mod=mod" CGO_ENABLED=0 GOTOOLCHAIN=local
    go get "helm.sh/helm/v3/cmd/helm@$version" >>"$log" 2>&1
    # As helm's own Makefile does: the default Kubernetes version of `helm template`/`lint` is the
    # client-go it was built with (v0.33.x -> 1.33); without it helm assumes 1.20.
    local minor; minor="$(go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)"
    local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$version" p
    for p in pkg/chartutil pkg/lint/rules; do
      ld+=" -X helm.sh/helm/v3/$p.k8sVersionMajor=1 -X helm.sh/helm/v3/$p.k8sVersionMinor=$minor"
    done
    # Same stamp file as build.sh, so either script skips a build the other has done.
    go build -ldflags="$ld" -o "$bin/helm.tmp" helm.sh/helm/v3/cmd/helm >>"$log" 2>&1
  ) || die "building helm failed; see $log"
  mv "$bin/helm.tmp" "$bin/helm"
  echo "$version" >"$bin/.helm.version"
  echo "$bin/helm"
}

case "${1:-path}" in
  path)
    locate || die "helm not found: run 'make cluster-binaries' (e2e/cluster/build.sh builds helm $(pin HELM_VERSION) from its Go module into $CACHE/bin/$(pin K8S_VERSION)/), or 'bash scripts/helm.sh build' for helm alone"
    ;;
  build) build ;;
  *) die "usage: scripts/helm.sh [path|build]" ;;
esac
