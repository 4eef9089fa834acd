#include "reqjson.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apierr.h"
#include "artname.h"
#include "job.h"
#include "jsonx.h"
#include "xalloc.h"

int reqj_utf8_error(const char *s, size_t n, const char *what,
    struct apierr *e)
{
	size_t at = 0;

	(void)jsonx_utf8_valid(s, n, &at);	/* only for the offset */
	apierr_bad(e, "%s is not valid JSON: not UTF-8 at offset %zu (byte "
	    "0x%02x; RFC 8259 section 8.1)", what, at,
	    at < n ? (unsigned char)s[at] : 0);
	e->reason = "bad_json";
	return -1;
}

/* Parses the body as a JSON object; an empty body counts as {} when
 * allowed. */
static cJSON *object_of(const char *s, size_t n, int empty_ok,
    struct apierr *e)
{
	int jerr;
	cJSON *j;

	if (n == 0 && empty_ok)
		return cJSON_CreateObject();
	if (n == 0) {
		apierr_bad(e, "request body is empty; a JSON object is required");
		return NULL;
	}
	j = jsonx_parse(s, n, REQJ_MAX_BODY, REQJ_MAX_DEPTH, &jerr);
	if (j == NULL) {
		if (jerr == JSONX_TOO_BIG)
			apierr_too_large(e, REQJ_MAX_BODY, "JSON body is over %d bytes",
			    REQJ_MAX_BODY);
		else if (jerr == JSONX_TOO_DEEP)
			apierr_bad(e, "JSON body nests deeper than %d", REQJ_MAX_DEPTH);
		else if (jerr == JSONX_DUPKEY)
			apierr_bad(e, "JSON body has a duplicate key");
		else if (jerr == JSONX_UTF8)
			reqj_utf8_error(s, n, "request body", e);
		else
			apierr_bad(e, "request body is not valid JSON");
		if (jerr == JSONX_UTF8 || jerr == JSONX_SYNTAX)
			e->reason = "bad_json";
		return NULL;
	}
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		apierr_bad(e, "request body must be a JSON object");
		return NULL;
	}
	return j;
}

/* An integer field within [min, max]; def when absent (required: 400). */
static int int_field(const cJSON *o, const char *key, int64_t min,
    int64_t max, int required, int64_t def, int64_t *out, struct apierr *e)
{
	int r = jsonx_int(o, key, min, max, out);

	if (r == -ENOENT && !required) {
		*out = def;
		return 0;
	}
	if (r == -ENOENT)
		return apierr_bad(e, "field '%s' is required", key);
	if (r < 0)
		return apierr_bad(e, "field '%s' must be an integer from %lld to "
		    "%lld", key, (long long)min, (long long)max);
	return 0;
}

/* A string field of minlen..maxlen bytes without control characters,
 * copied into out (outsz > maxlen). */
static int str_field(const cJSON *o, const char *key, size_t minlen,
    size_t maxlen, int required, char *out, size_t outsz, struct apierr *e)
{
	const char *v;
	int r = jsonx_string(o, key, maxlen, &v);

	if (r == -ENOENT && !required) {
		out[0] = '\0';
		return 0;
	}
	if (r == -ENOENT)
		return apierr_bad(e, "field '%s' is required", key);
	if (r < 0 || strlen(v) < minlen)
		return apierr_bad(e, "field '%s' must be a string of %zu to %zu "
		    "bytes", key, minlen, maxlen);
	snprintf(out, outsz, "%s", v);
	return 0;
}

static int no_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static int parse_labels(const cJSON *o, struct reqj_register *out,
    struct apierr *e)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "labels"), *it;

	if (a == NULL || cJSON_IsNull(a))
		return 0;
	if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > REQJ_MAX_AGENT_LABELS)
		return apierr_bad(e, "field 'labels' must be an array of at most "
		    "%d labels", REQJ_MAX_AGENT_LABELS);
	cJSON_ArrayForEach(it, a) {
		if (!cJSON_IsString(it) || !job_label_valid(it->valuestring))
			return apierr_bad(e, "each label must match "
			    "[A-Za-z0-9_.:=-]{1,64}");
		out->labels[out->nlabels++] = xstrdup(it->valuestring);
	}
	return 0;
}

int reqj_register(const char *s, size_t n, struct reqj_register *out,
    struct apierr *e)
{
	struct reqj_register r;
	int64_t cap;
	int rc = -1;
	cJSON *o = object_of(s, n, 0, e);

	memset(&r, 0, sizeof(r));
	if (o == NULL)
		return -1;
	if (str_field(o, "name", 1, 128, 1, r.name, sizeof(r.name), e) < 0 ||
	    str_field(o, "version", 0, 64, 0, r.version, sizeof(r.version),
	    e) < 0 ||
	    int_field(o, "capacity", 1, 256, 0, 1, &cap, e) < 0 ||
	    parse_labels(o, &r, e) < 0)
		goto out;
	if (!no_ctl(r.name) || !no_ctl(r.version)) {
		apierr_bad(e, "fields 'name' and 'version' must not hold control "
		    "characters");
		goto out;
	}
	r.capacity = (int)cap;
	*out = r;
	rc = 0;
out:
	if (rc < 0)
		reqj_register_free(&r);
	cJSON_Delete(o);
	return rc;
}

void reqj_register_free(struct reqj_register *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nlabels; i++)
		free(r->labels[i]);
	r->nlabels = 0;
}

int reqj_lease(const char *s, size_t n, struct reqj_lease *out,
    struct apierr *e)
{
	int64_t wait, freeslots;
	int rc = -1;
	cJSON *o = object_of(s, n, 1, e);

	if (o == NULL)
		return -1;
	if (int_field(o, "wait", 0, 60, 0, 30, &wait, e) < 0 ||
	    int_field(o, "free", 0, 256, 0, 1, &freeslots, e) < 0)
		goto out;
	out->wait = (int)wait;
	out->free = (int)freeslots;
	rc = 0;
out:
	cJSON_Delete(o);
	return rc;
}

int reqj_heartbeat(const char *s, size_t n, struct apierr *e)
{
	cJSON *o = object_of(s, n, 1, e);

	if (o == NULL)
		return -1;
	cJSON_Delete(o);
	return 0;
}

static int parse_exit_codes(const cJSON *o, struct reqj_complete *c,
    struct apierr *e)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "exit_codes"), *it;
	int64_t v;

	if (a == NULL || cJSON_IsNull(a))
		return 0;
	if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > REQJ_MAX_EXIT_CODES)
		return apierr_bad(e, "field 'exit_codes' must be an array of at "
		    "most %d integers", REQJ_MAX_EXIT_CODES);
	cJSON_ArrayForEach(it, a) {
		if (!jsonx_is_integer(it, &v) || v < -1 || v > 255)
			return apierr_bad(e, "each exit code must be an integer from "
			    "-1 to 255");
		c->exit_codes[c->nexit++] = v;
	}
	return 0;
}

static int output_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > REQJ_MAX_OUTPUT_NAME || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_") == n;
}

/* "outputs": {"NAME": "value", ...} within the agent's own caps. */
static int parse_outputs(const cJSON *o, struct reqj_complete *c,
    struct apierr *e)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "outputs"), *it;
	size_t n = 0, total = 0;

	if (a == NULL || cJSON_IsNull(a))
		return 0;
	if (!cJSON_IsObject(a))
		return apierr_bad(e, "field 'outputs' must be an object of strings");
	cJSON_ArrayForEach(it, a) {
		size_t vl;

		if (++n > REQJ_MAX_OUTPUTS)
			return apierr_bad(e, "field 'outputs' has more than %d "
			    "entries", REQJ_MAX_OUTPUTS);
		if (it->string == NULL || !output_name_ok(it->string))
			return apierr_bad(e, "an output name must match "
			    "[A-Za-z_][A-Za-z0-9_]{0,63}");
		if (!cJSON_IsString(it) || it->valuestring == NULL)
			return apierr_bad(e, "output '%s' must be a string",
			    it->string);
		vl = strlen(it->valuestring);
		if (vl > REQJ_MAX_OUTPUT_VALUE)
			return apierr_bad(e, "output '%s' is over %d bytes",
			    it->string, REQJ_MAX_OUTPUT_VALUE);
		total += strlen(it->string) + vl;
		if (total > REQJ_MAX_OUTPUTS_TOTAL)
			return apierr_bad(e, "the outputs are over %d bytes in all",
			    REQJ_MAX_OUTPUTS_TOTAL);
	}
	c->outputs = jsonx_print(a);
	return 0;
}

void reqj_complete_clear(struct reqj_complete *c)
{
	if (c == NULL)
		return;
	cJSON_free(c->outputs);
	c->outputs = NULL;
}

static int parse_result(const cJSON *o, struct reqj_complete *c,
    struct apierr *e)
{
	char res[16];

	if (str_field(o, "result", 1, 15, 1, res, sizeof(res), e) < 0)
		return -1;
	if (jstate_parse(res, &c->result) < 0 || !jstate_is_result(c->result))
		return apierr_bad(e, "field 'result' must be one of succeeded, "
		    "failed, canceled, timed_out, rejected");
	return 0;
}

int reqj_complete(const char *s, size_t n, struct reqj_complete *out,
    struct apierr *e)
{
	struct reqj_complete c;
	int rc = -1;
	cJSON *o = object_of(s, n, 0, e);

	memset(&c, 0, sizeof(c));
	if (o == NULL)
		return -1;
	if (parse_result(o, &c, e) < 0 || parse_exit_codes(o, &c, e) < 0 ||
	    int_field(o, "log_length", 0, INT64_C(1) << 53, 1, 0,
	    &c.log_length, e) < 0 ||
	    str_field(o, "reason_code", 1, 64, 0, c.reason_code,
	    sizeof(c.reason_code), e) < 0 ||
	    str_field(o, "reason", 0, REQJ_MAX_TEXT, 0, c.reason,
	    sizeof(c.reason), e) < 0)
		goto out;
	if (c.reason_code[0] && strspn(c.reason_code,
	    "abcdefghijklmnopqrstuvwxyz_") != strlen(c.reason_code)) {
		apierr_bad(e, "field 'reason_code' must match [a-z_]{1,64}");
		goto out;
	}
	if (parse_outputs(o, &c, e) < 0)
		goto out;
	*out = c;
	c.outputs = NULL;
	rc = 0;
out:
	reqj_complete_clear(&c);
	cJSON_Delete(o);
	return rc;
}

int reqj_artifact(const char *s, size_t n, struct reqj_artifact *out,
    struct apierr *e)
{
	struct reqj_artifact a;
	int rc = -1;
	cJSON *o = object_of(s, n, 0, e);

	if (o == NULL)
		return -1;
	if (str_field(o, "name", 1, ARTNAME_MAX, 1, a.name, sizeof(a.name),
	    e) < 0 ||
	    int_field(o, "size", 0, INT64_C(1) << 53, 1, 0, &a.size, e) < 0)
		goto out;
	if (!artname_valid(a.name, strlen(a.name))) {
		apierr_bad(e, "artifact name must be '/'-separated components, "
		    "none empty, '.' or '..', without a leading '/', control "
		    "characters or backslashes");
		goto out;
	}
	*out = a;
	rc = 0;
out:
	cJSON_Delete(o);
	return rc;
}

int reqj_cache(const char *s, size_t n, int restore, struct reqj_cache *out,
    struct apierr *e)
{
	struct reqj_cache c;
	const cJSON *arr, *it;
	int rc = -1;
	cJSON *o = object_of(s, n, 0, e);

	if (o == NULL)
		return -1;
	memset(&c, 0, sizeof(c));
	c.size = -1;
	if (str_field(o, "key", 1, 255, 1, c.key, sizeof(c.key), e) < 0)
		goto out;
	if (!job_cache_key_valid(c.key)) {
		apierr_bad(e, "field 'key' must match [A-Za-z0-9_.:+=@,/-]{1,255}");
		goto out;
	}
	if (!restore) {
		if (int_field(o, "size", 0, INT64_C(1) << 53, 1, 0, &c.size, e) < 0)
			goto out;
		*out = c;
		rc = 0;
		goto out;
	}
	arr = cJSON_GetObjectItemCaseSensitive(o, "restore_keys");
	if (arr && !cJSON_IsNull(arr)) {
		if (!cJSON_IsArray(arr) ||
		    cJSON_GetArraySize(arr) > REQJ_MAX_RESTORE_KEYS) {
			apierr_bad(e, "field 'restore_keys' must be an array of at most "
			    "%d keys", REQJ_MAX_RESTORE_KEYS);
			goto out;
		}
		cJSON_ArrayForEach(it, arr) {
			if (!cJSON_IsString(it) || !job_cache_key_valid(it->valuestring)) {
				apierr_bad(e, "each restore key must match "
				    "[A-Za-z0-9_.:+=@,/-]{1,255}");
				goto out;
			}
			snprintf(c.restore[c.nrestore++], sizeof(c.restore[0]), "%s",
			    it->valuestring);
		}
	}
	*out = c;
	rc = 0;
out:
	cJSON_Delete(o);
	return rc;
}

int reqj_commit(const char *s, size_t n, char out[65], struct apierr *e)
{
	char h[65];
	int rc = -1;
	cJSON *o = object_of(s, n, 0, e);

	if (o == NULL)
		return -1;
	if (str_field(o, "sha256", 64, 64, 1, h, sizeof(h), e) < 0)
		goto out;
	if (strspn(h, "0123456789abcdef") != 64) {
		apierr_bad(e, "field 'sha256' must be 64 lowercase hex digits");
		goto out;
	}
	memcpy(out, h, 65);
	rc = 0;
out:
	cJSON_Delete(o);
	return rc;
}

int reqj_text(const char *s, size_t n, const char *key, struct reqj_text *out,
    struct apierr *e)
{
	struct reqj_text t;
	int rc = -1;
	cJSON *o = object_of(s, n, 1, e);

	if (o == NULL)
		return -1;
	if (str_field(o, key, 0, REQJ_MAX_TEXT, 0, t.text, sizeof(t.text),
	    e) < 0)
		goto out;
	*out = t;
	rc = 0;
out:
	cJSON_Delete(o);
	return rc;
}
