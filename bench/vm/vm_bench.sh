#!/usr/bin/env bash
# Figures of the worker VM, measured by the booted lifecycle test
# (tests/vm/test_vm_lifecycle.py) on a fresh base cache, and printed:
#   base build (debootstrap + mke2fs + qcow2), bake (packer build of the
#   qemu source), image size, boot -> agent registered, boot -> first step
#   started, idle timeout -> QEMU exited
#
#   sudo bash bench/vm/vm_bench.sh BUILD_DIR [kvm|tcg]
#
# The accelerator defaults to what packer/qemu/accel.sh finds. Needs the
# Debian mirror (the base) and about 15 minutes under TCG.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(readlink -f "${1:?usage: vm_bench.sh BUILD_DIR [kvm|tcg]}")
[ -z "${2:-}" ] || export SKIFF_QEMU_ACCEL=$2
tmp=$(mktemp -d /var/tmp/skiff-vm-bench.XXXXXX)
trap 'rm -rf --one-file-system "$tmp"' EXIT
export SKIFF_VM_CACHE=$tmp/cache SKIFF_VM_FIGURES=$tmp/figures.json
export SKIFF_SOURCE_DIR=$src SKIFF_BUILD_DIR=$build
/usr/bin/python3 "$src/tests/vm/test_vm_lifecycle.py" >"$tmp/test.log" 2>&1 ||
  { tail -n 60 "$tmp/test.log"; echo "vm_bench: the lifecycle test failed"; exit 1; }
python3 - "$SKIFF_VM_FIGURES" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
rows = [("accelerator", f["accel"], ""),
        ("base build (debootstrap, fresh cache)", f["base_s"], "s"),
        ("bake (packer build -only=qemu.worker)", f["bake_s"], "s"),
        ("image size (qcow2)", round(f["image_bytes"] / 2**20), "MiB"),
        ("boot -> agent registered", f["boot_to_registered_s"], "s"),
        ("boot -> first step started", f["boot_to_first_step_s"], "s"),
        ("idle timeout -> QEMU exited", f["idle_timeout_to_qemu_exit_s"], "s")]
for name, v, unit in rows:
    print("%-40s %8s %s" % (name, v, unit))
PY
