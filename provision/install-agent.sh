#!/usr/bin/env bash
# Installs skiff-agent on a worker VM image from its .deb (skiff-agent, the
# only package a worker needs) or the tarball that CPack builds (cmake
# --build build --target package).
#
#   sudo bash install-agent.sh skiff-agent_0.1.0_amd64.deb
#   sudo bash install-agent.sh skiff-0.1.0-Linux.tar.gz
#
# The .deb's dependencies come from the distribution (apt-get). The tarball
# holds the same files at the same paths (usr/bin, usr/lib/skiff,
# lib/systemd/system, etc/skiff, usr/share/doc/skiff) and needs libcurl,
# libcjson, libsodium, zlib, curl, jq and openssl installed by other means.
# Either way the "skiff" user, /etc/skiff and /var/lib/skiff are set up
# (skiff-setup), and the units are installed but not enabled: the VM's
# user-data enables them once it has written the configuration.
set -euo pipefail

log() { printf 'install-agent: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "run as root"; exit 1; }
[ $# -eq 1 ] || { log "usage: install-agent.sh PACKAGE.deb|PACKAGE.tar.gz"; exit 2; }
pkg=$1
[ -f "$pkg" ] || { log "no such file: $pkg"; exit 1; }

case $pkg in
  *.deb)
    export DEBIAN_FRONTEND=noninteractive
    pkg=$(readlink -f "$pkg")
    # dpkg first: on an image whose dependencies are already there this
    # needs no package lists and no network.
    if ! dpkg -i "$pkg"; then
      log "resolving dependencies with apt-get"
      apt-get update -q
      apt-get install -y -q --no-install-recommends -f
    fi
    ;;
  *.tar.gz|*.tgz)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    tar -xzf "$pkg" -C "$tmp" --no-same-owner
    # CPack puts everything below one top directory
    top=$tmp
    if [ "$(find "$tmp" -mindepth 1 -maxdepth 1 | wc -l)" = 1 ] && [ ! -d "$tmp/usr" ]; then
      top=$(find "$tmp" -mindepth 1 -maxdepth 1)
    fi
    [ -x "$top/usr/bin/skiff-agent" ] || { log "no usr/bin/skiff-agent in $pkg"; exit 1; }
    # configuration files are never overwritten
    (cd "$top" && find . -path ./etc -prune -o \( -type f -o -type l \) -print) |
      while IFS= read -r f; do
        install -D -m "$(stat -c %a "$top/$f")" "$top/$f" "/${f#./}"
      done
    if [ -d "$top/etc/skiff" ]; then
      install -d -m 0750 /etc/skiff
      for f in "$top"/etc/skiff/*; do
        [ -e "/etc/skiff/${f##*/}" ] || install -m 0640 "$f" "/etc/skiff/${f##*/}"
      done
    fi
    /usr/lib/skiff/skiff-setup
    if [ -d /run/systemd/system ]; then
      systemctl daemon-reload
    fi
    ;;
  *)
    log "not a .deb or .tar.gz: $pkg"
    exit 2
    ;;
esac

/usr/bin/skiff-agent --version
log "installed; enable with: systemctl enable --now skiff-agent.service skiff-preempt.service"
