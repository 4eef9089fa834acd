#!/usr/bin/env bash
# Checks a built image against the rules of images/README.md.
#
#   images/check-image.sh [--strict] IMAGE
#
# Without --strict only what skiff itself needs is checked (any image that
# passes can serve as an execution container); --strict adds the rules of
# skiff's own images (our CI builds ours with it). Prints one line per rule
# and exits 1 when a checked rule fails. Uses the docker CLI; every
# container it starts is removed (--rm) and labelled dev.skiff.check=1.
set -euo pipefail

strict=0
if [ "${1:-}" = --strict ]; then strict=1; shift; fi
[ $# -eq 1 ] || { echo "usage: check-image.sh [--strict] IMAGE" >&2; exit 2; }
img=$1

fails=0 warns=0
pass() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; fails=$((fails + 1)); }
# a rule of skiff's own images: fatal with --strict, a warning otherwise
rec() {
  if [ "$strict" = 1 ]; then fail "$*"; else printf 'warn  %s\n' "$*"; warns=$((warns + 1)); fi
}

docker image inspect "$img" >/dev/null 2>&1 || { echo "check-image.sh: no image $img" >&2; exit 2; }
cfg() { docker image inspect --format "$1" "$img"; }

ws=$(mktemp -d /var/tmp/skiff-check.XXXXXX)
trap 'rm -rf "$ws"' EXIT
uid=4321 gid=4321
chown "$uid:$gid" "$ws" 2>/dev/null || chmod 0777 "$ws"

# run ARGS... : a step as skiff starts one: the shell as entrypoint, the
# workspace bind-mounted at the same path and used as the working directory,
# a clean environment, no TTY.
run() {
  timeout 120 docker run --rm --label dev.skiff.check=1 --network none \
    -v "$ws:$ws" -w "$ws" --entrypoint /bin/sh "$@"
}

# 1. a POSIX shell at /bin/sh that runs a script given as its last argument
out=$(run "$img" -e -c 'echo shell-ok' 2>&1) || true
if [ "$out" = shell-ok ]; then pass "/bin/sh runs a script (sh -e -c)"; else fail "/bin/sh -e -c does not run a script: $out"; fi

# 2. -e stops at the first failing command, and the exit status comes back
set +e
out=$(run "$img" -e -c 'false; echo after-false' 2>&1); rc=$?
set -e
if [ "$rc" -ne 0 ] && [ -z "$out" ]; then pass "a failing command fails the step (exit $rc)"; else fail "sh -e did not stop at a failure (exit $rc, output '$out')"; fi
set +e
run "$img" -c 'exit 7' >/dev/null 2>&1; rc=$?
set -e
if [ "$rc" = 7 ]; then pass "the script's exit status is the container's"; else fail "exit 7 came back as $rc"; fi

# 3. any uid, also one without a passwd entry, can work in the workspace,
#    and the entrypoint/cmd of the image do not get in the way
# shellcheck disable=SC2016 # expanded by the step's shell
out=$(run --user "$uid:$gid" -e SKIFF_CHECK=env-ok "$img" -e -c \
  'echo "$SKIFF_CHECK" > out.txt; mkdir -p d/e; cd d/e; pwd >/dev/null; cat ../../out.txt; touch /tmp/x' 2>&1) || true
if [ "$out" = env-ok ] && [ -f "$ws/out.txt" ]; then
  pass "uid $uid without a passwd entry works in the bind-mounted workspace and /tmp"
else
  fail "a step as uid $uid failed in the workspace: $out"
fi

# 4. PATH comes from the image configuration: a non-interactive shell reads
#    no profile, so what ENV sets is all a step gets
cfg_path=$(cfg '{{range .Config.Env}}{{println .}}{{end}}' | sed -n 's/^PATH=//p')
if [ -z "$cfg_path" ]; then
  rec "PATH is not set with ENV in the image (the engine's default applies)"
else
  # shellcheck disable=SC2016 # expanded by the step's shell
  sh_path=$(run "$img" -c 'printf %s "$PATH"' 2>&1) || true
  if [ "$sh_path" = "$cfg_path" ]; then pass "PATH is set with ENV: $cfg_path"; else fail "PATH in a step ($sh_path) differs from the image's ($cfg_path)"; fi
fi

# 5. no ENTRYPOINT (skiff replaces it, but an image for skiff has none);
#    a CMD is harmless (skiff passes its own arguments), e.g. the ["bash"]
#    that debian:* images carry
ep=$(cfg '{{json .Config.Entrypoint}}')
case $ep in null|"[]") pass "no ENTRYPOINT" ;; *) rec "ENTRYPOINT is set ($ep); skiff ignores it" ;; esac
cmd=$(cfg '{{json .Config.Cmd}}')
case $cmd in
  null|"[]") pass "no CMD" ;;
  *) printf 'note  CMD %s is inherited or set; skiff ignores it\n' "$cmd" ;;
esac

# 6. no VOLUME: each would leave an anonymous volume per step container
vol=$(cfg '{{json .Config.Volumes}}')
case $vol in null|"{}") pass "no VOLUME" ;; *) rec "VOLUME $vol: an anonymous volume per step fills the disk" ;; esac

# 7. no HEALTHCHECK: it would run inside every step container
hc=$(cfg '{{json .Config.Healthcheck}}')
case $hc in null) pass "no HEALTHCHECK" ;; *) rec "HEALTHCHECK $hc runs in every step container" ;; esac

# 8. version and distro labels, consistent with the tag scheme
version=$(cfg '{{index .Config.Labels "org.opencontainers.image.version"}}' 2>/dev/null || true)
distro=$(cfg '{{index .Config.Labels "dev.skiff.image.distro"}}' 2>/dev/null || true)
if [[ $version =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] && [ -n "$distro" ]; then
  pass "labels: version $version, distro $distro"
  major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
  case $img in
    *@*) ;;
    *:*)
      tag=${img##*:}
      case $tag in
        "$version-$distro"|"$major.$minor-$distro"|"$major-$distro"|"$distro") pass "tag $tag fits version $version and distro $distro" ;;
        *) rec "tag $tag does not fit MAJOR.MINOR.PATCH-DISTRO for $version-$distro" ;;
      esac
      ;;
  esac
else
  rec "labels org.opencontainers.image.version (MAJOR.MINOR.PATCH) and dev.skiff.image.distro are missing"
fi

# 9. every tool the image promises is on PATH for a non-root step
tools=$(cfg '{{index .Config.Labels "dev.skiff.image.tools"}}' 2>/dev/null || true)
if [ -n "$tools" ]; then
  read -r -a tool_list <<<"$tools"
  # shellcheck disable=SC2016 # expanded by the step's shell
  missing=$(run --user "$uid:$gid" "$img" -c 'for t in "$@"; do command -v "$t" >/dev/null 2>&1 || printf "%s " "$t"; done' sh "${tool_list[@]}" 2>&1) || true
  if [ -z "$missing" ]; then pass "tools on PATH: $tools"; else fail "tools promised but not on PATH: $missing"; fi
fi

echo "check-image: $img: $fails failed, $warns warnings"
[ "$fails" = 0 ]
