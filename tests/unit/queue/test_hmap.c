/* The hash map: put, get, delete, growth, iteration. */
#include "qtest.h"

#include <errno.h>

#include "hmap.h"

static void test_basic(void **state)
{
	struct hmap *m;
	int a = 1, b = 2;

	(void)state;
	assert_int_equal(sodium_init() < 0, 0);
	m = hmap_new();
	assert_null(hmap_get(m, "a"));
	assert_int_equal(hmap_put(m, "a", &a), 0);
	assert_int_equal(hmap_put(m, "a", &b), -EEXIST);
	assert_ptr_equal(hmap_get(m, "a"), &a);
	assert_int_equal(hmap_put(m, "b", &b), 0);
	assert_int_equal(hmap_count(m), 2);
	assert_ptr_equal(hmap_del(m, "a"), &a);
	assert_null(hmap_del(m, "a"));
	assert_null(hmap_get(m, "a"));
	assert_int_equal(hmap_count(m), 1);
	hmap_free(m);
	hmap_free(NULL);
}

static void test_many_and_iterate(void **state)
{
	enum { N = 5000 };
	static char keys[N][16];
	static int seen[N];
	struct hmap *m = hmap_new();
	struct hmap_iter it = { 0 };
	int *v, n = 0;

	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "key-%d", i);
		assert_int_equal(hmap_put(m, keys[i], &seen[i]), 0);
	}
	for (int i = 0; i < N; i++)
		assert_ptr_equal(hmap_get(m, keys[i]), &seen[i]);
	while ((v = hmap_next(m, &it)) != NULL) {
		(*v)++;
		n++;
	}
	assert_int_equal(n, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(seen[i], 1);
	for (int i = 0; i < N; i += 2)
		assert_ptr_equal(hmap_del(m, keys[i]), &seen[i]);
	assert_int_equal(hmap_count(m), N / 2);
	memset(&it, 0, sizeof(it));
	n = 0;
	while (hmap_next(m, &it))
		n++;
	assert_int_equal(n, N / 2);
	hmap_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_many_and_iterate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
