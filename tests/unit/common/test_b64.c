/* base64url strictness: one encoding per value, nothing else accepted. */
#include "testkit.h"

#include <errno.h>

static int decode(const char *s, unsigned char *out, size_t max, size_t *n)
{
	return b64url_decode(s, strlen(s), out, max, n);
}

/* RFC 4648 section 10 vectors, in the URL-safe alphabet without padding. */
static void test_rfc4648_vectors(void **state)
{
	static const struct { const char *plain, *enc; } v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy" },
	};
	unsigned char out[16];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *e = b64url_encode(v[i].plain, strlen(v[i].plain));
		assert_string_equal(e, v[i].enc);
		free(e);
		assert_int_equal(decode(v[i].enc, out, sizeof(out), &n), 0);
		assert_int_equal(n, strlen(v[i].plain));
		assert_memory_equal(out, v[i].plain, n);
		assert_true(b64url_valid(v[i].enc, strlen(v[i].enc)));
	}
}

/* The URL-safe alphabet: '-' and '_' where standard base64 has '+' '/'. */
static void test_urlsafe_alphabet(void **state)
{
	const unsigned char raw[] = { 0xfb, 0xff, 0xbf };
	unsigned char out[8];
	size_t n;
	char *e = b64url_encode(raw, sizeof(raw));

	(void)state;
	assert_string_equal(e, "-_-_");
	assert_int_equal(decode(e, out, sizeof(out), &n), 0);
	assert_memory_equal(out, raw, 3);
	free(e);
	assert_int_equal(decode("+/+/", out, sizeof(out), &n), -EINVAL);
	assert_false(b64url_valid("+/+/", 4));
}

static void test_round_trip_all_lengths(void **state)
{
	unsigned char in[300], out[300];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 11);
	for (size_t len = 0; len <= sizeof(in); len++) {
		char *e = b64url_encode(in, len);
		assert_int_equal(strlen(e), (len * 4 + 2) / 3);
		assert_true(b64url_valid(e, strlen(e)));
		assert_true(b64url_decoded_max(strlen(e)) >= len);
		assert_int_equal(decode(e, out, sizeof(out), &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(out, in, len);
		free(e);
	}
}

static void test_rejects_padding_and_bad_chars(void **state)
{
	static const char *const bad[] = {
		"Zg==", "Zg=", "Zm8=", "Zm9v\n", " Zm9v", "Zm 9v", "Zm9v.",
		"Zm9\x80", "Zm9v\t", "Z", "Zm9vY", "Zm9v!", "Zm9v=Zm9v",
	};
	unsigned char out[32];
	size_t n = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(decode(bad[i], out, sizeof(out), &n), -EINVAL);
		assert_false(b64url_valid(bad[i], strlen(bad[i])));
		assert_int_equal(n, 12345);	/* untouched on failure */
	}
}

/* "Zh" decodes to 'f' like "Zg" but leaves non-zero bits over; a second
 * spelling of the same bytes would let a re-encoded JWS pass as new. */
static void test_rejects_noncanonical_trailing_bits(void **state)
{
	static const char *const bad[] = { "Zh", "Zn", "Zv", "Zm9", "Zm-",
		"Zm_", "AB", "AAB", "AAAAAB" };
	unsigned char out[8];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(decode(bad[i], out, sizeof(out), &n), -EINVAL);
		assert_false(b64url_valid(bad[i], strlen(bad[i])));
	}
	/* The canonical neighbours are fine. */
	assert_int_equal(decode("Zg", out, sizeof(out), &n), 0);
	assert_int_equal(decode("Zm8", out, sizeof(out), &n), 0);
	assert_int_equal(decode("AA", out, sizeof(out), &n), 0);
	assert_int_equal(decode("AAA", out, sizeof(out), &n), 0);
}

/* libsodium 1.0.18 decodes bytes 0x80-0xff as '_'; b64url must not. */
static void test_rejects_every_byte_outside_alphabet(void **state)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char out[8];
	size_t n;

	(void)state;
	for (int c = 1; c < 256; c++) {
		char in[5] = { 'A', 'A', 'A', (char)c, '\0' };
		int in_alphabet = strchr(alphabet, c) != NULL;
		assert_int_equal(b64url_valid(in, 4), in_alphabet);
		assert_int_equal(b64url_decode(in, 4, out, sizeof(out), &n),
		    in_alphabet ? 0 : -EINVAL);
	}
	assert_int_equal(b64url_decode("AA\0A", 4, out, sizeof(out), &n),
	    -EINVAL);
}

static void test_output_cap(void **state)
{
	unsigned char out[6];
	size_t n;

	(void)state;
	assert_int_equal(decode("Zm9vYmFy", out, 5, &n), -E2BIG);
	assert_int_equal(decode("Zm9vYmFy", out, 6, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(decode("Zm9vYmE", out, 4, &n), -E2BIG);
}

/* Exactly inlen characters are decoded: a NUL or dot after is not read. */
static void test_decodes_exact_length(void **state)
{
	unsigned char out[8];
	size_t n;

	(void)state;
	assert_int_equal(b64url_decode("Zm9v.Zm9v", 4, out, sizeof(out), &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(b64url_decode("Zm9v.Zm9v", 5, out, sizeof(out), &n),
	    -EINVAL);
}

static void test_hex(void **state)
{
	const unsigned char raw[] = { 0x00, 0x9f, 0xab, 0xff };
	unsigned char out[4];
	char hex[9];

	(void)state;
	hex_encode(raw, sizeof(raw), hex);
	assert_string_equal(hex, "009fabff");
	assert_int_equal(hex_decode("009fabff", out, 4), 0);
	assert_memory_equal(out, raw, 4);
	assert_int_equal(hex_decode("009FABFF", out, 4), 0);
	assert_int_equal(hex_decode("009fab", out, 4), -EINVAL);
	assert_int_equal(hex_decode("009fabff00", out, 4), -EINVAL);
	assert_int_equal(hex_decode("009fabfg", out, 4), -EINVAL);
	assert_int_equal(hex_decode("009fab f", out, 4), -EINVAL);
	for (int c = 1; c < 256; c++) {
		char in[3] = { '0', (char)c, '\0' };
		int digit = strchr("0123456789abcdefABCDEF", c) != NULL;
		assert_int_equal(hex_decode(in, out, 1), digit ? 0 : -EINVAL);
	}
}

static void test_std_base64(void **state)
{
	char *e = b64std_encode("\xfb\xff", 2);

	(void)state;
	assert_string_equal(e, "+/8=");
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_urlsafe_alphabet),
		cmocka_unit_test(test_round_trip_all_lengths),
		cmocka_unit_test(test_rejects_padding_and_bad_chars),
		cmocka_unit_test(test_rejects_noncanonical_trailing_bits),
		cmocka_unit_test(test_rejects_every_byte_outside_alphabet),
		cmocka_unit_test(test_output_cap),
		cmocka_unit_test(test_decodes_exact_length),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_std_base64),
	};

	tk_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
