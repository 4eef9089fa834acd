#!/usr/bin/env bash
# packer validate (and fmt -check) on every template directory under
# packer/, with Debian's packer (1.6.6), using example.pkrvars.hcl and a
# stand-in for the agent package (validate checks that the file exists).
set -euo pipefail
src=${1:?usage: packer-validate.sh SOURCE_DIR}
command -v packer >/dev/null || { echo "packer is not installed (apt-get install packer)"; exit 1; }
packer version
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/skiff-agent_0.0.0_amd64.deb"
# the qemu source's SSH key must exist (a stand-in base directory)
mkdir -p "$tmp/qemu-base"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/qemu-base/build-key"
# packer keeps state under HOME; keep it out of the user's
export HOME=$tmp PACKER_CACHE_DIR=$tmp/cache CHECKPOINT_DISABLE=1 PACKER_LOG=0

mapfile -t dirs < <(find "$src/packer" -name '*.pkr.hcl' -printf '%h\n' | sort -u)
[ ${#dirs[@]} -gt 0 ] || { echo "no templates under packer/"; exit 1; }
for d in "${dirs[@]}"; do
  vars=()
  [ -f "$d/example.pkrvars.hcl" ] && vars=(-var-file="$d/example.pkrvars.hcl")
  echo "== packer validate $d"
  packer validate "${vars[@]}" -var "agent_package=$tmp/skiff-agent_0.0.0_amd64.deb" \
    -var "qemu_base_dir=$tmp/qemu-base" "$d"
  echo "== packer fmt -check $d"
  packer fmt -check -diff "$d"
done
# the check can fail: a template with an unknown argument must be refused
cp "$src"/packer/*.pkr.hcl "$tmp/"
sed -i '0,/^source "docker" "worker" {/s//source "docker" "worker" {\n  no_such_argument = 1/' "$tmp/skiff-worker.pkr.hcl"
if packer validate -var "agent_package=$tmp/skiff-agent_0.0.0_amd64.deb" -var "qemu_base_dir=$tmp/qemu-base" "$tmp" >/dev/null 2>&1; then
  echo "packer validate accepted a broken template"; exit 1
fi
echo "packer validate: all templates valid"
