/* Host step processes: output, exit status, clean environment, group kill. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "ev.h"
#include "hostproc.h"

struct run {
	struct buf out, err;
	int status;
	int done;
	int eof[3];
};

static void on_out(void *arg, int s, const char *d, size_t n)
{
	struct run *r = arg;
	if (n == 0)
		r->eof[s] = 1;
	else
		buf_append(s == 1 ? &r->out : &r->err, d, n);
}

static void on_exit_cb(void *arg, int status)
{
	struct run *r = arg;
	r->status = status;
	r->done = 1;
}

static struct hostproc *start(struct ev_loop *loop, struct run *r,
    const char *script, char **env)
{
	char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };
	char *noenv[] = { NULL };
	struct hostproc_params p = { argv, env ? env : noenv, "/tmp", 0, 0, 0 };
	struct hostproc *hp;

	memset(r, 0, sizeof(*r));
	buf_init(&r->out, 1 << 20);
	buf_init(&r->err, 1 << 20);
	assert_int_equal(hostproc_start(loop, &p, on_out, on_exit_cb, r, &hp), 0);
	return hp;
}

/* Bounded in time (a chatty step wakes the loop once per write). */
static void wait_done(struct ev_loop *loop, struct run *r, int max_ms)
{
	int64_t end = ev_now_update(loop) + max_ms;

	while (!r->done && ev_now_update(loop) < end)
		ev_run_once(loop, 10);
	assert_true(r->done);
}

static void test_output_and_status(void **state)
{
	struct ev_loop *loop;
	struct run r;
	char *env[] = { "GREETING=hi", NULL };
	(void)state;
	setenv("AGENT_SECRET", "must-not-leak", 1);
	assert_int_equal(ev_loop_new(&loop), 0);
	struct hostproc *hp = start(loop, &r,
	    "echo $GREETING; echo oops >&2; env | grep -c AGENT_SECRET; pwd; exit 3",
	    env);
	wait_done(loop, &r, 5000);
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 3);
	assert_string_equal(buf_cstr(&r.out), "hi\n0\n/tmp\n");
	assert_string_equal(buf_cstr(&r.err), "oops\n");
	assert_true(r.eof[1] && r.eof[2]);
	hostproc_free(hp);
	buf_free(&r.out);
	buf_free(&r.err);
	ev_loop_free(loop);
}

static void test_start_failure(void **state)
{
	struct ev_loop *loop;
	char *argv[] = { "/nonexistent/shell", "-c", "true", NULL };
	char *env[] = { NULL };
	struct hostproc_params p = { argv, env, "/tmp", 0, 0, 0 };
	struct hostproc *hp;
	struct run r;
	(void)state;
	assert_int_equal(ev_loop_new(&loop), 0);
	assert_int_equal(hostproc_start(loop, &p, on_out, on_exit_cb, &r, &hp),
	    -2);	/* ENOENT */
	ev_loop_free(loop);
}

static void test_background_child_killed(void **state)
{
	struct ev_loop *loop;
	struct run r;
	char pidfile[] = "/tmp/skiff-test-bg.XXXXXX", script[256];
	(void)state;
	int fd = mkstemp(pidfile);
	close(fd);
	snprintf(script, sizeof(script),
	    "sleep 300 & echo $! > %s; echo started", pidfile);
	assert_int_equal(ev_loop_new(&loop), 0);
	struct hostproc *hp = start(loop, &r, script, NULL);
	wait_done(loop, &r, 5000);
	FILE *f = fopen(pidfile, "r");
	int bg = 0;
	assert_int_equal(fscanf(f, "%d", &bg), 1);
	fclose(f);
	unlink(pidfile);
	/* The background sleep held the pipes open; it must be gone. */
	int gone = 0;
	for (int i = 0; i < 100 && !gone; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/%d/stat", bg);
		FILE *s = fopen(p, "r");
		char st = 'R';
		if (s == NULL) {
			gone = 1;
		} else {
			/* A zombie waiting for init to reap it is gone too. */
			int n = fscanf(s, "%*d %*s %c", &st);
			fclose(s);
			gone = n == 1 && st == 'Z';
		}
		if (!gone)
			usleep(10000);
	}
	assert_true(gone);
	assert_string_equal(buf_cstr(&r.out), "started\n");
	hostproc_free(hp);
	buf_free(&r.out);
	buf_free(&r.err);
	ev_loop_free(loop);
}

static void test_stop_with_grace(void **state)
{
	struct ev_loop *loop;
	struct run r;
	(void)state;
	assert_int_equal(ev_loop_new(&loop), 0);
	/* Ignores SIGTERM: SIGKILL must follow after the grace period. */
	struct hostproc *hp = start(loop, &r,
	    "trap '' TERM; echo ready; while :; do sleep 1; done", NULL);
	for (int i = 0; i < 500 && r.out.len == 0; i++)
		ev_run_once(loop, 10);
	hostproc_stop(hp, 300);
	wait_done(loop, &r, 5000);
	assert_true(WIFSIGNALED(r.status));
	assert_int_equal(WTERMSIG(r.status), SIGKILL);
	hostproc_free(hp);
	buf_free(&r.out);
	buf_free(&r.err);
	ev_loop_free(loop);
}

static void test_large_output(void **state)
{
	struct ev_loop *loop;
	struct run r;
	(void)state;
	assert_int_equal(ev_loop_new(&loop), 0);
	struct hostproc *hp = start(loop, &r,
	    "i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done", NULL);
	wait_done(loop, &r, 20000);
	assert_int_equal(WEXITSTATUS(r.status), 0);
	assert_non_null(strstr(buf_cstr(&r.out), "line-0\nline-1\n"));
	assert_non_null(strstr(buf_cstr(&r.out), "\nline-19999\n"));
	hostproc_free(hp);
	buf_free(&r.out);
	buf_free(&r.err);
	ev_loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_output_and_status),
		cmocka_unit_test(test_start_failure),
		cmocka_unit_test(test_background_child_killed),
		cmocka_unit_test(test_stop_with_grace),
		cmocka_unit_test(test_large_output),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
