/* JWK and JWKS: RFC 8037 test vectors, private/public consistency, and
 * what a trusted key set may hold. */
#include "testkit.h"

#include <errno.h>
#include <sys/stat.h>

#include "jsonx.h"

/* RFC 8037 appendix A.1 (private key) and A.2 (public key). */
#define A1_D "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
#define A1_X "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
/* A.3: its RFC 7638 thumbprint. */
#define A3_THUMB "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
/* A.4: a JWS of "Example of Ed25519 signing" with header {"alg":"EdDSA"}. */
#define A4_INPUT "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
#define A4_SIG "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4" \
    "iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
/* RFC 7748 section 6.1: Alice's X25519 key pair, hex. */
#define ALICE_D "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define ALICE_X "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"

static int from_text(const char *text, struct jwk *k, struct err *e)
{
	int jerr;
	cJSON *j = jsonx_parse(text, strlen(text), 4096, 4, &jerr);

	if (j == NULL)
		fail_msg("test JSON does not parse: %s", text);
	int r = jwk_from_json(j, k, e);
	cJSON_Delete(j);
	return r;
}

static int parse_set(const char *text, struct jwks *set, struct err *e)
{
	return jwks_parse(text, strlen(text), set, e);
}

static void test_rfc8037_thumbprint(void **state)
{
	struct jwk k;
	struct err e;
	char t[44];

	(void)state;
	assert_ok(from_text("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
	    "\"x\":\"" A1_X "\"}", &k, &e), &e);
	assert_int_equal(k.type, JWK_ED25519);
	assert_false(k.has_priv);
	jwk_thumbprint(&k, t);
	assert_string_equal(t, A3_THUMB);
}

/* The private JWK of A.1 loads into the key that made A.4's signature:
 * Ed25519 is deterministic, so signing A.4's input gives A.4's bytes. */
static void test_rfc8037_private_key_signs_a4(void **state)
{
	struct jwk k;
	struct err e;
	unsigned char sig[64];

	(void)state;
	assert_ok(from_text("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a1\","
	    "\"d\":\"" A1_D "\",\"x\":\"" A1_X "\"}", &k, &e), &e);
	assert_true(k.has_priv);
	crypto_sign_detached(sig, NULL, (const unsigned char *)A4_INPUT,
	    strlen(A4_INPUT), k.priv);
	char *s = tk_b64(sig, sizeof(sig));
	assert_string_equal(s, A4_SIG);
	free(s);
	jwk_wipe(&k);
	for (size_t i = 0; i < sizeof(k); i++)
		assert_int_equal(((unsigned char *)&k)[i], 0);
}

/* A.4's JWS has no kid, which skiff requires: refused at the header. */
static void test_rfc8037_a4_without_kid(void **state)
{
	struct jwk k;
	struct jwks set;
	struct err e;
	struct buf p = BUF_INIT(1024);

	(void)state;
	assert_ok(from_text("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a1\","
	    "\"x\":\"" A1_X "\"}", &k, &e), &e);
	tk_jwks(&set, &k, 1);
	assert_reason(jws_verify(A4_INPUT "." A4_SIG, strlen(A4_INPUT "." A4_SIG),
	    &set, &p, NULL, &e), &e, "bad_header");
	jwks_free(&set);
	buf_free(&p);
}

static void test_x25519_rfc7748(void **state)
{
	unsigned char d[32], x[32];
	struct jwk k;
	struct err e;

	(void)state;
	assert_int_equal(hex_decode(ALICE_D, d, 32), 0);
	assert_int_equal(hex_decode(ALICE_X, x, 32), 0);
	char *db = tk_b64(d, 32), *xb = tk_b64(x, 32);
	char *text = xasprintf("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"kid\":\"alice\","
	    "\"d\":\"%s\",\"x\":\"%s\"}", db, xb);
	assert_ok(from_text(text, &k, &e), &e);
	assert_int_equal(k.type, JWK_X25519);
	assert_true(k.has_priv);
	assert_memory_equal(k.pub, x, 32);
	assert_memory_equal(k.priv, d, 32);
	free(text);
	/* The same x with another scalar: mismatch. */
	d[0] ^= 0x40;
	free(db);
	db = tk_b64(d, 32);
	text = xasprintf("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"kid\":\"alice\","
	    "\"d\":\"%s\",\"x\":\"%s\"}", db, xb);
	assert_int_equal(from_text(text, &k, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "does not match"));
	free(text);
	free(db);
	free(xb);
}

/* x that is not the public half of d: refused, not silently fixed. */
static void test_x_d_mismatch(void **state)
{
	struct jwk k, other;
	struct err e;

	(void)state;
	tk_ed25519(&other, 7, "other");
	char *x = tk_b64(other.pub, 32);
	char *text = xasprintf("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
	    "\"d\":\"" A1_D "\",\"x\":\"%s\"}", x);
	memset(&k, 0xaa, sizeof(k));
	assert_int_equal(from_text(text, &k, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "does not match"));
	/* Untouched on failure. */
	assert_int_equal(((unsigned char *)&k)[0], 0xaa);
	free(text);
	free(x);
}

static void test_malformed_keys(void **state)
{
	static const char *const bad[] = {
		"[]",
		"{\"crv\":\"Ed25519\",\"kid\":\"a\",\"x\":\"" A1_X "\"}",
		"{\"kty\":\"EC\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"x\":\"" A1_X "\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"kid\":\"a\",\"x\":\"" A1_X "\"}",
		"{\"kty\":\"OKP\",\"kid\":\"a\",\"x\":\"" A1_X "\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" A1_X "\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"\",\"x\":\"" A1_X "\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a b\",\"x\":\"" A1_X "\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":7,\"x\":\"" A1_X "\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"x\":\"AAAA\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"x\":\"" A1_X "A\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"x\":\"" A1_X "=\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
		    "\"x\":\"11qYAYKxCrfVS+7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"x\":\"" A1_X "\","
		    "\"d\":\"short\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"x\":\"" A1_X "\","
		    "\"d\":null}",
	};
	struct jwk k;
	struct err e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (from_text(bad[i], &k, &e) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
}

static void test_kid_valid(void **state)
{
	char long_kid[130];

	(void)state;
	assert_true(jwk_kid_valid("a"));
	assert_true(jwk_kid_valid("Az09_.:-"));
	assert_false(jwk_kid_valid(""));
	assert_false(jwk_kid_valid("a/b"));
	assert_false(jwk_kid_valid("a\"b"));
	assert_false(jwk_kid_valid("\xc3\xa9"));
	memset(long_kid, 'k', 128);
	long_kid[128] = '\0';
	assert_true(jwk_kid_valid(long_kid));
	long_kid[128] = 'k';
	long_kid[129] = '\0';
	assert_false(jwk_kid_valid(long_kid));
}

/* A private key has no business in a trusted set: the whole set fails. */
static void test_jwks_refuses_private_key(void **state)
{
	struct jwks set = { NULL, 0 };
	struct err e;

	(void)state;
	assert_int_equal(parse_set("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
	    "\"kid\":\"a\",\"x\":\"" A1_X "\",\"d\":\"" A1_D "\"}]}", &set, &e),
	    -EINVAL);
	assert_non_null(strstr(e.msg, "private key"));
	assert_null(set.keys);
	/* Also when it is not the first key, and whatever its type. */
	assert_int_equal(parse_set("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
	    "\"kid\":\"a\",\"x\":\"" A1_X "\"},{\"kty\":\"RSA\",\"kid\":\"r\","
	    "\"n\":\"AQAB\",\"e\":\"AQAB\",\"d\":\"AQAB\"}]}", &set, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "private key"));
}

static void test_jwks_selection(void **state)
{
	struct jwks set = { NULL, 0 };
	struct err e;
	struct jwk b, c;

	(void)state;
	tk_ed25519(&b, 2, "b");
	tk_x25519(&c, 3, "pool");
	char *bx = tk_b64(b.pub, 32), *cx = tk_b64(c.pub, 32);
	/* Ed25519 keys are kept; X25519, other use or alg, other kty and
	 * curves are skipped, not errors. */
	char *text = xasprintf("{\"keys\":["
	    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"x\":\"" A1_X "\","
	    "\"use\":\"sig\",\"alg\":\"EdDSA\"},"
	    "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"kid\":\"pool\",\"x\":\"%s\"},"
	    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"enc\",\"x\":\"%s\","
	    "\"use\":\"enc\"},"
	    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"use-num\",\"x\":\"%s\","
	    "\"use\":1},"
	    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"es\",\"x\":\"%s\","
	    "\"alg\":\"ES256\"},"
	    "{\"kty\":\"RSA\",\"kid\":\"rsa\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
	    "{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"kid\":\"ed448\",\"x\":\"AAAA\"},"
	    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"b\",\"x\":\"%s\"}"
	    "]}", cx, bx, bx, bx, bx);
	assert_ok(parse_set(text, &set, &e), &e);
	assert_int_equal(set.n, 2);
	assert_non_null(jwks_find(&set, "a"));
	assert_non_null(jwks_find(&set, "b"));
	assert_memory_equal(jwks_find(&set, "b")->pub, b.pub, 32);
	assert_null(jwks_find(&set, "pool"));
	assert_null(jwks_find(&set, "enc"));
	assert_null(jwks_find(&set, "use-num"));
	assert_null(jwks_find(&set, "es"));
	assert_null(jwks_find(&set, "rsa"));
	assert_null(jwks_find(&set, "A"));
	assert_false(jwks_find(&set, "a")->has_priv);
	jwks_free(&set);
	assert_null(set.keys);
	jwks_free(&set);
	free(text);
	free(bx);
	free(cx);
}

static void test_jwks_errors(void **state)
{
	struct jwks set = { NULL, 0 };
	struct err e;
	struct buf many = BUF_INIT(1 << 20);
	static const char *const bad[] = {
		"", "[]", "{}", "{\"keys\":{}}", "{\"keys\":[]}", "{\"keys\":[1]}",
		/* only a pool key: nothing to verify with */
		"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"X25519\",\"kid\":\"p\","
		    "\"x\":\"" A1_X "\"}]}",
		/* the same kid twice */
		"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
		    "\"x\":\"" A1_X "\"},{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
		    "\"kid\":\"a\",\"x\":\"" A1_X "\"}]}",
		/* a broken Ed25519 key is an error, not skipped */
		"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
		    "\"x\":\"AAAA\"}]}",
		"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
		    "\"x\":\"" A1_X "\"}]} trailing",
		"{\"keys\":[],\"keys\":[]}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_set(bad[i], &set, &e) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_null(set.keys);
	}
	/* More than JWKS_MAX_KEYS keys. */
	buf_puts(&many, "{\"keys\":[");
	for (int i = 0; i <= JWKS_MAX_KEYS; i++)
		buf_printf(&many, "%s{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
		    "\"kid\":\"k%d\",\"x\":\"" A1_X "\"}", i ? "," : "", i);
	buf_puts(&many, "]}");
	assert_int_equal(jwks_parse(many.data, many.len, &set, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "more than"));
	buf_free(&many);
	/* NULL err is fine. */
	assert_int_equal(parse_set("{}", &set, NULL), -EINVAL);
}

/* keygen's path: generate, write, load back; files as skiffctl makes. */
static void test_generate_round_trip(void **state)
{
	char dir[PATH_MAX];
	struct jwk k, back;
	struct jwks set;
	struct err e;

	(void)state;
	tk_tmpdir(dir);
	for (int type = JWK_ED25519; type <= JWK_X25519; type++) {
		assert_int_equal(jwk_generate((enum jwk_type)type, NULL, &k), 0);
		char t[44];
		jwk_thumbprint(&k, t);
		assert_string_equal(k.kid, t);
		cJSON *priv = jwk_to_json(&k, 1), *pub = jwk_to_json(&k, 0);
		assert_non_null(cJSON_GetObjectItemCaseSensitive(priv, "d"));
		assert_null(cJSON_GetObjectItemCaseSensitive(pub, "d"));
		char *ps = jsonx_print(priv), *path = xasprintf("%s/k%d.jwk", dir, type);
		assert_int_equal(fsx_write_file(path, ps, strlen(ps), 0600), 0);
		assert_ok(jwk_load(path, &back, &e), &e);
		assert_int_equal(back.type, type);
		assert_true(back.has_priv);
		assert_string_equal(back.kid, k.kid);
		assert_memory_equal(back.pub, k.pub, 32);
		assert_memory_equal(back.priv, k.priv,
		    type == JWK_ED25519 ? 64 : 32);
		if (type == JWK_ED25519) {
			cJSON *set_json = cJSON_CreateObject();
			cJSON *keys = cJSON_AddArrayToObject(set_json, "keys");
			cJSON_AddItemToArray(keys, pub);
			pub = NULL;
			char *ss = jsonx_print(set_json);
			char *spath = xasprintf("%s/k.jwks", dir);
			assert_int_equal(fsx_write_file(spath, ss, strlen(ss), 0644), 0);
			assert_ok(jwks_load(spath, &set, &e), &e);
			assert_int_equal(set.n, 1);
			assert_memory_equal(set.keys[0].pub, k.pub, 32);
			jwks_free(&set);
			cJSON_free(ss);
			cJSON_Delete(set_json);
			free(spath);
		}
		cJSON_free(ps);
		cJSON_Delete(priv);
		cJSON_Delete(pub);
		free(path);
		jwk_wipe(&k);
	}
	assert_int_equal(jwk_generate(JWK_ED25519, "given-kid", &k), 0);
	assert_string_equal(k.kid, "given-kid");
	assert_int_equal(jwk_generate(JWK_ED25519, "bad kid", &back), -EINVAL);
	/* Errors name the file; NULL err does not crash. */
	char *missing = xasprintf("%s/missing.jwk", dir);
	assert_int_equal(jwk_load(missing, &back, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "missing.jwk"));
	assert_int_equal(jwk_load(missing, &back, NULL), -EINVAL);
	assert_int_equal(jwks_load(missing, &set, NULL), -EINVAL);
	char *notkey = xasprintf("%s/notkey.jwk", dir);
	assert_int_equal(fsx_write_file(notkey, "{}", 2, 0600), 0);
	assert_int_equal(jwk_load(notkey, &back, NULL), -EINVAL);
	assert_int_equal(jwk_load(notkey, &back, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "notkey.jwk"));
	free(notkey);
	free(missing);
	tk_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8037_thumbprint),
		cmocka_unit_test(test_rfc8037_private_key_signs_a4),
		cmocka_unit_test(test_rfc8037_a4_without_kid),
		cmocka_unit_test(test_x25519_rfc7748),
		cmocka_unit_test(test_x_d_mismatch),
		cmocka_unit_test(test_malformed_keys),
		cmocka_unit_test(test_kid_valid),
		cmocka_unit_test(test_jwks_refuses_private_key),
		cmocka_unit_test(test_jwks_selection),
		cmocka_unit_test(test_jwks_errors),
		cmocka_unit_test(test_generate_round_trip),
	};

	tk_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
