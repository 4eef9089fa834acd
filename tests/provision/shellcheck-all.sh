#!/usr/bin/env bash
# Runs shellcheck on every shell script of the repository: files ending in .sh
# and files whose first line is a sh/bash shebang, outside build trees and
# .git. Sourced files are followed (-x, paths relative to each script).
set -euo pipefail
src=${1:?usage: shellcheck-all.sh SOURCE_DIR}
cd "$src"
command -v shellcheck >/dev/null || { echo "shellcheck is not installed"; exit 1; }

mapfile -t files < <(
  find . \( -path ./.git -o -path './build*' -o -name node_modules \) -prune -o -type f -print |
    while IFS= read -r f; do
      case $f in
        *.sh) echo "$f" ;;
        *.py|*.c|*.h|*.md|*.hcl|*.yaml|*.json|*.txt|*.cmake) ;;
        *) head -c 64 "$f" 2>/dev/null | head -n 1 | grep -qE '^#!.*[/ ](ba|da)?sh( |$)' && echo "$f" ;;
      esac
    done | sort)
[ ${#files[@]} -gt 0 ] || { echo "no shell scripts found"; exit 1; }
for must in ./.ci/run ./scripts/test.sh ./provision/install-agent.sh ./images/check-image.sh; do
  printf '%s\n' "${files[@]}" | grep -qx "$must" || { echo "missed $must"; exit 1; }
done
echo "shellcheck on ${#files[@]} scripts"
shellcheck -x -P SCRIPTDIR "${files[@]}"
echo "shellcheck: all clean"
