#include "images.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker.h"
#include "ev.h"
#include "job.h"
#include "log.h"
#include "xalloc.h"

#define PULL_TRIES 3

struct waiter {
	rimage_fn fn;
	void *arg;
	struct waiter *next;
};

struct rimage {
	struct rimages *set;
	char *ref;
	enum job_pull pull;
	enum rimage_state state;
	char error[512];
	const struct job_registry *auth;
	struct docker_op *op;
	struct ev_timer *retry;
	int tries;
	struct waiter *waiters;
};

struct rimages {
	struct ev_loop *loop;
	struct docker *d;
	const struct job *job;
	rimages_note_fn note;
	void *arg;
	struct rimage *v;
	size_t n;
};

static void note(struct rimage *im, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(struct rimage *im, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	im->set->note(im->set->arg, line);
}

static void settle(struct rimage *im, enum rimage_state st)
{
	im->state = st;
	while (im->waiters) {
		struct waiter *w = im->waiters;
		im->waiters = w->next;
		w->fn(w->arg, im);
		free(w);
	}
}

static void fail(struct rimage *im, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct rimage *im, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(im->error, sizeof(im->error), fmt, ap);
	va_end(ap);
	note(im, "image %s: %s", im->ref, im->error);
	settle(im, RIMG_FAILED);
}

/* The registry credentials whose server the reference starts with. */
static const struct job_registry *auth_for(const struct job *job,
    const char *ref)
{
	for (size_t i = 0; i < job->nregistries; i++) {
		const char *srv = job->registries[i].server;
		size_t n = strlen(srv);
		if (strncmp(ref, srv, n) == 0 && ref[n] == '/')
			return &job->registries[i];
	}
	return NULL;
}

static void on_progress(void *arg, const char *line)
{
	note(arg, "pull %s", line);
}

static void pull(struct rimage *im);

static void on_retry(struct ev_timer *t, void *arg)
{
	(void)t;
	pull(arg);
}

static void on_pulled(void *arg, const struct docker_res *r)
{
	struct rimage *im = arg;

	im->op = NULL;
	if (r->err == 0) {
		note(im, "image %s pulled", im->ref);
		settle(im, RIMG_READY);
	} else if (r->err == -EACCES) {
		fail(im, "pull refused by the registry (%s): %s",
		    im->auth ? "bad credentials?" : "no credentials in the job",
		    r->msg);
	} else if (r->transient && ++im->tries < PULL_TRIES) {
		note(im, "image %s: pull failed (%s), trying again", im->ref, r->msg);
		ev_timer_start(im->retry, 1000LL << im->tries);
	} else {
		fail(im, "pull failed: %s", r->msg);
	}
}

static void pull(struct rimage *im)
{
	struct docker_auth auth;
	const struct job_secret *pw = NULL;

	if (im->auth)
		pw = job_secret_find(im->set->job, im->auth->password);
	if (pw && pw->value) {
		auth.username = im->auth->username;
		auth.password = pw->value;
		auth.server = im->auth->server;
	}
	note(im, "pulling image %s%s", im->ref, pw ? " (with credentials)" : "");
	if (docker_image_pull(im->set->d, im->ref, pw && pw->value ? &auth : NULL,
	    on_progress, on_pulled, im, &im->op) < 0)
		fail(im, "pull could not be sent to the engine");
}

static void on_inspected(void *arg, const struct docker_res *r)
{
	struct rimage *im = arg;

	im->op = NULL;
	if (r->err < 0) {
		if (r->transient && ++im->tries < PULL_TRIES) {
			ev_timer_start(im->retry, 1000LL << im->tries);
			return;
		}
		fail(im, "cannot ask the engine about it: %s", r->msg);
	} else if (r->present) {
		settle(im, RIMG_READY);
	} else if (im->pull == JOB_PULL_NEVER) {
		fail(im, "pull failed: not on this machine and the pull policy is "
		    "never");
	} else {
		pull(im);
	}
}

static void fetch(struct rimage *im)
{
	if (im->pull == JOB_PULL_ALWAYS) {
		pull(im);
		return;
	}
	if (docker_image_inspect(im->set->d, im->ref, on_inspected, im,
	    &im->op) < 0)
		fail(im, "cannot ask the engine about it");
}

static int stronger(enum job_pull a, enum job_pull b)
{
	/* always > if-not-present > never, when steps disagree */
	static const int rank[] = { [JOB_PULL_IF_NOT_PRESENT] = 1,
	    [JOB_PULL_ALWAYS] = 2, [JOB_PULL_NEVER] = 0 };
	return rank[a] > rank[b];
}

/* job.services: their images too, once each, with their policies. */
static void add_service_images(struct ev_loop *loop, struct rimages *set,
    const struct job *job)
{
	for (size_t i = 0; i < job->nservices; i++) {
		const struct job_service *sv = &job->services[i];
		const char *ref = sv->image;
		struct rimage *im;
		if ((im = rimages_find(set, ref)) != NULL) {
			if (stronger(sv->pull, im->pull))
				im->pull = sv->pull;
			continue;
		}
		im = &set->v[set->n++];
		im->set = set;
		im->ref = xstrdup(ref);
		im->pull = sv->pull;
		im->auth = auth_for(job, ref);
		im->retry = ev_timer_new(loop, on_retry, im);
	}
}

struct rimages *rimages_start(struct ev_loop *loop, struct docker *d,
    const struct job *job, rimages_note_fn note_fn, void *arg)
{
	struct rimages *set = xcalloc(1, sizeof(*set));

	set->loop = loop;
	set->d = d;
	set->job = job;
	set->note = note_fn;
	set->arg = arg;
	set->v = xcalloc(job->nsteps + job->nservices, sizeof(*set->v));
	for (size_t i = 0; i < job->nsteps; i++) {
		const struct job_step *s = &job->steps[i];
		struct rimage *im;
		if (s->image == NULL)
			continue;
		if ((im = rimages_find(set, s->image)) != NULL) {
			if (stronger(s->pull, im->pull))
				im->pull = s->pull;
			continue;
		}
		im = &set->v[set->n++];
		im->set = set;
		im->ref = xstrdup(s->image);
		im->pull = s->pull;
		im->auth = auth_for(job, s->image);
		im->retry = ev_timer_new(loop, on_retry, im);
	}
	add_service_images(loop, set, job);
	if (set->n == 0) {
		free(set->v);
		free(set);
		return NULL;
	}
	for (size_t i = 0; i < set->n; i++) {
		if (d == NULL)
			fail(&set->v[i], "no Docker engine is available on this agent");
		else
			fetch(&set->v[i]);
	}
	return set;
}

struct rimage *rimages_find(struct rimages *set, const char *ref)
{
	for (size_t i = 0; set && i < set->n; i++)
		if (strcmp(set->v[i].ref, ref) == 0)
			return &set->v[i];
	return NULL;
}

enum rimage_state rimage_state(const struct rimage *im)
{
	return im->state;
}

const char *rimage_error(const struct rimage *im)
{
	return im->error;
}

void rimage_wait(struct rimage *im, rimage_fn fn, void *arg)
{
	if (im->state != RIMG_PENDING) {
		fn(arg, im);
		return;
	}
	struct waiter *w = xcalloc(1, sizeof(*w));
	w->fn = fn;
	w->arg = arg;
	w->next = im->waiters;
	im->waiters = w;
}

void rimage_unwait(struct rimage *im, void *arg)
{
	for (struct waiter **pp = &im->waiters; *pp; pp = &(*pp)->next) {
		if ((*pp)->arg == arg) {
			struct waiter *w = *pp;
			*pp = w->next;
			free(w);
			return;
		}
	}
}

const char *rimages_any_ready(const struct rimages *set)
{
	for (size_t i = 0; set && i < set->n; i++)
		if (set->v[i].state == RIMG_READY)
			return set->v[i].ref;
	return NULL;
}

void rimages_free(struct rimages *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n; i++) {
		struct rimage *im = &set->v[i];
		docker_op_cancel(im->op);
		ev_timer_free(im->retry);
		while (im->waiters) {
			struct waiter *w = im->waiters;
			im->waiters = w->next;
			free(w);
		}
		free(im->ref);
	}
	free(set->v);
	free(set);
}
