#!/usr/bin/env bash
# Installs what skiff needs to build and test on Debian 12, starts a Docker
# engine when none answers, and builds into build/. Safe to run again.
#
#   bash scripts/setup.sh            # packages, dockerd, build
#   SKIFF_SKIP_APT=1 bash scripts/setup.sh   # build only
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config clang llvm
  libcurl4-openssl-dev libcjson-dev libsodium-dev zlib1g-dev
  libmicrohttpd-dev libsqlite3-dev libgnutls28-dev libarchive-dev
  libcmocka-dev libpq-dev postgresql-15 libseccomp-dev
  python3 python3-jwcrypto python3-nacl
  openssl curl ca-certificates iproute2 iptables procps psmisc
  docker.io docker-registry apache2-utils busybox-static debootstrap
  podman catatonit
  shellcheck
  packer cloud-init jq
  chromium nodejs
  # the booted worker VM tests (tests/vm) and the package checks
  qemu-system-x86 qemu-utils cloud-image-utils genisoimage openssh-client socat lintian
)

if [ "${SKIFF_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

bash scripts/dockerd.sh

# An agent started as root runs its network half as skiff-net and host
# steps as skiff-step (docs/agent.md, "The two halves"); the package makes
# them with provision/skiff-setup, a development machine here.
if [ "$(id -u)" = 0 ]; then
  for u in skiff-net skiff-step; do
    getent passwd "$u" >/dev/null ||
      useradd --system --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin "$u"
  done
fi

# The web view's browser tests: playwright-core, at the version of the
# lock file, drives the chromium above (tests/browser/).
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

cmake -S . -B build -DSKIFF_WERROR=ON >/dev/null
cmake --build build -j "$(nproc)"
