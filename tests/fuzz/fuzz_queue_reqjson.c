/*
 * The JSON bodies the queue accepts from agents and operators
 * (queue/reqjson.c): any bytes through every parser, never a crash, and
 * what is accepted is within the documented bounds. The first byte picks
 * the parser.
 */
#include <stdint.h>
#include <string.h>

#include "apierr.h"
#include "artname.h"
#include "fuzz.h"
#include "job.h"
#include "jsonx.h"
#include "reqjson.h"

/* What the queue accepts it stores and answers again: never anything
 * that is not UTF-8 (issue 10, item 8). */
static void utf8_or_trap(const char *s)
{
	if (!jsonx_utf8_valid(s, strlen(s), NULL))
		__builtin_trap();
}

static void reg(const char *s, size_t n)
{
	struct reqj_register r;
	struct apierr e;

	if (reqj_register(s, n, &r, &e) < 0)
		return;
	if (r.nlabels > REQJ_MAX_AGENT_LABELS || r.capacity < 1 ||
	    r.capacity > 256 || !*r.name)
		__builtin_trap();
	for (size_t i = 0; i < r.nlabels; i++)
		if (!job_label_valid(r.labels[i]))
			__builtin_trap();
	utf8_or_trap(r.name);
	utf8_or_trap(r.version);
	reqj_register_free(&r);
}

static void complete(const char *s, size_t n)
{
	struct reqj_complete c;
	struct apierr e;

	if (reqj_complete(s, n, &c, &e) < 0)
		return;
	if (!jstate_is_result(c.result) || c.nexit > REQJ_MAX_EXIT_CODES ||
	    c.log_length < 0)
		__builtin_trap();
	for (size_t i = 0; i < c.nexit; i++)
		if (c.exit_codes[i] < -1 || c.exit_codes[i] > 255)
			__builtin_trap();
	utf8_or_trap(c.reason);
	utf8_or_trap(c.reason_code);
	if (c.outputs) {
		utf8_or_trap(c.outputs);
		/* At most 16 KiB of names and values, each escaped to at most
		 * six bytes, and the punctuation of 64 entries. */
		if (strlen(c.outputs) > 6 * REQJ_MAX_OUTPUTS_TOTAL + 64 * 8)
			__builtin_trap();
	}
	reqj_complete_clear(&c);
}

static void others(int which, const char *s, size_t n)
{
	struct reqj_lease l;
	struct reqj_artifact a;
	struct reqj_text t;
	struct apierr e;
	char sha[65];

	if (which == 0 && reqj_lease(s, n, &l, &e) == 0 &&
	    (l.wait < 0 || l.wait > 60))
		__builtin_trap();
	if (which == 1 && reqj_artifact(s, n, &a, &e) == 0 &&
	    (!artname_valid(a.name, strlen(a.name)) || a.size < 0 ||
	    !jsonx_utf8_valid(a.name, strlen(a.name), NULL)))
		__builtin_trap();
	if (which == 2 && reqj_commit(s, n, sha, &e) == 0 && strlen(sha) != 64)
		__builtin_trap();
	if (which == 3 && reqj_text(s, n, "reason", &t, &e) == 0 &&
	    (strlen(t.text) > REQJ_MAX_TEXT ||
	    !jsonx_utf8_valid(t.text, strlen(t.text), NULL)))
		__builtin_trap();
	if (which == 4)
		(void)reqj_heartbeat(s, n, &e);
}

/* The cache bodies (issue 13): keys valid, sizes in bounds. */
static void cache(int restore, const char *s, size_t n)
{
	struct reqj_cache c;
	struct apierr e;

	if (reqj_cache(s, n, restore, &c, &e) < 0)
		return;
	if (!job_cache_key_valid(c.key) || c.nrestore > REQJ_MAX_RESTORE_KEYS ||
	    (!restore && c.size < 0))
		__builtin_trap();
	for (size_t i = 0; i < c.nrestore; i++)
		if (!job_cache_key_valid(c.restore[i]))
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;

	if (size < 1)
		return 0;
	switch (data[0] % 9) {
	case 5: reg(s, size - 1); break;
	case 6: complete(s, size - 1); break;
	case 7: cache(0, s, size - 1); break;
	case 8: cache(1, s, size - 1); break;
	default: others(data[0] % 7, s, size - 1); break;
	}
	return 0;
}
