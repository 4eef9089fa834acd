#!/usr/bin/env bash
# Builds the three .deb packages (skiff-agent, skiff-queue, skiffctl) and
# the .tar.gz with CPack into BUILD/provision-pkg (the packer build tests
# install skiff-agent's) and checks them: lintian reports no error on any
# .deb, the file lists and modes, the control data, and an install of
# skiff-agent into a container of the local Debian base: the skiff user in group docker, /etc/skiff and the state and
# work directories with their owners and modes, a reinstall that keeps
# them, a purge that removes them. With the agent built, the tarball is
# also installed with provision/install-agent.sh.
set -euo pipefail
src=${1:?usage: package.sh SOURCE_DIR BUILD_DIR}
build=${2:?usage: package.sh SOURCE_DIR BUILD_DIR}
out=$build/provision-pkg
rm -rf "$out"
mkdir -p "$out"
(cd "$build" && cpack -G "DEB;TGZ" -B "$out" --config "$build/CPackConfig.cmake") >"$out/cpack.log" 2>&1 ||
  { tail -n 30 "$out/cpack.log"; exit 1; }
deb=$(find "$out" -maxdepth 1 -name 'skiff-agent_*.deb' | head -n 1)
qdeb=$(find "$out" -maxdepth 1 -name 'skiff-queue_*.deb' | head -n 1)
cdeb=$(find "$out" -maxdepth 1 -name 'skiffctl_*.deb' | head -n 1)
tgz=$(find "$out" -maxdepth 1 -name 'skiff-*.tar.gz' | head -n 1)
if [ -z "$deb" ] || [ -z "$qdeb" ] || [ -z "$cdeb" ] || [ -z "$tgz" ]; then echo "a package is missing in $out"; ls -l "$out"; exit 1; fi
echo "built $deb $qdeb $cdeb $tgz"

# lintian: no error on any package (warnings are shown)
command -v lintian >/dev/null || { echo "lintian is not installed (scripts/setup.sh installs it)"; exit 1; }
for d in "$deb" "$qdeb" "$cdeb"; do
  rc=0
  # --no-cfg: the same checks for everyone (CI builds as root, which
  # lintian remarks on)
  lintian --no-cfg --fail-on error --tag-display-limit 0 "$d" >"$out/lintian.txt" 2>&1 || rc=$?
  sed -i '/running with root privileges/d' "$out/lintian.txt"
  sed "s|^|lintian $(basename "$d"): |" "$out/lintian.txt"
  if [ "$rc" != 0 ] || grep -q '^E: ' "$out/lintian.txt"; then
    echo "lintian reports errors on $d"; exit 1
  fi
done
echo "lintian: no errors"

listing_of() { dpkg-deb -c "$1" | awk '{print $1, $6}'; }
have_agent=0
listing=$(listing_of "$deb")
if grep -q ' ./usr/bin/skiff-agent$' <<<"$listing"; then have_agent=1; fi
expect() {
  grep -qx -- "$1" <<<"$listing" || { echo "the .deb lacks: $1"; echo "$listing"; exit 1; }
}
# 0644 in the package; skiff-setup makes agent.conf 0640 at configure
expect "-rw-r--r-- ./etc/skiff/agent.conf"
expect "-rw-r--r-- ./etc/skiff/lifecycle.conf"
expect "-rw-r--r-- ./lib/systemd/system/skiff-agent.service"
expect "-rw-r--r-- ./lib/systemd/system/skiff-preempt.service"
for p in skiff-exit-hook skiff-preempt-watch skiff-setup terminate-aws terminate-gcp terminate-azure terminate-poweroff; do
  expect "-rwxr-xr-x ./usr/lib/skiff/$p"
done
expect "-rw-r--r-- ./usr/lib/skiff/common.sh"
expect "-rw-r--r-- ./usr/share/doc/skiff-agent/copyright"
expect "-rw-r--r-- ./usr/share/man/man8/skiff-agent.8.gz"
if grep -qE ' ./usr/bin/(skiffctl|skiff-queue)$' <<<"$listing"; then
  echo "skiff-agent carries the queue or skiffctl"; exit 1
fi
listing=$(listing_of "$qdeb")
expect "-rwxr-xr-x ./usr/bin/skiff-queue"
expect "-rw-r--r-- ./lib/systemd/system/skiff-queue.service"
expect "-rw-r--r-- ./usr/share/man/man8/skiff-queue.8.gz"
listing=$(listing_of "$cdeb")
expect "-rwxr-xr-x ./usr/bin/skiffctl"
expect "-rw-r--r-- ./usr/share/man/man1/skiffctl.1.gz"
ctl=$(dpkg-deb -f "$deb" Package Depends)
for w in '^Package: skiff-agent$' 'Depends:.*curl' 'Depends:.*jq'; do
  grep -q "$w" <<<"$ctl" || { echo "control lacks $w: $ctl"; exit 1; }
done
if dpkg-deb -f "$deb" Depends | grep -qE 'libmicrohttpd|libsqlite3|libpq'; then
  echo "skiff-agent depends on the queue's libraries: $(dpkg-deb -f "$deb" Depends)"; exit 1
fi
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
grep -qx /etc/skiff/agent.conf <<<"$conffiles" || { echo "agent.conf is not a conffile"; exit 1; }
tlist=$(tar -tzf "$tgz")
for p in etc/skiff/agent.conf lib/systemd/system/skiff-agent.service usr/lib/skiff/skiff-exit-hook usr/bin/skiffctl; do
  grep -q "/$p\$" <<<"$tlist" || { echo "the tarball lacks $p"; exit 1; }
done
echo "package contents: ok (agent in package: $have_agent)"

base=$(bash "$src/tests/provision/make-base.sh" "$build/provision-cache")
# shellcheck disable=SC2016 # runs in the container
check_layout='
set -eu
st() { stat -c "%U:%G %a" "$1"; }
want() { [ "$(st "$1")" = "$2" ] || { echo "$1 is $(st "$1"), want $2"; exit 1; }; }
want /etc/skiff root:skiff\ 750
want /etc/skiff/agent.conf root:skiff\ 640
want /etc/skiff/lifecycle.conf root:root\ 644
want /var/lib/skiff skiff:skiff\ 750
want /var/lib/skiff/work skiff:skiff\ 750
id -nG skiff | tr " " "\n" | grep -qx docker || { echo "skiff is not in group docker"; exit 1; }
getent passwd skiff | grep -q ":/var/lib/skiff:/usr/sbin/nologin$" || { getent passwd skiff; exit 1; }
[ "$(id -u skiff)" -lt 1000 ] || { echo "skiff is no system user"; exit 1; }
# users of the network half and of host steps: system users, in no other
# group (docs/agent.md, section The two halves)
for u in skiff-net skiff-step; do
  [ "$(id -u "$u")" -lt 1000 ] || { echo "$u is no system user"; exit 1; }
  [ "$(id -nG "$u")" = "$u" ] || { echo "$u is in groups $(id -nG "$u")"; exit 1; }
done
test -x /usr/lib/skiff/skiff-exit-hook || { echo "no skiff-exit-hook"; exit 1; }
test -f /lib/systemd/system/skiff-agent.service || { echo "no unit"; exit 1; }
if ls /etc/systemd/system/*.wants/skiff-* >/dev/null 2>&1; then echo "units enabled by the install"; exit 1; fi
'
run() {
  timeout 300 docker run --rm --label dev.skiff.test=provision --network none \
    -v "$deb:/tmp/skiff.deb:ro" -v "$tgz:/tmp/skiff.tar.gz:ro" \
    -v "$src/provision:/tmp/provision:ro" "$base" bash -c "$1"
}
run "dpkg -i /tmp/skiff.deb >/dev/null
$check_layout
echo SKIFF_QUEUE_URL=https://kept.example >> /etc/skiff/agent.conf
dpkg -i /tmp/skiff.deb >/dev/null 2>&1
$check_layout
grep -q kept.example /etc/skiff/agent.conf || { echo 'reinstall lost the configuration'; exit 1; }
dpkg --purge skiff-agent >/dev/null
[ ! -e /var/lib/skiff ] && [ ! -e /etc/skiff ] || { echo 'purge left state behind'; exit 1; }
echo 'deb install, reinstall, purge: ok'"
# the image build's own steps on a machine that has been used: Docker's
# configuration, and a clean-up that must remove every secret and state,
# and fail when it finds one it cannot place
# shellcheck disable=SC2016 # runs in the container
used_machine='
set -eu
fail() { echo "FAIL: $*"; exit 1; }
dpkg -i /tmp/skiff.deb >/dev/null
SKIFF_DOCKER_SKIP_INSTALL=1 bash /tmp/provision/install-docker.sh 2>/dev/null
jq -e ".\"live-restore\" == true and .\"log-opts\".\"max-size\" == \"50m\"" /etc/docker/daemon.json >/dev/null ||
  fail "daemon.json: $(cat /etc/docker/daemon.json)"
echo srt_0123456789abcdef > /etc/skiff/registration-token
echo "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"a\",\"d\":\"b\"}" > /etc/skiff/pool.jwk
echo SKIFF_REGISTRATION_TOKEN=srt_abcdefghijkl >> /etc/skiff/agent.conf
install -d -o skiff -g skiff /var/lib/skiff/spool /var/lib/skiff/work/job1
echo sat_0123456789abcdef > /var/lib/skiff/agent.json
echo 0123456789abcdef0123456789abcdef > /etc/machine-id
mkdir -p /var/lib/cloud/instance && echo x > /var/lib/cloud/instance/user-data.txt
bash /tmp/provision/cleanup-image.sh 2>/dev/null || fail "cleanup-image failed"
if [ -e /etc/skiff/registration-token ]; then fail "registration-token left"; fi
if [ -e /etc/skiff/pool.jwk ]; then fail "pool.jwk left"; fi
if grep -q "^SKIFF_REGISTRATION_TOKEN=." /etc/skiff/agent.conf; then fail "token in agent.conf"; fi
if [ "$(ls -A /var/lib/skiff)" != work ]; then fail "state left: $(ls -A /var/lib/skiff)"; fi
if [ -n "$(ls -A /var/lib/skiff/work)" ]; then fail "workspaces left"; fi
if [ "$(stat -c "%U:%G %a" /var/lib/skiff/work)" != "skiff:skiff 750" ]; then fail "work dir owner/mode"; fi
if [ -s /etc/machine-id ]; then fail "machine-id left"; fi
if [ -e /var/lib/cloud/instance ]; then fail "cloud-init state left"; fi
echo sat_leftover0123456 > /etc/skiff/notes
if bash /tmp/provision/cleanup-image.sh 2>/dev/null >/dev/null; then fail "cleanup-image passed with a token left"; fi
echo "install-docker (configuration), cleanup-image: ok"
'
run "$used_machine"

if [ "$have_agent" = 1 ]; then
  run "bash /tmp/provision/install-agent.sh /tmp/skiff.tar.gz
$check_layout
echo 'tarball install: ok'"
else
  echo "tarball install: not tried (no skiff-agent in the package yet; install-agent.sh runs it)"
fi
echo "package: ok"
