/* job.caches (common/job.c, docs/protocol.md 3.4): the rules and limits. */
#include "testkit.h"

#include "buf.h"

#define JOB(caches) "{\"name\":\"x\",\"caches\":" caches ",\"steps\":" \
	"[{\"name\":\"s\",\"script\":\"true\"}]}"
#define OK "{\"key\":\"npm-linux-0a1b\",\"paths\":[\"node_modules\",\"a/b\"]," \
	"\"restore_keys\":[\"npm-linux-\",\"npm-\"]}"

static int parse(const char *job_json, struct job **out, struct err *e)
{
	char *p = tk_payload(job_json);
	int r;

	memset(e, 0, sizeof(*e));
	*out = NULL;
	r = job_parse(p, strlen(p), out, e);
	free(p);
	return r;
}

static void test_valid(void **state)
{
	struct job *j;
	struct err e;

	(void)state;
	assert_ok(parse(JOB("[" OK ",{\"key\":\"k2\",\"paths\":[\"x\"]}]"), &j,
	    &e), &e);
	assert_int_equal(j->ncaches, 2);
	assert_string_equal(j->caches[0].key, "npm-linux-0a1b");
	assert_int_equal(j->caches[0].npaths, 2);
	assert_string_equal(j->caches[0].paths[1], "a/b");
	assert_int_equal(j->caches[0].nrestore, 2);
	assert_string_equal(j->caches[0].restore_keys[1], "npm-");
	assert_int_equal(j->caches[1].nrestore, 0);
	job_free(j);
	assert_ok(parse(TK_JOB_MIN, &j, &e), &e);
	assert_int_equal(j->ncaches, 0);
	job_free(j);
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
		JOB("{}"),
		JOB("[1]"),
		JOB("[{\"paths\":[\"x\"]}]"),
		JOB("[{\"key\":\"a b\",\"paths\":[\"x\"]}]"),
		JOB("[{\"key\":\"-\\u00e9\",\"paths\":[\"x\"]}]"),
		JOB("[{\"key\":\"k\",\"paths\":[]}]"),
		JOB("[{\"key\":\"k\"}]"),
		JOB("[{\"key\":\"k\",\"paths\":[\"../up\"]}]"),
		JOB("[{\"key\":\"k\",\"paths\":[\"/abs\"]}]"),
		JOB("[{\"key\":\"k\",\"paths\":[\"a/../../b\"]}]"),
		JOB("[{\"key\":\"k\",\"paths\":[\"\"]}]"),
		JOB("[{\"key\":\"k\",\"paths\":[\"x\"],\"restore_keys\":[\"a\\nb\"]}]"),
		JOB("[{\"key\":\"k\",\"paths\":[\"x\"],\"restore_keys\":\"k\"}]"),
		JOB("[{\"key\":\"k\",\"paths\":[\"x\"]},{\"key\":\"k\",\"paths\":[\"y\"]}]"),
		JOB("[{\"key\":1,\"paths\":[\"x\"]}]"),
	};
	struct job *j;
	struct err e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &j, &e) == 0)
			fail_msg("accepted: %s", bad[i]);
		assert_null(j);
	}
}

static void test_limits(void **state)
{
	struct buf b;
	struct job *j;
	struct err e;
	char key[300];

	(void)state;
	/* Five caches, nine restore keys, 33 paths, a 256-byte key. */
	char *five = xasprintf(JOB("[%s,%s,%s,%s,%s]"),
	    "{\"key\":\"a\",\"paths\":[\"x\"]}", "{\"key\":\"b\",\"paths\":[\"x\"]}",
	    "{\"key\":\"c\",\"paths\":[\"x\"]}", "{\"key\":\"d\",\"paths\":[\"x\"]}",
	    "{\"key\":\"e\",\"paths\":[\"x\"]}");
	assert_true(parse(five, &j, &e) < 0);
	free(five);
	buf_init(&b, 1 << 20);
	buf_puts(&b, "[{\"key\":\"k\",\"paths\":[\"x\"],\"restore_keys\":[");
	for (int i = 0; i < 9; i++)
		buf_puts(&b, i ? ",\"r\"" : "\"r\"");
	buf_puts(&b, "]}]");
	char *nine = xasprintf("{\"name\":\"x\",\"caches\":%s,\"steps\":[{\"name\":"
	    "\"s\",\"script\":\"true\"}]}", buf_cstr(&b));
	assert_true(parse(nine, &j, &e) < 0);
	free(nine);
	buf_free(&b);
	memset(key, 'k', 256);
	key[256] = '\0';
	char *long_key = xasprintf("{\"name\":\"x\",\"caches\":[{\"key\":\"%s\","
	    "\"paths\":[\"x\"]}],\"steps\":[{\"name\":\"s\",\"script\":\"true\"}]}",
	    key);
	assert_true(parse(long_key, &j, &e) < 0);
	free(long_key);
	key[255] = '\0';
	long_key = xasprintf("{\"name\":\"x\",\"caches\":[{\"key\":\"%s\","
	    "\"paths\":[\"x\"]}],\"steps\":[{\"name\":\"s\",\"script\":\"true\"}]}",
	    key);
	assert_ok(parse(long_key, &j, &e), &e);
	job_free(j);
	free(long_key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
