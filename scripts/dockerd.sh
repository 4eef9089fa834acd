#!/usr/bin/env bash
# Starts dockerd in the background when no Docker engine answers on the
# standard socket, and waits (bounded) for it to come up.
set -euo pipefail
sock=/var/run/docker.sock
if curl -fsS --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null; then
  echo "dockerd.sh: dockerd is not installed (apt-get install docker.io)" >&2
  exit 1
fi
echo "dockerd.sh: starting dockerd (log: /var/log/skiff-dockerd.log)"
nohup dockerd >/var/log/skiff-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if curl -fsS --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "dockerd.sh: dockerd did not answer within 60 s; its log:" >&2
tail -n 30 /var/log/skiff-dockerd.log >&2
exit 1
