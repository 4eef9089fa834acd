#!/usr/bin/env bash
# Last step of an image build: removes everything that must not be shared
# by every VM booted from the image, then checks that it is gone (and
# fails the build if not):
#   - the agent's state: agent token, replay cache, workspaces
#   - registration tokens and the pool key, in files or in agent.conf
#   - /etc/machine-id (emptied: systemd makes a new one at first boot) and
#     the D-Bus copy
#   - cloud-init's state, seed and logs, so that the VM's user-data runs
#   - SSH host keys (only where cloud-init is there to make new ones),
#     the build user's authorized_keys, shell histories
#   - Docker's engine identity (key.json), package lists and caches, logs
# Pre-pulled images, trusted public keys and the packaged configuration
# stay.
set -euo pipefail
log() { printf 'cleanup-image: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "run as root"; exit 1; }

# the agent's state, keeping the directories and their owners
if [ -d /var/lib/skiff ]; then
  find /var/lib/skiff -mindepth 1 -maxdepth 1 ! -name work -exec rm -rf {} +
  find /var/lib/skiff/work -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null || true
fi
rm -f /etc/skiff/registration-token /etc/skiff/pool.jwk
if [ -f /etc/skiff/agent.conf ]; then
  sed -i -E 's/^(SKIFF_REGISTRATION_TOKEN)=.*/#\1=/' /etc/skiff/agent.conf
fi

: >/etc/machine-id
if [ -e /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then
  rm -f /var/lib/dbus/machine-id
  ln -s /etc/machine-id /var/lib/dbus/machine-id
fi

if command -v cloud-init >/dev/null 2>&1; then
  cloud-init clean --logs --seed || rm -rf /var/lib/cloud
  rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
else
  rm -rf /var/lib/cloud
fi
rm -f /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys
rm -f /root/.bash_history /home/*/.bash_history

rm -f /etc/docker/key.json
if command -v apt-get >/dev/null 2>&1; then
  apt-get clean
  rm -rf /var/lib/apt/lists/*
fi
find /var/log -type f \( -name '*.log' -o -name '*.gz' -o -name '*.[0-9]' \) -delete 2>/dev/null || true
rm -rf /var/log/journal/* /tmp/* /var/tmp/* 2>/dev/null || true

# --- check ---
bad=0
check() { log "left behind: $*"; bad=1; }
for f in /etc/skiff/registration-token /etc/skiff/pool.jwk; do
  [ ! -e "$f" ] || check "$f"
done
if [ -d /var/lib/skiff ] && [ -n "$(find /var/lib/skiff -mindepth 1 ! -path /var/lib/skiff/work)" ]; then
  check "agent state in /var/lib/skiff"
fi
if grep -rIlE '(srt|sat)_[A-Za-z0-9_.-]{8,}|"d" *:' /etc/skiff /var/lib/skiff 2>/dev/null; then
  check "a token or private key in /etc/skiff or /var/lib/skiff"
fi
if grep -qE '^SKIFF_REGISTRATION_TOKEN=.' /etc/skiff/agent.conf 2>/dev/null; then
  check "SKIFF_REGISTRATION_TOKEN in agent.conf"
fi
[ ! -s /etc/machine-id ] || check "/etc/machine-id"
if [ -d /var/lib/cloud ] && [ -n "$(ls -A /var/lib/cloud 2>/dev/null)" ]; then
  check "cloud-init state in /var/lib/cloud"
fi
[ "$bad" = 0 ] || exit 1
log "clean"
