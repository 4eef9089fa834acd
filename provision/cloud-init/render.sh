#!/usr/bin/env bash
# Fills in a user-data template of this directory, for autoscalers that
# take a finished user-data file (Terraform users call templatefile() on
# the template instead, with the same names).
#
#   render.sh --cloud aws|gcp|azure --queue-url URL --pool POOL \
#     --token-file FILE --trusted-keys FILE.jwks --pool-key FILE.jwk \
#     [--labels docker,linux] [--idle-timeout 10m] [--max-jobs 0] > user-data
#
# Files are embedded base64-encoded; the values of --queue-url, --pool,
# --labels, --idle-timeout and --max-jobs are checked to be single-line and
# free of characters that would change the YAML.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")

die() { printf 'render.sh: %s\n' "$*" >&2; exit 2; }

cloud="" queue_url="" pool="" token_file="" jwks="" pool_key=""
labels="docker,linux" idle_timeout="10m" max_jobs="0"
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "$1 needs a value"
  case $1 in
    --cloud) cloud=$2 ;;
    --queue-url) queue_url=$2 ;;
    --pool) pool=$2 ;;
    --token-file) token_file=$2 ;;
    --trusted-keys) jwks=$2 ;;
    --pool-key) pool_key=$2 ;;
    --labels) labels=$2 ;;
    --idle-timeout) idle_timeout=$2 ;;
    --max-jobs) max_jobs=$2 ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
case $cloud in aws|gcp|azure) ;; *) die "--cloud aws|gcp|azure" ;; esac
for f in "$token_file" "$jwks" "$pool_key"; do
  if [ -z "$f" ] || [ ! -r "$f" ]; then die "--token-file, --trusted-keys and --pool-key need readable files"; fi
done
if [ -z "$queue_url" ] || [ -z "$pool" ]; then die "--queue-url and --pool are required"; fi
case $queue_url in https://*|http://127.*|http://localhost*) ;; *) die "--queue-url must be https://" ;; esac
for v in "$queue_url" "$pool" "$labels" "$idle_timeout" "$max_jobs"; do
  case $v in
    *[!A-Za-z0-9._:/,@%+=~-]*) die "unexpected character in '$v'" ;;
  esac
done

b64() { base64 -w0 <"$1"; }
tpl="$here/user-data-$cloud.yaml"
[ -r "$tpl" ] || die "no template $tpl"

# Plain string replacement (no regex, no eval): awk's index/substr.
awk -v queue_url="$queue_url" -v pool="$pool" -v labels="$labels" \
    -v idle_timeout="$idle_timeout" -v max_jobs="$max_jobs" \
    -v registration_token_b64="$(b64 "$token_file")" \
    -v trusted_jwks_b64="$(b64 "$jwks")" -v pool_key_b64="$(b64 "$pool_key")" '
function subst(line, name, val,   key, i, out) {
  key = "${" name "}"
  out = ""
  while ((i = index(line, key)) > 0) {
    out = out substr(line, 1, i - 1) val
    line = substr(line, i + length(key))
  }
  return out line
}
{
  $0 = subst($0, "queue_url", queue_url)
  $0 = subst($0, "pool", pool)
  $0 = subst($0, "labels", labels)
  $0 = subst($0, "idle_timeout", idle_timeout)
  $0 = subst($0, "max_jobs", max_jobs)
  $0 = subst($0, "registration_token_b64", registration_token_b64)
  $0 = subst($0, "trusted_jwks_b64", trusted_jwks_b64)
  $0 = subst($0, "pool_key_b64", pool_key_b64)
  if (index($0, "${") > 0) { print "render.sh: unfilled placeholder: " $0 > "/dev/stderr"; bad = 1 }
  print
}
END { exit bad }' "$tpl"
