/*
 * A container step as an exec in a container made ahead (warm.h): wait
 * until the container is up, exec create (the step's argv, env, user and
 * working directory), exec start (one request: the process starts and its
 * output streams, so none is lost), and once the output has ended, exec
 * inspect for the exit code.
 *
 * An exec has no kill in the Engine API. A stop sends SIGTERM to the
 * step's process itself, by a pidfd of the host pid the engine gives for
 * the exec, checked to be in the container's cgroup (so a pid reused
 * meanwhile is never signalled); after the grace period, or at once
 * without one, it kills the container, which is a pid namespace: every
 * process the step started dies with it, also one that ignores SIGTERM
 * or left the step's process group. A step that failed or was stopped
 * ends its container the same way, which also tells whether the engine
 * saw an OOM kill in it; the runner never runs another step there.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "docker.h"
#include "ev.h"
#include "log.h"
#include "oomlog.h"
#include "stepx.h"
#include "strv.h"
#include "warm.h"
#include "xalloc.h"

#define INSPECT_TRIES 100	/* the engine records the exit a bit later */
#define INSPECT_RETRY_MS 20

enum dx_state {
	DX_WAIT,	/* for the container */
	DX_CREATE,
	DX_RUN,		/* the exec's output streams */
	DX_INSPECT,
	DX_END,		/* the container is being killed */
	DX_DONE,
};

struct dxstep {
	struct stepx x;
	struct ev_loop *loop;
	struct docker *d;
	struct warm *w;
	enum dx_state state;
	char **argv, **env;
	char *workdir, *user;
	char *exec_id;
	struct docker_op *op;		/* exec create, inspect */
	struct docker_op *stream;	/* exec start */
	struct docker_op *sig;		/* the inspect for a stop's pid */
	struct ev_timer *retry, *grace, *pidwait;
	int tries, pid_tries;
	int64_t exit_code;
	int oom;
	uint64_t oom_mark;		/* the kernel log before the step */
	int stop_requested, term_sent, killed;
	long grace_ms;
	char error[512];
	const char *reason_code;
};

static void report(struct dxstep *s)
{
	struct stepx_result r = { (int)s->exit_code, s->oom,
	    s->error[0] ? s->error : NULL, s->reason_code };

	s->state = DX_DONE;
	ev_timer_stop(s->grace);
	ev_timer_stop(s->pidwait);
	s->x.cbs.exited(s->x.cbs.arg, &r);
}

static void on_ended(void *arg, int oom)
{
	struct dxstep *s = arg;

	/* Only for a step that failed, as with a container of its own. */
	s->oom = oom && s->exit_code != 0;
	report(s);
}

/* The step is over; a failed or stopped one takes its container along.
 * What a stop had under way (the grace, the ask for the pid) is over too:
 * only this end may end the container now. */
static void settle(struct dxstep *s)
{
	ev_timer_stop(s->grace);
	ev_timer_stop(s->pidwait);
	docker_op_cancel(s->sig);
	s->sig = NULL;
	if (s->exit_code == 0 && !s->stop_requested) {
		report(s);
		return;
	}
	s->state = DX_END;
	warm_end(s->w, s->exit_code == 137 && !s->stop_requested, s->oom_mark,
	    on_ended, s);
}

static void fail(struct dxstep *s, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct dxstep *s, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	va_end(ap);
	s->exit_code = -1;
	s->reason_code = code;
	docker_op_cancel(s->stream);
	s->stream = NULL;
	settle(s);
}

static void inspect(struct dxstep *s);

static void on_inspected(void *arg, const struct docker_res *r)
{
	struct dxstep *s = arg;

	s->op = NULL;
	if (r->err < 0) {
		fail(s, "internal", "cannot read the step's exit code: %s", r->msg);
		return;
	}
	if (r->running || r->exit_code < 0) {
		if (++s->tries >= INSPECT_TRIES) {
			fail(s, "internal", "the engine gives no exit code for "
			    "the step");
			return;
		}
		ev_timer_start(s->retry, INSPECT_RETRY_MS);
		return;
	}
	s->exit_code = r->exit_code;
	settle(s);
}

static void inspect(struct dxstep *s)
{
	s->state = DX_INSPECT;
	if (docker_exec_inspect(s->d, s->exec_id, on_inspected, s, &s->op) < 0)
		fail(s, "internal", "cannot read the step's exit code");
}

static void on_retry(struct ev_timer *t, void *arg)
{
	(void)t;
	inspect(arg);
}

static void on_output(void *arg, int stream, const char *data, size_t n)
{
	struct dxstep *s = arg;

	s->x.cbs.output(s->x.cbs.arg, stream, data, n);
}

static void on_stream_end(void *arg, const struct docker_res *r)
{
	struct dxstep *s = arg;

	s->stream = NULL;
	s->x.cbs.output(s->x.cbs.arg, 1, "", 0);
	s->x.cbs.output(s->x.cbs.arg, 2, "", 0);
	if (r->err < 0 && r->status != 200) {
		fail(s, "internal", "the step did not start in its container: %s",
		    r->msg);
		return;
	}
	if (r->err < 0)
		log_warn("step output stream broke", "exec=%.12s error=%s",
		    s->exec_id, logq(r->msg));
	inspect(s);
}

static void kill_container(struct dxstep *s)
{
	if (s->killed || s->state == DX_END || s->state == DX_DONE)
		return;
	s->killed = 1;
	/* The output ends as the container goes; the exit code follows. */
	warm_end(s->w, 0, 0, NULL, NULL);
}

static void on_grace(struct ev_timer *t, void *arg)
{
	(void)t;
	kill_container(arg);
}

/* The host pid is the exec's only while its cgroup names the container. */
static int pid_in_container(int pid, const char *ctr)
{
	char path[64], data[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, data, sizeof(data) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	data[n] = '\0';
	return ctr && strlen(ctr) >= 12 && strstr(data, ctr) != NULL;
}

static void ask_pid(struct dxstep *s);

static void on_pid(void *arg, const struct docker_res *r)
{
	struct dxstep *s = arg;
	int pfd = -1;

	s->sig = NULL;
	/* The engine records the pid a moment after the process starts (its
	 * first output may come before). */
	if (r->err == 0 && r->running && r->pid <= 0 &&
	    ++s->pid_tries < INSPECT_TRIES) {
		ev_timer_start(s->pidwait, INSPECT_RETRY_MS);
		return;
	}
	if (r->err == 0 && r->running && r->pid > 0)
		pfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
	/* Checked after the pidfd pins the process: it cannot be reused. */
	if (pfd >= 0 && pid_in_container(r->pid, warm_id(s->w)) &&
	    syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0) == 0) {
		ev_timer_start(s->grace, s->grace_ms);
	} else {
		if (r->err == 0 && r->running)
			log_info("cannot signal the step's process; killing its "
			    "container", "exec=%.12s pid=%d", s->exec_id, r->pid);
		kill_container(s);
	}
	if (pfd >= 0)
		close(pfd);
}

static void do_stop(struct dxstep *s)
{
	if (s->grace_ms <= 0) {
		ev_timer_stop(s->grace);
		kill_container(s);
		return;
	}
	if (s->term_sent)
		return;
	s->term_sent = 1;
	ask_pid(s);
}

static void ask_pid(struct dxstep *s)
{
	if (docker_exec_inspect(s->d, s->exec_id, on_pid, s, &s->sig) < 0)
		kill_container(s);
}

static void on_pidwait(struct ev_timer *t, void *arg)
{
	(void)t;
	ask_pid(arg);
}

static void on_exec_created(void *arg, const struct docker_res *r)
{
	struct dxstep *s = arg;

	s->op = NULL;
	if (r->err == -EBUSY) {
		/* 409: the container is not running any more */
		fail(s, "internal", "the step's container stopped before the step "
		    "ran: %s (the container made ahead idles on the step's shell "
		    "reading stdin; for a shell that does not, set "
		    "SKIFF_WARM_CONTAINERS=false)", r->msg);
		return;
	}
	if (r->err < 0) {
		fail(s, "internal", "cannot run the step in its container: %s",
		    r->msg);
		return;
	}
	s->exec_id = xstrdup(r->id);
	if (s->stop_requested) {
		s->exit_code = -1;
		snprintf(s->error, sizeof(s->error), "stopped before it started");
		settle(s);
		return;
	}
	s->state = DX_RUN;
	if (docker_exec_start(s->d, s->exec_id, on_output, on_stream_end, s,
	    &s->stream) < 0)
		fail(s, "internal", "cannot start the step in its container");
}

static void on_ready(void *arg)
{
	struct dxstep *s = arg;
	const char *code = NULL, *e = warm_error(s->w, &code);
	struct docker_exec ex = { s->argv, s->env, s->workdir, s->user };

	if (e) {
		snprintf(s->error, sizeof(s->error), "%s", e);
		s->exit_code = -1;
		s->reason_code = code;
		report(s);
		return;
	}
	if (s->stop_requested) {
		s->exit_code = -1;
		snprintf(s->error, sizeof(s->error), "stopped before it started");
		report(s);
		return;
	}
	s->state = DX_CREATE;
	/* A shared container may have seen an OOM kill in an earlier step. */
	s->oom_mark = oomlog_mark();
	if (docker_exec_create(s->d, warm_id(s->w), &ex, on_exec_created, s,
	    &s->op) < 0)
		fail(s, "internal", "cannot run the step in its container");
}

static void dx_stop(struct stepx *x, long grace_ms)
{
	struct dxstep *s = (struct dxstep *)x;

	if (s->state == DX_DONE || s->state == DX_END)
		return;
	if (s->stop_requested && grace_ms >= s->grace_ms)
		return;
	s->stop_requested = 1;
	s->grace_ms = grace_ms;
	switch (s->state) {
	case DX_WAIT:
		warm_unwait(s->w);
		s->exit_code = -1;
		snprintf(s->error, sizeof(s->error), "stopped before it started");
		report(s);
		break;
	case DX_RUN:
		do_stop(s);
		break;
	default:
		/* DX_CREATE: on_exec_created stops it; DX_INSPECT: it ended. */
		break;
	}
}

static void dx_free(struct stepx *x)
{
	struct dxstep *s = (struct dxstep *)x;

	if (s->state == DX_WAIT)
		warm_unwait(s->w);
	docker_op_cancel(s->op);
	docker_op_cancel(s->stream);
	docker_op_cancel(s->sig);
	ev_timer_free(s->retry);
	ev_timer_free(s->grace);
	ev_timer_free(s->pidwait);
	strv_free(s->argv);
	strv_free(s->env);
	free(s->workdir);
	free(s->user);
	free(s->exec_id);
	free(s);
}

static const struct stepx_ops dxstep_ops = { dx_stop, dx_free };

int dockerexec_start(struct ev_loop *loop, struct docker *d,
    const struct stepx_spec *sp, struct warm *w, const struct stepx_cbs *cbs,
    struct stepx **out)
{
	struct dxstep *s = xcalloc(1, sizeof(*s));

	s->x.ops = &dxstep_ops;
	s->x.cbs = *cbs;
	s->loop = loop;
	s->d = d;
	s->w = w;
	s->argv = strv_copy(sp->argv);
	s->env = strv_copy(sp->envp);
	s->workdir = xstrdup(sp->workdir);
	s->user = sp->user ? xstrdup(sp->user) : NULL;
	s->retry = ev_timer_new(loop, on_retry, s);
	s->grace = ev_timer_new(loop, on_grace, s);
	s->pidwait = ev_timer_new(loop, on_pidwait, s);
	s->state = DX_WAIT;
	*out = &s->x;
	warm_wait(w, on_ready, s);
	return 0;
}
