# shellcheck shell=bash
# Shared helpers of the skiff lifecycle hooks (installed as
# /usr/lib/skiff/common.sh). Sourced, never run.
#
# Settings come from the environment first, then from the lifecycle file
# (/etc/skiff/lifecycle.conf, KEY=value lines, root-owned), then from the
# default given by the caller. The metadata and API endpoints can be moved
# with SKIFF_*_URL settings; the tests point them at a loopback server.

SKIFF_LIFECYCLE_CONF=${SKIFF_LIFECYCLE_CONF:-/etc/skiff/lifecycle.conf}
SKIFF_HOOK_NAME=${SKIFF_HOOK_NAME:-hook}

log() {
  # stderr goes to the journal under the unit that ran us
  printf 'skiff-%s: %s\n' "$SKIFF_HOOK_NAME" "$*" >&2
}

die() {
  log "error: $*"
  exit 1
}

# conf_get KEY DEFAULT: the environment wins, then the lifecycle file.
# The file is parsed, never sourced: it is data, not code.
conf_get() {
  local key=$1 def=${2-} line val
  if [ -n "${!key+x}" ]; then
    printf '%s' "${!key}"
    return 0
  fi
  if [ -r "$SKIFF_LIFECYCLE_CONF" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      case $line in
        "$key="*)
          val=${line#"$key="}
          val=${val%\"}; val=${val#\"}
          val=${val%\'}; val=${val#\'}
          printf '%s' "$val"
          return 0
          ;;
      esac
    done <"$SKIFF_LIFECYCLE_CONF"
  fi
  printf '%s' "$def"
}

need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "$c is not installed"
  done
}

# http ARGS...: curl bounded in time and retries, failing on HTTP errors.
# Metadata services answer in milliseconds; the cloud APIs in a second or
# two. A hook never hangs a shutdown.
http() {
  curl -fsS --connect-timeout 3 --max-time 20 --retry 3 --retry-delay 1 \
    --retry-connrefused --proto '=http,https' "$@"
}

# http_status OUTFILE ARGS...: like http but prints the status code and
# keeps the body in OUTFILE whatever the status, so that an API's error
# message can be logged.
http_status() {
  local out=$1
  shift
  curl -sS --connect-timeout 3 --max-time 30 --retry 2 --retry-delay 1 \
    --proto '=http,https' -o "$out" -w '%{http_code}' "$@"
}

json_get() {
  # json_get FILTER: reads JSON on stdin, prints a raw string or fails
  local v
  v=$(jq -er "$1 // empty") || return 1
  [ -n "$v" ] || return 1
  printf '%s' "$v"
}
