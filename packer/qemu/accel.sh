#!/usr/bin/env bash
# Prints the QEMU accelerator to use here: "kvm" when a guest really runs
# under KVM, "tcg" (emulation) when only QEMU's own emulation can run, and
# nothing (exit 1) when neither can, with the reason on stderr.
#
#   accel.sh KERNEL        (a kernel to try, e.g. a base's vmlinuz)
#
# Opening /dev/kvm is not enough: some nested hypervisors create VMs and
# vCPUs, then never run a guest past its first instructions. The probe
# boots KERNEL with no root filesystem and panic=-1: a working accelerator
# gets to the panic and QEMU exits by itself (-no-reboot) in a second or
# two. SKIFF_QEMU_ACCEL=kvm|tcg skips the probe.
set -euo pipefail
kernel=${1:?usage: accel.sh KERNEL}
if [ -n "${SKIFF_QEMU_ACCEL:-}" ]; then echo "$SKIFF_QEMU_ACCEL"; exit 0; fi
command -v qemu-system-x86_64 >/dev/null ||
  { echo "accel.sh: qemu-system-x86_64 is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# probe ACCEL SECONDS: 0 when the kernel got to its panic within SECONDS
probe() {
  timeout "$2" qemu-system-x86_64 -accel "$1" -m 256 -smp 1 -no-reboot \
    -kernel "$kernel" -append "console=ttyS0 panic=-1 root=/dev/nonexistent" \
    -nic none -display none -monitor none -serial "file:$tmp/$1.log" \
    >"$tmp/$1.out" 2>&1 || return 1
  grep -aq 'Kernel panic' "$tmp/$1.log"
}

why=""
if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  if probe kvm 20; then echo kvm; exit 0; fi
  why="/dev/kvm is there but a guest does not run under it (nested virtualisation?)"
else
  why="no usable /dev/kvm"
fi
if probe tcg 180; then
  echo "accel.sh: $why: using TCG" >&2
  echo tcg
  exit 0
fi
echo "accel.sh: $why, and QEMU's TCG did not boot the kernel either: $(tail -n 3 "$tmp/tcg.out" 2>/dev/null)" >&2
exit 1
