/* Tokens and identifiers: form, randomness, hashing, bearer parsing. */
#include "qtest.h"

#include <errno.h>

#include "token.h"

static void test_new_tokens_and_ids(void **state)
{
	char id1[ID_MAX + 1], id2[ID_MAX + 1];
	char *a, *b;

	(void)state;
	assert_int_equal(sodium_init() < 0, 0);
	a = token_new("sat_");
	b = token_new("sat_");
	assert_int_equal(strlen(a), 4 + 43);
	assert_true(token_valid(a, strlen(a)));
	assert_string_not_equal(a, b);
	token_id_new("lse_", id1);
	token_id_new("lse_", id2);
	assert_int_equal(strlen(id1), 4 + 22);
	assert_true(token_id_valid(id1));
	assert_string_not_equal(id1, id2);
	free(a);
	free(b);
}

/*
 * An id or token that starts with '-' reads as an option to every CLI.
 * Many draws with no prefix at all: never a leading '-', yet every one
 * of the 63 other characters comes first (the entropy is kept), and '-'
 * still appears at the other positions.
 */
static void test_never_a_leading_dash(void **state)
{
	enum { DRAWS = 20000 };
	char id[ID_MAX + 1], seen[256] = { 0 };
	size_t distinct = 0, dash_later = 0;

	(void)state;
	assert_int_equal(sodium_init() < 0, 0);
	for (int i = 0; i < DRAWS; i++) {
		char *t = token_new("");
		token_id_new("", id);
		assert_int_not_equal(id[0], '-');
		assert_int_not_equal(t[0], '-');
		assert_int_equal(strlen(id), 22);
		assert_int_equal(strlen(t), 43);
		assert_true(token_id_valid(id));
		assert_true(token_valid(t, strlen(t)));
		distinct += !seen[(unsigned char)id[0]];
		seen[(unsigned char)id[0]] = 1;
		dash_later += strchr(id + 1, '-') != NULL;
		free(t);
	}
	assert_int_equal(distinct, 63);
	assert_true(seen['_']);
	/* About 30% of the ids hold a '-' somewhere after the first. */
	assert_true(dash_later > DRAWS / 10);
}

static void test_forms(void **state)
{
	char long_tok[200];

	(void)state;
	assert_true(token_valid("a.b-c_d", 7));
	assert_false(token_valid("", 0));
	assert_false(token_valid("a b", 3));
	assert_false(token_valid("a\0b", 3));
	memset(long_tok, 'x', sizeof(long_tok));
	assert_true(token_valid(long_tok, 128));
	assert_false(token_valid(long_tok, 129));
	assert_true(token_id_valid("agt_AbC-1_z"));
	assert_false(token_id_valid("a.b"));
	assert_false(token_id_valid(""));
	long_tok[65] = '\0';
	assert_false(token_id_valid(long_tok));
	long_tok[64] = '\0';
	assert_true(token_id_valid(long_tok));
}

static void test_hash(void **state)
{
	unsigned char h1[TOKEN_HASH_BYTES], h2[TOKEN_HASH_BYTES];
	char hex[2 * TOKEN_HASH_BYTES + 1];

	(void)state;
	token_hash("abc", 3, h1);
	token_hash_hex("abc", 3, hex);
	/* SHA-256("abc"), FIPS 180-2 appendix B.1. */
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9c"
	    "b410ff61f20015ad");
	token_hash("abd", 3, h2);
	assert_true(token_hash_equal(h1, h1));
	assert_false(token_hash_equal(h1, h2));
}

static void test_bearer(void **state)
{
	const char *t;
	size_t n;

	(void)state;
	assert_int_equal(token_from_authorization("Bearer sat_x1", &t, &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(t, "sat_x1", 6);
	assert_int_equal(token_from_authorization("bearer  tok  ", &t, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(token_from_authorization(NULL, &t, &n), -ENOENT);
	assert_int_equal(token_from_authorization("Basic eDp5", &t, &n), -ENOENT);
	assert_int_equal(token_from_authorization("Bearer ", &t, &n), -EINVAL);
	assert_int_equal(token_from_authorization("Bearer a b", &t, &n), -EINVAL);
	assert_int_equal(token_from_authorization("Bearer a\"b", &t, &n), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_tokens_and_ids),
		cmocka_unit_test(test_never_a_leading_dash),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_bearer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
