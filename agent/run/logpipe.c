#include "logpipe.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "ev.h"
#include "mask.h"
#include "xalloc.h"

#define BATCH_MAX (512 * 1024)

struct lp_stream {
	struct mask_stream ms;
	struct buf line;	/* masked bytes of the current partial line */
	int64_t partial_since;	/* ms, when line became non-empty */
};

struct logpipe {
	struct ev_loop *loop;
	logpipe_sink sink;
	void *arg;
	struct lp_stream st[LP_NSTREAMS];
	enum logpipe_stream cur;	/* stream being fed to the mask */
	struct buf batch;
	char ts[32];
	struct ev_timer *flush;
	void (*on_line)(void *arg, const char *line, size_t n);
	void *line_arg;
};

static const char *const tags[LP_NSTREAMS] = { "out", "err", "skf" };

static void stamp(struct logpipe *lp)
{
	struct timespec t;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &t);
	gmtime_r(&t.tv_sec, &tm);
	size_t k = strftime(lp->ts, sizeof(lp->ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(lp->ts + k, sizeof(lp->ts) - k, ".%03ldZ", t.tv_nsec / 1000000);
}

static void send_batch(struct logpipe *lp)
{
	if (lp->batch.len) {
		lp->sink(lp->arg, lp->batch.data, lp->batch.len);
		buf_reset(&lp->batch);
	}
}

static void record(struct logpipe *lp, enum logpipe_stream s, const char *d,
    size_t n, int cont)
{
	size_t need = strlen(lp->ts) + 6 + n + 1;

	if (lp->batch.len + need > BATCH_MAX)
		send_batch(lp);
	buf_reserve(&lp->batch, need);
	buf_puts(&lp->batch, lp->ts);
	buf_putc(&lp->batch, ' ');
	buf_puts(&lp->batch, tags[s]);
	if (cont)
		buf_putc(&lp->batch, '+');
	buf_putc(&lp->batch, ' ');
	buf_append(&lp->batch, d, n);
	buf_putc(&lp->batch, '\n');
}

static void flush_partial(struct logpipe *lp, enum logpipe_stream s)
{
	struct lp_stream *st = &lp->st[s];

	if (st->line.len) {
		record(lp, s, st->line.data, st->line.len, 1);
		buf_reset(&st->line);
	}
}

static void line_hook(struct logpipe *lp, enum logpipe_stream s,
    const char *d, size_t n)
{
	if (lp->on_line && s != LP_SKF && n && d[0] == '#')
		lp->on_line(lp->line_arg, d, n);
}

/* Masked bytes of the current stream: cut into records at newlines. */
static void framed(void *arg, const char *d, size_t n)
{
	struct logpipe *lp = arg;
	enum logpipe_stream s = lp->cur;
	struct lp_stream *st = &lp->st[s];

	while (n) {
		const char *nl = memchr(d, '\n', n);
		size_t len = nl ? (size_t)(nl - d) : n;
		size_t room = LOGPIPE_LINE_MAX - st->line.len;
		if (len > room || (len == room && !nl)) {
			/* Line over 64 KiB: cut it, so a huge line cannot stall
			 * the log or blow up memory. */
			buf_append(&st->line, d, room);
			flush_partial(lp, s);
			d += room;
			n -= room;
			continue;
		}
		if (nl) {
			if (st->line.len) {
				buf_append(&st->line, d, len);
				line_hook(lp, s, st->line.data, st->line.len);
				record(lp, s, st->line.data, st->line.len, 0);
				buf_reset(&st->line);
			} else {
				line_hook(lp, s, d, len);
				record(lp, s, d, len, 0);
			}
			d += len + 1;
			n -= len + 1;
		} else {
			if (st->line.len == 0)
				st->partial_since = ev_now(lp->loop);
			buf_append(&st->line, d, len);
			n = 0;
		}
	}
}

static void arm_flush(struct logpipe *lp)
{
	int64_t oldest = -1;

	for (int s = 0; s < LP_NSTREAMS; s++)
		if (lp->st[s].line.len && (oldest < 0 ||
		    lp->st[s].partial_since < oldest))
			oldest = lp->st[s].partial_since;
	if (oldest < 0) {
		ev_timer_stop(lp->flush);
		return;
	}
	if (!ev_timer_active(lp->flush)) {
		int64_t due = oldest + LOGPIPE_FLUSH_MS - ev_now(lp->loop);
		ev_timer_start(lp->flush, due > 0 ? due : 0);
	}
}

static void on_flush(struct ev_timer *t, void *arg)
{
	struct logpipe *lp = arg;
	int64_t now = ev_now(lp->loop);

	(void)t;
	stamp(lp);
	for (int s = 0; s < LP_NSTREAMS; s++)
		if (lp->st[s].line.len &&
		    now - lp->st[s].partial_since >= LOGPIPE_FLUSH_MS)
			flush_partial(lp, (enum logpipe_stream)s);
	send_batch(lp);
	arm_flush(lp);
}

void logpipe_write(struct logpipe *lp, enum logpipe_stream s,
    const char *data, size_t n)
{
	stamp(lp);
	lp->cur = s;
	mask_feed(&lp->st[s].ms, data, n, 0, framed, lp);
	send_batch(lp);
	arm_flush(lp);
}

void logpipe_end(struct logpipe *lp, enum logpipe_stream s)
{
	stamp(lp);
	lp->cur = s;
	mask_feed(&lp->st[s].ms, "", 0, 1, framed, lp);
	flush_partial(lp, s);
	send_batch(lp);
	arm_flush(lp);
}

void logpipe_printf(struct logpipe *lp, const char *fmt, ...)
{
	struct buf b = BUF_INIT(LOGPIPE_LINE_MAX);
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	/* One record per call: newlines inside become spaces. */
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] == '\n' || b.data[i] == '\r')
			b.data[i] = ' ';
	buf_putc(&b, '\n');
	stamp(lp);
	/* Called from a line hook or a mask callback too, in the middle of
	 * a step's write: the rest of that write is still the step's. */
	enum logpipe_stream was = lp->cur;
	lp->cur = LP_SKF;
	mask_feed(&lp->st[LP_SKF].ms, b.data, b.len, 1, framed, lp);
	send_batch(lp);
	lp->cur = was;
	buf_free(&b);
}

struct logpipe *logpipe_new(struct ev_loop *loop, const struct mask *m,
    logpipe_sink sink, void *arg)
{
	struct logpipe *lp = xcalloc(1, sizeof(*lp));

	lp->loop = loop;
	lp->sink = sink;
	lp->arg = arg;
	for (int s = 0; s < LP_NSTREAMS; s++) {
		mask_stream_init(&lp->st[s].ms, m);
		buf_init(&lp->st[s].line, LOGPIPE_LINE_MAX);
	}
	/* Only a step's output adds masks, not skiff's notes about it. */
	mask_stream_no_add(&lp->st[LP_SKF].ms);
	buf_init(&lp->batch, BATCH_MAX + LOGPIPE_LINE_MAX + 64);
	lp->flush = ev_timer_new(loop, on_flush, lp);
	return lp;
}

void logpipe_on_line(struct logpipe *lp,
    void (*fn)(void *arg, const char *line, size_t n), void *arg)
{
	lp->on_line = fn;
	lp->line_arg = arg;
}

void logpipe_free(struct logpipe *lp)
{
	if (lp == NULL)
		return;
	for (int s = 0; s < LP_NSTREAMS; s++) {
		mask_stream_free(&lp->st[s].ms);
		buf_free(&lp->st[s].line);
	}
	buf_free(&lp->batch);
	ev_timer_free(lp->flush);
	free(lp);
}
