/*
 * cJSON with the guards untrusted input needs: a size cap and a nesting
 * cap checked by a scan before cJSON sees the text (cJSON's own limit is
 * 1000 levels of recursion), strict UTF-8 (RFC 8259 section 8.1: cJSON
 * copies any byte it is given into its strings), refusal of duplicate
 * keys, and typed getters that say which field was wrong.
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
#define JSONX_UTF8     -5

/* Parses exactly n bytes, which must be strict UTF-8 (jsonx_utf8_valid).
 * On failure returns NULL and sets *err. */
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
/*
 * 1 when s[0..n) is strict UTF-8 (RFC 3629): no overlong form, no
 * surrogate (U+D800-DFFF), nothing past U+10FFFF, no truncated sequence,
 * no continuation byte without its lead. Else 0 and *bad_at (when not
 * NULL) is the offset of the first byte at fault.
 */
int jsonx_utf8_valid(const char *s, size_t n, size_t *bad_at);
/* The longest prefix of s[0..n) that is at most max bytes and does not
 * end inside a UTF-8 sequence: where to cut a message short. */
size_t jsonx_utf8_cut(const char *s, size_t n, size_t max);
/*
 * Prints unformatted into a heap string (free with cJSON_free); aborts on
 * allocation failure. The text is always valid UTF-8: a byte of a string
 * that is not part of a valid sequence (a path, a header or a stored
 * value echoed back, a message cut short) is printed as \ufffd, so that
 * no strict client (nor our own jsonx_parse) refuses the whole answer.
 */
char *jsonx_print(const cJSON *item);

#endif
