/*
 * job.services (docs/protocol.md section 3.4): the parsed values of a valid
 * list, and a rejection with its reason code for each rule: names (DNS
 * label, unique), images, env, command, ports, wait and the limits.
 */
#include "testkit.h"

#include <errno.h>

struct fx {
	struct err e;
	struct job *job;
};

static int setup(void **state)
{
	*state = xcalloc(1, sizeof(struct fx));
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	job_free(f->job);
	free(f);
	return 0;
}

/* job_parse of a payload with valid claims around a job whose "services"
 * member is services_json. */
static int run(struct fx *f, const char *services_json)
{
	char *job = xasprintf("{\"name\":\"svc\",\"steps\":[{\"name\":\"s\","
	    "\"script\":\"true\"}],\"services\":%s}", services_json);
	char *p = tk_payload(job);
	int r;

	job_free(f->job);
	f->job = NULL;
	memset(&f->e, 0, sizeof(f->e));
	r = job_parse(p, strlen(p), &f->job, &f->e);
	if (r < 0)
		assert_null(f->job);
	free(p);
	free(job);
	return r;
}

static void expect(struct fx *f, const char *services_json, const char *code)
{
	int r = run(f, services_json);

	if (r >= 0 || strcmp(job_reason_code(f->e.code), code) != 0)
		fail_msg("got %s (%s), expected %s: %s",
		    r >= 0 ? "success" : job_reason_code(f->e.code),
		    r >= 0 ? "" : f->e.msg, code, services_json);
}

static void test_none(void **state)
{
	struct fx *f = *state;
	char *p = tk_payload(TK_JOB_MIN);

	assert_ok(job_parse(p, strlen(p), &f->job, &f->e), &f->e);
	assert_int_equal(f->job->nservices, 0);
	free(p);
	assert_ok(run(f, "[]"), &f->e);
	assert_int_equal(f->job->nservices, 0);
}

static void test_valid(void **state)
{
	struct fx *f = *state;

	assert_ok(run(f, "["
	    "{\"name\":\"db\",\"image\":\"postgres:16\","
	    " \"env\":{\"POSTGRES_PASSWORD\":\"pw\",\"_X\":\"\"},"
	    " \"command\":[\"postgres\",\"-c\",\"fsync=off\"],"
	    " \"ports\":[5432,9187],\"wait\":{\"tcp\":5432,\"timeout\":120}},"
	    "{\"name\":\"cache-2\",\"image\":\"redis\",\"wait\":{\"health\":true},"
	    " \"pull\":\"always\"},"
	    "{\"name\":\"x\",\"image\":\"busybox\",\"ports\":[1,65535],"
	    " \"wait\":{\"tcp\":65535,\"future\":1},\"future\":[]}"
	    "]"), &f->e);
	struct job *j = f->job;
	assert_int_equal(j->nservices, 3);
	struct job_service *s = &j->services[0];
	assert_string_equal(s->name, "db");
	assert_string_equal(s->env_name, "DB");
	assert_string_equal(s->image, "postgres:16");
	assert_int_equal(s->nenv, 2);
	assert_string_equal(s->env[0].name, "POSTGRES_PASSWORD");
	assert_string_equal(s->env[0].value, "pw");
	assert_int_equal(s->ncommand, 3);
	assert_string_equal(s->command[2], "fsync=off");
	assert_int_equal(s->nports, 2);
	assert_int_equal(s->ports[0], 5432);
	assert_int_equal(s->ports[1], 9187);
	assert_int_equal(s->wait, JOB_WAIT_TCP);
	assert_int_equal(s->wait_port, 5432);
	assert_int_equal(s->wait_timeout, 120);
	assert_int_equal(s->pull, JOB_PULL_IF_NOT_PRESENT);
	s = &j->services[1];
	assert_int_equal(s->pull, JOB_PULL_ALWAYS);
	assert_string_equal(s->env_name, "CACHE_2");
	assert_null(s->command);
	assert_int_equal(s->ncommand + s->nports + s->nenv, 0);
	assert_int_equal(s->wait, JOB_WAIT_HEALTH);
	assert_int_equal(s->wait_timeout, JOB_DEFAULT_SERVICE_WAIT);
	s = &j->services[2];
	assert_int_equal(s->wait, JOB_WAIT_TCP);
	assert_int_equal(s->wait_port, 65535);
	/* Without wait: ready once running. */
	assert_ok(run(f, "[{\"name\":\"a\",\"image\":\"i\"}]"), &f->e);
	assert_int_equal(f->job->services[0].wait, JOB_WAIT_NONE);
	assert_int_equal(f->job->services[0].wait_timeout,
	    JOB_DEFAULT_SERVICE_WAIT);
	assert_ok(run(f, "[{\"name\":\"a\",\"image\":\"i\",\"pull\":\"never\"}]"),
	    &f->e);
	assert_int_equal(f->job->services[0].pull, JOB_PULL_NEVER);
}

static void test_names(void **state)
{
	static const char *const bad[] = {
		"\"\"", "\"DB\"", "\"Db\"", "\"1db\"", "\"-db\"", "\"db-\"",
		"\"db_main\"", "\"db.main\"", "\"db main\"", "\"--help\"",
		"\"d\\u00e9\"", "\"db\\n\"", "\"a/b\"", "7", "null", "[\"db\"]",
	};
	struct fx *f = *state;
	char buf[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "[{\"name\":%s,\"image\":\"i\"}]", bad[i]);
		expect(f, buf, "schema");
	}
	expect(f, "[{\"image\":\"i\"}]", "schema");
	/* 32 bytes is the longest. */
	assert_ok(run(f, "[{\"name\":\"a234567890123456789012345678901b\","
	    "\"image\":\"i\"}]"), &f->e);
	expect(f, "[{\"name\":\"a234567890123456789012345678901bc\","
	    "\"image\":\"i\"}]", "limits");
	/* Unique, also once upper-cased for the environment (which the DNS
	 * rules guarantee: no '_', no capitals). */
	expect(f, "[{\"name\":\"db\",\"image\":\"i\"},{\"name\":\"db\","
	    "\"image\":\"j\"}]", "schema");
	assert_ok(run(f, "[{\"name\":\"a-b\",\"image\":\"i\"},{\"name\":\"ab\","
	    "\"image\":\"j\"}]"), &f->e);
	assert_string_equal(f->job->services[0].env_name, "A_B");
	assert_true(job_service_name_valid("a1-2b"));
	assert_false(job_service_name_valid("a_b"));
	assert_false(job_service_name_valid(""));
}

static void test_types_and_values(void **state)
{
	static const char *const schema[] = {
		"{}", "[1]", "[\"db\"]", "[[]]",
		"[{\"name\":\"a\"}]",
		"[{\"name\":\"a\",\"image\":7}]",
		"[{\"name\":\"a\",\"image\":\"\"}]",
		"[{\"name\":\"a\",\"image\":\"i\\u0001\"}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"env\":[]}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"env\":{\"A=B\":\"1\"}}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"env\":{\"1A\":\"1\"}}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"env\":{\"A\":1}}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"command\":\"sleep 1\"}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"command\":[]}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"command\":[\"\"]}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"command\":[1]}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"ports\":5432}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"ports\":[\"5432\"]}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"ports\":[\"5432/tcp\"]}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"ports\":[0]}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"ports\":[65536]}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"ports\":[-1]}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"ports\":[80.5]}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"ports\":[80,80]}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"wait\":\"tcp\"}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"wait\":{}}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"wait\":{\"timeout\":5}}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"wait\":{\"tcp\":80}}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"ports\":[81],\"wait\":{\"tcp\":80}}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"ports\":[80],"
		"\"wait\":{\"tcp\":\"80\"}}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"ports\":[80],"
		"\"wait\":{\"tcp\":80,\"health\":true}}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"wait\":{\"health\":false}}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"wait\":{\"health\":1}}]",
		"[{\"name\":\"a\",\"image\":\"i\","
		"\"wait\":{\"health\":true,\"timeout\":\"60\"}}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"pull\":\"sometimes\"}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"pull\":\"\"}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"pull\":true}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"pull\":\"Always\"}]",
	};
	static const char *const limits[] = {
		"[{\"name\":\"a\",\"image\":\"i\",\"wait\":{\"health\":true,"
		"\"timeout\":601}}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"wait\":{\"health\":true,"
		"\"timeout\":0}}]",
		"[{\"name\":\"a\",\"image\":\"i\",\"ports\":[80],"
		"\"wait\":{\"tcp\":70000}}]",
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(schema) / sizeof(schema[0]); i++)
		expect(f, schema[i], "schema");
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		expect(f, limits[i], "limits");
	assert_ok(run(f, "[{\"name\":\"a\",\"image\":\"i\",\"wait\":"
	    "{\"health\":true,\"timeout\":600}}]"), &f->e);
}

/* "[" + n items pre<i>post, comma-separated + "]". */
static char *repeat(const char *pre, const char *post, size_t n)
{
	struct buf b = BUF_INIT(1 << 20);

	buf_putc(&b, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(&b, ',');
		buf_printf(&b, "%s%zu%s", pre, i, post);
	}
	buf_putc(&b, ']');
	char *s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

static void test_count_and_length_limits(void **state)
{
	struct fx *f = *state;
	char *s, *arg, *item;

	s = repeat("{\"name\":\"s", "\",\"image\":\"i\"}", JOB_MAX_SERVICES);
	assert_ok(run(f, s), &f->e);
	assert_int_equal(f->job->nservices, JOB_MAX_SERVICES);
	free(s);
	s = repeat("{\"name\":\"s", "\",\"image\":\"i\"}", JOB_MAX_SERVICES + 1);
	expect(f, s, "limits");
	free(s);
	/* ports */
	char *ports = repeat("", "", JOB_MAX_SERVICE_PORTS + 1);
	ports[1] = '9';		/* no port 0 */
	item = xasprintf("[{\"name\":\"a\",\"image\":\"i\",\"ports\":%s}]", ports);
	expect(f, item, "limits");
	free(item);
	free(ports);
	/* command: entries and their length */
	s = repeat("\"a", "\"", JOB_MAX_SERVICE_ARGS);
	item = xasprintf("[{\"name\":\"a\",\"image\":\"i\",\"command\":%s}]", s);
	assert_ok(run(f, item), &f->e);
	assert_int_equal(f->job->services[0].ncommand, JOB_MAX_SERVICE_ARGS);
	free(item);
	free(s);
	s = repeat("\"a", "\"", JOB_MAX_SERVICE_ARGS + 1);
	item = xasprintf("[{\"name\":\"a\",\"image\":\"i\",\"command\":%s}]", s);
	expect(f, item, "limits");
	free(item);
	free(s);
	arg = xcalloc(JOB_MAX_SERVICE_ARG + 2, 1);
	memset(arg, 'x', JOB_MAX_SERVICE_ARG + 1);
	item = xasprintf("[{\"name\":\"a\",\"image\":\"i\",\"command\":[\"%s\"]}]",
	    arg);
	expect(f, item, "limits");
	free(item);
	arg[JOB_MAX_SERVICE_ARG] = '\0';
	item = xasprintf("[{\"name\":\"a\",\"image\":\"i\",\"command\":[\"%s\"]}]",
	    arg);
	assert_ok(run(f, item), &f->e);
	free(item);
	free(arg);
	/* image */
	arg = xcalloc(514, 1);
	memset(arg, 'i', 513);
	item = xasprintf("[{\"name\":\"a\",\"image\":\"%s\"}]", arg);
	expect(f, item, "limits");
	free(item);
	free(arg);
	/* env, as step env */
	struct buf b = BUF_INIT(1 << 20);
	buf_puts(&b, "[{\"name\":\"a\",\"image\":\"i\",\"env\":{");
	for (int i = 0; i <= JOB_MAX_ENV; i++)
		buf_printf(&b, "%s\"V%d\":\"v\"", i ? "," : "", i);
	buf_puts(&b, "}}]");
	expect(f, buf_cstr(&b), "limits");
	buf_free(&b);
}

/* A failure half-way through leaves nothing behind (ASan's leak check). */
static void test_partial_failure_frees(void **state)
{
	struct fx *f = *state;

	expect(f, "[{\"name\":\"a\",\"image\":\"i\",\"env\":{\"A\":\"1\"},"
	    "\"command\":[\"x\",\"y\"],\"ports\":[1,2]},"
	    "{\"name\":\"b\",\"image\":\"i\",\"env\":{\"A\":\"1\"},"
	    "\"command\":[\"x\"],\"ports\":[3,3]}]", "schema");
	expect(f, "[{\"name\":\"a\",\"image\":\"i\",\"env\":{\"A\":\"1\",\"B\":2}}]",
	    "schema");
	expect(f, "[{\"name\":\"a\",\"image\":\"i\",\"command\":[\"x\",2]}]",
	    "schema");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_none),
		T(test_valid),
		T(test_names),
		T(test_types_and_values),
		T(test_count_and_length_limits),
		T(test_partial_failure_frees),
	};
#undef T

	tk_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
