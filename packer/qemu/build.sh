#!/usr/bin/env bash
# Bakes the worker image with the qemu source of packer/skiff-worker.pkr.hcl
# on this machine: the same provisioning as the cloud sources (provision/
# scripts, the skiff-agent package, pre-pulled images, the clean-up), in a
# VM booted from the base disk of make-base.sh.
#
#   build.sh BASE_DIR AGENT_DEB OUT_DIR [-var NAME=VALUE]...
#     -> OUT_DIR/skiff-worker.qcow2, vmlinuz, initrd.img, console.log
#
# Packer and its VM run in a network namespace of their own with only its
# loopback up: the VM reaches Packer's SSH port through QEMU's user-mode
# network and nothing else, so nothing in the build can use a network.
# The accelerator is KVM when a guest runs under it here, TCG otherwise
# (accel.sh); SKIFF_QEMU_ACCEL forces one.
set -euo pipefail
log() { printf 'qemu-build: %s\n' "$*" >&2; }
here=$(dirname "$(readlink -f "$0")")
base=${1:?usage: build.sh BASE_DIR AGENT_DEB OUT_DIR [-var NAME=VALUE]...}
deb=${2:?usage: build.sh BASE_DIR AGENT_DEB OUT_DIR}
out=${3:?usage: build.sh BASE_DIR AGENT_DEB OUT_DIR}
shift 3
for c in packer qemu-system-x86_64 unshare ip; do
  command -v "$c" >/dev/null || { log "$c is not installed (scripts/setup.sh installs it)"; exit 1; }
done
for f in rootfs.qcow2 vmlinuz initrd.img build-key; do
  [ -s "$base/$f" ] || { log "no $f in $base (make it with make-base.sh)"; exit 1; }
done
accel=$(bash "$here/accel.sh" "$base/vmlinuz")
timeout_ssh=5m
[ "$accel" = kvm ] || timeout_ssh=15m

mkdir -p "$out"
out=$(readlink -f "$out")
rm -rf "$out/packer" "$out/skiff-worker.qcow2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp PACKER_CACHE_DIR=$tmp/cache CHECKPOINT_DISABLE=1 PACKER_NO_COLOR=1
log "packer build -only=qemu.worker ($accel) in a network namespace of its own"
start=$(date +%s)
rc=0
unshare --net -- bash -c 'ip link set lo up && exec "$@"' netns \
  packer build -color=false -only=qemu.worker \
    -var "agent_package=$(readlink -f "$deb")" -var "qemu_base_dir=$(readlink -f "$base")" \
    -var "qemu_output_dir=$out/packer" -var "qemu_accelerator=$accel" \
    -var "qemu_ssh_timeout=$timeout_ssh" "$@" "$here/.." >"$out/packer.log" 2>&1 || rc=$?
[ ! -e "$out/packer-console.log" ] || mv "$out/packer-console.log" "$out/console.log"
if [ "$rc" != 0 ]; then
  log "packer build failed ($rc); the end of its log ($out/packer.log):"
  tail -n 40 "$out/packer.log" >&2
  if [ -s "$out/console.log" ]; then
    log "the end of the build VM's serial console ($out/console.log):"
    tail -n 40 "$out/console.log" >&2
  fi
  exit 1
fi
mv "$out/packer/skiff-worker.qcow2" "$out/skiff-worker.qcow2"
rmdir "$out/packer" 2>/dev/null || true
cp "$base/vmlinuz" "$base/initrd.img" "$out/"
log "baked $out/skiff-worker.qcow2 in $(( $(date +%s) - start )) s ($accel)"
