#include "mask.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "xalloc.h"

struct pattern {
	char *s;
	size_t len;
};

struct mask {
	struct pattern *p;	/* sorted longest first */
	size_t n;
	size_t maxlen;
	unsigned char first[256];	/* bytes that begin some pattern */
};

struct mask *mask_new(void)
{
	return xcalloc(1, sizeof(struct mask));
}

static int cmp_len_desc(const void *a, const void *b)
{
	const struct pattern *x = a, *y = b;

	return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

static void add_pattern(struct mask *m, const char *s, size_t len)
{
	if (len == 0 || len > MASK_MAX_SECRET * 2)
		return;
	for (size_t i = 0; i < m->n; i++)
		if (m->p[i].len == len && memcmp(m->p[i].s, s, len) == 0)
			return;
	m->p = xreallocarray(m->p, m->n + 1, sizeof(*m->p));
	m->p[m->n].s = xmemdup(s, len);
	m->p[m->n].len = len;
	m->n++;
	m->first[(unsigned char)s[0]] = 1;
	if (len > m->maxlen)
		m->maxlen = len;
	qsort(m->p, m->n, sizeof(*m->p), cmp_len_desc);
}

/* The value as it would appear inside a JSON string. */
static void add_json_escaped(struct mask *m, const char *v, size_t n)
{
	struct buf b = BUF_INIT(MASK_MAX_SECRET * 6);
	int changed = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '"' || c == '\\') {
			buf_putc(&b, '\\');
			buf_putc(&b, (char)c);
			changed = 1;
		} else if (c == '\n') {
			buf_puts(&b, "\\n");
			changed = 1;
		} else if (c < 0x20) {
			buf_printf(&b, "\\u%04x", c);
			changed = 1;
		} else {
			buf_putc(&b, (char)c);
		}
	}
	if (changed)
		add_pattern(m, b.data, b.len);
	buf_free(&b);
}

void mask_add(struct mask *m, const char *v, size_t n)
{
	char *e;

	if (n == 0 || n > MASK_MAX_SECRET)
		return;
	add_pattern(m, v, n);
	/* Short derived forms would mask ordinary words; the raw value is
	 * masked whatever its length. */
	if (n < 4)
		return;
	if (memchr(v, '\n', n)) {
		for (const char *p = v, *end = v + n; p < end; ) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
			size_t l = len && p[len - 1] == '\r' ? len - 1 : len;
			if (l >= 4)
				add_pattern(m, p, l);
			p += len + 1;
		}
	}
	e = b64std_encode(v, n);
	size_t el = strlen(e);
	while (el && e[el - 1] == '=')
		el--;
	add_pattern(m, e, el);
	free(e);
	e = b64url_encode(v, n);
	add_pattern(m, e, strlen(e));
	free(e);
	add_json_escaped(m, v, n);
}

size_t mask_count(const struct mask *m)
{
	return m ? m->n : 0;
}

void mask_free(struct mask *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++) {
		sodium_memzero(m->p[i].s, m->p[i].len);
		free(m->p[i].s);
	}
	free(m->p);
	free(m);
}

void mask_stream_init(struct mask_stream *s, const struct mask *m)
{
	s->m = m;
	buf_init(&s->hold, MASK_MAX_SECRET * 6 + 16);
	buf_init(&s->work, (size_t)1 << 30);
}

size_t mask_held(const struct mask_stream *s)
{
	return s->hold.len;
}

void mask_stream_free(struct mask_stream *s)
{
	if (s->hold.data)
		sodium_memzero(s->hold.data, s->hold.cap);
	buf_free(&s->hold);
	if (s->work.data)
		sodium_memzero(s->work.data, s->work.cap);
	buf_free(&s->work);
}

/*
 * Looks for a pattern at buf[i]. Returns its length on a full match, 0
 * when none can start here, or -1 when a pattern could start here but the
 * data ends first (then the caller must wait for more). Longest patterns
 * are tried first, and a longer one still possible wins over a shorter
 * full match, so that part of a long secret never shows.
 */
static long match_at(const struct mask *m, const char *buf, size_t i,
    size_t total, int final)
{
	size_t avail = total - i;

	for (size_t k = 0; k < m->n; k++) {
		const struct pattern *p = &m->p[k];
		if (p->s[0] != buf[i])
			continue;
		if (p->len <= avail) {
			if (memcmp(buf + i, p->s, p->len) == 0)
				return (long)p->len;
		} else if (!final && memcmp(buf + i, p->s, avail) == 0) {
			return -1;
		}
	}
	return 0;
}

void mask_feed(struct mask_stream *s, const char *data, size_t n, int final,
    mask_out_fn out, void *arg)
{
	const struct mask *m = s->m;
	const char *buf;
	size_t total, i = 0, emitted = 0;

	if (m == NULL || m->n == 0) {
		if (n)
			out(arg, data, n);
		return;
	}
	if (s->hold.len) {
		buf_reset(&s->work);
		buf_append(&s->work, s->hold.data, s->hold.len);
		buf_append(&s->work, data, n);
		buf_reset(&s->hold);
		buf = s->work.data;
		total = s->work.len;
	} else {
		buf = data;
		total = n;
	}
	while (i < total) {
		if (!m->first[(unsigned char)buf[i]]) {
			i++;
			continue;
		}
		long len = match_at(m, buf, i, total, final);
		if (len > 0) {
			if (i > emitted)
				out(arg, buf + emitted, i - emitted);
			out(arg, MASK_REPLACEMENT, sizeof(MASK_REPLACEMENT) - 1);
			i += (size_t)len;
			emitted = i;
		} else if (len < 0) {
			buf_append(&s->hold, buf + i, total - i);
			total = i;
			break;
		} else {
			i++;
		}
	}
	if (total > emitted)
		out(arg, buf + emitted, total - emitted);
}

static void to_buf(void *arg, const char *d, size_t n)
{
	buf_append(arg, d, n);
}

char *mask_string(const struct mask *m, const char *str)
{
	struct mask_stream s;
	struct buf b = BUF_INIT((size_t)1 << 30);

	mask_stream_init(&s, m);
	mask_feed(&s, str, strlen(str), 1, to_buf, &b);
	mask_stream_free(&s);
	return buf_steal(&b, NULL);
}
