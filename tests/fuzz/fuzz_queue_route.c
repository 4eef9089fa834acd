/*
 * The queue's request routing (queue/route.c): any method and path, never
 * a crash; a match has decoded, bounded parameters without NUL, and an
 * artifact name route has a name only artname_valid can pass or refuse.
 * Input: the first byte picks the method, the rest is the raw path.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "artname.h"
#include "fuzz.h"
#include "route.h"

static const char *const methods[] = { "GET", "POST", "PUT", "DELETE",
	"HEAD" };

static void check(const struct route_match *m)
{
	if (strlen(m->param) > ROUTE_PARAM_MAX || strlen(m->name) > ROUTE_NAME_MAX)
		__builtin_trap();
	if (m->id >= R_COUNT)
		__builtin_trap();
	(void)artname_valid(m->name, strlen(m->name));
	(void)route_pool_valid(m->param);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct route_match m;
	char *path, out[64];
	size_t n;
	int rc;

	if (size < 1)
		return 0;
	path = malloc(size);
	memcpy(path, data + 1, size - 1);
	path[size - 1] = '\0';
	rc = route_match(methods[data[0] % 5], path, &m);
	if (rc == 0)
		check(&m);
	else if (rc != -ENOENT && rc != -EOPNOTSUPP && rc != -EINVAL)
		__builtin_trap();
	rc = route_pct_decode(path, strlen(path), out, sizeof(out), &n);
	if (rc == 0 && (n >= sizeof(out) || memchr(out, '\0', n)))
		__builtin_trap();
	free(path);
	return 0;
}
