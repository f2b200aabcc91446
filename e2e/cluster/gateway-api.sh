#!/usr/bin/env bash
# Fetch the Gateway API CRDs from their Go module (sigs.k8s.io/gateway-api), once, into
# ~/.cache/voxscale/gateway-api/<version>/<channel>/ (outside the repo), for e2e and the demo.
#
# Why the Go module proxy: the CRDs are generated files inside the module (config/crd/<channel>/),
# the proxy is reachable where GitHub release assets are not, and `go mod download` checks the
# module's checksum against sum.golang.org.
#
# Why the experimental channel: in this release sessionPersistence on HTTPRoute and GRPCRoute
# rules exists only there (the standard channel's CRDs do not declare the field, and the API
# server refuses a route that sets it).
#
# The version is pinned once, as GATEWAY_API_RELEASE in operator/voxscale/names.py (the operator
# names it in its RoutingUnavailable message); GATEWAY_API_VERSION=... overrides it here.
#
# Usage: e2e/cluster/gateway-api.sh      (prints the CRD directory on the last line of stdout)
# Env:   VOXSCALE_CACHE (default ~/.cache/voxscale), GATEWAY_API_VERSION, GATEWAY_API_CHANNEL
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
die() { echo "gateway-api.sh: $*" >&2; exit 1; }

PINNED="$(sed -n 's/^GATEWAY_API_RELEASE = "\(v[0-9][0-9.]*\)"$/\1/p' "$ROOT/operator/voxscale/names.py")"
VERSION="${GATEWAY_API_VERSION:-$PINNED}"
CHANNEL="${GATEWAY_API_CHANNEL:-experimental}"
[[ -n "$VERSION" ]] || die "no GATEWAY_API_RELEASE line in operator/voxscale/names.py"
[[ "$CHANNEL" == standard || "$CHANNEL" == experimental ]] || die "channel must be standard or experimental"

CACHE="${VOXSCALE_CACHE:-$HOME/.cache/voxscale}"
DEST="$CACHE/gateway-api/$VERSION/$CHANNEL"

if [[ -f "$DEST/.complete" ]]; then
  echo "$DEST"
  exit 0
fi

command -v go >/dev/null || die "Go is not installed: install Go >= 1.24 (https://go.dev/doc/install) or set PATH"
mkdir -p "$CACHE/gateway-api" "$CACHE/build"
# Outside any module, so no go.mod of ours is consulted; GOTOOLCHAIN=local never fetches a Go.
json="$(cd "$CACHE/build" && GOFLAGS= GOTOOLCHAIN=local go mod download -json "sigs.k8s.io/gateway-api@$VERSION")" \
  || die "go mod download sigs.k8s.io/gateway-api@$VERSION failed: $json"
dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' <<<"$json")"
src="$dir/config/crd/$CHANNEL"
[[ -d "$src" ]] || die "sigs.k8s.io/gateway-api@$VERSION has no $src: $json"

tmp="$(mktemp -d "$CACHE/gateway-api/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# The module cache is read-only; the copies are not, so a later fetch can replace them.
cp "$src"/gateway.networking.k8s.io_*.yaml "$tmp/"
chmod -R u+w "$tmp" && chmod 755 "$tmp"
echo "sigs.k8s.io/gateway-api@$VERSION config/crd/$CHANNEL $(date -Is)" >"$tmp/.complete"
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$tmp" "$DEST"
trap - EXIT
echo "gateway-api CRDs $VERSION ($CHANNEL) in $DEST" >&2
echo "$DEST"
