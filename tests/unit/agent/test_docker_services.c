/*
 * The network and service calls of the Docker client (docker.h, the block
 * for job.services): what they refuse before anything is sent. Names,
 * ids and aliases reach URL paths and the engine's DNS, so anything but
 * [A-Za-z0-9][A-Za-z0-9_.-]* is refused (a path, "..", an option, a
 * space, an escape); ports and log tails outside their ranges too. Valid
 * arguments get as far as the send (-ENOTCONN: no engine negotiated),
 * and nothing is left allocated (ASan's leak check). The calls against
 * the real engines are in tests/integration/test_agent_services.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "docker.h"
#include "ev.h"

struct fx {
	struct ev_loop *loop;
	struct docker *d;
};

static int setup(void **state)
{
	static struct fx f;

	assert_int_equal(ev_loop_new(&f.loop), 0);
	assert_int_equal(docker_new(f.loop, "unix:///nonexistent/docker.sock",
	    &f.d), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	docker_free(f->d);
	ev_loop_free(f->loop);
	return 0;
}

static void never(void *arg, const struct docker_res *r)
{
	(void)arg;
	(void)r;
	fail_msg("a callback came for a call that was refused");
}

static const char *const bad_names[] = {
	"", "-x", ".x", "../x", "a/b", "a b", "a%2Fb", "a?b", "a#b",
	"a\nb", "a~b", "a:b", "--help",
};

static void test_network_names(void **state)
{
	struct fx *f = *state;
	struct docker_label l = { "io.skiff.job", "j" };
	struct docker_op *op = NULL;
	char longname[300];

	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		assert_int_equal(docker_network_create(f->d, bad_names[i], &l, 1,
		    never, NULL, &op), -EINVAL);
		assert_int_equal(docker_network_remove(f->d, bad_names[i], never,
		    NULL, &op), -EINVAL);
	}
	assert_int_equal(docker_network_create(f->d, NULL, NULL, 0, never,
	    NULL, &op), -EINVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(docker_network_create(f->d, longname, NULL, 0, never,
	    NULL, &op), -EINVAL);
	assert_null(op);
	/* Valid: up to the send, which needs a negotiated engine. */
	assert_int_equal(docker_network_create(f->d, "skiff-Job_1-2", &l, 1,
	    never, NULL, &op), -ENOTCONN);
	assert_int_equal(docker_network_remove(f->d, "skiff-Job_1-2", never,
	    NULL, &op), -ENOTCONN);
	const char *labels[] = { "io.skiff.instance=x\" ]}&all=1" };
	assert_int_equal(docker_network_list(f->d, labels, 1, never, NULL,
	    &op), -ENOTCONN);
	assert_null(op);
}

static void test_service_create_arguments(void **state)
{
	struct fx *f = *state;
	struct docker_op *op = NULL;
	char *cmd[] = { "sleep", "1", NULL };
	int ports[] = { 80, 5432 };
	struct docker_service ok = {
		"skiff-j-1-svc-db", "busybox", cmd, NULL, NULL, 0, "skiff-j-1",
		"db", ports, 2, 0, 0, 0,
	};
	struct docker_service s;

	s = ok;
	assert_int_equal(docker_service_create(f->d, &s, never, NULL, &op),
	    -ENOTCONN);
	s.name = NULL;
	s.cmd = NULL;
	assert_int_equal(docker_service_create(f->d, &s, never, NULL, &op),
	    -ENOTCONN);
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		s = ok;
		s.alias = bad_names[i];
		assert_int_equal(docker_service_create(f->d, &s, never, NULL, &op),
		    -EINVAL);
		s = ok;
		s.network = bad_names[i];
		assert_int_equal(docker_service_create(f->d, &s, never, NULL, &op),
		    -EINVAL);
		s = ok;
		s.name = bad_names[i];
		assert_int_equal(docker_service_create(f->d, &s, never, NULL, &op),
		    -EINVAL);
	}
	s = ok;
	s.network = NULL;
	assert_int_equal(docker_service_create(f->d, &s, never, NULL, &op),
	    -EINVAL);
	s = ok;
	s.alias = NULL;
	assert_int_equal(docker_service_create(f->d, &s, never, NULL, &op),
	    -EINVAL);
	s = ok;
	s.image = "";
	assert_int_equal(docker_service_create(f->d, &s, never, NULL, &op),
	    -EINVAL);
	static const int bad_ports[] = { 0, -1, 65536, 1 << 30 };
	for (size_t i = 0; i < 4; i++) {
		int p[] = { 80, bad_ports[i] };
		s = ok;
		s.ports = p;
		assert_int_equal(docker_service_create(f->d, &s, never, NULL, &op),
		    -EINVAL);
	}
	assert_null(op);
}

static void test_inspect_and_logs_arguments(void **state)
{
	struct fx *f = *state;
	struct docker_op *op = NULL;

	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		assert_int_equal(docker_service_inspect(f->d, bad_names[i], never,
		    NULL, &op), -EINVAL);
		assert_int_equal(docker_container_logs(f->d, bad_names[i], 10,
		    never, NULL, &op), -EINVAL);
	}
	assert_int_equal(docker_container_logs(f->d, "abc", 0, never, NULL, &op),
	    -EINVAL);
	assert_int_equal(docker_container_logs(f->d, "abc", 1001, never, NULL,
	    &op), -EINVAL);
	assert_int_equal(docker_container_logs(f->d, "abc", -5, never, NULL,
	    &op), -EINVAL);
	assert_int_equal(docker_container_logs(f->d, "abc", 1000, never, NULL,
	    &op), -ENOTCONN);
	assert_int_equal(docker_service_inspect(f->d, "abc", never, NULL, &op),
	    -ENOTCONN);
	assert_null(op);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_network_names),
		cmocka_unit_test(test_service_create_arguments),
		cmocka_unit_test(test_inspect_and_logs_arguments),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
