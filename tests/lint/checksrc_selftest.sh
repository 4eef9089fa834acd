#!/usr/bin/env bash
# Runs scripts/checksrc.sh on a file with known banned calls and known
# harmless look-alikes, and checks it reports exactly the banned ones.
#
#   bash tests/lint/checksrc_selftest.sh scripts/checksrc.sh
set -euo pipefail
checksrc=$(readlink -f "${1:?usage: checksrc_selftest.sh CHECKSRC}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Line numbers matter: the expected list below refers to them.
cat > "$tmp/bad.c" <<'C'
/* sprintf(a, b) in a comment is fine */
int f(void)
{
	char b[8];
	sprintf(b, "x");
	snprintf(b, 8, "sprintf(");
	x = atoi ("1");
	ops->system("x");
	ops.popen("x");
	strtok_r(a, b, &c);
	fgets(b, 8, f);
	vsnprintf(b, 8, f, ap);
	/* multi
	   line strcpy(a, b) comment */
	char c = '"'; strcat(b, "x");
	mystrcpy(b, c); strcpy_s(b, c);
	gets(b);
	if (system("ls")) {}
	p = popen("x", "r"); q = strncpy(a, b, 1);
	s = "a\"; strcpy(b, c); \""; // strcat(b, c) after a line comment
	atol(s);
	vsprintf(b, f, ap);
	t = strtok(s, " ");
}
C
cat > "$tmp/good.h" <<'C'
/* Nothing banned here: snprintf, strnum_i64, strtok_r. */
#define SAFE(b, n) snprintf((b), (n), "%s", "gets(")
static inline int g(const char *s) { return s[0] == '\'' ? 1 : 0; }
C

expected="$tmp/bad.c:5: sprintf()
$tmp/bad.c:7: atoi()
$tmp/bad.c:15: strcat()
$tmp/bad.c:17: gets()
$tmp/bad.c:18: system()
$tmp/bad.c:19: popen()
$tmp/bad.c:19: strncpy()
$tmp/bad.c:21: atol()
$tmp/bad.c:22: vsprintf()
$tmp/bad.c:23: strtok()"

set +e
out=$(bash "$checksrc" "$tmp/bad.c" "$tmp/good.h" 2>/dev/null)
rc=$?
set -e
got=$(printf '%s\n' "$out" | sed -n 's/^\(.*:[0-9]*: [a-z]*()\) is banned.*/\1/p')
if [ "$rc" -ne 1 ]; then
  echo "selftest: checksrc exited $rc on banned calls, expected 1" >&2
  exit 1
fi
if [ "$got" != "$expected" ]; then
  echo "selftest: checksrc reported:" >&2
  printf '%s\n' "$got" >&2
  echo "selftest: expected:" >&2
  printf '%s\n' "$expected" >&2
  exit 1
fi
if ! bash "$checksrc" "$tmp/good.h" >/dev/null; then
  echo "selftest: checksrc flagged a clean file" >&2
  exit 1
fi

# Cross-half includes: a tree of its own with one of each kind.
t="$tmp/tree"
mkdir -p "$t/agent/net" "$t/agent/run" "$t/agent/seam" "$t/agent/shared" "$t/common"
touch "$t/agent/run/docker.h" "$t/agent/run/log.h" "$t/common/log.h" \
  "$t/agent/seam/seam.h" "$t/agent/net/net.h"
cat > "$t/agent/net/x.c" <<'C'
#include "net.h"
#include "seam.h"
#include "log.h"
#include "docker.h"
#include "../run/anything.h"
#include <stdio.h>
C
printf '#include "net.h"\n' > "$t/agent/run/y.c"
set +e
got=$(SKIFF_CHECKSRC_ROOT="$t" bash "$checksrc" "$tmp/good.h" 2>/dev/null)
rc=$?
set -e
expected="$t/agent/net/x.c:4: includes docker.h of the run half
$t/agent/net/x.c:5: includes ../run/anything.h of the run half
$t/agent/run/y.c:1: includes net.h of the net half"
if [ "$got" != "$expected" ] || [ $rc -ne 1 ]; then
  echo "selftest: cross-half includes: got" >&2
  printf '%s\n' "$got" >&2
  echo "expected:" >&2
  printf '%s\n' "$expected" >&2
  exit 1
fi
echo "selftest: checksrc finds exactly the 10 banned calls and 3 cross-half includes"
