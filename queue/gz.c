#include "gz.h"

#include <errno.h>
#include <stdlib.h>
#include <zlib.h>

#include "xalloc.h"

#define GZ_CHUNK 16384

struct gz {
	z_stream zs;
	uint64_t cap;
	uint64_t total;
	int ended;
	int failed;
	unsigned char out[GZ_CHUNK];
};

int gz_new(uint64_t cap, struct gz **out)
{
	struct gz *g = xcalloc(1, sizeof(*g));

	/* 16 + MAX_WBITS: gzip wrapper only, no raw deflate or zlib. */
	if (inflateInit2(&g->zs, 16 + MAX_WBITS) != Z_OK) {
		free(g);
		return -ENOMEM;
	}
	g->cap = cap;
	*out = g;
	return 0;
}

void gz_free(struct gz *g)
{
	if (g == NULL)
		return;
	inflateEnd(&g->zs);
	free(g);
}

uint64_t gz_total_out(const struct gz *g)
{
	return g->total;
}

/* Hands the produced bytes to the sink, checking the cap first. */
static int emit(struct gz *g, size_t produced, gz_sink sink, void *arg)
{
	if (produced == 0)
		return 0;
	if (produced > g->cap - g->total)
		return -E2BIG;
	g->total += produced;
	return sink(arg, g->out, produced);
}

static int step(struct gz *g, gz_sink sink, void *arg)
{
	/* Never ask zlib for more than the cap allows plus one byte: the
	 * extra byte is how a stream that goes past the cap is detected
	 * without inflating the rest of it. */
	uint64_t left = g->cap - g->total;
	size_t want = left < GZ_CHUNK ? (size_t)left + 1 : GZ_CHUNK;
	int zr, r;

	g->zs.next_out = g->out;
	g->zs.avail_out = (uInt)want;
	zr = inflate(&g->zs, Z_NO_FLUSH);
	if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
		return -EBADMSG;
	if ((r = emit(g, want - g->zs.avail_out, sink, arg)) < 0)
		return r;
	if (zr == Z_STREAM_END)
		g->ended = 1;
	/* Z_BUF_ERROR: no progress possible, more input needed. */
	return zr == Z_BUF_ERROR ? 1 : 0;
}

static int feed_slice(struct gz *g, const void *in, uInt n, gz_sink sink,
    void *arg)
{
	int r = 0;

	g->zs.next_in = (unsigned char *)(uintptr_t)in;
	g->zs.avail_in = n;
	while (!g->ended) {
		r = step(g, sink, arg);
		if (r < 0)
			break;
		if (r == 1 || (g->zs.avail_in == 0 && g->zs.avail_out != 0)) {
			r = 0;
			break;
		}
	}
	if (r == 0 && g->ended && g->zs.avail_in != 0)
		r = -EBADMSG;	/* bytes after the member */
	return r;
}

int gz_feed(struct gz *g, const void *in, size_t n, gz_sink sink, void *arg)
{
	const unsigned char *p = in;
	int r = 0;

	if (g->failed)
		return -EBADMSG;
	if (n && g->ended)
		return g->failed = 1, -EBADMSG;
	/* zlib counts in uInt: feed huge inputs in slices. */
	while (r == 0 && n > 0) {
		uInt slice = n > (1u << 30) ? (1u << 30) : (uInt)n;
		r = feed_slice(g, p, slice, sink, arg);
		p += slice;
		n -= slice;
	}
	if (r < 0)
		g->failed = 1;
	return r;
}

int gz_finish(struct gz *g)
{
	return g->ended && !g->failed ? 0 : -EBADMSG;
}

int gz_inflate_all(const void *in, size_t n, uint64_t cap, gz_sink sink,
    void *arg)
{
	struct gz *g;
	int r = gz_new(cap, &g);

	if (r < 0)
		return r;
	r = gz_feed(g, in, n, sink, arg);
	if (r == 0)
		r = gz_finish(g);
	gz_free(g);
	return r;
}
