#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

static enum log_level log_threshold = LOGL_INFO;
static enum log_format log_fmt = LOGF_LOGFMT;
static const char *log_prog = "skiff";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_setup(const char *prog, enum log_level level, enum log_format fmt)
{
	log_prog = prog;
	log_threshold = level;
	log_fmt = fmt;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = 0; i <= LOGL_DEBUG; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int log_format_parse(const char *s, enum log_format *out)
{
	if (strcmp(s, "logfmt") == 0)
		*out = LOGF_LOGFMT;
	else if (strcmp(s, "json") == 0)
		*out = LOGF_JSON;
	else
		return -1;
	return 0;
}

const char *log_level_name(enum log_level level)
{
	return level_names[level];
}

int log_enabled(enum log_level level)
{
	return level <= log_threshold;
}

static int needs_quotes(const char *s)
{
	if (*s == '\0')
		return 1;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
			return 1;
	}
	return 0;
}

/* Escapes s into b as a JSON-compatible quoted string. */
static void put_quoted(struct buf *b, const char *s, size_t n)
{
	buf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': buf_puts(b, "\\\""); break;
		case '\\': buf_puts(b, "\\\\"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\r': buf_puts(b, "\\r"); break;
		case '\t': buf_puts(b, "\\t"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				buf_printf(b, "\\u%04x", c);
			else
				buf_putc(b, (char)c);
		}
	}
	buf_putc(b, '"');
}

const char *logq(const char *s)
{
	static _Thread_local char ring[8][512];
	static _Thread_local unsigned slot;
	char *out = ring[slot++ % 8];
	struct buf b = BUF_INIT(4096);

	if (s == NULL)
		s = "";
	if (!needs_quotes(s)) {
		snprintf(out, 512, "%s", s);
		return out;
	}
	put_quoted(&b, s, strnlen(s, 400));
	snprintf(out, 512, "%s", buf_cstr(&b));
	buf_free(&b);
	return out;
}

static void timestamp(char *out, size_t n)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Scans one logfmt token (bare or quoted) starting at *p. */
static const char *scan_token(const char *p, const char **start, size_t *len,
    int *quoted)
{
	*quoted = (*p == '"');
	if (*quoted) {
		const char *q = ++p;
		while (*q && *q != '"')
			q += (*q == '\\' && q[1]) ? 2 : 1;
		*start = p;
		*len = (size_t)(q - p);
		return *q ? q + 1 : q;
	}
	*start = p;
	while (*p && *p != ' ' && *p != '=')
		p++;
	*len = (size_t)(p - *start);
	return p;
}

/* Converts "k=v k2=\"v 2\"" into ,"k":"v","k2":"v 2". */
static void kv_to_json(struct buf *b, const char *kv)
{
	const char *p = kv, *ks, *vs;
	size_t kl, vl;
	int q;

	while (*p) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		p = scan_token(p, &ks, &kl, &q);
		buf_putc(b, ',');
		put_quoted(b, ks, kl);
		buf_putc(b, ':');
		if (*p != '=') {
			buf_puts(b, "true");
			continue;
		}
		p = scan_token(p + 1, &vs, &vl, &q);
		if (q) {
			/* Already escaped JSON-style by put_quoted via logq. */
			buf_putc(b, '"');
			buf_append(b, vs, vl);
			buf_putc(b, '"');
		} else {
			put_quoted(b, vs, vl);
		}
	}
}

void log_vwrite(enum log_level level, const char *msg, const char *kvfmt,
    va_list ap)
{
	char ts[40];
	struct buf kv = BUF_INIT(16384), line = BUF_INIT(32768);

	if (!log_enabled(level))
		return;
	timestamp(ts, sizeof(ts));
	if (kvfmt && *kvfmt)
		buf_vprintf(&kv, kvfmt, ap);
	if (log_fmt == LOGF_JSON) {
		buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"%s\",\"msg\":",
		    ts, level_names[level], log_prog);
		put_quoted(&line, msg, strlen(msg));
		kv_to_json(&line, buf_cstr(&kv));
		buf_puts(&line, "}\n");
	} else {
		buf_printf(&line, "ts=%s level=%s prog=%s msg=", ts,
		    level_names[level], log_prog);
		put_quoted(&line, msg, strlen(msg));
		if (kv.len) {
			buf_putc(&line, ' ');
			buf_append(&line, kv.data, kv.len);
		}
		buf_putc(&line, '\n');
	}
	/* One write per line so that lines from several processes do not mix. */
	(void)!write(STDERR_FILENO, line.data, line.len);
	buf_free(&kv);
	buf_free(&line);
}

void log_write(enum log_level level, const char *msg, const char *kvfmt, ...)
{
	va_list ap;

	va_start(ap, kvfmt);
	log_vwrite(level, msg, kvfmt, ap);
	va_end(ap);
}
