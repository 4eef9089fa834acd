/* Agent configuration: file, environment, flags; errors name the key or
 * the file; queue URLs as libcurl reads them. */
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
	/* Plain HTTP only to loopback (test_queue_urls has the neighbours). */
	assert_int_equal(config_validate(&c), -22);
	config_free(&c);
	write_conf("SKIFF_QUEUE_URL=http://127.0.0.1:8080\nSKIFF_MAX_JOBS=1\n"
	    "SKIFF_CAPACITY=2\n");
	assert_int_equal(load(&c, 0, NULL), 0);
	assert_int_equal(config_validate(&c), -22);	/* capacity > max_jobs */
	config_free(&c);
}

static int load_args(struct agent_config *c, int n, const char **args)
{
	const char *argv[16] = { "skiff-agent" };
	int argi, check;

	for (int i = 0; i < n; i++)
		argv[i + 1] = args[i];
	return config_load(c, n + 1, (char **)argv, &argi, &check);
}

/* A file named on purpose and missing is an error, however it was named;
 * only the default path may be absent. */
static void test_named_file_missing(void **state)
{
	struct agent_config c;
	static const char *const forms[][2] = {
		{ "--config", "/nonexistent/typo.conf" },
		{ "--config=/nonexistent/typo.conf", NULL },
		{ "--conf", "/nonexistent/typo.conf" },	/* getopt's abbreviation */
		{ "--config=", NULL },
		{ "--config", "/" },				/* a directory */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		const char *args[] = { forms[i][0], forms[i][1] };
		assert_int_equal(load_args(&c, forms[i][1] ? 2 : 1, args), -22);
		config_free(&c);
	}
	setenv("SKIFF_CONFIG", "/nonexistent/typo.conf", 1);
	assert_int_equal(load_args(&c, 0, NULL), -22);
	config_free(&c);
	setenv("SKIFF_CONFIG", "", 1);
	assert_int_equal(load_args(&c, 0, NULL), -22);
	config_free(&c);
	/* --config wins over SKIFF_CONFIG. */
	write_conf("SKIFF_POOL=from-file\n");
	const char *args[] = { "--config", path };
	assert_int_equal(load_args(&c, 2, args), 0);
	assert_string_equal(c.pool, "from-file");
	config_free(&c);
	unsetenv("SKIFF_CONFIG");
	/* A value that merely looks like --config is the value of --name. */
	const char *named[] = { "--config", path, "--name", "--config" };
	assert_int_equal(load_args(&c, 4, named), 0);
	assert_string_equal(c.name, "--config");
	config_free(&c);
}

/* The shape of the command line is a usage error, found before any file
 * is read; a bad value is a configuration error. */
static void test_usage_errors(void **state)
{
	struct agent_config c;
	const char *bogus[] = { "--config", "/nonexistent", "--bogus" };
	const char *noarg[] = { "--pool" };
	const char *shortopt[] = { "-x" };
	const char *help[] = { "--bogus", "--help" };
	const char *version[] = { "-V" };
	const char *badval[] = { "--config", path, "--capacity", "many" };
	(void)state;
	write_conf("");
	assert_int_equal(load_args(&c, 3, bogus), CONFIG_USAGE);
	config_free(&c);
	assert_int_equal(load_args(&c, 1, noarg), CONFIG_USAGE);
	config_free(&c);
	assert_int_equal(load_args(&c, 1, shortopt), CONFIG_USAGE);
	config_free(&c);
	assert_int_equal(load_args(&c, 2, help), CONFIG_HELP);
	config_free(&c);
	assert_int_equal(load_args(&c, 1, version), CONFIG_VERSION);
	config_free(&c);
	assert_int_equal(load_args(&c, 4, badval), -22);
	config_free(&c);
}

/* SKIFF_QUEUE_URL as libcurl reads it; plain http only to loopback. */
static void test_queue_urls(void **state)
{
	static const struct { const char *url; int load, valid; const char *norm; }
	    cases[] = {
		{ "https://q.example:8443/", 0, 0, "https://q.example:8443" },
		{ "HTTPS://Q.example/base/", 0, 0, "https://Q.example/base" },
		{ "http://127.0.0.1:8080", 0, 0, "http://127.0.0.1:8080" },
		{ "http://127.255.0.9/", 0, 0, "http://127.255.0.9" },
		{ "http://[::1]:8080/", 0, 0, "http://[::1]:8080" },
		{ "http://[0:0:0:0:0:0:0:1]/", 0, 0, "http://[::1]" },
		{ "http://localhost:8080/", 0, 0, "http://localhost:8080" },
		{ "http://LocalHost/", 0, 0, "http://LocalHost" },
		/* Other spellings of 127.0.0.1: libcurl connects to
		 * 127.0.0.1, and the URL kept says so. */
		{ "http://0x7f.1/", 0, 0, "http://127.0.0.1" },
		{ "http://127.1/", 0, 0, "http://127.0.0.1" },
		{ "http://2130706433/", 0, 0, "http://127.0.0.1" },
		{ "http://%31%32%37.0.0.1/", 0, 0, "http://127.0.0.1" },
		/* The two, and their neighbours. */
		{ "http://127.evil.example/", 0, -22, NULL },
		{ "http://localhost:80@evil.example/", -22, 0, NULL },
		{ "http://127.0.0.1@evil.example/", -22, 0, NULL },
		{ "http://127.0.0.1\\@evil.example/", -22, 0, NULL },
		{ "https://user:pw@q.example/", -22, 0, NULL },
		{ "http://@127.0.0.1/", -22, 0, NULL },
		{ "http://127.0.0.1.evil/", 0, -22, NULL },
		{ "http://127.0.0.1%2eevil/", 0, -22, NULL },
		{ "http://localhost./", 0, -22, NULL },
		{ "http://127.0.0.1./", 0, -22, NULL },
		{ "http://x.localhost/", 0, -22, NULL },
		{ "http://localhost.evil.example/", 0, -22, NULL },
		{ "http://[::ffff:127.0.0.1]/", 0, -22, NULL },
		{ "http://[::]/", 0, -22, NULL },
		{ "http://0/", 0, -22, NULL },
		{ "http://128.0.0.1/", 0, -22, NULL },
		{ "http://[::1%25lo]/", -22, 0, NULL },
		{ "http://127.0.0.1/?x=1", -22, 0, NULL },
		{ "http://127.0.0.1/#f", -22, 0, NULL },
		{ "http://127.0.0.1 /", -22, 0, NULL },
		{ "ftp://127.0.0.1/", -22, 0, NULL },
		{ "127.0.0.1:8080", -22, 0, NULL },
		{ "http://127.0.0.1:99999/", -22, 0, NULL },
	};
	struct agent_config c;
	char line[256];
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(line, sizeof(line), "SKIFF_QUEUE_URL=%s\n", cases[i].url);
		write_conf(line);
		int r = load(&c, 0, NULL);
		if (r != cases[i].load)
			fail_msg("%s: load %d, want %d", cases[i].url, r, cases[i].load);
		if (r == 0 && config_validate(&c) != cases[i].valid)
			fail_msg("%s: validate, want %d", cases[i].url, cases[i].valid);
		if (cases[i].norm)
			assert_string_equal(c.queue_url, cases[i].norm);
		config_free(&c);
	}
}

/* Every file a setting names must be usable at start. */
static void test_check_files(void **state)
{
	struct agent_config c;
	char conf[1024];
	(void)state;
	/* path itself is a readable regular file. */
	snprintf(conf, sizeof(conf), "SKIFF_TRUSTED_KEYS=%s\n", path);
	write_conf(conf);
	assert_int_equal(load(&c, 0, NULL), 0);
	assert_int_equal(config_check_files(&c), 0);
	config_free(&c);
	static const char *const bad[] = {
		"SKIFF_TRUSTED_KEYS=/nonexistent/trusted.jwks\n",
		"SKIFF_POOL_KEY=/nonexistent/pool.jwk\n",
		"SKIFF_CA_FILE=/nonexistent/ca.pem\n",
		"SKIFF_CA_FILE=/\n",
		"SKIFF_INPUTS_CA_FILE=/nonexistent/ca.pem\n",
		"SKIFF_REGISTRATION_TOKEN_FILE=/nonexistent/token\n",
		"SKIFF_REGISTRATION_TOKEN_FILE=/dev/null\n",	/* empty */
		"SKIFF_ON_EXIT=/nonexistent/hook\n",
		"SKIFF_ON_EXIT=",	/* + path: mode 0600, not executable */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int last = i + 1 == sizeof(bad) / sizeof(bad[0]);
		snprintf(conf, sizeof(conf), "SKIFF_TRUSTED_KEYS=%s\n%s%s\n", path,
		    bad[i], last ? path : "");
		write_conf(conf);
		assert_int_equal(load(&c, 0, NULL), 0);
		if (config_check_files(&c) != -22)
			fail_msg("accepted: %s", bad[i]);
		config_free(&c);
	}
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
		cmocka_unit_test_setup_teardown(test_named_file_missing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_urls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_files, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
