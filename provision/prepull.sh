#!/usr/bin/env bash
# Image build step: pulls the execution images listed in PREPULL_IMAGES
# (space-separated) through the Docker Engine API with
# "skiff-agent prepull", checks that the engine has each of them, and
# records them (PREPULL_KEEP, comma-separated) in /etc/skiff/image.conf as
# SKIFF_PREPULL_KEEP so that the
# agent never prunes them. image.conf belongs to the image; the user-data
# writes agent.conf and leaves it alone.
#
# PREPULL_ARCHIVE, a "docker save" archive, is loaded first (an empty or
# absent file: nothing to load); images it brings are not pulled again.
# That is how a build without a registry (the qemu source: its VM has no
# network) still bakes its execution images in.
set -euo pipefail
log() { printf 'prepull: %s\n' "$*" >&2; }

read -r -a images <<<"${PREPULL_IMAGES:-}"
keep=${PREPULL_KEEP:-}
docker_host=${DOCKER_HOST_URL:-unix:///var/run/docker.sock}
sock=${docker_host#unix://}

install -d -m 0750 -o root -g skiff /etc/skiff
printf '# written by the image build (provision/prepull.sh)\nSKIFF_PREPULL_KEEP=%s\n' "$keep" >/etc/skiff/image.conf
chmod 0644 /etc/skiff/image.conf

have() {
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 20 --unix-socket "$sock" \
    "http://localhost/images/$1/json") || code=000
  [ "$code" = 200 ]
}

archive=${PREPULL_ARCHIVE:-}
if [ -n "$archive" ] && [ -s "$archive" ]; then
  log "loading $archive"
  curl -fsS --max-time 600 --unix-socket "$sock" -X POST -H 'Content-Type: application/x-tar' \
    --data-binary "@$archive" "http://localhost/images/load?quiet=1" >/dev/null
fi

if [ ${#images[@]} -eq 0 ]; then
  log "no images to pre-pull"
  exit 0
fi
pull=()
for i in "${images[@]}"; do
  have "$i" || pull+=("$i")
done
if [ ${#pull[@]} -gt 0 ]; then
  log "pulling ${pull[*]}"
  # A clean environment and --config /dev/null: at build time there is no
  # configuration, only the engine to talk to (and the agent refuses
  # SKIFF_* variables it does not know).
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /usr/bin/skiff-agent --config /dev/null --docker-host "$docker_host" prepull "${pull[@]}"
fi

for i in "${images[@]}"; do
  if ! have "$i"; then
    log "the engine does not have $i after the pull"
    exit 1
  fi
  log "present: $i"
done
