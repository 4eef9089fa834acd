#!/usr/bin/env bash
# Makes the local Debian base image the provision tests build on, since no
# image registry is reachable from CI: a debootstrap minbase rootfs of
# bookworm (from the Debian mirror, the one remote the project uses),
# imported with "docker import". It also carries the runtime dependencies
# of the skiff .deb and of the lifecycle hooks, so that installing the .deb
# during the Packer build needs no network.
#
#   make-base.sh CACHE_DIR   -> prints the image reference
#
# Cached twice: the image stays in the engine under a tag derived from the
# package list, and the rootfs tarball stays in CACHE_DIR (a test's build
# directory). Set SKIFF_DEBIAN_MIRROR to use another mirror.
set -euo pipefail
cache=${1:?usage: make-base.sh CACHE_DIR}
mirror=${SKIFF_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
include=ca-certificates,curl,jq,openssl,libcurl4,libcjson1,libsodium23,zlib1g,libmicrohttpd12,libsqlite3-0,libpq5,libgnutls30,libarchive13,passwd

key=$(printf '%s %s %s' "$suite" "$include" "v1" | sha256sum | cut -c1-12)
ref="skiff-test/debian-base:$suite-$key"
if docker image inspect "$ref" >/dev/null 2>&1; then
  echo "$ref"
  exit 0
fi

mkdir -p "$cache"
tarball="$cache/$suite-minbase-$key.tar"
if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null || { echo "make-base.sh: debootstrap is not installed" >&2; exit 1; }
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "make-base.sh: debootstrap --variant=minbase $suite from $mirror (once; cached in $cache)" >&2
  timeout 900 debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" \
    >"$cache/debootstrap.log" 2>&1 || {
      echo "make-base.sh: debootstrap failed; the end of its log:" >&2
      tail -n 20 "$cache/debootstrap.log" >&2
      exit 1
    }
  # what a base image does not carry: package lists, caches, logs
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
         "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$tarball" "$ref" >/dev/null
echo "$ref"
