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

/* A JSON text ["<bytes>"] of n raw bytes inside the string. */
static int parse_raw_string(const char *bytes, size_t n, int *err)
{
	char text[64];
	cJSON *j;

	assert_true(n + 4 < sizeof(text));
	text[0] = '[';
	text[1] = '"';
	memcpy(text + 2, bytes, n);
	memcpy(text + 2 + n, "\"]", 2);
	j = jsonx_parse(text, n + 4, sizeof(text), 4, err);
	cJSON_Delete(j);
	return j != NULL;
}

/* RFC 3629 section 4, and Markus Kuhn's UTF-8 decoder stress test. */
static void test_utf8(void **state)
{
	static const struct { const char *s; size_t n; size_t bad; } bad[] = {
		{ "\xc0\xaf", 2, 0 },		/* overlong '/' */
		{ "\xc1\xbf", 2, 0 },		/* overlong U+007F */
		{ "\xe0\x80\xaf", 3, 0 },	/* overlong, 3 bytes */
		{ "\xe0\x9f\xbf", 3, 0 },	/* overlong U+07FF */
		{ "\xf0\x80\x80\xaf", 4, 0 },	/* overlong, 4 bytes */
		{ "\xf0\x8f\xbf\xbf", 4, 0 },	/* overlong U+FFFF */
		{ "\xed\xa0\x80", 3, 0 },	/* U+D800 */
		{ "\xed\xbf\xbf", 3, 0 },	/* U+DFFF */
		{ "\xed\xa0\x80\xed\xb0\x80", 6, 0 },	/* a CESU-8 pair */
		{ "\xf4\x90\x80\x80", 4, 0 },	/* U+110000 */
		{ "\xf5\x80\x80\x80", 4, 0 },
		{ "\xff", 1, 0 }, { "\xfe", 1, 0 },
		{ "\x80", 1, 0 },		/* a lone continuation byte */
		{ "a\xbf", 2, 1 },
		{ "ab\xc3", 3, 2 },		/* truncated at the end */
		{ "\xe2\x82", 2, 0 },
		{ "\xf0\x9f\x98", 3, 0 },
		{ "\xc3(", 2, 0 },		/* lead byte, then ASCII */
		{ "\xe2\x28\xa1", 3, 0 },
		{ "\xf0\x9f\x98\x80\x80", 5, 4 },	/* one continuation too many */
	};
	static const struct { const char *s; size_t n; } good[] = {
		{ "", 0 }, { "plain", 5 },
		{ "\x7f", 1 }, { "\xc2\x80", 2 }, { "\xdf\xbf", 2 },
		{ "\xe0\xa0\x80", 3 }, { "\xed\x9f\xbf", 3 },	/* U+D7FF */
		{ "\xee\x80\x80", 3 }, { "\xef\xbf\xbd", 3 },	/* U+FFFD */
		{ "\xef\xbf\xbf", 3 },
		{ "\xf0\x90\x80\x80", 4 }, { "\xf4\x8f\xbf\xbf", 4 },	/* U+10FFFF */
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14 },
	};
	size_t at;
	int err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		at = 999;
		if (jsonx_utf8_valid(bad[i].s, bad[i].n, &at))
			fail_msg("valid: case %zu", i);
		if (at != bad[i].bad)
			fail_msg("case %zu: at %zu, expected %zu", i, at, bad[i].bad);
		if (parse_raw_string(bad[i].s, bad[i].n, &err) ||
		    err != JSONX_UTF8)
			fail_msg("parsed, or not JSONX_UTF8: case %zu", i);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!jsonx_utf8_valid(good[i].s, good[i].n, &at))
			fail_msg("invalid at %zu: good case %zu", at, i);
		if (!parse_raw_string(good[i].s, good[i].n, &err))
			fail_msg("refused (%d): good case %zu", err, i);
	}
	/* Outside strings too (cJSON would call it a syntax error anyway). */
	expect_err("{\"a\":1}\xc0\xaf", 4, JSONX_UTF8);
	expect_err("{\"\x80\":1}", 4, JSONX_UTF8);
}

/* cJSON decodes \u escapes itself: a lone or reversed surrogate is a
 * syntax error, a pair is one character, and what comes out is UTF-8. */
static void test_surrogate_escapes(void **state)
{
	static const char *const refused[] = {
		"[\"\\ud800\"]", "[\"\\udc00\"]", "[\"\\udbff\"]", "[\"\\udfff\"]",
		"[\"\\ud800x\"]", "[\"\\ud800\\u0041\"]", "[\"\\udc00\\ud800\"]",
		"[\"\\ud800\\ud800\"]", "[\"a\\ud834\"]",
	};
	int err;
	cJSON *j;

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		expect_err(refused[i], 4, JSONX_SYNTAX);
	j = parse("[\"\\ud83d\\ude00\\u00e9\\uffff\\udbff\\udfff\"]", 4, &err);
	assert_non_null(j);
	const char *v = cJSON_GetArrayItem(j, 0)->valuestring;
	assert_string_equal(v, "\xf0\x9f\x98\x80\xc3\xa9\xef\xbf\xbf"
	    "\xf4\x8f\xbf\xbf");
	assert_true(jsonx_utf8_valid(v, strlen(v), NULL));
	cJSON_Delete(j);
}

/* What the queue echoes (a path, a header) or cut short must still print
 * as valid UTF-8, and parse back. */
static void test_print_is_utf8(void **state)
{
	cJSON *o = cJSON_CreateObject(), *back;
	char *s;
	int err;

	(void)state;
	cJSON_AddStringToObject(o, "m", "no endpoint /v1/\xc0\xaf..\x80x\xe2\x82");
	cJSON_AddStringToObject(o, "ok", "caf\xc3\xa9");
	cJSON_AddStringToObject(o, "k\xff", "v");
	s = jsonx_print(o);
	assert_true(jsonx_utf8_valid(s, strlen(s), NULL));
	assert_string_equal(s, "{\"m\":\"no endpoint /v1/\\ufffd\\ufffd..\\ufffdx"
	    "\\ufffd\\ufffd\",\"ok\":\"caf\xc3\xa9\",\"k\\ufffd\":\"v\"}");
	back = jsonx_parse(s, strlen(s), 4096, 4, &err);
	assert_non_null(back);
	cJSON_Delete(back);
	cJSON_free(s);
	cJSON_Delete(o);
	/* Valid text is printed unchanged. */
	o = cJSON_CreateString("\xf0\x9f\x98\x80");
	s = jsonx_print(o);
	assert_string_equal(s, "\"\xf0\x9f\x98\x80\"");
	cJSON_free(s);
	cJSON_Delete(o);
}

static void test_utf8_cut(void **state)
{
	const char *s = "ab\xc3\xa9" "c\xf0\x9f\x98\x80";

	(void)state;
	assert_int_equal(jsonx_utf8_cut(s, 9, 100), 9);
	assert_int_equal(jsonx_utf8_cut(s, 9, 9), 9);
	assert_int_equal(jsonx_utf8_cut(s, 9, 8), 5);
	assert_int_equal(jsonx_utf8_cut(s, 9, 6), 5);
	assert_int_equal(jsonx_utf8_cut(s, 9, 5), 5);
	assert_int_equal(jsonx_utf8_cut(s, 9, 4), 4);
	assert_int_equal(jsonx_utf8_cut(s, 9, 3), 2);
	assert_int_equal(jsonx_utf8_cut(s, 9, 0), 0);
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
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_surrogate_escapes),
		cmocka_unit_test(test_print_is_utf8),
		cmocka_unit_test(test_utf8_cut),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_duplicate_keys_large_object),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_is_integer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
