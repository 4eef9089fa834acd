/*
 * The masker's streaming property: the input is split into a secret (the
 * low four bits of the first byte give its length) and a stream; feeding
 * the stream in pieces of several sizes must give exactly what masking it
 * whole gives, and neither the secret nor its hex form may appear in the
 * output, nor its base64 at any alignment (trimmed to the characters
 * that depend on it alone), when those are long enough to be masked.
 * With bit 4 of the first byte, the stream's ##skiff[add-mask]
 * lines (and ##skiff[set-secret] lines) add masks as in the agent: each
 * way of feeding gets a fresh mask (it grows), the lines never show, and
 * no value they added appears after the last of them; ##skiff[set-output]
 * lines are held whole and shown masked.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "mask.h"

struct added {
	struct mask *m;
	char *v[8];
	size_t n;
};

static void collect(void *arg, const char *d, size_t n)
{
	buf_append(arg, d, n);
}

static void add_line(void *arg, const char *v, size_t n)
{
	struct added *a = arg;

	if (v && mask_add_runtime(a->m, v, n) == 0 && a->n < 8)
		a->v[a->n++] = strndup(v, n);
}

static void output_line(void *arg, const struct svcmsg *m)
{
	(void)arg;
	(void)m;
}

static struct mask *make(const char *secret, size_t slen, int runtime,
    struct added *a)
{
	struct mask *m = mask_new();

	mask_add(m, secret, slen);
	a->m = m;
	if (runtime) {
		mask_on_add_line(m, add_line, a);
		mask_on_output_line(m, output_line, a);
	}
	return m;
}

/* The end of the last line that added a mask, or NULL. */
static const char *last_added(const struct buf *out)
{
	const char *last = NULL, *base = buf_cstr(out);
	static const char *const shown[] = { MASK_ADD_SHOWN, MASK_SECRET_SHOWN };

	for (size_t k = 0; k < 2; k++) {
		size_t sl = strlen(shown[k]);
		for (const char *p = base, *q; (q = memmem(p, out->len -
		    (size_t)(p - base), shown[k], sl)); p = q + 1)
			if (last == NULL || q + sl > last)
				last = q + sl;
	}
	return last;
}

static void forget(struct added *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	a->n = 0;
}

/* Whether s (no '*' in it) shows in out outside the lines the masker
 * writes itself (which the secret may be part of: "add-m"). */
static int shows(const struct buf *out, const char *s, size_t n)
{
	static const char *const own[] = { MASK_ADD_SHOWN, MASK_SECRET_SHOWN,
	    MASK_OUTPUT_OVER };
	char *c;
	int r;

	if (n == 0 || memchr(s, '*', n) || out->len == 0)
		return 0;
	c = malloc(out->len);
	if (c == NULL)
		abort();
	memcpy(c, out->data, out->len);
	for (size_t k = 0; k < 3; k++) {
		size_t ol = strlen(own[k]);
		for (char *q = c; (q = memmem(q, out->len - (size_t)(q - c), own[k],
		    ol)); q += ol)
			memset(q, '\n', ol);
	}
	r = memmem(c, out->len, s, n) != NULL;
	free(c);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t slen = (size_t)(data[0] % 16) + 1;
	int runtime = (data[0] >> 4) & 1;
	if (size < 1 + slen)
		return 0;
	const char *secret = (const char *)data + 1;
	const char *in = secret + slen;
	size_t n = size - 1 - slen;
	struct added a = { 0 };
	struct mask *m = make(secret, slen, runtime, &a);

	struct buf whole = BUF_INIT(1 << 24);
	struct mask_stream s;
	mask_stream_init(&s, m);
	mask_feed(&s, in, n, 1, collect, &whole);
	mask_stream_free(&s);

	for (size_t piece = 1; piece <= 7; piece += 3) {
		struct added b = { 0 };
		struct mask *m2 = make(secret, slen, runtime, &b);
		struct buf split = BUF_INIT(1 << 24);
		mask_stream_init(&s, m2);
		for (size_t pos = 0; pos < n; pos += piece)
			mask_feed(&s, in + pos, n - pos < piece ? n - pos : piece, 0,
			    collect, &split);
		mask_feed(&s, "", 0, 1, collect, &split);
		mask_stream_free(&s);
		if (split.len != whole.len ||
		    memcmp(buf_cstr(&split), buf_cstr(&whole), whole.len) != 0)
			__builtin_trap();
		buf_free(&split);
		forget(&b);
		mask_free(m2);
	}
	/* A secret with a '*' can be formed by the replacement and the text
	 * beside it without anything of the secret showing; any other secret
	 * must be gone, and its hex when that is long enough to be masked. */
	char hex[33];
	for (size_t i = 0; i < slen; i++) {
		hex[2 * i] = "0123456789abcdef"[(unsigned char)secret[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[secret[i] & 15];
	}
	if (shows(&whole, secret, slen) ||
	    (2 * slen >= MASK_MIN_FORM && shows(&whole, hex, 2 * slen)))
		__builtin_trap();
	for (int k = 0; k < 6; k++) {
		int variant = k < 3 ? sodium_base64_VARIANT_ORIGINAL :
		    sodium_base64_VARIANT_URLSAFE;
		unsigned char raw[20] = { 0 };
		char enc[sizeof(raw) / 3 * 4 + 8];
		size_t off = (size_t)(k % 3), len = off + slen;
		memcpy(raw + off, secret, slen);
		sodium_bin2base64(enc, sizeof(enc), raw, (len + 2) / 3 * 3, variant);
		size_t lo = (8 * off + 5) / 6, hi = 8 * len / 6;
		if (hi >= lo + MASK_MIN_FORM && shows(&whole, enc + lo, hi - lo))
			__builtin_trap();
	}
	const char *last = last_added(&whole);
	for (size_t i = 0; last && i < a.n; i++) {
		size_t vl = strlen(a.v[i]);
		size_t rest = whole.len - (size_t)(last - buf_cstr(&whole));
		if (!memchr(a.v[i], '*', vl) && rest >= vl &&
		    memmem(last, rest, a.v[i], vl))
			__builtin_trap();
	}
	forget(&a);
	buf_free(&whole);
	mask_free(m);
	return 0;
}
