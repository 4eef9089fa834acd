/* The JSON guards: size and depth before cJSON sees the text, no NUL in
 * strings, nothing after the value, no duplicate keys, typed getters. */
#include "testkit.h"

#include <errno.h>

#include "jsonx.h"

static cJSON *parse(const char *s, int max_depth, int *err)
{
	return jsonx_parse(s, strlen(s), 4096, max_depth, err);
}

static void expect_err(const char *s, int max_depth, int want)
{
	int err = 12345;
	cJSON *j = parse(s, max_depth, &err);

	if (j != NULL) {
		cJSON_Delete(j);
		fail_msg("accepted: %s", s);
	}
	if (err != want)
		fail_msg("'%s': error %d, expected %d", s, err, want);
}

static void expect_ok(const char *s, int max_depth)
{
	int err = 12345;
	cJSON *j = parse(s, max_depth, &err);

	if (j == NULL)
		fail_msg("refused (%d): %s", err, s);
	assert_int_equal(err, JSONX_OK);
	cJSON_Delete(j);
}

/* "[[[...]]]" nested depth deep. */
static char *nested(int depth)
{
	char *s = xmalloc((size_t)depth * 2 + 1);

	for (int i = 0; i < depth; i++) {
		s[i] = '[';
		s[depth * 2 - 1 - i] = ']';
	}
	s[depth * 2] = '\0';
	return s;
}

static void test_depth_count(void **state)
{
	(void)state;
	assert_int_equal(jsonx_depth("1", 1), 0);
	assert_int_equal(jsonx_depth("{}", 2), 1);
	assert_int_equal(jsonx_depth("{\"a\":[{}]}", 10), 3);
	assert_int_equal(jsonx_depth("[1,[2],[3,[4]]]", 15), 3);
	/* Brackets inside strings do not count, escaped quotes included. */
	assert_int_equal(jsonx_depth("[\"[[[[\"]", 8), 1);
	assert_int_equal(jsonx_depth("[\"\\\"[[[[\"]", 10), 1);
	assert_int_equal(jsonx_depth("[\"\\\\\",[[]]]", 11), 3);
}

static void test_depth_cap(void **state)
{
	char *s16 = nested(16), *s17 = nested(17);

	(void)state;
	expect_ok(s16, 16);
	expect_err(s17, 16, JSONX_TOO_DEEP);
	/* Deep nesting far past cJSON's own recursion limit is refused by
	 * the scan, before cJSON recurses. */
	free(s16);
	s16 = nested(2000);
	int err;
	assert_null(jsonx_parse(s16, strlen(s16), 1 << 20, 16, &err));
	assert_int_equal(err, JSONX_TOO_DEEP);
	free(s16);
	free(s17);
	expect_err("{\"a\":{\"b\":{\"c\":1}}}", 2, JSONX_TOO_DEEP);
	expect_ok("{\"a\":{\"b\":{\"c\":1}}}", 3);
}

static void test_size_cap(void **state)
{
	int err;
	char s[] = "[1,2,3]";

	(void)state;
	assert_null(jsonx_parse(s, 7, 6, 4, &err));
	assert_int_equal(err, JSONX_TOO_BIG);
	cJSON *j = jsonx_parse(s, 7, 7, 4, &err);
	assert_non_null(j);
	cJSON_Delete(j);
}

/* An escaped NUL would cut a C string short: "ab\u0000cd" would become
 * "ab" in cJSON, which is not what was signed. */
static void test_nul_in_string(void **state)
{
	(void)state;
	expect_err("{\"a\":\"ab\\u0000cd\"}", 4, JSONX_SYNTAX);
	expect_err("{\"a\\u0000\":1}", 4, JSONX_SYNTAX);
	expect_err("[\"\\u0000\"]", 4, JSONX_SYNTAX);
	/* A backslash before the u is an escaped backslash, not an escape. */
	expect_ok("[\"\\\\u0000\"]", 4);
	expect_ok("[\"\\u0001\"]", 4);
	/* A raw NUL byte inside a string, and raw control characters. */
	int err;
	const char raw[] = "{\"a\":\"ab\0cd\"}";
	assert_null(jsonx_parse(raw, sizeof(raw) - 1, 100, 4, &err));
	assert_int_equal(err, JSONX_SYNTAX);
	expect_err("[\"a\tb\"]", 4, JSONX_SYNTAX);
	expect_err("[\"a\nb\"]", 4, JSONX_SYNTAX);
	expect_err("[\"a\x1f" "b\"]", 4, JSONX_SYNTAX);
	expect_ok("[\"a\\tb\\n\"]", 4);
}

/* cJSON takes any byte up to 0x20 for whitespace; JSON allows four. */
static void test_control_bytes_outside_strings(void **state)
{
	int err;
	const char nul_ws[] = "{\0\"a\":1}";

	(void)state;
	assert_null(jsonx_parse(nul_ws, sizeof(nul_ws) - 1, 100, 4, &err));
	assert_int_equal(err, JSONX_SYNTAX);
	expect_err("{\x01\"a\":1}", 4, JSONX_SYNTAX);
	expect_err("[1,\x0b" "2]", 4, JSONX_SYNTAX);
	expect_ok(" \t\r\n{ \"a\" :\t1 }\r\n ", 4);
}

static void test_trailing_garbage(void **state)
{
	int err;
	const char nul_after[] = "{\"a\":1}\0";

	(void)state;
	expect_err("{\"a\":1}x", 4, JSONX_SYNTAX);
	expect_err("{\"a\":1}{}", 4, JSONX_SYNTAX);
	expect_err("{\"a\":1},", 4, JSONX_SYNTAX);
	expect_err("1 2", 4, JSONX_SYNTAX);
	assert_null(jsonx_parse(nul_after, sizeof(nul_after), 100, 4, &err));
	assert_int_equal(err, JSONX_SYNTAX);
	expect_ok("{\"a\":1}  \n", 4);
	/* Exactly n bytes are parsed: what follows them is not read. */
	cJSON *j = jsonx_parse("{\"a\":1}garbage", 7, 100, 4, &err);
	assert_non_null(j);
	cJSON_Delete(j);
}

static void test_syntax(void **state)
{
	(void)state;
	expect_err("", 4, JSONX_SYNTAX);
	expect_err("{", 4, JSONX_SYNTAX);
	expect_err("{\"a\":}", 4, JSONX_SYNTAX);
	expect_err("{'a':1}", 4, JSONX_SYNTAX);
	expect_err("[\"\\x41\"]", 4, JSONX_SYNTAX);
	expect_err("[\"\\ud800\"]", 4, JSONX_SYNTAX);
}

static void test_duplicate_keys(void **state)
{
	(void)state;
	expect_err("{\"a\":1,\"a\":2}", 4, JSONX_DUPKEY);
	expect_err("{\"a\":1,\"b\":{\"c\":1,\"c\":1}}", 4, JSONX_DUPKEY);
	expect_err("[{\"x\":1},{\"y\":2,\"y\":3}]", 4, JSONX_DUPKEY);
	/* The same key in different objects, or differing by case, is fine. */
	expect_ok("{\"a\":{\"a\":{\"a\":1}},\"b\":[{\"a\":1},{\"a\":2}]}", 4);
	expect_ok("{\"a\":1,\"A\":2}", 4);
	/* An escape spelling the same key is the same key. */
	expect_err("{\"a\":1,\"\\u0061\":2}", 4, JSONX_DUPKEY);
}

/* Many keys take the sorted path; the duplicate may be anywhere. */
static void test_duplicate_keys_large_object(void **state)
{
	struct buf b = BUF_INIT(1 << 20);
	int err;

	(void)state;
	for (int dup = 0; dup < 2; dup++) {
		buf_reset(&b);
		buf_putc(&b, '{');
		for (int i = 0; i < 5000; i++)
			buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
		if (dup)
			buf_puts(&b, ",\"k2500\":0");
		buf_putc(&b, '}');
		cJSON *j = jsonx_parse(b.data, b.len, b.len, 4, &err);
		if (dup) {
			assert_null(j);
			assert_int_equal(err, JSONX_DUPKEY);
		} else {
			assert_non_null(j);
			assert_int_equal(cJSON_GetArraySize(j), 5000);
			cJSON_Delete(j);
		}
	}
	buf_free(&b);
}

static void test_getters(void **state)
{
	int err;
	cJSON *j = parse("{\"s\":\"abc\",\"n\":42,\"f\":1.5,\"b\":true,"
	    "\"z\":null,\"big\":9007199254740994,\"neg\":-3,\"e\":1e2}", 4, &err);
	const char *s = "untouched";
	int64_t v = -1;
	int bv = -1;

	(void)state;
	assert_non_null(j);
	assert_int_equal(jsonx_string(j, "s", 3, &s), 0);
	assert_string_equal(s, "abc");
	s = "untouched";
	assert_int_equal(jsonx_string(j, "s", 2, &s), -EINVAL);
	assert_int_equal(jsonx_string(j, "n", 10, &s), -EINVAL);
	assert_int_equal(jsonx_string(j, "missing", 10, &s), -ENOENT);
	assert_int_equal(jsonx_string(j, "z", 10, &s), -ENOENT);
	assert_int_equal(jsonx_string(j, "S", 10, &s), -ENOENT);
	assert_string_equal(s, "untouched");

	assert_int_equal(jsonx_int(j, "n", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	v = -1;
	assert_int_equal(jsonx_int(j, "n", 0, 41, &v), -EINVAL);
	assert_int_equal(jsonx_int(j, "n", 43, 100, &v), -EINVAL);
	assert_int_equal(jsonx_int(j, "f", 0, 100, &v), -EINVAL);
	assert_int_equal(jsonx_int(j, "s", 0, 100, &v), -EINVAL);
	assert_int_equal(jsonx_int(j, "b", 0, 100, &v), -EINVAL);
	assert_int_equal(jsonx_int(j, "big", 0, INT64_MAX, &v), -EINVAL);
	assert_int_equal(jsonx_int(j, "missing", 0, 100, &v), -ENOENT);
	assert_int_equal(v, -1);
	assert_int_equal(jsonx_int(j, "neg", -10, 0, &v), 0);
	assert_int_equal(v, -3);
	assert_int_equal(jsonx_int(j, "e", 0, 1000, &v), 0);
	assert_int_equal(v, 100);

	assert_int_equal(jsonx_bool(j, "b", &bv), 0);
	assert_int_equal(bv, 1);
	bv = -1;
	assert_int_equal(jsonx_bool(j, "n", &bv), -EINVAL);
	assert_int_equal(jsonx_bool(j, "s", &bv), -EINVAL);
	assert_int_equal(jsonx_bool(j, "missing", &bv), -ENOENT);
	assert_int_equal(bv, -1);

	char *p = jsonx_print(cJSON_GetObjectItemCaseSensitive(j, "s"));
	assert_string_equal(p, "\"abc\"");
	cJSON_free(p);
	cJSON_Delete(j);
}

static void test_is_integer(void **state)
{
	cJSON *n = cJSON_CreateNumber(9007199254740992.0);
	int64_t v = 0;

	(void)state;
	assert_true(jsonx_is_integer(n, &v));
	assert_int_equal(v, 9007199254740992LL);
	cJSON_SetNumberValue(n, 9007199254740994.0);
	assert_false(jsonx_is_integer(n, &v));
	cJSON_SetNumberValue(n, -0.5);
	assert_false(jsonx_is_integer(n, &v));
	cJSON_Delete(n);
	cJSON *s = cJSON_CreateString("1");
	assert_false(jsonx_is_integer(s, &v));
	cJSON_Delete(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_depth_count),
		cmocka_unit_test(test_depth_cap),
		cmocka_unit_test(test_size_cap),
		cmocka_unit_test(test_nul_in_string),
		cmocka_unit_test(test_control_bytes_outside_strings),
		cmocka_unit_test(test_trailing_garbage),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_duplicate_keys_large_object),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_is_integer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
