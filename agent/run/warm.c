/*
 * Containers made ahead (warm.h). Sequence: [wait for the job's pull of
 * the image] create (stdin open, the shell as its only argv), start; then
 * it idles until a step execs in it. Retiring removes it (forced: the
 * engine kills what runs) in the background.
 */
#include "warm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker.h"
#include "ev.h"
#include "images.h"
#include "log.h"
#include "oomlog.h"
#include "xalloc.h"

enum warm_state {
	W_IMAGE,	/* waiting for the job's pull */
	W_CREATE,
	W_START,
	W_READY,
	W_FAILED,
};

/* dockerd may record an OOM kill a moment after the container is down:
 * after a step killed by SIGKILL it is asked again a few times. */
#define OOM_RECHECKS 5
#define OOM_RECHECK_MS 100

struct warm {
	struct docker *d;
	struct ev_timer *recheck;
	int rechecks, suspect;
	uint64_t oom_mark;
	enum warm_state state;
	struct docker_create c;		/* deep copy */
	char *argv[2];
	struct docker_mount *mounts;
	struct docker_label *labels;
	struct rimage *image;
	void (*track)(void *arg, const char *id, int live);
	void (*settled)(void *arg);
	void *arg;
	char *id;
	struct docker_op *op;
	void (*ready)(void *arg);
	void *ready_arg;
	char error[512];
	const char *reason_code;
	int spent;
	int retired;			/* remove once the op in flight is back */
	/* warm_end */
	void (*end_done)(void *arg, int oom);
	void *end_arg;
};

static void on_recheck(struct ev_timer *t, void *arg);

static void free_copy(struct warm *w)
{
	for (size_t i = 0; i < w->c.n_mounts; i++) {
		free((char *)w->mounts[i].source);
		free((char *)w->mounts[i].target);
	}
	free(w->mounts);
	for (size_t i = 0; i < w->c.n_labels; i++) {
		free((char *)w->labels[i].key);
		free((char *)w->labels[i].value);
	}
	free(w->labels);
	free(w->argv[0]);
	free((char *)w->c.name);
	free((char *)w->c.image);
	free((char *)w->c.network);
}

static void destroy(struct warm *w)
{
	void (*settled)(void *) = w->settled;
	void *arg = w->arg;

	free_copy(w);
	ev_timer_free(w->recheck);
	free(w->id);
	free(w);
	if (settled)
		settled(arg);
}

static void tell(struct warm *w)
{
	void (*ready)(void *) = w->ready;

	w->ready = NULL;
	if (ready)
		ready(w->ready_arg);
}

static void on_removed(void *arg, const struct docker_res *r)
{
	struct warm *w = arg;

	w->op = NULL;
	if (r->err < 0 && r->err != -ENOENT)
		log_warn("cannot remove a step container; the sweep will",
		    "container=%.12s error=%s", w->id, logq(r->msg));
	if (w->track)
		w->track(w->arg, w->id, 0);
	destroy(w);
}

static void remove_now(struct warm *w)
{
	if (w->id == NULL) {
		destroy(w);
		return;
	}
	if (docker_container_remove(w->d, w->id, on_removed, w, &w->op) < 0) {
		struct docker_res r = { .err = -EIO, .msg = "not sent" };
		on_removed(w, &r);
	}
}

static void failed(struct warm *w, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void failed(struct warm *w, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->error, sizeof(w->error), fmt, ap);
	va_end(ap);
	w->reason_code = code;
	w->state = W_FAILED;
	w->spent = 1;
	tell(w);
}

static void on_started(void *arg, const struct docker_res *r)
{
	struct warm *w = arg;

	w->op = NULL;
	if (w->retired) {
		remove_now(w);
		return;
	}
	if (r->err < 0) {
		failed(w, "internal", "the container did not start: %s", r->msg);
		return;
	}
	w->state = W_READY;
	tell(w);
}

static void on_created(void *arg, const struct docker_res *r)
{
	struct warm *w = arg;

	w->op = NULL;
	if (r->err == 0) {
		w->id = xstrdup(r->id);
		if (w->track)
			w->track(w->arg, w->id, 1);
	}
	if (w->retired) {
		remove_now(w);
		return;
	}
	if (r->err < 0) {
		failed(w, r->err == -ENOENT ? "pull_failed" : "internal",
		    "cannot create the container: %s", r->msg);
		return;
	}
	w->state = W_START;
	if (docker_container_start(w->d, w->id, on_started, w, &w->op) < 0)
		failed(w, "internal", "cannot start the container");
}

static void create(struct warm *w)
{
	w->state = W_CREATE;
	if (docker_container_create(w->d, &w->c, on_created, w, &w->op) < 0)
		failed(w, "internal", "cannot create the container");
}

static void on_image(void *arg, struct rimage *im)
{
	struct warm *w = arg;

	if (rimage_state(im) == RIMG_FAILED) {
		failed(w, "pull_failed", "image %s: %s", w->c.image,
		    rimage_error(im));
		return;
	}
	create(w);
}

static void copy_spec(struct warm *w, const struct warm_spec *s)
{
	w->argv[0] = xstrdup(s->idle);
	w->mounts = xcalloc(s->n_mounts ? s->n_mounts : 1, sizeof(*w->mounts));
	for (size_t i = 0; i < s->n_mounts; i++) {
		w->mounts[i].source = xstrdup(s->mounts[i].source);
		w->mounts[i].target = xstrdup(s->mounts[i].target);
		w->mounts[i].read_only = s->mounts[i].read_only;
	}
	w->labels = xcalloc(s->n_labels ? s->n_labels : 1, sizeof(*w->labels));
	for (size_t i = 0; i < s->n_labels; i++) {
		w->labels[i].key = xstrdup(s->labels[i].key);
		w->labels[i].value = xstrdup(s->labels[i].value);
	}
	w->c.name = s->name ? xstrdup(s->name) : NULL;
	w->c.image = xstrdup(s->image);
	w->c.argv = w->argv;
	w->c.env = NULL;
	w->c.workdir = NULL;
	w->c.user = NULL;
	w->c.mounts = w->mounts;
	w->c.n_mounts = s->n_mounts;
	w->c.labels = w->labels;
	w->c.n_labels = s->n_labels;
	w->c.memory = s->memory;
	w->c.memory_swap = 0;
	w->c.nano_cpus = s->nano_cpus;
	w->c.pids_limit = s->pids;
	w->c.network = s->network ? xstrdup(s->network) : NULL;
	w->c.open_stdin = 1;
}

struct warm *warm_new(struct docker *d, const struct warm_spec *s)
{
	struct warm *w = xcalloc(1, sizeof(*w));

	w->d = d;
	w->recheck = ev_timer_new(s->loop, on_recheck, w);
	w->track = s->track;
	w->settled = s->settled;
	w->arg = s->arg;
	w->image = s->wait_for;
	copy_spec(w, s);
	if (d == NULL) {
		failed(w, "internal", "no Docker engine is available on this "
		    "agent (SKIFF_DOCKER_HOST)");
	} else if (w->image) {
		w->state = W_IMAGE;
		rimage_wait(w->image, on_image, w);
	} else {
		create(w);
	}
	return w;
}

void warm_wait(struct warm *w, void (*ready)(void *arg), void *arg)
{
	w->ready = ready;
	w->ready_arg = arg;
	if (w->state == W_READY || w->state == W_FAILED)
		tell(w);
}

void warm_unwait(struct warm *w)
{
	w->ready = NULL;
}

const char *warm_error(const struct warm *w, const char **reason_code)
{
	if (w->state == W_READY)
		return NULL;
	*reason_code = w->reason_code ? w->reason_code : "internal";
	return w->error[0] ? w->error : "not ready";
}

const char *warm_id(const struct warm *w)
{
	return w->id;
}

int warm_spent(const struct warm *w)
{
	return w->spent;
}

int warm_fits(const struct warm *w, const char *image, int64_t memory,
    int64_t nano_cpus, int64_t pids)
{
	return strcmp(w->c.image, image) == 0 && w->c.memory == memory &&
	    w->c.nano_cpus == nano_cpus && w->c.pids_limit == pids;
}

/* ---- the end of it ---- */

static void end_done(struct warm *w, int oom)
{
	void (*done)(void *, int) = w->end_done;

	w->end_done = NULL;
	if (w->retired) {
		remove_now(w);
		return;
	}
	if (done)
		done(w->end_arg, oom);
}

static void on_end_inspected(void *arg, const struct docker_res *r)
{
	struct warm *w = arg;
	int oom;

	w->op = NULL;
	/* Docker records an OOM kill of any process of the container, also
	 * of an exec, once the container is down, if containerd told it;
	 * in a shared container that may be an earlier step's, which the
	 * kernel's log tells apart when it has the kill. */
	oom = r->err == 0 && r->oom_killed;
	/* Not for a step ended by SIGKILL (what an OOM kill of the step's
	 * own process gives), nor when the kernel's reports since the step's
	 * start may be incomplete. */
	if (oom && !w->suspect && oomlog_complete_since(w->oom_mark) &&
	    oomlog_killed(w->id, 0) && !oomlog_killed(w->id, w->oom_mark)) {
		log_debug("the container's OOM kill was an earlier step's",
		    "container=%.12s", w->id);
		oom = 0;
	} else if (r->err == 0 && !oom) {
		oom = oomlog_killed_unrecorded(w->id, w->oom_mark);
	}
	if (r->err == 0 && !oom && w->suspect && !w->retired &&
	    w->rechecks++ < OOM_RECHECKS) {
		ev_timer_start(w->recheck, OOM_RECHECK_MS);
		return;
	}
	end_done(w, oom);
}

static void on_recheck(struct ev_timer *t, void *arg)
{
	struct warm *w = arg;

	(void)t;
	if (w->retired || docker_container_inspect(w->d, w->id,
	    on_end_inspected, w, &w->op) < 0)
		end_done(w, 0);
}

static void on_end_waited(void *arg, const struct docker_res *r)
{
	struct warm *w = arg;

	(void)r;
	w->op = NULL;
	if (w->retired || docker_container_inspect(w->d, w->id,
	    on_end_inspected, w, &w->op) < 0)
		end_done(w, 0);
}

static void on_end_killed(void *arg, const struct docker_res *r)
{
	struct warm *w = arg;

	w->op = NULL;
	if (r->err < 0 && r->err != -ENOENT)
		log_warn("cannot kill a step container", "container=%.12s "
		    "error=%s", w->id, logq(r->msg));
	if (w->retired || r->err == -ENOENT || docker_container_wait(w->d,
	    w->id, NULL, on_end_waited, w, &w->op) < 0)
		end_done(w, 0);
}

void warm_end(struct warm *w, int suspect, uint64_t oom_mark,
    void (*done)(void *arg, int oom), void *arg)
{
	/* An end under way keeps its caller; a kill alone adds nothing. */
	if (w->end_done && done == NULL)
		return;
	w->spent = 1;
	w->suspect = suspect;
	w->oom_mark = oom_mark;
	w->end_done = done;
	w->end_arg = arg;
	if (w->state != W_READY || w->op != NULL ||
	    docker_container_kill(w->d, w->id, on_end_killed, w, &w->op) < 0)
		end_done(w, 0);
}

void warm_retire(struct warm *w)
{
	if (w == NULL)
		return;
	w->ready = NULL;
	w->end_done = NULL;
	w->retired = 1;
	w->spent = 1;
	if (w->state == W_IMAGE) {
		rimage_unwait(w->image, w);
		destroy(w);
		return;
	}
	ev_timer_stop(w->recheck);
	/* An op in flight (create, start, the end) removes it when back. */
	if (w->op == NULL)
		remove_now(w);
}

void warm_abandon(struct warm *w)
{
	if (w == NULL)
		return;
	if (w->state == W_IMAGE)
		rimage_unwait(w->image, w);
	docker_op_cancel(w->op);
	if (w->id) {
		docker_container_remove(w->d, w->id, NULL, NULL, NULL);
		if (w->track)
			w->track(w->arg, w->id, 0);
	}
	w->settled = NULL;
	destroy(w);
}
