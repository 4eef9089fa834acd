#!/usr/bin/env bash
# Fails, listing file:line, for every call of a function skiff never calls
# (DEVELOPERS.md, "Code conventions"):
#
#   sprintf vsprintf strcpy strcat strncpy atoi atol strtok gets system popen
#
# Use snprintf / buf_printf, memcpy with a checked length, strnum_*,
# strtok_r or strcspn, fgets, and fork/exec (posix_spawn) instead.
#
#   bash scripts/checksrc.sh            # *.c and *.h under common/ agent/
#                                       # queue/ ctl/ tests/ bench/
#   bash scripts/checksrc.sh FILE...    # just these files
#
# Comments, string literals and character literals are blanked out before
# matching (line numbers kept), so "system(" in a comment or a message is
# fine; a member called through . or -> (ops->system()) is not a call of
# the libc function. Exit 0 when clean, 1 when a banned call is found, 2
# on a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."

banned='sprintf|vsprintf|strcpy|strcat|strncpy|atoi|atol|strtok|gets|system|popen'
dirs=(common agent queue ctl tests bench)

files=()
if [ $# -gt 0 ]; then
  for f in "$@"; do
    if [ ! -f "$f" ]; then
      echo "checksrc: $f: no such file" >&2
      exit 2
    fi
    files+=("$f")
  done
else
  for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    while IFS= read -r -d '' f; do
      files+=("$f")
    done < <(find "$d" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
  done
fi

# Blanks comments and literals, keeping newlines, then prints
# "file:line: text" for each banned call. awk (POSIX) keeps the state of
# a block comment across lines.
scan() {
  awk -v banned="$banned" -v sq="'" '
    function blank(s,    out, i, c, n, q) {
      out = ""; n = length(s); i = 1
      while (i <= n) {
        c = substr(s, i, 1)
        if (incomment) {
          if (c == "*" && substr(s, i + 1, 1) == "/") { incomment = 0; i += 2; out = out "  "; continue }
          out = out " "; i++; continue
        }
        if (c == "/" && substr(s, i + 1, 1) == "*") { incomment = 1; out = out "  "; i += 2; continue }
        if (c == "/" && substr(s, i + 1, 1) == "/") break
        if (c == "\"" || c == sq) {
          q = c; out = out " "; i++
          while (i <= n) {
            c = substr(s, i, 1)
            if (c == "\\") { out = out "  "; i += 2; continue }
            out = out " "; i++
            if (c == q) break
          }
          continue
        }
        out = out c; i++
      }
      return out
    }
    FNR == 1 { incomment = 0 }
    {
      line = blank($0)
      rest = line
      while (match(rest, "(^|[^A-Za-z0-9_.>])(" banned ")[ \t]*\\(")) {
        hit = substr(rest, RSTART, RLENGTH)
        sub(/^[^A-Za-z]/, "", hit)
        sub(/[ \t]*\($/, "", hit)
        printf "%s:%d: %s() is banned: %s\n", FILENAME, FNR, hit, $0
        found = 1
        rest = substr(rest, RSTART + RLENGTH)
      }
    }
    END { exit found ? 1 : 0 }
  ' "$@"
}

# The agent's halves (agent/CMakeLists.txt, docs/agent.md "The two
# halves"): a file of one half includes its own headers, the seam's,
# shared/ and common/, never a header of the other half. The build's
# include paths already refuse most; this also catches "../run/x.h".
# SKIFF_CHECKSRC_ROOT lets the self-test point it at a tree of its own.
cross_half() {
  local root=$1 half=$2 other=$3 f ln text h base bad=0
  for f in "$root/agent/$half"/*.[ch]; do
    [ -e "$f" ] || continue
    while IFS=: read -r ln text; do
      h=${text#*\"}
      h=${h%%\"*}
      base=${h##*/}
      if [[ "/$h" == */"$other"/* ]] ||
         { [ -e "$root/agent/$other/$base" ] &&
           [ ! -e "$root/agent/$half/$base" ] &&
           { [ "$half" != run ] || [ ! -e "$root/agent/docker/$base" ]; } &&
           [ ! -e "$root/agent/seam/$base" ] &&
           [ ! -e "$root/agent/shared/$base" ] &&
           [ ! -e "$root/common/$base" ]; }; then
        echo "$f:$ln: includes $h of the $other half"
        bad=1
      fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
  done
  return $bad
}

if [ ${#files[@]} -eq 0 ]; then
  echo "checksrc: no files" >&2
  exit 2
fi
status=0
if ! scan "${files[@]}"; then
  echo "checksrc: banned calls found (see DEVELOPERS.md)" >&2
  status=1
fi
if [ $# -eq 0 ] || [ -n "${SKIFF_CHECKSRC_ROOT:-}" ]; then
  root=${SKIFF_CHECKSRC_ROOT:-.}
  for pair in "net run" "net docker" "run net" "docker net" "docker run" \
      "seam net" "seam run" "seam docker"; do
    # shellcheck disable=SC2086
    if ! cross_half "$root" $pair; then
      echo "checksrc: a cross-half include (see agent/CMakeLists.txt)" >&2
      status=1
    fi
  done
fi
[ $status -eq 0 ] && echo "checksrc: ${#files[@]} files clean"
exit $status
