#include "jsonx.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

int jsonx_depth(const char *s, size_t n)
{
	int depth = 0, max = 0, in_str = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (in_str) {
			/* A NUL inside a string would silently cut it short in
			 * cJSON's C strings: refuse it as a syntax error. So are
			 * raw control characters (RFC 8259 section 7), which
			 * cJSON would copy, raw NUL included. */
			if (c == '\\' && i + 5 < n && memcmp(s + i + 1, "u0000", 5) == 0)
				return -1;
			if (c < 0x20)
				return -1;
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		/* cJSON skips every byte up to 0x20 as whitespace, NUL
		 * included; JSON allows only these four. */
		if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return -1;
		if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				max = depth;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return max;
}

cJSON *jsonx_parse(const char *s, size_t n, size_t max_size, int max_depth,
    int *err)
{
	if (n > max_size) {
		*err = JSONX_TOO_BIG;
		return NULL;
	}
	int depth = jsonx_depth(s, n);
	if (depth < 0) {
		*err = JSONX_SYNTAX;
		return NULL;
	}
	if (depth > max_depth) {
		*err = JSONX_TOO_DEEP;
		return NULL;
	}
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
	if (j == NULL) {
		*err = JSONX_SYNTAX;
		return NULL;
	}
	/* Only whitespace may follow the value. */
	for (; end && end < s + n; end++) {
		if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
			cJSON_Delete(j);
			*err = JSONX_SYNTAX;
			return NULL;
		}
	}
	if (jsonx_has_duplicate_keys(j)) {
		cJSON_Delete(j);
		*err = JSONX_DUPKEY;
		return NULL;
	}
	*err = JSONX_OK;
	return j;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorting the keys keeps an object of many thousands of members (a 256 KiB
 * payload holds about 20,000) from costing a quadratic number of compares. */
static int object_has_duplicates(const cJSON *obj)
{
	const cJSON *a, *b;
	size_t n = 0, i = 0;
	int dup = 0;

	for (a = obj->child; a; a = a->next)
		n += a->string != NULL;
	if (n <= 16) {
		for (a = obj->child; a; a = a->next)
			for (b = a->next; a->string && b; b = b->next)
				if (b->string && strcmp(a->string, b->string) == 0)
					return 1;
		return 0;
	}
	const char **keys = xreallocarray(NULL, n, sizeof(*keys));
	for (a = obj->child; a; a = a->next)
		if (a->string)
			keys[i++] = a->string;
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (i = 1; i < n && !dup; i++)
		dup = strcmp(keys[i - 1], keys[i]) == 0;
	free(keys);
	return dup;
}

int jsonx_has_duplicate_keys(const cJSON *item)
{
	const cJSON *a;

	if (item == NULL)
		return 0;
	if (cJSON_IsObject(item) && object_has_duplicates(item))
		return 1;
	for (a = item->child; a; a = a->next)
		if (jsonx_has_duplicate_keys(a))
			return 1;
	return 0;
}

int jsonx_string(const cJSON *obj, const char *key, size_t maxlen,
    const char **out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (it == NULL || cJSON_IsNull(it))
		return -ENOENT;
	if (!cJSON_IsString(it) || it->valuestring == NULL)
		return -EINVAL;
	if (strlen(it->valuestring) > maxlen)
		return -EINVAL;
	*out = it->valuestring;
	return 0;
}

int jsonx_is_integer(const cJSON *item, int64_t *out)
{
	if (!cJSON_IsNumber(item))
		return 0;
	double d = item->valuedouble;
	if (!isfinite(d) || d != floor(d) || d > 9007199254740992.0 ||
	    d < -9007199254740992.0)
		return 0;
	*out = (int64_t)d;
	return 1;
}

int jsonx_int(const cJSON *obj, const char *key, int64_t min, int64_t max,
    int64_t *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	int64_t v;

	if (it == NULL || cJSON_IsNull(it))
		return -ENOENT;
	if (!jsonx_is_integer(it, &v) || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int jsonx_bool(const cJSON *obj, const char *key, int *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (it == NULL || cJSON_IsNull(it))
		return -ENOENT;
	if (!cJSON_IsBool(it))
		return -EINVAL;
	*out = cJSON_IsTrue(it);
	return 0;
}

char *jsonx_print(const cJSON *item)
{
	char *s = cJSON_PrintUnformatted(item);
	if (s == NULL)
		abort();
	return s;
}
