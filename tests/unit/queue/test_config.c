/* The command line: defaults of docs/protocol.md sections 7 and 8, checks
 * before start-up, --help and --version. */
#include "qtest.h"

#include <errno.h>

#include "config.h"

static int parse(struct qcfg *c, const char *line, char *err, size_t errsz)
{
	char *copy = xstrdup(line), *argv[32], *save = NULL;
	int argc = 0, rc;
	FILE *out = fopen("/dev/null", "w"), *ef = fmemopen(err, errsz, "w");

	argv[argc++] = (char *)"skiff-queue";
	for (char *p = copy; *p; ) {
		size_t n = strcspn(p, " ");
		argv[argc++] = p;
		p += n;
		if (*p)
			*p++ = '\0';
	}
	argv[argc] = NULL;
	(void)save;
	cfg_defaults(c);
	rc = cfg_parse(c, argc, argv, out, ef);
	fclose(out);
	fclose(ef);
	free(copy);
	return rc;
}

static void test_defaults(void **state)
{
	struct qcfg c;
	char err[512] = "";

	(void)state;
	assert_int_equal(parse(&c, "--data-dir /d --insecure-http", err,
	    sizeof(err)), 0);
	assert_int_equal(c.ack_window, 15);
	assert_int_equal(c.lease_ttl, 120);
	assert_int_equal(c.heartbeat_interval, 10);
	assert_int_equal(c.max_attempts, 3);
	assert_int_equal(c.lease_wait, 30);
	assert_int_equal(c.max_lease_wait, 60);
	assert_int_equal(c.max_connections, 20000);
	assert_int_equal(c.max_connections_per_ip, 1000);
	assert_int_equal(c.handshake_timeout, 10);
	assert_int_equal(c.max_log, 1LL << 30);
	assert_int_equal(c.max_artifact, 4LL << 30);
	assert_int_equal(c.max_artifacts_total, 10LL << 30);
	assert_int_equal(c.max_artifact_count, 1000);
	assert_int_equal(c.sync_full, 1);
	assert_string_equal(c.listen, "0.0.0.0:8443");
	cfg_free(&c);
	assert_int_equal(parse(&c, "--dev", err, sizeof(err)), 0);
	assert_string_equal(c.listen, "127.0.0.1:8443");
	cfg_free(&c);
}

static void test_timing_flags(void **state)
{
	struct qcfg c;
	char err[512] = "";

	(void)state;
	assert_int_equal(parse(&c, "--dev --ack-window 2s --lease-ttl 1m "
	    "--max-attempts 5 --sync normal", err, sizeof(err)), 0);
	assert_int_equal(c.ack_window, 2);
	assert_int_equal(c.lease_ttl, 60);
	assert_int_equal(c.max_attempts, 5);
	assert_int_equal(c.sync_full, 0);
	cfg_free(&c);
	assert_int_equal(parse(&c, "--dev --handshake-timeout 3s "
	    "--max-connections-per-ip 0 --listen [::1]:0", err, sizeof(err)), 0);
	assert_int_equal(c.handshake_timeout, 3);
	assert_int_equal(c.max_connections_per_ip, 0);
	cfg_free(&c);
	/* The heartbeat interval follows a short TTL unless given. */
	assert_int_equal(parse(&c, "--dev --lease-ttl 6", err, sizeof(err)), 0);
	assert_int_equal(c.heartbeat_interval, 2);
	cfg_free(&c);
	assert_int_equal(parse(&c, "--dev --lease-ttl 2", err, sizeof(err)), 0);
	assert_int_equal(c.heartbeat_interval, 1);
	cfg_free(&c);
	/* Retention: off unless asked for, then in seconds. */
	assert_int_equal(parse(&c, "--dev", err, sizeof(err)), 0);
	assert_int_equal(c.retain, 0);
	cfg_free(&c);
	assert_int_equal(parse(&c, "--dev --retain 30d", err, sizeof(err)), 0);
	assert_int_equal(c.retain, 30 * 86400);
	cfg_free(&c);
}

static void test_refusals(void **state)
{
	static const char *const bad[] = {
		"", "--insecure-http", "--dev --insecure-http",
		"--data-dir /d --tls-cert c", "--dev --tls-cert c --tls-key k",
		"--dev --ack-window 0", "--dev --ack-window x",
		"--dev --max-lease-wait 61", "--dev --lease-wait 50 "
		"--max-lease-wait 40", "--dev --heartbeat-interval 20 --lease-ttl 10",
		"--dev --max-connections 1", "--dev --sync sometimes",
		"--dev --log-level loud", "--dev extra", "--dev --unknown",
		"--dev --listen",
		"--dev --handshake-timeout 0", "--dev --handshake-timeout 2h",
		"--dev --max-connections-per-ip -1",
		"--dev --max-connections-per-ip many",
		"--dev --retain 0", "--dev --retain 30x", "--dev --retain -1d",
		"--dev --retain 36501d", "--dev --retain",
		/* A --listen that can never be bound is a usage error, found
		 * before anything is made (issue 10, item 9). */
		"--dev --listen 127.0.0.1:99999", "--dev --listen 127.0.0.1",
		"--dev --listen localhost:8443", "--dev --listen [::1:80",
		"--dev --listen :8443", "--dev --listen 127.0.0.1:-1",
		"--dev --listen 127.0.0.1:80x", "--dev --listen 300.1.1.1:80",
	};
	struct qcfg c;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse(&c, bad[i], err, sizeof(err)) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		if (strncmp(err, "skiff-queue: ", 13) != 0)
			fail_msg("no message for: %s", bad[i]);
		cfg_free(&c);
	}
}

static void test_help_and_version(void **state)
{
	struct qcfg c;
	char err[512];

	(void)state;
	assert_int_equal(parse(&c, "--help", err, sizeof(err)), 1);
	cfg_free(&c);
	assert_int_equal(parse(&c, "--version", err, sizeof(err)), 1);
	cfg_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_timing_flags),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_help_and_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
