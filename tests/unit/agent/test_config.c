/* Agent configuration: file, environment, flags; errors name the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

static char path[] = "/tmp/skiff-test-config.XXXXXX";

static void write_conf(const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int load(struct agent_config *c, int extra, const char **args)
{
	const char *argv[16] = { "skiff-agent", "--config", path };
	int argc = 3, argi, check;

	for (int i = 0; i < extra; i++)
		argv[argc++] = args[i];
	return config_load(c, argc, (char **)argv, &argi, &check);
}

static int setup(void **state)
{
	(void)state;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unsetenv("SKIFF_IDLE_TIMEOUT");
	unsetenv("SKIFF_LABELS");
	unsetenv("SKIFF_CONFIG");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	memcpy(path + strlen(path) - 6, "XXXXXX", 6);
	return 0;
}

static void test_precedence(void **state)
{
	struct agent_config c;
	(void)state;
	write_conf("# comment\nSKIFF_QUEUE_URL=https://q.example:8443/\n"
	    "SKIFF_POOL=\"linux\"\nSKIFF_IDLE_TIMEOUT=5m\nSKIFF_CAPACITY=2\n"
	    "export SKIFF_LABELS=a,b\n");
	setenv("SKIFF_IDLE_TIMEOUT", "90s", 1);
	const char *args[] = { "--capacity", "3" };
	assert_int_equal(load(&c, 2, args), 0);
	assert_string_equal(c.queue_url, "https://q.example:8443");
	assert_string_equal(c.pool, "linux");
	assert_int_equal(c.idle_timeout, 90);	/* env over file */
	assert_int_equal(c.capacity, 3);	/* flag over env */
	assert_int_equal(c.labels.n, 2);
	assert_string_equal(c.labels.v[1], "b");
	assert_int_equal(c.max_jobs, 0);	/* default */
	assert_int_equal(config_validate(&c), 0);
	config_free(&c);
	unsetenv("SKIFF_IDLE_TIMEOUT");
}

static void test_unknown_key(void **state)
{
	struct agent_config c;
	(void)state;
	write_conf("SKIFF_QUEUE_URL=https://q\nSKIFF_IDLE_TIMEOT=5m\n");
	assert_int_equal(load(&c, 0, NULL), -22);
	config_free(&c);
}

static void test_bad_values(void **state)
{
	struct agent_config c;
	static const char *const bad[] = {
		"SKIFF_CAPACITY=0\n", "SKIFF_CAPACITY=many\n",
		"SKIFF_IDLE_TIMEOUT=5 minutes\n", "SKIFF_KEEP_WORKSPACE=maybe\n",
		"SKIFF_QUEUE_URL=ftp://x\n", "SKIFF_LABELS=ok,not ok\n",
		"SKIFF_LOG_LEVEL=loud\n", "SKIFF_STEP_CPUS=-1\n",
		"not a setting\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_conf(bad[i]);
		assert_int_equal(load(&c, 0, NULL), -22);
		config_free(&c);
	}
}

static void test_validate(void **state)
{
	struct agent_config c;
	(void)state;
	write_conf("SKIFF_QUEUE_URL=http://queue.example\n");
	assert_int_equal(load(&c, 0, NULL), 0);
	/* Plain HTTP only to loopback. */
	assert_int_equal(config_validate(&c), -22);
	config_free(&c);
	write_conf("SKIFF_QUEUE_URL=http://127.0.0.1:8080\nSKIFF_MAX_JOBS=1\n"
	    "SKIFF_CAPACITY=2\n");
	assert_int_equal(load(&c, 0, NULL), 0);
	assert_int_equal(config_validate(&c), -22);	/* capacity > max_jobs */
	config_free(&c);
}

static void test_print_redacts(void **state)
{
	struct agent_config c;
	char buf[16384];
	(void)state;
	write_conf("SKIFF_QUEUE_URL=https://q\nSKIFF_REGISTRATION_TOKEN=srt_secret\n");
	assert_int_equal(load(&c, 0, NULL), 0);
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	config_print(&c, f);
	fclose(f);
	assert_null(strstr(buf, "srt_secret"));
	assert_non_null(strstr(buf, "SKIFF_REGISTRATION_TOKEN=<redacted>\n"));
	assert_non_null(strstr(buf, "SKIFF_QUEUE_URL=https://q\n"));
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_print_redacts, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
