/*
 * skiffctl's log record reader (ctl/logstream.c): any bytes, in any
 * pieces, never crash, and the output does not depend on how the input
 * was cut (a follower gets the log in arbitrary chunks). The first byte
 * picks the mode, step filter and cut points.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "logstream.h"

struct out {
	uint64_t n;
	uint32_t h;
};

static void emit(void *arg, const char *p, size_t n)
{
	struct out *o = arg;

	for (size_t i = 0; i < n; i++)
		o->h = o->h * 31 + (unsigned char)p[i];
	o->n += n;
}

static void run(const char *d, size_t n, int mode, int step, size_t stride,
    struct out *o)
{
	struct logstream ls;

	logstream_init(&ls, (enum logstream_mode)mode, step, emit, o);
	for (size_t off = 0; off < n; off += stride)
		logstream_feed(&ls, d + off, n - off < stride ? n - off : stride);
	logstream_finish(&ls);
	logstream_free(&ls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct out whole = { 0, 0 }, cut = { 0, 0 };
	int mode, step;

	if (size < 1)
		return 0;
	mode = data[0] % 3;
	step = (data[0] >> 2) % 4;
	run((const char *)data + 1, size - 1, mode, step, size, &whole);
	run((const char *)data + 1, size - 1, mode, step,
	    1 + (data[0] >> 4), &cut);
	if (whole.n != cut.n || whole.h != cut.h)
		__builtin_trap();
	return 0;
}
