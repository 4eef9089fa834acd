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
		char c = s[i];
		if (in_str) {
			/* A NUL inside a string would silently cut it short in
			 * cJSON's C strings: refuse it as a syntax error. */
			if (c == '\\' && i + 5 < n && memcmp(s + i + 1, "u0000", 5) == 0)
				return -1;
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
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

int jsonx_has_duplicate_keys(const cJSON *item)
{
	const cJSON *a, *b;

	if (item == NULL)
		return 0;
	for (a = item->child; a; a = a->next) {
		if (cJSON_IsObject(item) && a->string) {
			for (b = a->next; b; b = b->next)
				if (b->string && strcmp(a->string, b->string) == 0)
					return 1;
		}
		if (jsonx_has_duplicate_keys(a))
			return 1;
	}
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
