#!/usr/bin/env bash
# The minimal execution image, built from a local Debian base (no registry
# here), must pass the image rules (images/check-image.sh --strict) under
# all four tags of the scheme; an image that breaks the rules must fail
# them. Removes the images it built (the base stays cached).
set -euo pipefail
src=${1:?usage: image-minimal.sh SOURCE_DIR BUILD_DIR}
build=${2:?usage: image-minimal.sh SOURCE_DIR BUILD_DIR}
base=$(bash "$src/tests/provision/make-base.sh" "$build/provision-cache")
repo=skiff-test/prov$$
tmp=$(mktemp -d)
cleanup() {
  docker image ls --format '{{.Repository}}:{{.Tag}}' | grep "^$repo/" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

mapfile -t tags < <(bash "$src/images/build.sh" --base "$base" --distro bookworm --repo "$repo" minimal | tail -n 4)
version=$(cat "$src/images/minimal/VERSION")
want=("$repo/skiff-minimal:$version-bookworm" "$repo/skiff-minimal:${version%.*}-bookworm"
      "$repo/skiff-minimal:${version%%.*}-bookworm" "$repo/skiff-minimal:bookworm")
[ "${tags[*]}" = "${want[*]}" ] || { echo "tags: ${tags[*]}, want ${want[*]}"; exit 1; }
id=$(docker image inspect --format '{{.Id}}' "${tags[0]}")
for t in "${tags[@]}"; do
  [ "$(docker image inspect --format '{{.Id}}' "$t")" = "$id" ] || { echo "$t is another image"; exit 1; }
  bash "$src/images/check-image.sh" --strict "$t"
done

# an image breaking the rules: an ENTRYPOINT, a VOLUME, no /tmp
cat >"$tmp/Dockerfile" <<DOCKERFILE
FROM ${tags[0]}
RUN rm -rf /tmp
VOLUME /data
ENTRYPOINT ["/bin/false"]
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t "$repo/broken:1.0.0-bookworm" "$tmp" >/dev/null
set +e
out=$(bash "$src/images/check-image.sh" --strict "$repo/broken:1.0.0-bookworm"); rc=$?
lax=$(bash "$src/images/check-image.sh" "$repo/broken:1.0.0-bookworm"); lax_rc=$?
set -e
echo "$out"
[ "$rc" = 1 ] || { echo "the checker passed a broken image"; exit 1; }
for rule in "ENTRYPOINT is set" "VOLUME" "a step as uid"; do
  grep -q "^FAIL.*$rule" <<<"$out" || { echo "the checker missed: $rule"; exit 1; }
done
# without --strict, ENTRYPOINT and VOLUME are warnings, a missing /tmp is not
if [ "$lax_rc" != 1 ] || ! grep -q '^warn.*ENTRYPOINT' <<<"$lax"; then echo "non-strict check: $lax"; exit 1; fi
echo "image-minimal: ok"
