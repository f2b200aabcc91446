#!/usr/bin/env bash
# Installs the Debian packages the integration tests start for real (Prometheus + promtool).
# Idempotent: does nothing when they are already on PATH.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: need ${need[*]} (Debian 'prometheus'); run as root or: sudo apt-get install -y prometheus" >&2
  exit 1
fi
echo "system-deps: installing Debian prometheus (real server + promtool for integration tests)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package starts a system service on :9090 where systemd exists; tests use their own ports.
command -v systemctl >/dev/null 2>&1 && systemctl stop prometheus >/dev/null 2>&1 || true
