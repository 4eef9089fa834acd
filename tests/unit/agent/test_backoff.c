/* Backoff: grows, is capped, is never zero, honours Retry-After, resets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

static void test_bounds(void **state)
{
	struct backoff b;
	(void)state;
	backoff_init(&b, 1000, 60000);
	int64_t lo[] = { 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000 };
	int64_t hi[] = { 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000 };
	for (int i = 0; i < 8; i++) {
		int64_t d = backoff_next(&b, -1);
		assert_in_range(d, lo[i], hi[i]);
	}
	backoff_reset(&b);
	assert_in_range(backoff_next(&b, -1), 500, 1000);
	assert_int_equal(backoff_next(&b, 120), 120000);
}

static void test_spread(void **state)
{
	struct backoff b;
	int64_t min = INT64_MAX, max = 0;
	(void)state;
	/* Agents retrying together must not stay in lock step. */
	for (int i = 0; i < 200; i++) {
		backoff_init(&b, 1000, 60000);
		for (int k = 0; k < 6; k++)
			backoff_next(&b, -1);
		int64_t d = backoff_next(&b, -1);
		if (d < min)
			min = d;
		if (d > max)
			max = d;
	}
	assert_true(max - min > 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_spread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
