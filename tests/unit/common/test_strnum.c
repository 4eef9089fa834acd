/* strtonum-style parsing: whole string, bounds, a reason, output untouched
 * on failure. */
#include "testkit.h"

#include <errno.h>

#include "strnum.h"

#define SENTINEL ((int64_t)-777)

/* Expects failure with reason why, and v left alone. */
static void bad_i64(const char *s, int64_t min, int64_t max, const char *why)
{
	int64_t v = SENTINEL;
	const char *errstr = NULL;

	if (strnum_i64(s, min, max, &v, &errstr) != -EINVAL)
		fail_msg("'%s' was accepted", s ? s : "(null)");
	assert_int_equal(v, SENTINEL);
	assert_non_null(errstr);
	assert_string_equal(errstr, why);
}

static void test_i64_good(void **state)
{
	int64_t v;
	const char *errstr = "unset";

	(void)state;
	assert_int_equal(strnum_i64("0", 0, 10, &v, &errstr), 0);
	assert_int_equal(v, 0);
	assert_null(errstr);
	assert_int_equal(strnum_i64("-5", -10, 10, &v, NULL), 0);
	assert_int_equal(v, -5);
	assert_int_equal(strnum_i64("10", 0, 10, &v, NULL), 0);
	assert_int_equal(v, 10);
	assert_int_equal(strnum_i64("9223372036854775807", INT64_MIN, INT64_MAX,
	    &v, NULL), 0);
	assert_int_equal(v, INT64_MAX);
	assert_int_equal(strnum_i64("-9223372036854775808", INT64_MIN,
	    INT64_MAX, &v, NULL), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(strnum_i64("007", 0, 10, &v, NULL), 0);
	assert_int_equal(v, 7);
}

static void test_i64_bounds(void **state)
{
	(void)state;
	bad_i64("11", 0, 10, "too large");
	bad_i64("-1", 0, 10, "too small");
	bad_i64("9223372036854775808", INT64_MIN, INT64_MAX, "too large");
	bad_i64("-9223372036854775809", INT64_MIN, INT64_MAX, "too small");
	bad_i64("99999999999999999999999", 0, 10, "too large");
}

static void test_i64_invalid(void **state)
{
	static const char *const bad[] = {
		"", " 1", "1 ", "\t1", "1\n", "abc", "1x", "0x10", "1.5", "1e3",
		"--1", "+-1", "1,000", "١",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		bad_i64(bad[i], INT64_MIN, INT64_MAX, "invalid");
	bad_i64(NULL, 0, 10, "invalid");
}

static void test_int(void **state)
{
	int v = 99;
	const char *errstr;

	(void)state;
	assert_int_equal(strnum_int("65535", 1, 65535, &v, &errstr), 0);
	assert_int_equal(v, 65535);
	v = 99;
	assert_int_equal(strnum_int("65536", 1, 65535, &v, &errstr), -EINVAL);
	assert_string_equal(errstr, "too large");
	assert_int_equal(v, 99);
	assert_int_equal(strnum_int("2147483648", INT32_MIN, INT32_MAX, &v,
	    &errstr), -EINVAL);
	assert_string_equal(errstr, "too large");
	assert_int_equal(strnum_int("0", 1, 10, &v, &errstr), -EINVAL);
	assert_string_equal(errstr, "too small");
}

static void test_duration(void **state)
{
	static const struct { const char *s; int64_t v; } good[] = {
		{ "90", 90 }, { "90s", 90 }, { "15m", 900 }, { "2h", 7200 },
		{ "7d", 604800 }, { "0s", 0 }, { "30d", 2592000 },
	};
	int64_t v;
	const char *errstr;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(strnum_duration(good[i].s, 0, INT64_MAX, &v,
		    &errstr), 0);
		assert_int_equal(v, good[i].v);
	}
	v = SENTINEL;
	assert_int_equal(strnum_duration("1w", 0, INT64_MAX, &v, &errstr), -EINVAL);
	assert_string_equal(errstr, "invalid");
	assert_int_equal(strnum_duration("1H", 0, INT64_MAX, &v, &errstr), -EINVAL);
	assert_int_equal(strnum_duration("1 h", 0, INT64_MAX, &v, &errstr), -EINVAL);
	assert_int_equal(strnum_duration("h", 0, INT64_MAX, &v, &errstr), -EINVAL);
	assert_int_equal(strnum_duration("1hh", 0, INT64_MAX, &v, &errstr), -EINVAL);
	assert_int_equal(v, SENTINEL);
	/* The bounds apply after scaling. */
	assert_int_equal(strnum_duration("31d", 1, 30 * 86400, &v, &errstr), -EINVAL);
	assert_string_equal(errstr, "too large");
	assert_int_equal(strnum_duration("0m", 1, 30 * 86400, &v, &errstr), -EINVAL);
	assert_string_equal(errstr, "too small");
	/* Scaling must not overflow. */
	assert_int_equal(strnum_duration("106751991167301d", 0, INT64_MAX, &v,
	    &errstr), -EINVAL);
	assert_string_equal(errstr, "too large");
	assert_int_equal(strnum_duration("-106751991167301d", INT64_MIN, 0, &v,
	    &errstr), -EINVAL);
	assert_string_equal(errstr, "too small");
	assert_int_equal(v, SENTINEL);
	assert_int_equal(strnum_duration("106751991167300d", 0, INT64_MAX, &v,
	    &errstr), 0);
	assert_int_equal(v, 106751991167300LL * 86400);
}

static void test_size(void **state)
{
	static const struct { const char *s; int64_t v; } good[] = {
		{ "512", 512 }, { "512b", 512 }, { "64k", 65536 },
		{ "64K", 65536 }, { "64KiB", 65536 }, { "64kb", 65536 },
		{ "10M", 10485760 }, { "10MiB", 10485760 },
		{ "2G", 2147483648LL }, { "1GiB", 1073741824 },
		{ "1gb", 1073741824 }, { "1T", 1099511627776LL },
		{ "1TiB", 1099511627776LL },
	};
	int64_t v;
	const char *errstr;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (strnum_size(good[i].s, 0, INT64_MAX, &v, &errstr) != 0)
			fail_msg("'%s' refused: %s", good[i].s, errstr);
		assert_int_equal(v, good[i].v);
	}
	v = SENTINEL;
	assert_int_equal(strnum_size("1P", 0, INT64_MAX, &v, &errstr), -EINVAL);
	assert_string_equal(errstr, "invalid");
	assert_int_equal(strnum_size("1 k", 0, INT64_MAX, &v, &errstr), -EINVAL);
	assert_int_equal(strnum_size("1kk", 0, INT64_MAX, &v, &errstr), -EINVAL);
	assert_int_equal(strnum_size("k", 0, INT64_MAX, &v, &errstr), -EINVAL);
	assert_int_equal(strnum_size("8388608T", 0, INT64_MAX, &v, &errstr),
	    -EINVAL);
	assert_string_equal(errstr, "too large");
	assert_int_equal(strnum_size("2G", 0, 1 << 30, &v, &errstr), -EINVAL);
	assert_string_equal(errstr, "too large");
	assert_int_equal(v, SENTINEL);
}

static void test_fixed9(void **state)
{
	static const struct { const char *s; int64_t v; } good[] = {
		{ "2", 2000000000 }, { "0.5", 500000000 }, { "0.01", 10000000 },
		{ "1.000000001", 1000000001 }, { "1024", 1024000000000LL },
		{ "0", 0 },
	};
	static const char *const bad[] = {
		"", ".5", "1.", "-1", "+1", "1.0000000001", "1e9", " 1", "1 ",
		"0x1", "1..2", "1.2.3", "nan", "inf",
	};
	int64_t v;
	const char *errstr;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(strnum_fixed9(good[i].s, 0, INT64_MAX, &v,
		    &errstr), 0);
		assert_int_equal(v, good[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = SENTINEL;
		if (strnum_fixed9(bad[i], 0, INT64_MAX, &v, &errstr) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(v, SENTINEL);
	}
	assert_int_equal(strnum_fixed9("9223372037", 0, INT64_MAX, &v, &errstr),
	    -EINVAL);
	assert_string_equal(errstr, "too large");
	assert_int_equal(strnum_fixed9("0.001", 10000000, INT64_MAX, &v,
	    &errstr), -EINVAL);
	assert_string_equal(errstr, "too small");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_i64_good),
		cmocka_unit_test(test_i64_bounds),
		cmocka_unit_test(test_i64_invalid),
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_fixed9),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
