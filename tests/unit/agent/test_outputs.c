/* Output variables: the output file's parser and the caps on what a step
 * may set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>

#include "outputs.h"
#include "xalloc.h"

struct notes {
	size_t n;
	size_t lines[16];
	char why[16][128];
};

static void note(void *arg, size_t line, const char *why)
{
	struct notes *ns = arg;

	if (ns->n < 16) {
		ns->lines[ns->n] = line;
		snprintf(ns->why[ns->n], sizeof(ns->why[0]), "%s", why);
	}
	ns->n++;
}

static size_t parse(struct outputs *o, const char *s, struct notes *ns)
{
	return outputs_parse(o, s, strlen(s), note, ns);
}

static void test_parse_lines(void **state)
{
	struct outputs *o = outputs_new();
	struct notes ns = { 0 };
	(void)state;

	assert_int_equal(parse(o, "A=1\nB=x=y\r\n\n\r\nC=\nD=tab\there\nE=h\xc3\xa9",
	    &ns), 5);
	assert_int_equal(ns.n, 0);
	assert_int_equal(outputs_count(o), 5);
	assert_string_equal(outputs_name(o, 0), "A");
	assert_string_equal(outputs_value(o, 0), "1");
	assert_string_equal(outputs_value(o, 1), "x=y");
	assert_string_equal(outputs_value(o, 2), "");
	assert_string_equal(outputs_value(o, 3), "tab\there");
	assert_string_equal(outputs_value(o, 4), "h\xc3\xa9");
	assert_null(outputs_name(o, 5));
	/* Set again: the new value, in the old place. */
	assert_int_equal(parse(o, "A=2\n", &ns), 1);
	assert_int_equal(outputs_count(o), 5);
	assert_string_equal(outputs_name(o, 0), "A");
	assert_string_equal(outputs_value(o, 0), "2");
	outputs_free(o);
}

static void test_parse_refusals(void **state)
{
	struct outputs *o = outputs_new();
	struct notes ns = { 0 };
	char *name65 = xmalloc(80), *in;
	(void)state;

	memset(name65, 'N', 65);
	name65[65] = '\0';
	in = xasprintf("noequals\n=x\n1A=x\nbad-name=x\nsp ace=x\n"
	    "NU=\xff\xfe\nCTL=a\x1b[2J\nDEL=\x7f\nOVERLONG=\xc0\xaf\n"
	    "SUR=\xed\xa0\x80\n%s=x\nOK=yes\n", name65);
	assert_int_equal(parse(o, in, &ns), 1);
	assert_int_equal(ns.n, 11);
	for (size_t i = 0; i < 11; i++)
		assert_int_equal(ns.lines[i], i + 1);
	assert_string_equal(ns.why[0], "no '=' (expected NAME=VALUE)");
	for (size_t i = 1; i < 5; i++)
		assert_non_null(strstr(ns.why[i], "not a valid name"));
	for (size_t i = 5; i < 10; i++)
		assert_non_null(strstr(ns.why[i], "not UTF-8"));
	assert_non_null(strstr(ns.why[10], "not a valid name"));
	assert_int_equal(outputs_count(o), 1);
	assert_string_equal(outputs_value(o, 0), "yes");
	free(in);
	/* A NUL inside a line: the name or the value holds it, refused. */
	ns.n = 0;
	assert_int_equal(outputs_parse(o, "A\0B=1\nC=x\0y\n", 12, note, &ns), 0);
	assert_int_equal(ns.n, 2);
	/* No note function: refused all the same. */
	assert_int_equal(outputs_parse(o, "-x=1\n", 5, NULL, NULL), 0);
	free(name65);
	outputs_free(o);
}

static void test_caps(void **state)
{
	struct outputs *o = outputs_new();
	char name[16], *v = xmalloc(OUTPUTS_MAX_VALUE + 2);
	int r = 0;
	size_t i;
	(void)state;

	memset(v, 'v', OUTPUTS_MAX_VALUE + 1);
	assert_int_equal(outputs_set(o, "BIG", 3, v, OUTPUTS_MAX_VALUE + 1),
	    -EMSGSIZE);
	assert_int_equal(outputs_set(o, "MAX", 3, v, OUTPUTS_MAX_VALUE), 0);
	/* The count cap. */
	outputs_free(o);
	o = outputs_new();
	for (i = 0; i < OUTPUTS_MAX_COUNT + 1 && r == 0; i++) {
		snprintf(name, sizeof(name), "N%zu", i);
		r = outputs_set(o, name, strlen(name), "v", 1);
	}
	assert_int_equal(r, -E2BIG);
	assert_int_equal(i, OUTPUTS_MAX_COUNT + 1);
	assert_int_equal(outputs_count(o), OUTPUTS_MAX_COUNT);
	/* At the count cap an existing name may still change. */
	assert_int_equal(outputs_set(o, "N0", 2, "w", 1), 0);
	assert_string_equal(outputs_value(o, 0), "w");
	outputs_free(o);
	/* The total cap: 4 values of 4000 fit in 16 KiB, a fifth does not;
	 * making one shorter makes room. */
	o = outputs_new();
	memset(v, 'x', 4000);
	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "T%zu", i);
		assert_int_equal(outputs_set(o, name, 2, v, 4000), 0);
	}
	assert_int_equal(outputs_set(o, "T4", 2, v, 4000), -E2BIG);
	assert_int_equal(outputs_set(o, "T0", 2, "s", 1), 0);
	assert_int_equal(outputs_set(o, "T4", 2, v, 4000), 0);
	assert_int_equal(outputs_count(o), 5);
	assert_string_equal(outputs_strerror(-E2BIG), "the job's outputs are at "
	    "their cap (64 outputs, 16 KiB in all)");
	free(v);
	outputs_free(o);
}

static void test_names(void **state)
{
	struct outputs *o = outputs_new();
	(void)state;

	assert_int_equal(outputs_set(o, "_", 1, "", 0), 0);
	assert_int_equal(outputs_set(o, "a_B9", 4, "", 0), 0);
	assert_int_equal(outputs_set(o, "", 0, "", 0), -EINVAL);
	assert_int_equal(outputs_set(o, "9a", 2, "", 0), -EINVAL);
	assert_int_equal(outputs_set(o, "a.b", 3, "", 0), -EINVAL);
	assert_int_equal(outputs_set(o, "a\xc3\xa9", 3, "", 0), -EINVAL);
	/* The length given counts, not a NUL. */
	assert_int_equal(outputs_set(o, "AB", 1, "x", 1), 0);
	assert_string_equal(outputs_name(o, 2), "A");
	outputs_free(o);
	outputs_free(NULL);
	assert_int_equal(outputs_count(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_lines),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
