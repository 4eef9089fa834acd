#include "apierr.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void fill(struct apierr *e, int status, const char *code,
    const char *fmt, va_list ap)
{
	memset(e, 0, sizeof(*e));
	e->status = status;
	e->code = code;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

int apierr_set(struct apierr *e, int status, const char *code,
    const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	fill(e, status, code, fmt, ap);
	va_end(ap);
	return -1;
}

int apierr_offset(struct apierr *e, int64_t length, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	fill(e, 409, "offset_mismatch", fmt, ap);
	va_end(ap);
	e->has_length = 1;
	e->length = length;
	return -1;
}

int apierr_too_large(struct apierr *e, int64_t limit, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	fill(e, 413, "too_large", fmt, ap);
	va_end(ap);
	e->has_limit = 1;
	e->limit = limit;
	return -1;
}
