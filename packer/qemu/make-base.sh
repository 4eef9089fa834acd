#!/usr/bin/env bash
# Makes the base disk of the qemu source (packer/skiff-worker.pkr.hcl) on
# this machine, since no cloud image is reachable: a debootstrap of Debian
# 12 with a kernel, systemd, cloud-init, openssh-server and docker.io, and
# everything the skiff-agent package and its hooks need, because the build
# VM has no network.
#
#   sudo make-base.sh CACHE_DIR     -> prints the base directory
#
# The base directory holds:
#   rootfs.qcow2        an ext4 filesystem on the whole disk (no partition
#                       table, no boot loader), made with "mke2fs -d"
#   vmlinuz, initrd.img the kernel and initramfs of the root filesystem;
#                       QEMU boots them directly (-kernel/-initrd/-append
#                       "root=/dev/vda"), so there is no boot loader to
#                       install or to configure
#   build-key{,.pub}    an SSH key of root, for Packer's communicator only
#                       (provision/cleanup-image.sh removes it from the
#                       baked image)
#   packages.txt        the packages and versions in the base
#
# Cached in CACHE_DIR/base-KEY, KEY being a hash of this script and of the
# SHA-256 of the suite's Packages index in the mirror's InRelease: any new
# version of any package of the suite (a point release, a security upload
# to the main suite) makes a new base; otherwise it is made once.
# SKIFF_DEBIAN_MIRROR moves the mirror.
set -euo pipefail
log() { printf 'make-base: %s\n' "$*" >&2; }
cache=${1:?usage: make-base.sh CACHE_DIR}
mirror=${SKIFF_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
size=${SKIFF_BASE_SIZE:-4G}
[ "$(id -u)" = 0 ] || { log "run as root (debootstrap chroots)"; exit 1; }
for c in debootstrap mke2fs qemu-img curl ssh-keygen; do
  command -v "$c" >/dev/null || { log "$c is not installed (scripts/setup.sh installs it)"; exit 1; }
done

include=(
  # boot: kernel, initramfs, systemd as PID 1, udev, networking
  linux-image-cloud-amd64 initramfs-tools systemd-sysv udev dbus kmod
  iproute2 ifupdown isc-dhcp-client
  # what the worker is made of
  cloud-init openssh-server docker.io
  # dockerd refuses to start containers on an AppArmor kernel without its
  # parser (docker.io only recommends it)
  apparmor
  # skiff-agent's libraries and its hooks' tools
  ca-certificates curl jq openssl libcurl4 libcjson1 libsodium23 zlib1g libarchive13 passwd
  init-system-helpers
)

index=$(curl -fsS --max-time 60 --retry 3 "$mirror/dists/$suite/InRelease" |
  awk '/^SHA256:/ {s=1; next} /^[A-Za-z]/ {s=0} s && $3 == "main/binary-amd64/Packages.xz" {print $1}')
[ -n "$index" ] || { log "no main/binary-amd64/Packages.xz in $mirror/dists/$suite/InRelease"; exit 1; }
key=$(printf '%s\n%s\n%s\n' "$(sha256sum <"$0")" "$index" "$size" | sha256sum | cut -c1-16)
out=$cache/base-$key
if [ -s "$out/rootfs.qcow2" ] && [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ]; then
  log "cached: $out"
  echo "$out"
  exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/work.XXXXXX")
root=$work/root
# debootstrap, when stopped, leaves its /proc and /sys mounts in the
# chroot: unmount them before removing anything, and never cross into
# another filesystem
cleanup() {
  local m
  for m in dev/pts dev sys proc; do
    if mountpoint -q "$root/$m" 2>/dev/null; then umount -l "$root/$m" || true; fi
  done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
start=$(date +%s)
log "debootstrap $suite from $mirror into $root (once per package index; cached in $cache)"
# A minbase first, then the packages with apt-get inside it: debootstrap's
# own --include does not order the configuration of a set this large.
if ! timeout 900 debootstrap --variant=minbase "$suite" "$root" "$mirror" \
    >"$work/debootstrap.log" 2>&1; then
  cp "$work/debootstrap.log" "$cache/debootstrap-failed.log" 2>/dev/null || true
  log "debootstrap failed; the end of its log (all of it in $cache/debootstrap-failed.log):"
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
fi
printf 'deb %s %s main\n' "$mirror" "$suite" >"$root/etc/apt/sources.list"
# nothing starts in the chroot
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
if ! timeout 1200 chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 \
    sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends "$@"' sh "${include[@]}" \
    >>"$work/debootstrap.log" 2>&1; then
  cp "$work/debootstrap.log" "$cache/debootstrap-failed.log" 2>/dev/null || true
  log "apt-get install in the base failed; the end of its log (all of it in $cache/debootstrap-failed.log):"
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
fi
for m in dev/pts dev sys proc; do umount "$root/$m"; done
rm -f "$root/usr/sbin/policy-rc.d"

# --- what a booted VM needs beyond the packages ---
printf '/dev/vda / ext4 defaults,discard 0 1\n' >"$root/etc/fstab"
printf 'skiff-worker\n' >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 skiff-worker\n' >"$root/etc/hosts"
# eth0 by DHCP (net.ifnames=0 on the kernel command line); cloud-init's
# own network configuration replaces it on a cloud
install -d "$root/etc/network/interfaces.d"
printf 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n' >"$root/etc/network/interfaces"
printf 'auto eth0\niface eth0 inet dhcp\n' >"$root/etc/network/interfaces.d/eth0"
# NoCloud (seed disk labelled cidata) and the clouds the templates are for
printf 'datasource_list: [ NoCloud, Ec2, GCE, Azure, None ]\n' \
  >"$root/etc/cloud/cloud.cfg.d/90-skiff-datasources.cfg"
# the serial console is the only one
install -d "$root/etc/systemd/system/getty.target.wants"
ln -sf /lib/systemd/system/serial-getty@.service \
  "$root/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
# Packer's communicator logs in as root with this key, and only during the
# build: cleanup-image.sh removes authorized_keys and the host keys.
rm -f "$work/build-key" "$work/build-key.pub"
ssh-keygen -q -t ed25519 -N '' -C skiff-packer-build -f "$work/build-key"
install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$work/build-key.pub" "$root/root/.ssh/authorized_keys"
: >"$root/etc/machine-id"

# shellcheck disable=SC2016 # dpkg-query formats
chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' >"$work/packages.txt"
kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -n 1)
initrd=$(find "$root/boot" -maxdepth 1 -name 'initrd.img-*' | sort | tail -n 1)
if [ -z "$kernel" ] || [ -z "$initrd" ]; then log "no kernel or initrd in $root/boot"; exit 1; fi
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
       "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log

mke2fs -q -t ext4 -L skiff-root -d "$root" "$work/rootfs.raw" "$size"
qemu-img convert -O qcow2 "$work/rootfs.raw" "$work/rootfs.qcow2"
rm -rf --one-file-system "$root" "$work/rootfs.raw"

rm -rf "$out"
mkdir -p "$out"
mv "$work/rootfs.qcow2" "$work/vmlinuz" "$work/initrd.img" "$work/build-key" \
   "$work/build-key.pub" "$work/packages.txt" "$work/debootstrap.log" "$out/"
log "made $out in $(( $(date +%s) - start )) s ($(du -h --apparent-size "$out/rootfs.qcow2" | cut -f1) qcow2)"
echo "$out"
