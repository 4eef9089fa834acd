/* The web view's helpers: its session cookie, the origin of a login, the
 * file name of a download, its assets. */
#include "qtest.h"

#include <errno.h>

#include "ui.h"

static void test_cookie(void **state)
{
	const char *t;
	size_t n;

	(void)state;
	assert_int_equal(ui_cookie_token("skiff_view=svw_abc", &t, &n), 0);
	assert_int_equal(n, 7);
	assert_memory_equal(t, "svw_abc", 7);
	assert_int_equal(ui_cookie_token("a=b; skiff_view=svw_x; c=d", &t, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(t, "svw_x", 5);
	assert_int_equal(ui_cookie_token("a=b;skiff_view=svw_y ", &t, &n), 0);
	assert_int_equal(n, 5);
	/* A name that only ends like ours is not ours. */
	assert_int_equal(ui_cookie_token("xskiff_view=svw_z", &t, &n), -ENOENT);
	assert_int_equal(ui_cookie_token(NULL, &t, &n), -ENOENT);
	assert_int_equal(ui_cookie_token("", &t, &n), -ENOENT);
	/* Twice (one set by a sibling host, say): neither is trusted. */
	assert_int_equal(ui_cookie_token("skiff_view=a; skiff_view=b", &t, &n),
	    -EINVAL);
	assert_int_equal(ui_cookie_token("skiff_view=", &t, &n), -EINVAL);
	assert_int_equal(ui_cookie_token("skiff_view=\"q\"", &t, &n), -EINVAL);
	assert_int_equal(ui_cookie_token("skiff_view=a b", &t, &n), -EINVAL);
}

static void test_origin(void **state)
{
	(void)state;
	assert_true(ui_same_origin(NULL, "h:1", NULL));
	assert_true(ui_same_origin("https://h:1", "h:1", "same-origin"));
	assert_true(ui_same_origin("http://127.0.0.1:8", "127.0.0.1:8", NULL));
	assert_false(ui_same_origin("https://evil:1", "h:1", NULL));
	assert_false(ui_same_origin("https://h:1.evil", "h:1", NULL));
	assert_false(ui_same_origin("null", "h:1", NULL));
	assert_false(ui_same_origin("https://h:1", NULL, NULL));
	assert_false(ui_same_origin(NULL, "h:1", "cross-site"));
	assert_false(ui_same_origin(NULL, "h:1", "same-site"));
}

static void test_disposition(void **state)
{
	char d[UI_DISPOSITION_MAX];

	(void)state;
	ui_disposition("dist/app-1.2.tar.gz", d);
	assert_string_equal(d, "attachment; filename=\"app-1.2.tar.gz\"");
	ui_disposition("a\"b;\r\nc<d>.txt", d);
	assert_string_equal(d, "attachment; filename=\"a_b___c_d_.txt\"");
	ui_disposition("x/..", d);
	assert_string_equal(d, "attachment; filename=\"artifact\"");
	ui_disposition("\xc3\xa9t\xc3\xa9", d);
	assert_string_equal(d, "attachment; filename=\"__t__\"");
}

static void test_assets(void **state)
{
	const struct ui_asset *a;

	(void)state;
	assert_non_null(a = ui_asset_find(""));
	assert_non_null(strstr(a->data, "<script src=\"/ui/app.js\""));
	assert_non_null(a = ui_asset_find("app.js"));
	assert_string_equal(a->type, "text/javascript; charset=utf-8");
	assert_null(ui_asset_find("../queue.db"));
	assert_null(ui_asset_find("app.js/"));
	/* No inline script in the page: the CSP would refuse it anyway. */
	a = ui_asset_find("");
	assert_null(strstr(a->data, "<script>"));
	assert_null(strstr(a->data, "onclick"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cookie),
		cmocka_unit_test(test_origin),
		cmocka_unit_test(test_disposition),
		cmocka_unit_test(test_assets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
