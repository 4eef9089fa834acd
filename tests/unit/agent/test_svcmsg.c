/* ##skiff[...] service messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "svcmsg.h"

static int parse(const char *s, struct svcmsg *m)
{
	return svcmsg_parse(s, strlen(s), m);
}

static void test_artifact(void **state)
{
	struct svcmsg m;
	(void)state;
	assert_int_equal(parse("##skiff[artifact path='dist/a b.tgz' name='x']", &m), 1);
	assert_string_equal(m.type, "artifact");
	assert_string_equal(svcmsg_get(&m, "path"), "dist/a b.tgz");
	assert_string_equal(svcmsg_get(&m, "name"), "x");
	assert_null(svcmsg_get(&m, "other"));
	assert_int_equal(parse("##skiff[artifact path='it|'s ||here']\r", &m), 1);
	assert_string_equal(svcmsg_get(&m, "path"), "it's |here");
}

static void test_not_or_bad(void **state)
{
	struct svcmsg m;
	(void)state;
	assert_int_equal(parse("hello", &m), 0);
	assert_int_equal(parse("# skiff[artifact path='x']", &m), 0);
	assert_int_equal(parse("##skiff[artifact path='x'", &m), -22);
	assert_int_equal(parse("##skiff[artifact path=x]", &m), -22);
	assert_int_equal(parse("##skiff[artifact path='x|y']", &m), -22);
	assert_int_equal(parse("##skiff[]", &m), -22);
	assert_int_equal(parse("##skiff[artifact path='unterminated]", &m), -22);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_artifact),
		cmocka_unit_test(test_not_or_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
