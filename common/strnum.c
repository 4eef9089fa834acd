#include "strnum.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char **errstr, const char *why)
{
	if (errstr)
		*errstr = why;
	return -EINVAL;
}

/* Parses a decimal prefix of s; *end points past it. */
static int parse_prefix(const char *s, int64_t *v, const char **end,
    const char **errstr)
{
	char *e;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return fail(errstr, "invalid");
	errno = 0;
	long long n = strtoll(s, &e, 10);
	if (e == s)
		return fail(errstr, "invalid");
	if (errno == ERANGE)
		return fail(errstr, n < 0 ? "too small" : "too large");
	*v = n;
	*end = e;
	return 0;
}

static int bounded(int64_t v, int64_t min, int64_t max, int64_t *out,
    const char **errstr)
{
	if (v < min)
		return fail(errstr, "too small");
	if (v > max)
		return fail(errstr, "too large");
	*out = v;
	if (errstr)
		*errstr = NULL;
	return 0;
}

int strnum_i64(const char *s, int64_t min, int64_t max, int64_t *out,
    const char **errstr)
{
	int64_t v;
	const char *end;

	if (parse_prefix(s, &v, &end, errstr) < 0)
		return -EINVAL;
	if (*end != '\0')
		return fail(errstr, "invalid");
	return bounded(v, min, max, out, errstr);
}

int strnum_int(const char *s, int min, int max, int *out, const char **errstr)
{
	int64_t v;

	if (strnum_i64(s, min, max, &v, errstr) < 0)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* v * mul, refusing overflow. */
static int scale(int64_t v, int64_t mul, int64_t *out, const char **errstr)
{
	if (v > 0 && v > INT64_MAX / mul)
		return fail(errstr, "too large");
	if (v < 0 && v < INT64_MIN / mul)
		return fail(errstr, "too small");
	*out = v * mul;
	return 0;
}

int strnum_duration(const char *s, int64_t min, int64_t max, int64_t *out,
    const char **errstr)
{
	static const struct { const char *suffix; int64_t mul; } units[] = {
		{ "", 1 }, { "s", 1 }, { "m", 60 }, { "h", 3600 },
		{ "d", 86400 },
	};
	int64_t v, r;
	const char *end;

	if (parse_prefix(s, &v, &end, errstr) < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (scale(v, units[i].mul, &r, errstr) < 0)
			return -EINVAL;
		return bounded(r, min, max, out, errstr);
	}
	return fail(errstr, "invalid");
}

int strnum_size(const char *s, int64_t min, int64_t max, int64_t *out,
    const char **errstr)
{
	static const struct { const char *suffix; int64_t mul; } units[] = {
		{ "", 1 }, { "b", 1 }, { "k", 1024 }, { "kib", 1024 },
		{ "kb", 1024 }, { "m", 1 << 20 }, { "mib", 1 << 20 },
		{ "mb", 1 << 20 }, { "g", 1 << 30 }, { "gib", 1 << 30 },
		{ "gb", 1 << 30 }, { "t", 1LL << 40 }, { "tib", 1LL << 40 },
		{ "tb", 1LL << 40 },
	};
	int64_t v, r;
	const char *end;

	if (parse_prefix(s, &v, &end, errstr) < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].suffix) != 0)
			continue;
		if (scale(v, units[i].mul, &r, errstr) < 0)
			return -EINVAL;
		return bounded(r, min, max, out, errstr);
	}
	return fail(errstr, "invalid");
}

int strnum_fixed9(const char *s, int64_t min, int64_t max, int64_t *out,
    const char **errstr)
{
	int64_t whole, frac = 0, r;
	const char *end;

	if (s == NULL || *s == '-' || *s == '+')
		return fail(errstr, "invalid");
	if (parse_prefix(s, &whole, &end, errstr) < 0)
		return -EINVAL;
	if (*end == '.') {
		int digits = 0;
		for (end++; *end >= '0' && *end <= '9'; end++) {
			if (++digits > 9)
				return fail(errstr, "invalid");
			frac = frac * 10 + (*end - '0');
		}
		if (digits == 0)
			return fail(errstr, "invalid");
		for (; digits < 9; digits++)
			frac *= 10;
	}
	if (*end != '\0')
		return fail(errstr, "invalid");
	if (scale(whole, 1000000000, &r, errstr) < 0 || r > INT64_MAX - frac)
		return fail(errstr, "too large");
	return bounded(r + frac, min, max, out, errstr);
}
