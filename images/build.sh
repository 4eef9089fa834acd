#!/usr/bin/env bash
# Builds an execution image of this directory and tags it with skiff's tag
# scheme:
#
#   REPO/skiff-NAME:MAJOR.MINOR.PATCH-DISTRO   the release, never moved
#   REPO/skiff-NAME:MAJOR.MINOR-DISTRO         floating: latest patch
#   REPO/skiff-NAME:MAJOR-DISTRO               floating: latest minor
#   REPO/skiff-NAME:DISTRO                     floating: latest of all
#
#   images/build.sh [--base IMAGE] [--distro NAME] [--version X.Y.Z]
#                   [--repo PREFIX] [--push] minimal|tools
#
# --base defaults to debian:DISTRO-slim, --distro to bookworm, --version to
# NAME/VERSION, --repo to "skiff" (e.g. registry.example.org:5000/ci).
# Jobs should name the full MAJOR.MINOR.PATCH-DISTRO tag (or a digest);
# the floating tags are for people. --push pushes all four tags.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
die() { printf 'build.sh: %s\n' "$*" >&2; exit 2; }

base="" distro=bookworm version="" repo=skiff push=0 name=""
while [ $# -gt 0 ]; do
  case $1 in
    --base) base=${2:?}; shift 2 ;;
    --distro) distro=${2:?}; shift 2 ;;
    --version) version=${2:?}; shift 2 ;;
    --repo) repo=${2:?}; shift 2 ;;
    --push) push=1; shift ;;
    -*) die "unknown option $1" ;;
    *) [ -z "$name" ] || die "one image at a time"; name=$1; shift ;;
  esac
done
if [ -z "$name" ] || [ ! -f "$here/$name/Dockerfile" ]; then die "usage: build.sh [options] minimal|tools"; fi
[ -n "$version" ] || version=$(cat "$here/$name/VERSION")
[[ $version =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || die "version must be MAJOR.MINOR.PATCH, not '$version'"
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
[[ $distro =~ ^[a-z][a-z0-9.]*$ ]] || die "distro must be lowercase letters, digits and dots, not '$distro'"
[ -n "$base" ] || base="debian:$distro-slim"

img="$repo/skiff-$name"
tags=("$img:$version-$distro" "$img:$major.$minor-$distro" "$img:$major-$distro" "$img:$distro")

# The classic builder: needs no buildx plugin, and the Dockerfiles need no
# BuildKit feature.
DOCKER_BUILDKIT=0 docker build --pull=false \
  --build-arg "BASE=$base" --build-arg "VERSION=$version" --build-arg "DISTRO=$distro" \
  -t "${tags[0]}" "$here/$name"
for t in "${tags[@]:1}"; do
  docker tag "${tags[0]}" "$t"
done
if [ "$push" = 1 ]; then
  for t in "${tags[@]}"; do
    docker push "$t"
  done
fi
printf '%s\n' "${tags[@]}"
