#!/usr/bin/env bash
# Installs the Debian packages the integration tests use for real: Prometheus + promtool, flite
# (speech synthesis for the reference ASR model's WER test) and HAProxy (the local front door that
# implements the operator's Gateway API route, docs/routing.md). Idempotent.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v flite >/dev/null 2>&1 || need+=(flite)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: need ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "system-deps: installing Debian ${need[*]} for the integration tests"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
# The packages start system services (prometheus on :9090, haproxy) where systemd exists; tests
# run their own on free ports.
if command -v systemctl >/dev/null 2>&1; then
  systemctl stop prometheus >/dev/null 2>&1 || true
  systemctl stop haproxy >/dev/null 2>&1 || true
fi
