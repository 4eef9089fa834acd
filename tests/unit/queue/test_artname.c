/* Artifact names (common/artname.c, built into the queue and skiffctl):
 * nothing that could escape a directory, nothing that is not a file name. */
#include "qtest.h"

#include "artname.h"

static int ok(const char *s)
{
	return artname_valid(s, strlen(s));
}

static void test_names(void **state)
{
	char name[300];

	(void)state;
	assert_true(ok("a"));
	assert_true(ok("dist/app.tar.gz"));
	assert_true(ok(".hidden/..x/x.."));
	assert_true(ok("with space/ünïcode"));
	assert_false(ok(""));
	assert_false(ok("/abs"));
	assert_false(ok("../x"));
	assert_false(ok("a/../b"));
	assert_false(ok("a/.."));
	assert_false(ok("./a"));
	assert_false(ok("a/./b"));
	assert_false(ok("a//b"));
	assert_false(ok("a/"));
	assert_false(ok("a\\b"));
	assert_false(ok("a\tb"));
	assert_false(ok("a\x7f"));
	assert_false(artname_valid("a\0b", 3));
	memset(name, 'n', sizeof(name));
	assert_true(artname_valid(name, 255));
	assert_false(artname_valid(name, 256));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
