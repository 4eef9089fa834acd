/*
 * Docker's multiplexed stream demuxer: whatever the bytes, fed whole or
 * in pieces of any size, it delivers the same bytes to the same streams
 * and reaches the same verdict, and never delivers more than it was fed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dmux.h"
#include "fuzz.h"

struct out {
	struct buf s[4];
	size_t total;
};

static int collect(void *arg, int stream, const char *d, size_t n)
{
	struct out *o = arg;

	if (stream < 0 || stream > 3 || n == 0)
		__builtin_trap();
	o->total += n;
	buf_append(&o->s[stream], d, n);
	return 0;
}

static int run(const uint8_t *data, size_t size, size_t piece, struct out *o)
{
	struct dmux m;
	int rc = 0;

	for (int i = 0; i < 4; i++)
		buf_init(&o->s[i], 1 << 24);
	o->total = 0;
	dmux_init(&m);
	for (size_t pos = 0; pos < size && rc == 0; pos += piece)
		rc = dmux_feed(&m, (const char *)data + pos,
		    size - pos < piece ? size - pos : piece, collect, o);
	return rc ? rc : dmux_finish(&m);
}

static void out_free(struct out *o)
{
	for (int i = 0; i < 4; i++)
		buf_free(&o->s[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct out whole;
	int want = run(data, size, size ? size : 1, &whole);

	if (whole.total > size)
		__builtin_trap();
	for (size_t piece = 1; piece <= 9; piece += 4) {
		struct out split;
		if (run(data, size, piece, &split) != want)
			__builtin_trap();
		for (int i = 0; i < 4; i++)
			if (split.s[i].len != whole.s[i].len ||
			    memcmp(buf_cstr(&split.s[i]), buf_cstr(&whole.s[i]),
			    whole.s[i].len) != 0)
				__builtin_trap();
		out_free(&split);
	}
	out_free(&whole);
	return 0;
}
