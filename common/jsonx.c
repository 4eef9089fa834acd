#include "jsonx.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Length of the valid UTF-8 sequence at s[0..n), or 0 (RFC 3629
 * section 4: the second byte's range depends on the first). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;	/* a continuation byte, C0, C1 (overlong), F5-FF */
	if (c == 0xe0)
		lo = 0xa0;	/* overlong below U+0800 */
	else if (c == 0xed)
		hi = 0x9f;	/* U+D800-DFFF, the surrogates */
	else if (c == 0xf0)
		lo = 0x90;	/* overlong below U+10000 */
	else if (c == 0xf4)
		hi = 0x8f;	/* past U+10FFFF */
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

int jsonx_utf8_valid(const char *s, size_t n, size_t *bad_at)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k;

	while (i < n) {
		/* ASCII runs are most of every text. */
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		if ((k = utf8_seq(u + i, n - i)) == 0) {
			if (bad_at)
				*bad_at = i;
			return 0;
		}
		i += k;
	}
	return 1;
}

size_t jsonx_utf8_cut(const char *s, size_t n, size_t max)
{
	size_t i = n < max ? n : max;

	if (i == n)
		return n;
	/* Back off the continuation bytes of a sequence that would be cut,
	 * and its lead byte. */
	while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
		i--;
	return i;
}

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
	/* Strings are copied byte for byte by cJSON: an overlong '/' or a
	 * stray continuation byte would reach names, logs and answers. Its
	 * \u escapes are checked by cJSON itself (a lone surrogate is a
	 * syntax error) and always decode to valid UTF-8. */
	if (!jsonx_utf8_valid(s, n, NULL)) {
		*err = JSONX_UTF8;
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

/* Every byte >= 0x80 in cJSON's output is inside a string (keys too), so
 * an escape can stand for it. */
static char *repair_utf8(char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k, bad = 0;
	char *out, *o;

	while (i < n) {
		k = utf8_seq(u + i, n - i);
		bad += k == 0;
		i += k ? k : 1;
	}
	/* Six bytes for each one replaced. */
	if (bad > (SIZE_MAX - n - 1) / 5 ||
	    (out = cJSON_malloc(n + 5 * bad + 1)) == NULL)
		abort();
	o = out;
	i = 0;
	while (i < n) {
		if ((k = utf8_seq(u + i, n - i)) == 0) {
			memcpy(o, "\\ufffd", 6);
			o += 6;
			i++;
			continue;
		}
		memcpy(o, s + i, k);
		o += k;
		i += k;
	}
	*o = '\0';
	cJSON_free(s);
	return out;
}

char *jsonx_print(const cJSON *item)
{
	char *s = cJSON_PrintUnformatted(item);
	size_t n;

	if (s == NULL)
		abort();
	n = strlen(s);
	return jsonx_utf8_valid(s, n, NULL) ? s : repair_utf8(s, n);
}
