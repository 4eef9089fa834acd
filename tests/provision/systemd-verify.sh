#!/usr/bin/env bash
# systemd-analyze verify on the units, in a scratch root laid out as the
# package installs them (the units' programs must exist and be executable;
# the host's own units provide the targets). Any message is a failure:
# systemd-analyze exits 0 on unknown keys and unparsable values.
set -euo pipefail
src=${1:?usage: systemd-verify.sh SOURCE_DIR}
command -v systemd-analyze >/dev/null || { echo "systemd-analyze is not installed"; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/bin" "$root/usr/lib/skiff" "$root/lib/systemd/system" "$root/etc/skiff"
cp -a /lib/systemd/system/. "$root/lib/systemd/system/" 2>/dev/null || true
cp "$src"/provision/hooks/* "$root/usr/lib/skiff/"
for p in skiff-agent skiff-queue; do
  printf '#!/bin/sh\nexit 0\n' >"$root/usr/bin/$p"
  chmod 0755 "$root/usr/bin/$p"
done
: >"$root/etc/skiff/agent.conf"
mapfile -t units < <(find "$src/provision/systemd" -name '*.service' -printf '%f\n' | sort)
cp "$src"/provision/systemd/*.service "$root/lib/systemd/system/"

verify() {
  local out
  out=$(systemd-analyze verify --root="$root" "$@" 2>&1) || { echo "$out"; return 1; }
  [ -z "$out" ] || { echo "$out"; return 1; }
}
verify "${units[@]}"
echo "systemd-analyze verify: ${units[*]} clean"

# the check can fail
sed 's/^Restart=on-failure/Restart=sometimes\nNoSuchKey=1/' "$src/provision/systemd/skiff-agent.service" \
  >"$root/lib/systemd/system/skiff-broken.service"
if verify skiff-broken.service >/dev/null; then
  echo "systemd-analyze verify accepted a broken unit"; exit 1
fi

# what the exit codes do (the agent's contract, see the unit's header)
u=$src/provision/systemd/skiff-agent.service
grep -qx 'Restart=on-failure' "$u"
grep -qx 'RestartPreventExitStatus=10 77 78' "$u"
grep -qx 'ExecStopPost=+/usr/lib/skiff/skiff-exit-hook' "$u"
# root, to start the halves and host steps as users with less (docs/agent.md)
grep -qx 'User=root' "$u"
grep -q '^CapabilityBoundingSet=.*CAP_SETUID.*CAP_SYS_ADMIN' "$u"
grep -qx 'RestrictNamespaces=~user pid net uts ipc cgroup' "$u"
if grep -q '^SupplementaryGroups=' "$u"; then
  echo "skiff-agent.service: the agent is root; groups go to nobody"; exit 1
fi
# host-step tracking needs its cgroup subtree, writable (docs/agent.md)
grep -qx 'Delegate=yes' "$u"
if grep -q '^ProtectControlGroups=' "$u"; then
  echo "skiff-agent.service: ProtectControlGroups= makes the delegated cgroup read-only"; exit 1
fi
echo "systemd-verify: ok"
