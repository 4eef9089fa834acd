/*
 * cJSON with the guards untrusted input needs: a size cap and a nesting
 * cap checked by a scan before cJSON sees the text (cJSON's own limit is
 * 1000 levels of recursion), refusal of duplicate keys, and typed getters
 * that say which field was wrong.
 */
#ifndef SKIFF_JSONX_H
#define SKIFF_JSONX_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#define JSONX_OK        0
#define JSONX_TOO_BIG  -1
#define JSONX_TOO_DEEP -2
#define JSONX_SYNTAX   -3
#define JSONX_DUPKEY   -4

/* Parses exactly n bytes. On failure returns NULL and sets *err. */
cJSON *jsonx_parse(const char *s, size_t n, size_t max_size, int max_depth,
    int *err);
/* Deepest nesting of objects and arrays in the text, ignoring strings;
 * -1 when a string holds an escaped NUL or a raw control character, or
 * a control character other than JSON whitespace is outside strings. */
int jsonx_depth(const char *s, size_t n);
/* 1 if some object below (or at) item has the same key twice. */
int jsonx_has_duplicate_keys(const cJSON *item);

/*
 * Typed field getters: 0 on success, -ENOENT when absent, -EINVAL on a
 * wrong type or a value out of range. Outputs are untouched on failure.
 */
int jsonx_string(const cJSON *obj, const char *key, size_t maxlen,
    const char **out);
int jsonx_int(const cJSON *obj, const char *key, int64_t min, int64_t max,
    int64_t *out);
int jsonx_bool(const cJSON *obj, const char *key, int *out);
/* Exact integer check for a cJSON number (no fraction, within 2^53). */
int jsonx_is_integer(const cJSON *item, int64_t *out);
/* Prints unformatted into a heap string; aborts on allocation failure. */
char *jsonx_print(const cJSON *item);

#endif
