/*
 * The queue's gzip inflation with a cap (queue/gz.c): any bytes, fed
 * whole and in two pieces, never crash, never give the sink more than the
 * cap, and agree: both accept with the same output, or both refuse (for
 * input that is both corrupt and over the cap, which of the two is found
 * first depends on where the input was cut). The first byte picks the cap
 * (up to 60 KiB), the second the split point.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "gz.h"

struct sum {
	uint64_t n;
	uint32_t h;
};

static int sink(void *arg, const void *p, size_t n)
{
	struct sum *s = arg;
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		s->h = s->h * 31 + b[i];
	s->n += n;
	return 0;
}

static int in_two(const uint8_t *d, size_t n, size_t cut, uint64_t cap,
    struct sum *s)
{
	struct gz *g;
	int r;

	if (gz_new(cap, &g) < 0)
		return -ENOMEM;
	r = gz_feed(g, d, cut, sink, s);
	if (r == 0)
		r = gz_feed(g, d + cut, n - cut, sink, s);
	if (r == 0)
		r = gz_finish(g);
	gz_free(g);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sum a = { 0, 0 }, b = { 0, 0 };
	uint64_t cap;
	size_t cut;
	int ra, rb;

	if (size < 1)
		return 0;
	cap = (uint64_t)(data[0] & 0x0f) << 12;
	data++;
	size--;
	cut = size ? (size_t)(data[0]) % (size + 1) : 0;
	ra = gz_inflate_all(data, size, cap, sink, &a);
	rb = in_two(data, size, cut, cap, &b);
	if (a.n > cap || b.n > cap)
		__builtin_trap();
	if ((ra == 0) != (rb == 0) || (ra == 0 && (a.n != b.n || a.h != b.h)))
		__builtin_trap();
	return 0;
}
