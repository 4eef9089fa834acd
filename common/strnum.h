/*
 * Number parsing with bounds (OpenBSD strtonum): the whole string must be
 * a number within [min, max]; on failure *errstr says why ("invalid",
 * "too small", "too large") and the result is untouched.
 */
#ifndef SKIFF_STRNUM_H
#define SKIFF_STRNUM_H

#include <stdint.h>

int strnum_i64(const char *s, int64_t min, int64_t max, int64_t *out,
    const char **errstr);
int strnum_int(const char *s, int min, int max, int *out,
    const char **errstr);
/* "90", "90s", "15m", "2h", "7d" -> seconds. */
int strnum_duration(const char *s, int64_t min, int64_t max, int64_t *out,
    const char **errstr);
/* "512", "64k", "10M", "2G", "1GiB", "512KiB" -> bytes (powers of 1024). */
int strnum_size(const char *s, int64_t min, int64_t max, int64_t *out,
    const char **errstr);
/* "0.5", "2" -> value scaled by 1e9 (Docker's NanoCPUs). */
int strnum_fixed9(const char *s, int64_t min, int64_t max, int64_t *out,
    const char **errstr);

#endif
