/* Capped buffers: everything up to the cap fits, one byte more fails and
 * leaves the buffer as it was. */
#include "testkit.h"

#include <errno.h>

static void test_append_up_to_cap(void **state)
{
	struct buf b = BUF_INIT(10);

	(void)state;
	assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(buf_cstr(&b), "0123456789");
	assert_int_equal(buf_putc(&b, 'x'), -E2BIG);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(buf_cstr(&b), "0123456789");
	/* The allocation never grows past max + 1 (for the NUL). */
	assert_true(b.cap <= 11);
	buf_free(&b);
}

static void test_failed_append_leaves_buffer(void **state)
{
	struct buf b = BUF_INIT(8);

	(void)state;
	assert_int_equal(buf_puts(&b, "abc"), 0);
	assert_int_equal(buf_append(&b, "defghi", 6), -E2BIG);
	assert_int_equal(b.len, 3);
	assert_string_equal(buf_cstr(&b), "abc");
	assert_int_equal(buf_append(&b, "defgh", 5), 0);
	assert_string_equal(buf_cstr(&b), "abcdefgh");
	buf_free(&b);
}

/* extra so large that len + extra wraps must not pass the cap check. */
static void test_reserve_overflow(void **state)
{
	struct buf b = BUF_INIT(100);
	struct buf big = BUF_INIT(SIZE_MAX);

	(void)state;
	assert_int_equal(buf_puts(&b, "abc"), 0);
	assert_int_equal(buf_reserve(&b, SIZE_MAX), -E2BIG);
	assert_int_equal(buf_reserve(&b, SIZE_MAX - 1), -E2BIG);
	assert_int_equal(buf_reserve(&b, 97), 0);
	assert_int_equal(buf_reserve(&b, 98), -E2BIG);
	/* A buffer without a practical cap still works (max + 1 wraps). */
	assert_int_equal(buf_puts(&big, "no cap"), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf_puts(&big, "0123456789"), 0);
	assert_int_equal(big.len, 1006);
	assert_true(big.cap >= 1007);
	assert_int_equal(buf_reserve(&big, SIZE_MAX), -E2BIG);
	assert_int_equal(buf_reserve(&big, SIZE_MAX - big.len), -E2BIG);
	buf_free(&b);
	buf_free(&big);
}

static void test_zero_cap(void **state)
{
	struct buf b = BUF_INIT(0);

	(void)state;
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_putc(&b, 'a'), -E2BIG);
	assert_int_equal(buf_printf(&b, "%d", 1), -E2BIG);
	buf_free(&b);
}

static void test_printf(void **state)
{
	struct buf b = BUF_INIT(1000);
	char big[600];

	(void)state;
	assert_int_equal(buf_printf(&b, "%s=%d;", "a", 42), 0);
	assert_string_equal(buf_cstr(&b), "a=42;");
	/* Longer than the 256-byte first try. */
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(buf_printf(&b, "[%s]", big), 0);
	assert_int_equal(b.len, 5 + 601);
	assert_int_equal(b.data[5], '[');
	assert_int_equal(b.data[b.len - 1], ']');
	assert_int_equal(b.data[b.len], '\0');
	/* Past the cap: refused whole, nothing appended. */
	assert_int_equal(buf_printf(&b, "%s", big), -E2BIG);
	assert_int_equal(b.len, 606);
	buf_free(&b);
}

static void test_printf_small_over_cap(void **state)
{
	struct buf b = BUF_INIT(4);

	(void)state;
	assert_int_equal(buf_printf(&b, "%d", 1234), 0);
	assert_int_equal(buf_printf(&b, "%d", 5), -E2BIG);
	assert_string_equal(buf_cstr(&b), "1234");
	buf_free(&b);
}

static void test_consume_reset_steal(void **state)
{
	struct buf b = BUF_INIT(64);
	size_t n;

	(void)state;
	buf_puts(&b, "hello world");
	buf_consume(&b, 6);
	assert_string_equal(buf_cstr(&b), "world");
	assert_int_equal(b.len, 5);
	buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	buf_puts(&b, "again");
	char *s = buf_steal(&b, &n);
	assert_string_equal(s, "again");
	assert_int_equal(n, 5);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(s);
	/* Stealing from an empty buffer gives an empty string, not NULL. */
	s = buf_steal(&b, &n);
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(n, 0);
	free(s);
	/* The cap survives a steal. */
	assert_int_equal(buf_append(&b, "x", 1), 0);
	assert_int_equal(b.max, 64);
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	buf_free(&b);
	buf_free(&b);	/* twice is fine */
	buf_free(NULL);
}

static void test_binary_data(void **state)
{
	struct buf b = BUF_INIT(16);
	const char bin[] = { 'a', '\0', 'b', '\0' };

	(void)state;
	assert_int_equal(buf_append(&b, bin, sizeof(bin)), 0);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, bin, 4);
	assert_int_equal(b.data[4], '\0');
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_up_to_cap),
		cmocka_unit_test(test_failed_append_leaves_buffer),
		cmocka_unit_test(test_reserve_overflow),
		cmocka_unit_test(test_zero_cap),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_printf_small_over_cap),
		cmocka_unit_test(test_consume_reset_steal),
		cmocka_unit_test(test_binary_data),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
