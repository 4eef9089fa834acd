/* Prometheus text: histogram buckets are cumulative, labels escaped. */
#include "qtest.h"

#include "buf.h"
#include "metrics.h"

static void test_histogram(void **state)
{
	struct histo h;
	struct buf b = BUF_INIT(1 << 20);
	const char *l[] = { "pool", "p", NULL };

	(void)state;
	memset(&h, 0, sizeof(h));
	metrics_observe(&h, 0.0005);
	metrics_observe(&h, 0.001);
	metrics_observe(&h, 0.003);
	metrics_observe(&h, 7200);
	metrics_observe(&h, -1);
	metrics_histo(&b, "x_seconds", l, &h);
	assert_non_null(strstr(b.data, "x_seconds_bucket{pool=\"p\",le=\"0.001\"} 3\n"));
	assert_non_null(strstr(b.data, "x_seconds_bucket{pool=\"p\",le=\"0.005\"} 4\n"));
	assert_non_null(strstr(b.data, "x_seconds_bucket{pool=\"p\",le=\"3600\"} 4\n"));
	assert_non_null(strstr(b.data, "x_seconds_bucket{pool=\"p\",le=\"+Inf\"} 5\n"));
	assert_non_null(strstr(b.data, "x_seconds_count{pool=\"p\"} 5\n"));
	assert_non_null(strstr(b.data, "x_seconds_sum{pool=\"p\"} 7200.0045\n"));
	buf_free(&b);
}

static void test_samples_and_escaping(void **state)
{
	struct buf b = BUF_INIT(4096);
	const char *l[] = { "pool", "a\"b\\c\nd", "state", "idle", NULL };

	(void)state;
	metrics_header(&b, "skiff_x", "gauge", "Help text.");
	metrics_sample(&b, "skiff_x", l, 3);
	metrics_sample(&b, "skiff_y", NULL, 0.25);
	assert_string_equal(b.data,
	    "# HELP skiff_x Help text.\n# TYPE skiff_x gauge\n"
	    "skiff_x{pool=\"a\\\"b\\\\c\\nd\",state=\"idle\"} 3\n"
	    "skiff_y 0.25\n");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_samples_and_escaping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
