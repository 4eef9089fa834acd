/*
 * JWS compact verification (docs/protocol.md sections 3.1, 3.2, 11): one
 * test per rejection path at least, each asserting its reason code.
 */
#include "testkit.h"

#include <errno.h>

struct fx {
	struct jwk a;		/* trusted */
	struct jwk b;		/* not trusted */
	struct jwks set;
	struct buf payload;
	struct err e;
};

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	tk_ed25519(&f->a, 1, "key-a");
	tk_ed25519(&f->b, 2, "key-b");
	tk_jwks(&f->set, &f->a, 1);
	buf_init(&f->payload, JWS_MAX_COMPACT);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	jwks_free(&f->set);
	buf_free(&f->payload);
	free(f);
	return 0;
}

static int verify(struct fx *f, const char *jws)
{
	buf_reset(&f->payload);
	return jws_verify(jws, strlen(jws), &f->set, &f->payload, NULL, &f->e);
}

#define PAYLOAD "{\"hello\":\"world\"}"

static void test_valid(void **state)
{
	struct fx *f = *state;
	char *jws = NULL;
	const struct jwk *key = NULL;

	assert_int_equal(jws_sign(&f->a, PAYLOAD, strlen(PAYLOAD), &jws), 0);
	assert_ok(jws_verify(jws, strlen(jws), &f->set, &f->payload, &key,
	    &f->e), &f->e);
	assert_string_equal(buf_cstr(&f->payload), PAYLOAD);
	assert_int_equal(f->payload.len, strlen(PAYLOAD));
	assert_ptr_equal(key, &f->set.keys[0]);
	/* The payload is appended after what the buffer held. */
	buf_reset(&f->payload);
	buf_puts(&f->payload, "xx");
	assert_ok(jws_verify(jws, strlen(jws), &f->set, &f->payload, NULL,
	    &f->e), &f->e);
	assert_string_equal(buf_cstr(&f->payload), "xx" PAYLOAD);
	/* n bytes exactly: what follows is not read. */
	char *longer = xasprintf("%s.trailing", jws);
	buf_reset(&f->payload);
	assert_ok(jws_verify(longer, strlen(jws), &f->set, &f->payload, NULL,
	    &f->e), &f->e);
	free(longer);
	free(jws);
	/* Hand-made with the same header as jws_sign: same result. */
	jws = tk_sign(&f->a, PAYLOAD);
	assert_ok(verify(f, jws), &f->e);
	free(jws);
}

/* A key set with several keys: the kid picks the key. */
static void test_kid_selects_key(void **state)
{
	struct fx *f = *state;
	struct jwk keys[2] = { f->a, f->b };
	const struct jwk *key = NULL;

	jwks_free(&f->set);
	tk_jwks(&f->set, keys, 2);
	char *jws = tk_sign(&f->b, PAYLOAD);
	assert_ok(jws_verify(jws, strlen(jws), &f->set, &f->payload, &key,
	    &f->e), &f->e);
	assert_string_equal(key->kid, "key-b");
	free(jws);
}

static void test_too_large(void **state)
{
	struct fx *f = *state;
	size_t n = JWS_MAX_COMPACT + 1;
	char *big = xmalloc(n + 1);

	memset(big, 'A', n);
	big[8] = '.';
	big[16] = '.';
	big[n] = '\0';
	assert_reason(jws_verify(big, n, &f->set, &f->payload, NULL, &f->e),
	    &f->e, "too_large");
	/* At the cap, the size is fine and the next check speaks. */
	assert_reason(jws_verify(big, n - 1, &f->set, &f->payload, NULL, &f->e),
	    &f->e, "bad_header");
	free(big);
}

static void test_malformed_segments(void **state)
{
	static const char *const bad[] = {
		"", ".", "..", "...", "abc", "abc.def", "abc.def.ghi.jkl",
		"abc.def.ghi.", ".abc.def", "abc..def", "abc.def.", "a.b.c.d.e",
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_reason(verify(f, bad[i]), &f->e, "malformed");
	/* A real JWS with a segment taken away or added. */
	char *jws = tk_sign(&f->a, PAYLOAD);
	char *two = xstrndup(jws, (size_t)(strrchr(jws, '.') - jws));
	char *four = xasprintf("%s.AAAA", jws);
	assert_reason(verify(f, two), &f->e, "malformed");
	assert_reason(verify(f, four), &f->e, "malformed");
	free(two);
	free(four);
	free(jws);
}

/* Replaces segment i of a signed JWS with text. */
static char *with_segment(const char *jws, int i, const char *text)
{
	const char *d1 = strchr(jws, '.'), *d2 = strchr(d1 + 1, '.');
	char *h = xstrndup(jws, (size_t)(d1 - jws));
	char *p = xstrndup(d1 + 1, (size_t)(d2 - d1 - 1));
	char *s = xstrdup(d2 + 1);
	char *out = tk_join(i == 0 ? text : h, i == 1 ? text : p,
	    i == 2 ? text : s);

	free(h);
	free(p);
	free(s);
	return out;
}

/* Segment i of jws with one character changed. */
static char *with_char(const char *jws, int i, size_t at, char c)
{
	const char *seg = jws;

	for (int k = 0; k < i; k++)
		seg = strchr(seg, '.') + 1;
	char *out = xstrdup(jws);
	out[(size_t)(seg - jws) + at] = c;
	return out;
}

static void test_bad_base64_chars(void **state)
{
	struct fx *f = *state;
	char *jws = tk_sign(&f->a, PAYLOAD);
	static const char bad[] = { '+', '/', '=', ' ', '\n', '\t', '!', '\x80',
		'\xff', '\0' };

	for (int seg = 0; seg < 3; seg++) {
		for (size_t k = 0; k < sizeof(bad); k++) {
			char *t = with_char(jws, seg, 1, bad[k]);
			/* A NUL shortens the string: pass the full length. */
			buf_reset(&f->payload);
			assert_reason(jws_verify(t, strlen(jws), &f->set,
			    &f->payload, NULL, &f->e), &f->e, "bad_base64");
			free(t);
		}
	}
	free(jws);
}

static void test_bad_base64_padding(void **state)
{
	struct fx *f = *state;
	char *jws = tk_sign(&f->a, PAYLOAD);
	/* The 64-byte signature is 86 characters; padded it is 88. */
	const char *sig = strrchr(jws, '.') + 1;
	assert_int_equal(strlen(sig), 86);
	char *padded_sig = xasprintf("%s==", sig);
	char *t = with_segment(jws, 2, padded_sig);

	assert_reason(verify(f, t), &f->e, "bad_base64");
	free(t);
	free(padded_sig);
	/* A header of {"alg":"EdDSA","kid":"key-a"} padded. */
	char *h = tk_b64("{\"alg\":\"EdDSA\",\"kid\":\"key-a\"}", 29);
	char *hp = xasprintf("%s%s", h, strlen(h) % 4 == 2 ? "==" : "=");
	t = with_segment(jws, 0, hp);
	assert_reason(verify(f, t), &f->e, "bad_base64");
	free(t);
	free(h);
	free(hp);
	/* Standard base64 of a payload that needs '+' or '/'. */
	t = with_segment(jws, 1, "a+b/");
	assert_reason(verify(f, t), &f->e, "bad_base64");
	free(t);
	/* A length of 4k+1 can be no encoding at all. */
	t = with_segment(jws, 1, "AAAAA");
	assert_reason(verify(f, t), &f->e, "bad_base64");
	free(t);
	free(jws);
}

/*
 * The last character of a segment may carry bits past the last byte; a
 * decoder that ignores them gives one value two spellings. Tried on each
 * segment: each must be canonical.
 */
static void test_bad_base64_trailing_bits(void **state)
{
	struct fx *f = *state;
	char *jws = tk_sign(&f->a, PAYLOAD);
	const char *d1 = strchr(jws, '.'), *d2 = strchr(d1 + 1, '.');
	size_t len[3] = { (size_t)(d1 - jws), (size_t)(d2 - d1 - 1),
		strlen(d2 + 1) };

	for (int seg = 0; seg < 3; seg++) {
		if (len[seg] % 4 == 0)
			continue;	/* no spare bits to set */
		const char *s = seg == 0 ? jws : seg == 1 ? d1 + 1 : d2 + 1;
		char last = s[len[seg] - 1];
		/* The next character of the alphabet sets a spare bit. */
		char next = last == 'Z' ? 'a' : last == 'z' ? '0' :
		    last == '9' ? '-' : last == '-' ? '_' : (char)(last + 1);
		char *t = with_char(jws, seg, len[seg] - 1, next);
		assert_reason(verify(f, t), &f->e, "bad_base64");
		free(t);
	}
	free(jws);
}

static char *signed_with_header(struct fx *f, const char *header)
{
	return tk_sign_raw(&f->a, header, PAYLOAD, strlen(PAYLOAD));
}

static void test_alg_not_allowed(void **state)
{
	static const char *const headers[] = {
		"{\"alg\":\"none\",\"kid\":\"key-a\"}",
		"{\"alg\":\"HS256\",\"kid\":\"key-a\"}",
		"{\"alg\":\"ES256\",\"kid\":\"key-a\"}",
		"{\"alg\":\"RS256\",\"kid\":\"key-a\"}",
		"{\"alg\":\"Ed25519\",\"kid\":\"key-a\"}",
		"{\"alg\":\"eddsa\",\"kid\":\"key-a\"}",
		"{\"alg\":\"EDDSA\",\"kid\":\"key-a\"}",
		"{\"alg\":\"EdDSA \",\"kid\":\"key-a\"}",
		"{\"alg\":\"\",\"kid\":\"key-a\"}",
		"{\"alg\":null,\"kid\":\"key-a\"}",
		"{\"alg\":[\"EdDSA\"],\"kid\":\"key-a\"}",
		"{\"alg\":1,\"kid\":\"key-a\"}",
		"{\"kid\":\"key-a\"}",
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *jws = signed_with_header(f, headers[i]);
		assert_reason(verify(f, jws), &f->e, "alg_not_allowed");
		free(jws);
	}
}

/* alg none as attackers send it: an empty (or any) signature, any key. */
static void test_alg_none_unsigned(void **state)
{
	struct fx *f = *state;
	const char *hdr = "{\"alg\":\"none\",\"kid\":\"key-a\"}";
	char *h = tk_b64(hdr, strlen(hdr));
	char *p = tk_b64(PAYLOAD, strlen(PAYLOAD));
	char *jws = xasprintf("%s.%s.", h, p);

	assert_reason(verify(f, jws), &f->e, "malformed");
	free(jws);
	jws = xasprintf("%s.%s.AAAA", h, p);
	assert_reason(verify(f, jws), &f->e, "alg_not_allowed");
	free(jws);
	free(h);
	free(p);
}

/* HS256 with the public key as the HMAC secret: the classic confusion. */
static void test_alg_hs256_with_public_key(void **state)
{
	struct fx *f = *state;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	const char *hdr = "{\"alg\":\"HS256\",\"kid\":\"key-a\"}";
	char *h = tk_b64(hdr, strlen(hdr));
	char *p = tk_b64(PAYLOAD, strlen(PAYLOAD));
	char *input = xasprintf("%s.%s", h, p);
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, f->a.pub, 32);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)input,
	    strlen(input));
	crypto_auth_hmacsha256_final(&st, mac);
	char *s = tk_b64(mac, sizeof(mac));
	char *jws = tk_join(h, p, s);
	assert_reason(verify(f, jws), &f->e, "alg_not_allowed");
	free(jws);
	free(s);
	free(input);
	free(h);
	free(p);
}

static void test_bad_header(void **state)
{
	static const char *const headers[] = {
		/* not a JSON object */
		"[\"EdDSA\"]", "\"EdDSA\"", "null", "{", "{\"alg\":\"EdDSA\",}",
		"{\"alg\":\"EdDSA\",\"kid\":\"key-a\"} x",
		/* duplicate members: which alg would count? */
		"{\"alg\":\"EdDSA\",\"kid\":\"key-a\",\"alg\":\"none\"}",
		"{\"alg\":\"EdDSA\",\"kid\":\"key-a\",\"kid\":\"key-b\"}",
		/* nested too deep for a header */
		"{\"alg\":\"EdDSA\",\"kid\":\"key-a\",\"x\":{\"y\":{}}}",
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *jws = signed_with_header(f, headers[i]);
		assert_reason(verify(f, jws), &f->e, "bad_header");
		free(jws);
	}
}

static void test_missing_kid(void **state)
{
	static const char *const headers[] = {
		"{\"alg\":\"EdDSA\"}",
		"{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}",
		"{\"alg\":\"EdDSA\",\"kid\":null}",
		"{\"alg\":\"EdDSA\",\"kid\":1}",
		"{\"alg\":\"EdDSA\",\"kid\":[\"key-a\"]}",
		"{\"alg\":\"EdDSA\",\"KID\":\"key-a\"}",
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *jws = signed_with_header(f, headers[i]);
		assert_reason(verify(f, jws), &f->e, "bad_header");
		free(jws);
	}
	/* A kid over 128 bytes. */
	char kid[200];
	memset(kid, 'k', sizeof(kid) - 1);
	kid[sizeof(kid) - 1] = '\0';
	char *h = xasprintf("{\"alg\":\"EdDSA\",\"kid\":\"%s\"}", kid);
	char *jws = signed_with_header(f, h);
	assert_reason(verify(f, jws), &f->e, "bad_header");
	free(jws);
	free(h);
}

static void test_crit(void **state)
{
	static const char *const headers[] = {
		"{\"alg\":\"EdDSA\",\"kid\":\"key-a\",\"crit\":[\"exp\"],\"exp\":1}",
		"{\"alg\":\"EdDSA\",\"kid\":\"key-a\",\"crit\":[]}",
		"{\"alg\":\"EdDSA\",\"kid\":\"key-a\",\"crit\":null}",
		"{\"alg\":\"EdDSA\",\"kid\":\"key-a\",\"crit\":\"b64\",\"b64\":false}",
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *jws = signed_with_header(f, headers[i]);
		assert_reason(verify(f, jws), &f->e, "bad_header");
		free(jws);
	}
}

/* typ and unknown members are ignored. */
static void test_header_extras_ignored(void **state)
{
	static const char *const headers[] = {
		"{\"kid\":\"key-a\",\"alg\":\"EdDSA\"}",
		"{\"alg\":\"EdDSA\",\"kid\":\"key-a\",\"typ\":\"whatever\"}",
		"{\"alg\":\"EdDSA\",\"kid\":\"key-a\",\"cty\":\"json\",\"x5u\":1}",
		" { \"alg\" : \"EdDSA\" , \"kid\" : \"key-a\" } ",
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *jws = signed_with_header(f, headers[i]);
		assert_ok(verify(f, jws), &f->e);
		free(jws);
	}
}

static void test_header_too_large(void **state)
{
	struct fx *f = *state;
	char pad[1100];

	memset(pad, 'p', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	char *h = xasprintf("{\"alg\":\"EdDSA\",\"kid\":\"key-a\",\"x\":\"%s\"}",
	    pad);
	char *jws = signed_with_header(f, h);
	assert_reason(verify(f, jws), &f->e, "too_large");
	free(jws);
	free(h);
	/* Just under 1 KiB decoded is fine. */
	h = xasprintf("{\"alg\":\"EdDSA\",\"kid\":\"key-a\",\"x\":\"%.*s\"}",
	    1024 - 36, pad);
	assert_int_equal(strlen(h), 1024);
	jws = signed_with_header(f, h);
	assert_ok(verify(f, jws), &f->e);
	free(jws);
	free(h);
	h = xasprintf("{\"alg\":\"EdDSA\",\"kid\":\"key-a\",\"x\":\"%.*s\"}",
	    1025 - 36, pad);
	jws = signed_with_header(f, h);
	assert_reason(verify(f, jws), &f->e, "too_large");
	free(jws);
	free(h);
}

static void test_unknown_kid(void **state)
{
	struct fx *f = *state;
	char *jws = tk_sign(&f->b, PAYLOAD);

	assert_reason(verify(f, jws), &f->e, "unknown_kid");
	free(jws);
	/* kids compare exactly. */
	jws = signed_with_header(f, "{\"alg\":\"EdDSA\",\"kid\":\"KEY-A\"}");
	assert_reason(verify(f, jws), &f->e, "unknown_kid");
	free(jws);
	jws = signed_with_header(f, "{\"alg\":\"EdDSA\",\"kid\":\"key-a \"}");
	assert_reason(verify(f, jws), &f->e, "unknown_kid");
	free(jws);
	jws = signed_with_header(f, "{\"alg\":\"EdDSA\",\"kid\":\"\"}");
	assert_reason(verify(f, jws), &f->e, "unknown_kid");
	free(jws);
}

/* Signed by another key under a trusted kid. */
static void test_wrong_key_for_kid(void **state)
{
	struct fx *f = *state;
	char *jws = tk_sign_raw(&f->b, "{\"alg\":\"EdDSA\",\"kid\":\"key-a\"}",
	    PAYLOAD, strlen(PAYLOAD));

	assert_reason(verify(f, jws), &f->e, "bad_signature");
	free(jws);
}

/* Decodes segment i, flips one bit, re-encodes it canonically. */
static char *flip_bit(const char *jws, int i, size_t bit)
{
	const char *seg = jws;
	unsigned char raw[4096];
	size_t n;

	for (int k = 0; k < i; k++)
		seg = strchr(seg, '.') + 1;
	const char *end = strchr(seg, '.');
	size_t len = end ? (size_t)(end - seg) : strlen(seg);
	assert_int_equal(b64url_decode(seg, len, raw, sizeof(raw), &n), 0);
	assert_true(bit / 8 < n);
	raw[bit / 8] ^= (unsigned char)(1u << (bit % 8));
	char *enc = tk_b64(raw, n);
	char *out = with_segment(jws, i, enc);
	free(enc);
	return out;
}

static void test_flipped_bit_in_signature(void **state)
{
	struct fx *f = *state;
	char *jws = tk_sign(&f->a, PAYLOAD);
	static const size_t bits[] = { 0, 1, 7, 100, 255, 256, 300, 510, 511 };

	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		char *t = flip_bit(jws, 2, bits[i]);
		assert_reason(verify(f, t), &f->e, "bad_signature");
		free(t);
	}
	free(jws);
}

static void test_flipped_bit_in_payload(void **state)
{
	struct fx *f = *state;
	char *jws = tk_sign(&f->a, PAYLOAD);

	for (size_t bit = 0; bit < strlen(PAYLOAD) * 8; bit += 13) {
		char *t = flip_bit(jws, 1, bit);
		assert_reason(verify(f, t), &f->e, "bad_signature");
		assert_int_equal(f->payload.len, 0);	/* nothing handed out */
		free(t);
	}
	free(jws);
}

/* A header still valid after the flip ("typ":"JWT" -> "JWU"). */
static void test_flipped_bit_in_header(void **state)
{
	struct fx *f = *state;
	char *jws = tk_sign(&f->a, PAYLOAD);
	const char *hdr = "{\"alg\":\"EdDSA\",\"kid\":\"key-a\",\"typ\":\"JWT\"}";
	size_t at = (size_t)(strstr(hdr, "JWT") - hdr) + 2;

	char *t = flip_bit(jws, 0, at * 8 + 0);
	assert_reason(verify(f, t), &f->e, "bad_signature");
	free(t);
	free(jws);
}

static void test_signature_wrong_length(void **state)
{
	struct fx *f = *state;
	char *jws = tk_sign(&f->a, PAYLOAD);
	unsigned char raw[200];
	static const size_t lens[] = { 1, 32, 63, 65, 66, 67, 68, 128, 200 };

	memset(raw, 0x5a, sizeof(raw));
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char *s = tk_b64(raw, lens[i]);
		char *t = with_segment(jws, 2, s);
		assert_reason(verify(f, t), &f->e, "bad_signature");
		free(t);
		free(s);
	}
	/* The real signature with a byte more or less. */
	size_t n;
	const char *sig = strrchr(jws, '.') + 1;
	assert_int_equal(b64url_decode(sig, strlen(sig), raw, sizeof(raw), &n), 0);
	for (size_t len = 63; len <= 65; len += 2) {
		char *s = tk_b64(raw, len);
		char *t = with_segment(jws, 2, s);
		assert_reason(verify(f, t), &f->e, "bad_signature");
		free(t);
		free(s);
	}
	free(jws);
}

/*
 * Ed25519 malleability: S + L is the same signature to a lax verifier.
 * libsodium refuses a non-canonical S, so a job id cannot be replayed
 * under a second spelling of its signature.
 */
static void test_signature_noncanonical_s(void **state)
{
	static const unsigned char L[32] = {
		0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
		0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0x10,
	};
	struct fx *f = *state;
	char *jws = tk_sign(&f->a, PAYLOAD);
	const char *sig = strrchr(jws, '.') + 1;
	unsigned char raw[64];
	size_t n;
	unsigned carry = 0;

	assert_int_equal(b64url_decode(sig, strlen(sig), raw, sizeof(raw), &n), 0);
	for (int i = 0; i < 32; i++) {
		unsigned v = raw[32 + i] + L[i] + carry;
		raw[32 + i] = (unsigned char)v;
		carry = v >> 8;
	}
	assert_int_equal(carry, 0);
	char *s = tk_b64(raw, 64);
	char *t = with_segment(jws, 2, s);
	assert_reason(verify(f, t), &f->e, "bad_signature");
	free(t);
	free(s);
	free(jws);
}

/* The caller's buffer caps the payload too. */
static void test_payload_buffer_cap(void **state)
{
	struct fx *f = *state;
	struct buf small = BUF_INIT(8);
	char *jws = tk_sign(&f->a, PAYLOAD);

	assert_reason(jws_verify(jws, strlen(jws), &f->set, &small, NULL,
	    &f->e), &f->e, "too_large");
	assert_int_equal(small.len, 0);
	buf_free(&small);
	free(jws);
}

/* Checks run in the documented order: the first failure is reported. */
static void test_order_of_checks(void **state)
{
	struct fx *f = *state;
	/* bad base64 in the payload and an unknown kid: base64 first. */
	char *jws = tk_sign(&f->b, PAYLOAD);
	char *t = with_char(jws, 1, 0, '+');
	assert_reason(verify(f, t), &f->e, "bad_base64");
	free(t);
	free(jws);
	/* alg none and bad base64 in the signature: base64 first. */
	jws = signed_with_header(f, "{\"alg\":\"none\",\"kid\":\"key-a\"}");
	t = with_char(jws, 2, 0, '=');
	assert_reason(verify(f, t), &f->e, "bad_base64");
	free(t);
	free(jws);
	/* alg and crit both wrong: alg first. */
	jws = signed_with_header(f, "{\"alg\":\"HS256\",\"kid\":\"key-a\","
	    "\"crit\":[\"x\"]}");
	assert_reason(verify(f, jws), &f->e, "alg_not_allowed");
	free(jws);
	/* Unknown kid and a short signature: kid first. */
	jws = tk_sign(&f->b, PAYLOAD);
	t = with_segment(jws, 2, "AAAA");
	assert_reason(verify(f, t), &f->e, "unknown_kid");
	free(t);
	free(jws);
	/* Malformed beats everything. */
	assert_reason(verify(f, "+.+.+.+"), &f->e, "malformed");
}

static void test_payload_not_parsed_before_signature(void **state)
{
	struct fx *f = *state;
	/* A payload that is not JSON at all still verifies as a JWS: JSON
	 * is the job layer's business, after the signature. */
	char *jws = tk_sign_raw(&f->a, "{\"alg\":\"EdDSA\",\"kid\":\"key-a\"}",
	    "\x00\x01not json", 10);
	assert_ok(verify(f, jws), &f->e);
	assert_int_equal(f->payload.len, 10);
	assert_memory_equal(f->payload.data, "\x00\x01not json", 10);
	free(jws);
}

static void test_peek(void **state)
{
	struct fx *f = *state;
	char *jws = tk_sign(&f->b, PAYLOAD);

	buf_reset(&f->payload);
	assert_ok(jws_peek_payload(jws, strlen(jws), &f->payload, &f->e), &f->e);
	assert_string_equal(buf_cstr(&f->payload), PAYLOAD);
	buf_reset(&f->payload);
	assert_reason(jws_peek_payload("a.b", 3, &f->payload, &f->e), &f->e,
	    "malformed");
	free(jws);
}

static void test_sign_refuses(void **state)
{
	struct fx *f = *state;
	struct jwk pub = f->a, x;
	char *out = NULL;
	char *big = xmalloc(JWS_MAX_COMPACT + 1);

	pub.has_priv = 0;
	assert_int_equal(jws_sign(&pub, "{}", 2, &out), -EINVAL);
	tk_x25519(&x, 9, "pool");
	assert_int_equal(jws_sign(&x, "{}", 2, &out), -EINVAL);
	/* A payload whose JWS would be over the cap. */
	memset(big, 'a', JWS_MAX_COMPACT + 1);
	assert_int_equal(jws_sign(&f->a, big, JWS_MAX_COMPACT + 1, &out), -E2BIG);
	assert_int_equal(jws_sign(&f->a, big, JWS_MAX_COMPACT / 4 * 3, &out),
	    -E2BIG);
	assert_null(out);
	assert_int_equal(jws_sign(&f->a, big, JWS_MAX_COMPACT / 2, &out), 0);
	assert_ok(verify(f, out), &f->e);
	assert_int_equal(f->payload.len, JWS_MAX_COMPACT / 2);
	free(out);
	free(big);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_valid),
		T(test_kid_selects_key),
		T(test_too_large),
		T(test_malformed_segments),
		T(test_bad_base64_chars),
		T(test_bad_base64_padding),
		T(test_bad_base64_trailing_bits),
		T(test_alg_not_allowed),
		T(test_alg_none_unsigned),
		T(test_alg_hs256_with_public_key),
		T(test_bad_header),
		T(test_missing_kid),
		T(test_crit),
		T(test_header_extras_ignored),
		T(test_header_too_large),
		T(test_unknown_kid),
		T(test_wrong_key_for_kid),
		T(test_flipped_bit_in_signature),
		T(test_flipped_bit_in_payload),
		T(test_flipped_bit_in_header),
		T(test_signature_wrong_length),
		T(test_signature_noncanonical_s),
		T(test_payload_buffer_cap),
		T(test_order_of_checks),
		T(test_payload_not_parsed_before_signature),
		T(test_peek),
		T(test_sign_refuses),
	};
#undef T

	tk_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
