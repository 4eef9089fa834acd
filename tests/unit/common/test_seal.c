/* Sealed secrets: libsodium sealed boxes to the pool key, in base64url. */
#include "testkit.h"

#include <errno.h>

#include "seal.h"

static void test_round_trip(void **state)
{
	struct jwk pool, pub;
	char *sealed = NULL, *out = NULL;
	size_t n = 0;
	static const char *const values[] = { "x", "hunter2",
		"with spaces and \"quotes\" and \xc3\xa9" };

	(void)state;
	assert_int_equal(jwk_generate(JWK_X25519, NULL, &pool), 0);
	/* Whoever seals has only the public key. */
	pub = pool;
	pub.has_priv = 0;
	memset(pub.priv, 0, sizeof(pub.priv));
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		size_t len = strlen(values[i]);
		assert_int_equal(seal_value(&pub, values[i], len, &sealed), 0);
		assert_true(b64url_valid(sealed, strlen(sealed)));
		/* ephemeral key (32) + MAC (16) + the value, base64url */
		assert_int_equal(strlen(sealed), ((len + 48) * 4 + 2) / 3);
		assert_int_equal(seal_open(&pool, sealed, &out, &n), 0);
		assert_int_equal(n, len);
		assert_string_equal(out, values[i]);
		assert_int_equal(out[n], '\0');
		sodium_memzero(out, n);
		free(out);
		/* Sealing is randomised: the same value seals differently. */
		char *again = NULL;
		assert_int_equal(seal_value(&pub, values[i], len, &again), 0);
		assert_string_not_equal(again, sealed);
		free(again);
		free(sealed);
	}
	jwk_wipe(&pool);
}

static void test_binary_and_max_size(void **state)
{
	struct jwk pool;
	char *sealed = NULL, *out = NULL;
	size_t n;
	unsigned char *v = xmalloc(JOB_MAX_SECRET + 1);

	(void)state;
	tk_x25519(&pool, 5, "p");
	for (size_t i = 0; i <= JOB_MAX_SECRET; i++)
		v[i] = (unsigned char)(i * 7);
	assert_int_equal(seal_value(&pool, v, JOB_MAX_SECRET, &sealed), 0);
	assert_int_equal(seal_open(&pool, sealed, &out, &n), 0);
	assert_int_equal(n, JOB_MAX_SECRET);
	assert_memory_equal(out, v, n);
	free(out);
	free(sealed);
	sealed = NULL;
	assert_int_equal(seal_value(&pool, v, JOB_MAX_SECRET + 1, &sealed), -E2BIG);
	assert_int_equal(seal_value(&pool, v, 0, &sealed), -E2BIG);
	assert_null(sealed);
	free(v);
}

static void test_wrong_key(void **state)
{
	struct jwk pool, other;
	char *sealed = NULL, *out = NULL;
	size_t n = 99;

	(void)state;
	tk_x25519(&pool, 5, "p");
	tk_x25519(&other, 6, "q");
	assert_int_equal(seal_value(&pool, "v", 1, &sealed), 0);
	assert_int_equal(seal_open(&other, sealed, &out, &n), -EBADMSG);
	assert_null(out);
	assert_int_equal(n, 99);
	free(sealed);
}

static void test_tampered(void **state)
{
	struct jwk pool;
	char *sealed = NULL, *out = NULL;
	unsigned char raw[128];
	size_t n, len;

	(void)state;
	tk_x25519(&pool, 5, "p");
	assert_int_equal(seal_value(&pool, "secret value", 12, &sealed), 0);
	assert_int_equal(b64url_decode(sealed, strlen(sealed), raw, sizeof(raw),
	    &len), 0);
	/* A flipped bit anywhere: the ephemeral key, the MAC, the text. */
	for (size_t bit = 0; bit < len * 8; bit += 37) {
		raw[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		char *t = tk_b64(raw, len);
		assert_int_equal(seal_open(&pool, t, &out, &n), -EBADMSG);
		free(t);
		raw[bit / 8] ^= (unsigned char)(1u << (bit % 8));
	}
	/* Truncated by a byte. */
	char *t = tk_b64(raw, len - 1);
	assert_int_equal(seal_open(&pool, t, &out, &n), -EBADMSG);
	free(t);
	assert_null(out);
	free(sealed);
}

static void test_not_a_box(void **state)
{
	struct jwk pool;
	char *out = NULL;
	size_t n;
	unsigned char zeros[48] = { 0 };
	static const char *const bad[] = { "", "A", "AAAA", "not base64!",
		"AAAA====", "QUFB\n" };

	(void)state;
	tk_x25519(&pool, 5, "p");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(seal_open(&pool, bad[i], &out, &n), -EINVAL);
	/* 48 bytes is a box of an empty value: too short for a secret. */
	char *z = tk_b64(zeros, sizeof(zeros));
	assert_int_equal(seal_open(&pool, z, &out, &n), -EINVAL);
	free(z);
	assert_null(out);
}

static void test_key_types(void **state)
{
	struct jwk pool, sign, pub;
	char *sealed = NULL, *out = NULL;
	size_t n;

	(void)state;
	tk_x25519(&pool, 5, "p");
	tk_ed25519(&sign, 1, "s");
	assert_int_equal(seal_value(&sign, "v", 1, &sealed), -EINVAL);
	assert_null(sealed);
	assert_int_equal(seal_value(&pool, "v", 1, &sealed), 0);
	assert_int_equal(seal_open(&sign, sealed, &out, &n), -EINVAL);
	pub = pool;
	pub.has_priv = 0;
	assert_int_equal(seal_open(&pub, sealed, &out, &n), -EINVAL);
	assert_null(out);
	free(sealed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_binary_and_max_size),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_not_a_box),
		cmocka_unit_test(test_key_types),
	};

	tk_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
