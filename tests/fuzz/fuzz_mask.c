/*
 * The masker's streaming property: the input is split into a secret (first
 * byte gives its length) and a stream; feeding the stream in pieces of
 * several sizes must give exactly what masking it whole gives, and the
 * secret must never appear in the output.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "mask.h"

static void collect(void *arg, const char *d, size_t n)
{
	buf_append(arg, d, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t slen = (size_t)(data[0] % 16) + 1;
	if (size < 1 + slen)
		return 0;
	const char *secret = (const char *)data + 1;
	const char *in = secret + slen;
	size_t n = size - 1 - slen;
	struct mask *m = mask_new();
	mask_add(m, secret, slen);

	struct buf whole = BUF_INIT(1 << 24);
	struct mask_stream s;
	mask_stream_init(&s, m);
	mask_feed(&s, in, n, 1, collect, &whole);
	mask_stream_free(&s);

	for (size_t piece = 1; piece <= 7; piece += 3) {
		struct buf split = BUF_INIT(1 << 24);
		mask_stream_init(&s, m);
		for (size_t pos = 0; pos < n; pos += piece)
			mask_feed(&s, in + pos, n - pos < piece ? n - pos : piece, 0,
			    collect, &split);
		mask_feed(&s, "", 0, 1, collect, &split);
		mask_stream_free(&s);
		if (split.len != whole.len ||
		    memcmp(buf_cstr(&split), buf_cstr(&whole), whole.len) != 0)
			__builtin_trap();
		buf_free(&split);
	}
	/* A secret with a '*' can be formed by the replacement and the text
	 * beside it without anything of the secret showing; any other secret
	 * must be gone. */
	if (!memchr(secret, '*', slen) && whole.len >= slen &&
	    memmem(buf_cstr(&whole), whole.len, secret, slen))
		__builtin_trap();
	buf_free(&whole);
	mask_free(m);
	return 0;
}
