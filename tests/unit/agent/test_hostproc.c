/* Host step processes: output, exit status, clean environment, group kill;
 * tracking (proctrack.c): /proc/PID/stat parsing, placement before exec,
 * a session's leftovers killed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "ev.h"
#include "hostproc.h"
#include "proctrack.h"

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
	struct hostproc_params p = { argv, env ? env : noenv, "/tmp", 0, 0, 0,
	    NULL, NULL, NULL, NULL };
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
	struct hostproc_params p = { argv, env, "/tmp", 0, 0, 0, NULL, NULL,
	    NULL, NULL };
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

static void parse(const char *line, struct proctrack_stat *st)
{
	assert_int_equal(proctrack_parse_stat(line, strlen(line), st), 0);
}

static void test_parse_stat(void **state)
{
	struct proctrack_stat st;
	/* A real line (kernel 6.x), then names a process may give itself. */
	const char *real = "4242 (sleep) S 4200 4242 4242 0 -1 4194560 112 0 0 "
	    "0 0 0 0 0 20 0 1 0 987654321 2478080 224 18446744073709551615 1 1 "
	    "0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
	(void)state;
	parse(real, &st);
	assert_int_equal(st.pid, 4242);
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, 4200);
	assert_int_equal(st.pgrp, 4242);
	assert_int_equal(st.session, 4242);
	assert_int_equal(st.start, 987654321ULL);
	parse("7 (a) b (c) d) Z 1 8 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0", &st);
	assert_int_equal(st.pid, 7);
	assert_int_equal(st.state, 'Z');
	assert_int_equal(st.session, 9);
	assert_int_equal(st.start, 55);
	parse("9 ( ) R 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 18446744073709551 0",
	    &st);
	assert_int_equal(st.start, 18446744073709551ULL);

	static const char *const bad[] = {
		"",
		"4242",
		"4242 (sleep",
		"4242 sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
		"(sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
		"x42 (sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
		"4242 (sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0",	/* 21 */
		"4242 (sleep) S 1 2 -3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
		"4242 (sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5x",
		"4242 (sleep) SS 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
		"0 (sleep) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(proctrack_parse_stat(bad[i], strlen(bad[i]), &st),
		    -EINVAL);
	/* Not NUL-terminated: only n bytes count. */
	assert_int_equal(proctrack_parse_stat(real, 20, &st), -EINVAL);
}

/* What placed() saw of the child: it must not have exec'd yet. */
struct placement {
	int calls;
	char comm[64];
	int fail;
};

static int placed_cb(void *arg, pid_t pid)
{
	struct placement *pl = arg;
	char path[64];

	pl->calls++;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	FILE *f = fopen(path, "r");
	if (f) {
		if (fgets(pl->comm, sizeof(pl->comm), f) == NULL)
			pl->comm[0] = '\0';
		fclose(f);
	}
	return pl->fail;
}

static void test_placed_before_exec(void **state)
{
	struct ev_loop *loop;
	char marker[] = "/tmp/skiff-test-placed.XXXXXX", script[256];
	char *env[] = { NULL };
	struct placement pl = { 0, "", 0 };
	struct run r;
	struct hostproc *hp;
	(void)state;
	int fd = mkstemp(marker);
	close(fd);
	unlink(marker);
	snprintf(script, sizeof(script), "exec touch %s", marker);
	char *argv[] = { "/bin/sh", "-c", script, NULL };
	struct hostproc_params p = { argv, env, "/tmp", 0, 0, 0, placed_cb, NULL,
	    &pl, NULL };
	assert_int_equal(ev_loop_new(&loop), 0);
	memset(&r, 0, sizeof(r));
	buf_init(&r.out, 1024);
	buf_init(&r.err, 1024);
	/* Refused: the step never runs. */
	pl.fail = -EACCES;
	assert_int_equal(hostproc_start(loop, &p, on_out, on_exit_cb, &r, &hp),
	    -EACCES);
	assert_int_equal(pl.calls, 1);
	assert_int_equal(access(marker, F_OK), -1);
	/* Accepted: placed saw the agent's fork, not sh or touch. */
	pl.fail = 0;
	assert_int_equal(hostproc_start(loop, &p, on_out, on_exit_cb, &r, &hp),
	    0);
	wait_done(loop, &r, 5000);
	assert_int_equal(pl.calls, 2);
	assert_null(strstr(pl.comm, "sh"));
	assert_null(strstr(pl.comm, "touch"));
	assert_int_equal(access(marker, F_OK), 0);
	unlink(marker);
	hostproc_free(hp);
	buf_free(&r.out);
	buf_free(&r.err);
	ev_loop_free(loop);
}

static int pt_placed(void *arg, pid_t pid)
{
	return proctrack_job_add(arg, pid);
}

static void pt_kill(void *arg)
{
	proctrack_job_kill(arg);
}

static int alive(int pid)
{
	char p[64], st = 'Z';
	snprintf(p, sizeof(p), "/proc/%d/stat", pid);
	FILE *f = fopen(p, "r");
	if (f == NULL)
		return 0;
	int n = fscanf(f, "%*d %*s %c", &st);
	fclose(f);
	return n == 1 && st != 'Z';
}

/* Session tracking: what left the step's process group (a new group, set
 * -m) is killed with the job, and the record goes. */
static void test_session_kills_the_rest(void **state)
{
	struct ev_loop *loop;
	char dir[] = "/tmp/skiff-test-pt.XXXXXX", pidfile[64], script[600];
	char *env[] = { NULL };
	struct proctrack *pt;
	struct proctrack_job *pj;
	struct run r;
	struct hostproc *hp;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
	/* A process group of its own: the group kill misses it, the session
	 * does not. It names itself once it is in its group; the step waits
	 * for that (bounded), or the group kill would win the race. */
	snprintf(script, sizeof(script), "python3 -c 'import os; os.setpgid(0, "
	    "0); open(\"%s\", \"w\").write(str(os.getpid())); "
	    "os.execvp(\"sleep\", [\"sleep\", \"7771\"])' & i=0; "
	    "while [ ! -s %s ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); "
	    "done", pidfile, pidfile);
	char *argv[] = { "/bin/sh", "-c", script, NULL };
	assert_int_equal(proctrack_open("session", dir, "unit", &pt), 0);
	assert_int_equal(proctrack_mode(pt), PROCTRACK_SESSION);
	assert_int_equal(proctrack_job_new(pt, "job.1", &pj), 0);
	struct hostproc_params p = { argv, env, "/tmp", 0, 0, 0, pt_placed,
	    pt_kill, pj, NULL };
	assert_int_equal(ev_loop_new(&loop), 0);
	memset(&r, 0, sizeof(r));
	buf_init(&r.out, 1024);
	buf_init(&r.err, 1024);
	assert_int_equal(hostproc_start(loop, &p, on_out, on_exit_cb, &r, &hp),
	    0);
	wait_done(loop, &r, 5000);
	FILE *f = fopen(pidfile, "r");
	int bg = 0;
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &bg), 1);
	fclose(f);
	hostproc_free(hp);
	int gone = 0;
	for (int i = 0; i < 200 && !gone; i++) {
		gone = !alive(bg);
		if (!gone)
			usleep(10000);
	}
	if (!gone)
		kill(bg, SIGKILL);
	assert_true(gone);
	char rec[400];
	snprintf(rec, sizeof(rec), "%s/hoststeps", dir);
	/* The session is empty now: the next look forgets it while the job
	 * goes on, so a session that later gets its number (pids are
	 * reused) is never taken for this job's. */
	int forgotten = 0;
	for (int i = 0; i < 200 && !forgotten; i++) {
		proctrack_job_kill(pj);
		forgotten = rmdir(rec) == 0 || errno == ENOENT;
		if (!forgotten)
			usleep(10000);
	}
	assert_true(forgotten);
	proctrack_job_free(pj);
	(void)rmdir(rec);
	proctrack_free(pt);
	unlink(pidfile);
	rmdir(dir);
	buf_free(&r.out);
	buf_free(&r.err);
	ev_loop_free(loop);
}

static void test_bad_setting(void **state)
{
	struct proctrack *pt = NULL;
	(void)state;
	assert_int_equal(proctrack_open("cgroups", "/tmp", "unit", &pt), -EINVAL);
	assert_null(pt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_output_and_status),
		cmocka_unit_test(test_start_failure),
		cmocka_unit_test(test_background_child_killed),
		cmocka_unit_test(test_stop_with_grace),
		cmocka_unit_test(test_large_output),
		cmocka_unit_test(test_parse_stat),
		cmocka_unit_test(test_placed_before_exec),
		cmocka_unit_test(test_session_kills_the_rest),
		cmocka_unit_test(test_bad_setting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
