#include "jstate.h"

#include <errno.h>
#include <string.h>

static const char *const names[JS_COUNT] = {
	"queued", "leased", "running", "succeeded", "failed", "canceled",
	"timed_out", "rejected", "expired", "lost",
};

const char *jstate_name(enum jstate s)
{
	return (unsigned)s < JS_COUNT ? names[s] : "unknown";
}

int jstate_parse(const char *s, enum jstate *out)
{
	for (int i = 0; i < JS_COUNT; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum jstate)i;
			return 0;
		}
	}
	return -EINVAL;
}

int jstate_terminal(enum jstate s)
{
	return s >= JS_SUCCEEDED && s < JS_COUNT;
}

int jstate_is_result(enum jstate s)
{
	return s >= JS_SUCCEEDED && s <= JS_REJECTED;
}
