/*
 * Operator-facing logs on stderr, one event a line, in logfmt
 * (ts=… level=… msg="…" key=value …) or JSON.
 *
 *   log_info("lease acquired", "job=%s attempt=%d", id, n);
 *
 * The key/value part is a printf format producing logfmt pairs; a value
 * that may hold spaces, quotes or bytes from a peer goes through logq(),
 * which quotes and escapes it. The JSON format is derived from the logfmt
 * text, so both formats always carry the same fields.
 */
#ifndef SKIFF_LOG_H
#define SKIFF_LOG_H

#include <stdarg.h>

enum log_level { LOGL_ERROR, LOGL_WARN, LOGL_INFO, LOGL_DEBUG };
enum log_format { LOGF_LOGFMT, LOGF_JSON };

void log_setup(const char *prog, enum log_level level, enum log_format fmt);
int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);
const char *log_level_name(enum log_level level);
int log_enabled(enum log_level level);
void log_write(enum log_level level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vwrite(enum log_level level, const char *msg, const char *kvfmt,
    va_list ap) __attribute__((format(printf, 3, 0)));
/* Quoted, escaped form of s for a logfmt value; valid until 8 more calls. */
const char *logq(const char *s);

#define log_error(...) log_write(LOGL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_write(LOGL_WARN, __VA_ARGS__)
#define log_info(...)  log_write(LOGL_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_enabled(LOGL_DEBUG)) log_write(LOGL_DEBUG, __VA_ARGS__); } while (0)

#endif
