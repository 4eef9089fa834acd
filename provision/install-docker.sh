#!/usr/bin/env bash
# Installs and configures the Docker engine on a worker VM image, from the
# distribution's own packages (Debian/Ubuntu: docker.io; Fedora, RHEL,
# Amazon Linux: docker or moby-engine), so that no third-party repository
# or download is needed.
#
#   sudo bash install-docker.sh
#
# Settings (environment):
#   SKIFF_DOCKER_LOG_MAX_SIZE   per-container log cap (default 50m); the
#                               agent reads step output from the API, the
#                               files only need to hold a little
#   SKIFF_DOCKER_DATA_ROOT      dockerd's data-root (default: its own,
#                               /var/lib/docker)
#   SKIFF_DOCKER_SKIP_INSTALL=1 configure only (the engine is there, or is
#                               someone else's, e.g. Packer's docker source
#                               using the host's engine through its socket)
#
# What it configures (/etc/docker/daemon.json, written only when absent):
# log rotation, live-restore (a dockerd upgrade or restart does not kill
# running steps), and no userland proxy. It enables docker.service, and
# creates the "docker" group the agent joins.
set -euo pipefail

log() { printf 'install-docker: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "run as root"; exit 1; }

if [ "${SKIFF_DOCKER_SKIP_INSTALL:-0}" = 1 ]; then
  log "SKIFF_DOCKER_SKIP_INSTALL=1: not installing"
elif command -v dockerd >/dev/null 2>&1; then
  log "dockerd is installed: $(dockerd --version 2>/dev/null || echo '?')"
elif command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends docker.io ca-certificates iptables
elif command -v dnf >/dev/null 2>&1; then
  dnf install -y docker || dnf install -y moby-engine
elif command -v yum >/dev/null 2>&1; then
  yum install -y docker
else
  log "no apt-get, dnf or yum: install Docker yourself, then run with SKIFF_DOCKER_SKIP_INSTALL=1"
  exit 1
fi

getent group docker >/dev/null || groupadd --system docker

install -d -m 0755 /etc/docker
if [ ! -e /etc/docker/daemon.json ]; then
  data_root=""
  if [ -n "${SKIFF_DOCKER_DATA_ROOT:-}" ]; then
    data_root="  \"data-root\": \"${SKIFF_DOCKER_DATA_ROOT}\","
  fi
  cat >/etc/docker/daemon.json <<JSON
{
$data_root
  "log-driver": "json-file",
  "log-opts": {"max-size": "${SKIFF_DOCKER_LOG_MAX_SIZE:-50m}", "max-file": "2"},
  "live-restore": true,
  "userland-proxy": false
}
JSON
  # drop the empty line left when no data-root was asked for
  sed -i '/^$/d' /etc/docker/daemon.json
  log "wrote /etc/docker/daemon.json"
fi

if [ -d /run/systemd/system ]; then
  systemctl enable docker.service
  systemctl restart docker.service
elif command -v systemctl >/dev/null 2>&1 && [ "${SKIFF_DOCKER_SKIP_INSTALL:-0}" != 1 ]; then
  # an image build without a running systemd: enable for the next boot
  systemctl enable docker.service || true
fi
log "done"
