#include "logstream.h"

#include <errno.h>
#include <string.h>

void logstream_init(struct logstream *ls, enum logstream_mode mode,
    int step, logstream_emit emit, void *arg)
{
	memset(ls, 0, sizeof(*ls));
	ls->mode = mode;
	ls->step = step;
	ls->emit = emit;
	ls->arg = arg;
	buf_init(&ls->line, LOGSTREAM_MAX_RECORD);
}

void logstream_free(struct logstream *ls)
{
	buf_free(&ls->line);
}

/* "step N/…" at the start of skf data: N, else 0. */
static int step_of(const char *d, size_t n)
{
	int v = 0;
	size_t i = 5;

	if (n < 7 || memcmp(d, "step ", 5) != 0)
		return 0;
	for (; i < n && d[i] >= '0' && d[i] <= '9' && v < 100000; i++)
		v = v * 10 + (d[i] - '0');
	return i > 5 && i < n && d[i] == '/' ? v : 0;
}

struct record {
	const char *tag, *data;
	size_t taglen, datalen;
	int cont;		/* trailing '+' */
};

/* Splits one record (without its LF); 0 when it is of the form. */
static int split(const char *p, size_t n, struct record *r)
{
	const char *sp1 = memchr(p, ' ', n), *sp2;

	if (sp1 == NULL || sp1 == p)
		return -1;
	r->tag = sp1 + 1;
	sp2 = memchr(r->tag, ' ', n - (size_t)(r->tag - p));
	r->taglen = sp2 ? (size_t)(sp2 - r->tag) : n - (size_t)(r->tag - p);
	r->data = sp2 ? sp2 + 1 : p + n;
	r->datalen = (size_t)(p + n - r->data);
	r->cont = r->taglen > 0 && r->tag[r->taglen - 1] == '+';
	if (r->cont)
		r->taglen--;
	if (r->taglen != 3 || (memcmp(r->tag, "out", 3) != 0 &&
	    memcmp(r->tag, "err", 3) != 0 && memcmp(r->tag, "skf", 3) != 0))
		return -1;
	return 0;
}

static void record(struct logstream *ls, const char *p, size_t n, int has_lf)
{
	struct record r;
	int s;

	if (split(p, n, &r) < 0) {
		ls->malformed++;
		return;
	}
	if (memcmp(r.tag, "skf", 3) == 0 && (s = step_of(r.data, r.datalen)) > 0)
		ls->cur_step = s;
	if (ls->step && ls->cur_step != ls->step)
		return;
	if (ls->mode == LS_RECORDS) {
		ls->emit(ls->arg, p, n);
		if (has_lf)
			ls->emit(ls->arg, "\n", 1);
		return;
	}
	if (memcmp(r.tag, ls->mode == LS_OUT ? "out" : "err", 3) != 0)
		return;
	if (r.datalen)
		ls->emit(ls->arg, r.data, r.datalen);
	if (!r.cont)
		ls->emit(ls->arg, "\n", 1);
}

int logstream_feed(struct logstream *ls, const char *p, size_t n)
{
	int rc = 0;

	while (n > 0) {
		const char *lf = memchr(p, '\n', n);
		size_t k = lf ? (size_t)(lf - p) : n;

		if (!ls->skipping && buf_append(&ls->line, p, k) < 0) {
			/* Longer than any record can be: drop it up to its LF. */
			rc = -E2BIG;
			ls->malformed++;
			ls->skipping = 1;
			buf_reset(&ls->line);
		}
		if (lf) {
			if (!ls->skipping)
				record(ls, buf_cstr(&ls->line), ls->line.len, 1);
			ls->skipping = 0;
			buf_reset(&ls->line);
		}
		p += k + (lf != NULL);
		n -= k + (lf != NULL);
	}
	return rc;
}

void logstream_finish(struct logstream *ls)
{
	if (ls->line.len && !ls->skipping)
		record(ls, buf_cstr(&ls->line), ls->line.len, 0);
	ls->skipping = 0;
	buf_reset(&ls->line);
}
