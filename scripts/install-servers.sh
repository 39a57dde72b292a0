#!/usr/bin/env bash
# Install the real servers the integration tests start on 127.0.0.1 (Debian packages).
#
#   scripts/install-servers.sh        # installs only what is missing; a no-op the second time
#
# apt-get install starts nothing (the tests start and stop their own processes). Runs apt-get
# as root, or through sudo when that exists; says what to do when neither is possible.
set -euo pipefail

PACKAGES=(
    prometheus victoria-metrics prometheus-alertmanager prometheus-node-exporter
    redis-server postgresql nats-server stress-ng nftables chromium
    prometheus-redis-exporter prometheus-postgres-exporter
)

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for package in "${PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-servers: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-servers: apt-get is not available here (not Debian/Ubuntu?)." >&2
    echo "  Install these yourself, or the integration tests that need them skip:" >&2
    echo "  ${missing[*]}" >&2
    exit 1
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "install-servers: not root and no sudo: run as root to install: ${missing[*]}" >&2
        exit 1
    fi
fi

echo "install-servers: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A fresh image has no package lists yet; refresh them once if a package is unknown.
if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
    "${as_root[@]}" apt-get update
fi
"${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
