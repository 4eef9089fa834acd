#!/usr/bin/env bash
# Fills in a user-data template of this directory, for autoscalers that
# take a finished user-data file (Terraform users call templatefile() on
# the template instead, with the same names).
#
#   render.sh --cloud aws|gcp|azure --queue-url URL --pool POOL \
#     --token-file FILE --trusted-keys FILE.jwks --pool-key FILE.jwk \
#     [--labels docker,linux] [--idle-timeout 10m] [--max-jobs 0] \
#     [--ca-file CA.pem] [--lifecycle KEY=VALUE]... > user-data
#
# --ca-file bakes a CA for the queue's certificate into the user-data
# (/etc/skiff/queue-ca.pem, SKIFF_CA_FILE), for a queue whose certificate
# is not from a public CA (skiff-queue --dev, a private PKI).
# --lifecycle sets or adds a line of /etc/skiff/lifecycle.conf, e.g.
# SKIFF_TERMINATE=poweroff on a machine that is no cloud VM, or a moved
# metadata endpoint (SKIFF_AWS_IMDS_URL=...).
#
# Files are embedded base64-encoded; the values of --queue-url, --pool,
# --labels, --idle-timeout and --max-jobs are checked to be single-line and
# free of characters that would change the YAML.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")

die() { printf 'render.sh: %s\n' "$*" >&2; exit 2; }

cloud="" queue_url="" pool="" token_file="" jwks="" pool_key=""
labels="docker,linux" idle_timeout="10m" max_jobs="0" ca_file="" lifecycle=""
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
    --ca-file) ca_file=$2 ;;
    --lifecycle)
      case $2 in
        SKIFF_[A-Z0-9_]*=*) ;;
        *) die "--lifecycle takes SKIFF_KEY=VALUE" ;;
      esac
      lifecycle="$lifecycle $2"
      ;;
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
if [ -n "$ca_file" ] && [ ! -r "$ca_file" ]; then die "--ca-file needs a readable file"; fi
# shellcheck disable=SC2086 # the --lifecycle values are checked words
for v in "$queue_url" "$pool" "$labels" "$idle_timeout" "$max_jobs" $lifecycle; do
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
    -v trusted_jwks_b64="$(b64 "$jwks")" -v pool_key_b64="$(b64 "$pool_key")" \
    -v ca_b64="$( [ -z "$ca_file" ] || b64 "$ca_file")" -v lifecycle="$lifecycle" '
function subst(line, name, val,   key, i, out) {
  key = "${" name "}"
  out = ""
  while ((i = index(line, key)) > 0) {
    out = out substr(line, 1, i - 1) val
    line = substr(line, i + length(key))
  }
  return out line
}
BEGIN {
  nset = split(lifecycle, sets, " ")
  for (i = 1; i <= nset; i++) { k = sets[i]; sub(/=.*/, "", k); setkey[i] = k }
}
# the lines of /etc/skiff/lifecycle.conf: --lifecycle replaces a key or
# adds it at the end of the block
inlc && $0 !~ /^      / && started {
  for (i = 1; i <= nset; i++) if (!used[i]) print "      " sets[i]
  inlc = 0
}
inlc && /^      SKIFF_/ {
  started = 1
  for (i = 1; i <= nset; i++) if (index($0, "      " setkey[i] "=") == 1) { $0 = "      " sets[i]; used[i] = 1 }
}
/^  - path: \/etc\/skiff\/lifecycle.conf$/ { inlc = 1 }
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
  if (ca_b64 != "" && $0 == "write_files:") {
    print "  - path: /etc/skiff/queue-ca.pem"
    print "    owner: root:root"
    print "    permissions: \"0644\""
    print "    encoding: b64"
    print "    content: " ca_b64
  }
  if (ca_b64 != "" && index($0, "      SKIFF_QUEUE_URL=") == 1) print "      SKIFF_CA_FILE=/etc/skiff/queue-ca.pem"
}
END { exit bad }' "$tpl"
