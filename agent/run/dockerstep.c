/*
 * Steps with an image: a container of that image whose entrypoint is the
 * step's shell, bind-mounting the workspace at its own path, through the
 * Docker Engine API (docker.h). Sequence: [wait for the job's pull of the
 * image] create, attach, start (from attach's ready, so no output is
 * lost), wait; once both the output has ended and the exit code is known:
 * inspect (OOMKilled, for a step that failed), report the step's end, and
 * remove the container in the background; the job completes only once
 * its containers are gone (the runner tracks them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker.h"
#include "ev.h"
#include "images.h"
#include "log.h"
#include "oomlog.h"
#include "stepx.h"
#include "strv.h"
#include "xalloc.h"

enum ds_state {
	DS_IMAGE,	/* waiting for the job's pull */
	DS_CREATE,
	DS_RUN,		/* attach, start, wait */
	DS_INSPECT,
	DS_DONE,
};

/* dockerd may record the OOM kill a moment after the exit: a step killed
 * by SIGKILL is inspected again a few times before it counts as not. */
#define OOM_RECHECKS 5
#define OOM_RECHECK_MS 100

struct dockerstep {
	struct stepx x;
	struct docker *d;
	struct ev_timer *recheck;
	int rechecks;
	struct docker_create c;	/* deep copy */
	struct rimage *image;
	void (*track)(void *arg, const char *id);
	void (*track_fn)(void *arg, const char *id, int live);
	enum ds_state state;
	char *id;
	struct docker_op *op;		/* create, start, inspect, stop, remove */
	struct docker_op *attach;
	struct docker_op *wait;
	int attach_done, wait_done;
	int attach_ready, wait_ready, started;
	int64_t exit_code;
	int oom;
	int stop_requested;
	long grace_ms;
	int stopping;			/* stop or kill sent */
	char error[512];
	const char *reason_code;
	/* owned copies for c */
	char **argv, **env;
	struct docker_mount *mounts;
	struct docker_label *labels;
};

static void finish(struct dockerstep *s);
static void remove_container(struct dockerstep *s);

static void report(struct dockerstep *s)
{
	struct stepx_result r = { (int)s->exit_code, s->oom,
	    s->error[0] ? s->error : NULL, s->reason_code };

	s->state = DS_DONE;
	s->x.cbs.exited(s->x.cbs.arg, &r);
}

/* Failed before the step's own process ran (or while setting it up). */
static void fail(struct dockerstep *s, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct dockerstep *s, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	va_end(ap);
	s->exit_code = -1;
	s->reason_code = code;
	if (s->id)
		remove_container(s);
	else
		report(s);
}

/* A removal that outlives the step object: the step's end is reported
 * at once, the runner waits for this before the job completes. */
struct bgremove {
	void (*track)(void *arg, const char *id, int live);
	void *arg;
	char *id;
};

static void on_removed(void *arg, const struct docker_res *r)
{
	struct bgremove *b = arg;

	if (r->err < 0 && r->err != -ENOENT)
		log_warn("cannot remove a step container; the sweep will",
		    "container=%.12s error=%s", b->id, logq(r->msg));
	if (b->track)
		b->track(b->arg, b->id, 0);
	free(b->id);
	free(b);
}

/* Removes the container (and its anonymous volumes) in the background,
 * then reports the step's end: the removal is off the step's path. */
static void remove_container(struct dockerstep *s)
{
	struct bgremove *b = xcalloc(1, sizeof(*b));

	docker_op_cancel(s->attach);
	docker_op_cancel(s->wait);
	s->attach = s->wait = NULL;
	b->track = s->track_fn;
	b->arg = s->x.cbs.arg;
	b->id = xstrdup(s->id);
	if (docker_container_remove(s->d, s->id, on_removed, b, NULL) < 0) {
		struct docker_res r = { .err = -EIO, .msg = "not sent" };
		on_removed(b, &r);
	}
	report(s);
}

static void on_inspected(void *arg, const struct docker_res *r)
{
	struct dockerstep *s = arg;

	s->op = NULL;
	/* Docker sets OOMKilled for any OOM kill in the container, also of a
	 * child the shell survived, when containerd told it (late or never,
	 * at times: the kernel's log has the last word): it matters only
	 * when the step failed. */
	if (r->err == 0 && s->exit_code != 0 &&
	    (r->oom_killed || oomlog_killed_unrecorded(s->id, 0)))
		s->oom = 1;
	if (r->err == 0 && !s->oom && s->exit_code == 137 && !s->stopping &&
	    s->rechecks++ < OOM_RECHECKS) {
		ev_timer_start(s->recheck, OOM_RECHECK_MS);
		return;
	}
	remove_container(s);
}

static void on_recheck(struct ev_timer *t, void *arg)
{
	struct dockerstep *s = arg;

	(void)t;
	if (docker_container_inspect(s->d, s->id, on_inspected, s, &s->op) < 0)
		remove_container(s);
}

/* Both the output and the exit code are in. */
static void finish(struct dockerstep *s)
{
	if (!s->attach_done || !s->wait_done || s->state != DS_RUN)
		return;
	/* An OOM kill matters only for a step that failed. */
	if (s->exit_code == 0) {
		remove_container(s);
		return;
	}
	/* A stop may still be out (the container ended under it): it has
	 * nothing left to do, and its callback must not outlive the step. */
	docker_op_cancel(s->op);
	s->op = NULL;
	s->state = DS_INSPECT;
	if (docker_container_inspect(s->d, s->id, on_inspected, s, &s->op) < 0)
		remove_container(s);
}

static void on_output(void *arg, int stream, const char *data, size_t n)
{
	struct dockerstep *s = arg;

	s->x.cbs.output(s->x.cbs.arg, stream, data, n);
}

static void on_attach_end(void *arg, const struct docker_res *r)
{
	struct dockerstep *s = arg;

	s->attach = NULL;
	s->attach_done = 1;
	s->x.cbs.output(s->x.cbs.arg, 1, "", 0);
	s->x.cbs.output(s->x.cbs.arg, 2, "", 0);
	if (r->err < 0 && !s->wait_done)
		log_warn("step output stream broke", "container=%.12s error=%s",
		    s->id, logq(r->msg));
	finish(s);
}

static void on_waited(void *arg, const struct docker_res *r)
{
	struct dockerstep *s = arg;

	s->wait = NULL;
	if (r->err < 0) {
		fail(s, "internal", "waiting for the container failed: %s", r->msg);
		return;
	}
	s->exit_code = r->exit_code;
	s->wait_done = 1;
	finish(s);
}

static void do_stop(struct dockerstep *s);

static void on_started(void *arg, const struct docker_res *r)
{
	struct dockerstep *s = arg;

	s->op = NULL;
	if (r->err < 0) {
		fail(s, "internal", "the container did not start: %s", r->msg);
		return;
	}
	s->started = 1;
	if (s->stop_requested)
		do_stop(s);
}

static void start_when_ready(struct dockerstep *s)
{
	if (!s->attach_ready || !s->wait_ready)
		return;
	if (s->stop_requested) {
		s->exit_code = -1;
		snprintf(s->error, sizeof(s->error), "stopped before it started");
		remove_container(s);
		return;
	}
	if (docker_container_start(s->d, s->id, on_started, s, &s->op) < 0)
		fail(s, "internal", "cannot start the container");
}

static void on_wait_ready(void *arg)
{
	struct dockerstep *s = arg;

	s->wait_ready = 1;
	start_when_ready(s);
}

/* Output connected: register the waiter too, then start (so neither the
 * first byte nor the exit can be missed). */
static void on_attached(void *arg)
{
	struct dockerstep *s = arg;

	s->attach_ready = 1;
	if (docker_container_wait_next(s->d, s->id, on_wait_ready, on_waited, s,
	    &s->wait) < 0)
		fail(s, "internal", "cannot wait for the container");
}

static void on_created(void *arg, const struct docker_res *r)
{
	struct dockerstep *s = arg;

	s->op = NULL;
	if (r->err < 0) {
		fail(s, r->err == -ENOENT ? "pull_failed" : "internal",
		    "cannot create the container: %s", r->msg);
		return;
	}
	s->id = xstrdup(r->id);
	if (s->track_fn)
		s->track_fn(s->x.cbs.arg, s->id, 1);
	if (s->stop_requested) {
		s->exit_code = -1;
		snprintf(s->error, sizeof(s->error), "stopped before it started");
		remove_container(s);
		return;
	}
	s->state = DS_RUN;
	if (docker_container_attach(s->d, s->id, on_attached, on_output,
	    on_attach_end, s, &s->attach) < 0)
		fail(s, "internal", "cannot attach to the container");
}

static void create(struct dockerstep *s)
{
	s->state = DS_CREATE;
	if (docker_container_create(s->d, &s->c, on_created, s, &s->op) < 0)
		fail(s, "internal", "cannot create the container");
}

static void on_image(void *arg, struct rimage *im)
{
	struct dockerstep *s = arg;

	if (rimage_state(im) == RIMG_FAILED) {
		fail(s, "pull_failed", "image %s: %s", s->c.image, rimage_error(im));
		return;
	}
	if (s->stop_requested) {
		fail(s, "internal", "stopped before it started");
		return;
	}
	create(s);
}

static void on_stopped(void *arg, const struct docker_res *r)
{
	struct dockerstep *s = arg;

	s->op = NULL;
	if (r->err < 0 && r->err != -ENOENT)
		log_warn("cannot stop a step container", "container=%.12s error=%s",
		    s->id, logq(r->msg));
	/* The wait and the output end now come on their own. */
}

static void do_stop(struct dockerstep *s)
{
	int grace = (int)((s->grace_ms + 999) / 1000);

	if (s->stopping || s->op)
		return;
	s->stopping = 1;
	if (grace > 0)
		docker_container_stop(s->d, s->id, grace, on_stopped, s, &s->op);
	else
		docker_container_kill(s->d, s->id, on_stopped, s, &s->op);
}

static void ds_stop(struct stepx *x, long grace_ms)
{
	struct dockerstep *s = (struct dockerstep *)x;

	if (s->state == DS_DONE)
		return;
	if (s->stop_requested && grace_ms >= s->grace_ms && s->stopping)
		return;
	/* A harder stop (kill now) may follow a graceful one. */
	if (s->stopping && grace_ms == 0 && s->grace_ms > 0 && s->op == NULL) {
		s->grace_ms = 0;
		docker_container_kill(s->d, s->id, on_stopped, s, &s->op);
		return;
	}
	s->stop_requested = 1;
	s->grace_ms = grace_ms;
	if (s->state == DS_IMAGE) {
		rimage_unwait(s->image, s);
		fail(s, "internal", "stopped before it started");
	} else if (s->state == DS_RUN && s->started) {
		do_stop(s);
	}
	/* DS_CREATE: on_created removes it; DS_RUN before start:
	 * start_when_ready does; while starting: on_started stops it. */
}

static void ds_free(struct stepx *x)
{
	struct dockerstep *s = (struct dockerstep *)x;

	if (s->state == DS_IMAGE && s->image)
		rimage_unwait(s->image, s);
	docker_op_cancel(s->op);
	docker_op_cancel(s->attach);
	docker_op_cancel(s->wait);
	ev_timer_free(s->recheck);
	if (s->id && s->state != DS_DONE) {
		/* Freed mid-way (the agent is leaving): force-remove without
		 * waiting; the orphan sweep catches what this misses. */
		docker_container_remove(s->d, s->id, NULL, NULL, NULL);
		if (s->track_fn)
			s->track_fn(s->x.cbs.arg, s->id, 0);
	}
	free(s->id);
	strv_free(s->argv);
	strv_free(s->env);
	for (size_t i = 0; i < s->c.n_mounts; i++) {
		free((char *)s->mounts[i].source);
		free((char *)s->mounts[i].target);
	}
	free(s->mounts);
	for (size_t i = 0; i < s->c.n_labels; i++) {
		free((char *)s->labels[i].key);
		free((char *)s->labels[i].value);
	}
	free(s->labels);
	free((char *)s->c.name);
	free((char *)s->c.image);
	free((char *)s->c.workdir);
	free((char *)s->c.user);
	free(s);
}

static const struct stepx_ops dockerstep_ops = { ds_stop, ds_free };

static void copy_spec(struct dockerstep *s, const struct stepx_spec *sp,
    const struct dockerstep_spec *ds)
{
	s->argv = strv_copy(sp->argv);
	s->env = strv_copy(sp->envp);
	s->mounts = xcalloc(ds->n_mounts ? ds->n_mounts : 1, sizeof(*s->mounts));
	for (size_t i = 0; i < ds->n_mounts; i++) {
		s->mounts[i].source = xstrdup(ds->mounts[i].source);
		s->mounts[i].target = xstrdup(ds->mounts[i].target);
		s->mounts[i].read_only = ds->mounts[i].read_only;
	}
	s->labels = xcalloc(ds->n_labels ? ds->n_labels : 1, sizeof(*s->labels));
	for (size_t i = 0; i < ds->n_labels; i++) {
		s->labels[i].key = xstrdup(ds->labels[i].key);
		s->labels[i].value = xstrdup(ds->labels[i].value);
	}
	s->c.name = ds->name ? xstrdup(ds->name) : NULL;
	s->c.image = xstrdup(ds->image);
	s->c.argv = s->argv;
	s->c.env = s->env;
	s->c.workdir = xstrdup(sp->workdir);
	s->c.user = sp->user ? xstrdup(sp->user) : NULL;
	s->c.mounts = s->mounts;
	s->c.n_mounts = ds->n_mounts;
	s->c.labels = s->labels;
	s->c.n_labels = ds->n_labels;
	s->c.memory = ds->memory;
	s->c.memory_swap = 0;
	s->c.nano_cpus = ds->nano_cpus;
	s->c.pids_limit = ds->pids;
	s->c.network = ds->network;
}

int dockerstep_start(struct ev_loop *loop, struct docker *d,
    const struct stepx_spec *sp, const struct dockerstep_spec *ds,
    const struct stepx_cbs *cbs, struct stepx **out, char *err,
    size_t errlen)
{
	struct dockerstep *s;

	if (d == NULL) {
		snprintf(err, errlen, "step image '%s': no Docker engine is "
		    "available on this agent (SKIFF_DOCKER_HOST)", ds->image);
		return -ENOSYS;
	}
	s = xcalloc(1, sizeof(*s));
	s->x.ops = &dockerstep_ops;
	s->x.cbs = *cbs;
	s->d = d;
	s->recheck = ev_timer_new(loop, on_recheck, s);
	s->image = ds->wait_for;
	s->track_fn = ds->track;
	copy_spec(s, sp, ds);
	*out = &s->x;
	if (s->image) {
		s->state = DS_IMAGE;
		rimage_wait(s->image, on_image, s);
	} else {
		create(s);
	}
	return 0;
}
