#include "pgans.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "jsonx.h"

/* Answers are small (a job's status, a lease with its JWS of at most
 * 256 KiB); the cap keeps a damaged one from costing more. */
#define ANSWER_MAX (8 << 20)
#define ANSWER_DEPTH 16

/* Error codes as the static strings struct apierr holds. */
static const char *code_of(const char *c)
{
	static const char *const known[] = { "bad_request", "unauthorized",
	    "forbidden", "not_found", "conflict", "lease_lost", "offset_mismatch",
	    "too_large", "unsupported_media_type", "rejected", "digest_mismatch",
	    "too_many_requests", "unavailable", "internal", NULL };

	for (int i = 0; c && known[i]; i++)
		if (strcmp(c, known[i]) == 0)
			return known[i];
	return NULL;
}

static int int_of(const cJSON *v, double min, double max, long long *out)
{
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
	    v->valuedouble < min || v->valuedouble > max ||
	    v->valuedouble != (double)(long long)v->valuedouble)
		return -EINVAL;
	*out = (long long)v->valuedouble;
	return 0;
}

static int decode_error(const cJSON *root, struct pgans *a)
{
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(root, "code");
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "msg");
	const cJSON *len = cJSON_GetObjectItemCaseSensitive(root, "length");
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(root, "limit");
	const char *c = cJSON_IsString(code) ? code_of(code->valuestring) : NULL;
	long long v;

	if (c == NULL || !cJSON_IsString(msg) || a->status < 400)
		return -EINVAL;
	apierr_set(&a->err, a->status, c, "%s", msg->valuestring);
	if (len) {
		if (int_of(len, 0, 9007199254740992.0, &v) < 0)
			return -EINVAL;
		a->err.has_length = 1;
		a->err.length = v;
	}
	if (lim) {
		if (int_of(lim, 0, 9007199254740992.0, &v) < 0)
			return -EINVAL;
		a->err.has_limit = 1;
		a->err.limit = v;
	}
	if (a->status == 429 || a->status == 503)
		a->err.retry_after = 1;
	a->is_error = 1;
	return 0;
}

int pgans_decode(const char *text, size_t n, struct pgans *a)
{
	cJSON *root;
	long long s;
	int jerr;

	memset(a, 0, sizeof(*a));
	root = jsonx_parse(text, n, ANSWER_MAX, ANSWER_DEPTH, &jerr);
	if (!cJSON_IsObject(root) || int_of(cJSON_GetObjectItemCaseSensitive(root,
	    "s"), 100, 599, &s) < 0) {
		cJSON_Delete(root);
		return -EINVAL;
	}
	a->root = root;
	a->status = (int)s;
	if (cJSON_GetObjectItemCaseSensitive(root, "code")) {
		if (decode_error(root, a) < 0) {
			pgans_free(a);
			return -EINVAL;
		}
		return 0;
	}
	a->body = cJSON_GetObjectItemCaseSensitive(root, "b");
	return 0;
}

cJSON *pgans_take_body(struct pgans *a)
{
	cJSON *b = a->root ? cJSON_DetachItemFromObjectCaseSensitive(a->root,
	    "b") : NULL;

	a->body = NULL;
	if (cJSON_IsNull(b)) {
		cJSON_Delete(b);
		return NULL;
	}
	return b;
}

void pgans_free(struct pgans *a)
{
	cJSON_Delete(a->root);
	memset(a, 0, sizeof(*a));
}
