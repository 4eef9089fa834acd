/*
 * Docker around the steps: negotiating with the engine when a job first
 * needs it, the disk-floor check before a job, the job's image pulls
 * (once per image, in the background), container steps, the orphan
 * sweep, and emptying a workspace a container filled with root-owned
 * files. Host steps start here under the job's process tracking, which
 * kills what they left before the workspace goes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caches.h"
#include "config.h"
#include "docker.h"
#include "fsx.h"
#include "images.h"
#include "inputs.h"
#include "rmtree.h"
#include "job.h"
#include "log.h"
#include "proctrack.h"
#include "prune.h"
#include "run_int.h"
#include "services.h"
#include "stepx.h"
#include "warm.h"
#include "xalloc.h"

#define LABEL_INSTANCE "io.skiff.instance"
#define LABEL_JOB "io.skiff.job"
#define LABEL_STEP "io.skiff.step"
#define LABEL_AGENT "io.skiff.agent"

static void make_first_ahead(struct rjob *j);
static void check_gone(struct rjob *j);

static int job_has_images(const struct job *job)
{
	for (size_t i = 0; i < job->nsteps; i++)
		if (job->steps[i].image)
			return 1;
	return job->nservices > 0;
}

static void images_note(void *arg, const char *line)
{
	rjob_note(arg, "%s", line);
}

/* One of the things before the steps is done; the last lets them go. */
static void prepared_one(struct rjob *j)
{
	if (--j->prepare_pending == 0)
		j->prepared(j);
}

static void start_images(struct rjob *j)
{
	j->images = rimages_start(j->rn->loop, j->rn->docker_ready ?
	    j->rn->docker : NULL, j->job, images_note, j);
	make_first_ahead(j);
	rservices_start(j, prepared_one);
}

static void pruned(void *arg)
{
	start_images(arg);
}

/* Images of other running jobs: not to be pruned under them. */
static char **images_in_use(struct runner *rn, size_t *n)
{
	char **v = NULL;

	*n = 0;
	for (struct rjob *o = rn->jobs; o; o = o->next) {
		for (size_t i = 0; o->job && i < o->job->nsteps; i++) {
			if (!o->job->steps[i].image)
				continue;
			v = xreallocarray(v, *n + 1, sizeof(char *));
			v[(*n)++] = o->job->steps[i].image;
		}
		for (size_t i = 0; o->job && i < o->job->nservices; i++) {
			v = xreallocarray(v, *n + 1, sizeof(char *));
			v[(*n)++] = o->job->services[i].image;
		}
	}
	return v;
}

static void disk_check(struct rjob *j)
{
	const struct agent_config *cfg = j->rn->cfg;
	size_t nuse;
	char **use = images_in_use(j->rn, &nuse);
	struct prune_params p = { j->rn->docker, cfg->disk_floor_mb,
	    cfg->prepull_keep.v, cfg->prepull_keep.n, use, nuse, images_note,
	    pruned, j };

	prune_start(&p);
	free(use);
}

static void docker_up(struct rjob *j)
{
	if (j->rn->docker_ready && j->rn->cfg->disk_floor_mb > 0)
		disk_check(j);
	else
		start_images(j);
}

static void on_negotiated(void *arg, const struct docker_res *r)
{
	struct runner *rn = arg;
	struct rjob **waiters = rn->docker_waiters;
	size_t n = rn->ndocker_waiters;

	rn->negotiate = NULL;
	rn->docker_waiters = NULL;
	rn->ndocker_waiters = 0;
	if (r->err == 0) {
		rn->docker_ready = 1;
		runner_sweep(rn);
	} else {
		log_warn("no Docker engine; steps with an image will fail",
		    "host=%s error=%s", logq(rn->cfg->docker_host), logq(r->msg));
	}
	for (size_t i = 0; i < n; i++)
		docker_up(waiters[i]);
	free(waiters);
}

/* Negotiates (once; again after a failure) and then calls docker_up. */
static void need_docker(struct rjob *j)
{
	struct runner *rn = j->rn;

	if (rn->docker == NULL || rn->docker_ready) {
		docker_up(j);
		return;
	}
	rn->docker_waiters = xreallocarray(rn->docker_waiters,
	    rn->ndocker_waiters + 1, sizeof(*rn->docker_waiters));
	rn->docker_waiters[rn->ndocker_waiters++] = j;
	if (rn->negotiate == NULL &&
	    docker_negotiate(rn->docker, on_negotiated, rn, &rn->negotiate) < 0) {
		struct docker_res r = { .err = -EIO, .msg = "cannot reach it" };
		on_negotiated(rn, &r);
	}
}

static void inputs_done(void *arg, int ok, const char *error)
{
	struct rjob *j = arg;

	if (!ok) {
		rjob_note(j, "%s", error);
		/* A stop's own reason stands. */
		if (j->stop == RSTOP_NONE)
			rjob_fail(j, "input_failed", "%s", error);
	}
	prepared_one(j);
}

static void fetch_via_net(void *ctx, uint64_t id, const char *url, int fd,
    uint64_t max)
{
	struct rjob *j = ctx;

	j->rn->net->fetch(j->rn->net->ctx, j->jh, id, url, fd, max);
}

/* Inputs must be in place before the first step; images are only
 * started here (pulled in the background, awaited by their steps). */
void rjob_prepare(struct rjob *j, void (*done)(struct rjob *j))
{
	int images = job_has_images(j->job);
	struct rinputs_fetcher f = { j, fetch_via_net };

	j->prepared = done;
	j->prepare_pending = 1 + (j->job->ninputs > 0) + images +
	    (j->job->ncaches > 0);
	if (images)
		need_docker(j);
	if (j->job->ncaches)
		rcaches_restore(j, prepared_one);
	if (j->job->ninputs)
		j->inputs_set = rinputs_start(j->rn->loop, &f, j->rn->cfg,
		    j->job, j->inputs, images_note, inputs_done, j);
	prepared_one(j);
}

/* Stopping during preparation: the stop takes effect when the steps
 * would start (next_step sees it); container steps waiting for an image
 * are stopped through their executor; services stop being waited for;
 * input downloads (with their retries) and cache restores end now. Each
 * tells its end from the loop, never from in here. */
void rjob_stop_pending(struct rjob *j)
{
	rinputs_stop(j->inputs_set);
	rcaches_stop(j);
	/* Last: it may let the job go on to its end at once. */
	rservices_stop(j);
}

/* ---- container steps ---- */

static size_t containers_of(struct runner *rn, struct rjob *j)
{
	size_t n = 0;

	for (size_t i = 0; i < rn->nlive; i++)
		n += rn->live[i].job == j;
	return n;
}

static void track(void *arg, const char *id, int live)
{
	struct rjob *j = arg;
	struct runner *rn = j->rn;

	if (live) {
		rn->live = xreallocarray(rn->live, rn->nlive + 1, sizeof(*rn->live));
		rn->live[rn->nlive].id = xstrdup(id);
		rn->live[rn->nlive++].job = j;
		return;
	}
	for (size_t i = 0; i < rn->nlive; i++) {
		if (strcmp(rn->live[i].id, id) == 0) {
			free(rn->live[i].id);
			rn->live[i] = rn->live[--rn->nlive];
			break;
		}
	}
	check_gone(j);
}

void rjob_track_container(struct rjob *j, const char *id, int live)
{
	track(j, id, live);
}

/* The containers made ahead go first (removed in the background). */
void rjob_when_containers_gone(struct rjob *j, void (*done)(struct rjob *j))
{
	struct warm *cur = j->cur, *ahead = j->ahead;

	j->cur = j->ahead = NULL;
	j->when_gone = done;
	warm_retire(cur);
	warm_retire(ahead);
	check_gone(j);
}

/* The smaller of the job's wish and the agent's cap; 0 means none. */
static int64_t capped(int64_t want, int64_t cap)
{
	if (want == 0)
		return cap;
	if (cap == 0)
		return want;
	return want < cap ? want : cap;
}

static int socket_path(const struct agent_config *cfg, const char **path)
{
	if (strncmp(cfg->docker_host, "unix://", 7) != 0)
		return -EINVAL;
	*path = cfg->docker_host + 7;
	return 0;
}

/* The workspace, inputs and outputs at their own paths (mounts[4]); the
 * Docker socket only when the operator said so (it is root on the host). */
static size_t step_mounts(struct rjob *j, struct docker_mount *m)
{
	const struct agent_config *cfg = j->rn->cfg;
	const char *sock, *outs = rjob_outputs_dir(j);
	size_t n = 0;

	m[n++] = (struct docker_mount){ j->ws, j->ws, 0 };
	m[n++] = (struct docker_mount){ j->inputs, j->inputs, 1 };
	/* $SKIFF_OUTPUT at the same path as on the host (stepout.c). */
	if (outs)
		m[n++] = (struct docker_mount){ outs, outs, 0 };
	if (cfg->docker_socket_in_steps && socket_path(cfg, &sock) == 0)
		m[n++] = (struct docker_mount){ sock, "/var/run/docker.sock", 0 };
	return n;
}

static int64_t step_memory(const struct rjob *j, const struct job_step *s)
{
	return capped(s->memory_mb, j->rn->cfg->step_memory_mb);
}

static int64_t step_cpus(const struct rjob *j, const struct job_step *s)
{
	return capped(s->nano_cpus, j->rn->cfg->step_nano_cpus);
}

static int64_t step_pids(const struct rjob *j, const struct job_step *s)
{
	return capped(s->pids, j->rn->cfg->step_pids);
}

/* The create-per-step way (SKIFF_WARM_CONTAINERS=false). */
static int start_container_run(struct rjob *j, const struct job_step *s,
    const struct stepx_spec *spec, const struct stepx_cbs *cbs, char *err,
    size_t errlen)
{
	struct docker_mount mounts[4];
	char step[16], name[160];
	size_t nm = step_mounts(j, mounts);

	snprintf(step, sizeof(step), "%zu", j->step);
	struct docker_label labels[] = {
		{ LABEL_INSTANCE, j->rn->instance },
		{ LABEL_JOB, j->job_id },
		{ LABEL_STEP, step },
		{ LABEL_AGENT, j->rn->agent_name },
	};
	snprintf(name, sizeof(name), "skiff-%s-%d-%zu", j->job_id, j->attempt,
	    j->step);
	struct dockerstep_spec ds = {
		s->image, name, mounts, nm, labels, 4,
		step_memory(j, s) << 20, step_cpus(j, s), step_pids(j, s),
		rimages_find(j->images, s->image), track, rservices_network(j),
	};
	return dockerstep_start(j->rn->loop, j->rn->docker_ready ?
	    j->rn->docker : NULL, spec, &ds, cbs, &j->x, err, errlen);
}

/* ---- containers made ahead (warm.h) ---- */

static void check_gone(struct rjob *j)
{
	if (j->when_gone && containers_of(j->rn, j) == 0 && j->warm_out == 0) {
		void (*done)(struct rjob *) = j->when_gone;
		j->when_gone = NULL;
		done(j);
	}
}

static void warm_settled(void *arg)
{
	struct rjob *j = arg;

	j->warm_out--;
	check_gone(j);
}

static struct warm *make_warm(struct rjob *j, size_t k)
{
	const struct job_step *s = &j->job->steps[k];
	struct docker_mount mounts[4];
	char step[16], name[160];
	size_t nm = step_mounts(j, mounts);

	snprintf(step, sizeof(step), "%zu", k);
	struct docker_label labels[] = {
		{ LABEL_INSTANCE, j->rn->instance },
		{ LABEL_JOB, j->job_id },
		{ LABEL_STEP, step },
		{ LABEL_AGENT, j->rn->agent_name },
	};
	snprintf(name, sizeof(name), "skiff-%s-%d-%zu", j->job_id, j->attempt, k);
	struct warm_spec ws = {
		.loop = j->rn->loop, .image = s->image, .name = name, .idle = s->shell[0],
		.mounts = mounts, .n_mounts = nm, .labels = labels, .n_labels = 4,
		.memory = step_memory(j, s) << 20, .nano_cpus = step_cpus(j, s),
		.pids = step_pids(j, s),
		.wait_for = rimages_find(j->images, s->image),
		.network = rservices_network(j),
		.track = track, .settled = warm_settled, .arg = j,
	};
	j->warm_out++;
	return warm_new(j->rn->docker_ready ? j->rn->docker : NULL, &ws);
}

static int same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* With "container": "shared", step k runs in step k-1's container: both
 * in the same image, as the same user, with the same resources. */
static int shares(const struct rjob *j, size_t k)
{
	const struct job_step *a, *b;

	if (!j->job->shared_container || k == 0 || k >= j->job->nsteps)
		return 0;
	a = &j->job->steps[k - 1];
	b = &j->job->steps[k];
	return a->image && b->image && strcmp(a->image, b->image) == 0 &&
	    same_str(a->user, b->user) && step_memory(j, a) == step_memory(j, b) &&
	    step_cpus(j, a) == step_cpus(j, b) && step_pids(j, a) == step_pids(j, b);
}

static int warm_wanted(const struct rjob *j)
{
	return j->rn->cfg->warm_containers && j->rn->docker_ready;
}

/* One container made ahead at a time: for the first container step from
 * `from` on that will not run in the one before it. */
static void make_ahead(struct rjob *j, size_t from)
{
	if (j->ahead || !warm_wanted(j) || j->stop != RSTOP_NONE ||
	    j->have_outcome)
		return;
	for (size_t k = from; k < j->job->nsteps; k++) {
		if (j->job->steps[k].image == NULL || shares(j, k))
			continue;
		j->ahead = make_warm(j, k);
		j->ahead_step = k;
		return;
	}
}

/*
 * The first container step's container is made while what comes before
 * it runs (host steps, input downloads), unless the job has services.
 * When nothing does, and the step
 * has its container to itself, it runs as that container's own process
 * (start_container_run): nothing could be made ahead, and an exec would
 * only add its own cost.
 */
static void make_first_ahead(struct rjob *j)
{
	/* With services, the job's network (which every container step
	 * joins) exists only once they are up: nothing is made before. */
	if (j->job->nservices > 0)
		return;
	for (size_t k = 0; k < j->job->nsteps; k++) {
		if (j->job->steps[k].image == NULL)
			continue;
		/* Something before it (host steps, downloads, a cache to
		 * restore) gives it time to be made. */
		if (k > 0 || j->job->ninputs > 0 || j->job->ncaches > 0 ||
		    shares(j, k + 1))
			make_ahead(j, k);
		return;
	}
}

/* The step's container once the step is over: kept for the next step
 * when that one shares it, otherwise removed now (in the background). */
void rjob_container_step_over(struct rjob *j)
{
	struct warm *w = j->cur;

	if (w == NULL)
		return;
	if (warm_spent(w) || !shares(j, j->step + 1) || j->have_outcome ||
	    j->stop != RSTOP_NONE) {
		j->cur = NULL;
		warm_retire(w);
	}
}

int rjob_start_container(struct rjob *j, const struct job_step *s,
    const struct stepx_spec *spec, const struct stepx_cbs *cbs, char *err,
    size_t errlen)
{
	size_t k = j->step;
	struct warm *w = NULL;

	j->step_memory_mb = step_memory(j, s);
	if (!warm_wanted(j))
		return start_container_run(j, s, spec, cbs, err, errlen);
	if (j->cur && shares(j, k) && !warm_spent(j->cur)) {
		w = j->cur;
	} else if (!(j->ahead && j->ahead_step == k) && !shares(j, k + 1)) {
		/* Nothing made ahead for it and no one to share with. */
		warm_retire(j->cur);
		j->cur = NULL;
		make_ahead(j, k + 1);
		return start_container_run(j, s, spec, cbs, err, errlen);
	} else {
		warm_retire(j->cur);
		j->cur = NULL;
		if (j->ahead && j->ahead_step == k) {
			w = j->ahead;
			j->ahead = NULL;
		} else {
			w = make_warm(j, k);
		}
		j->cur = w;
	}
	make_ahead(j, k + 1);
	return dockerexec_start(j->rn->loop, j->rn->docker, spec, w, cbs,
	    &j->x);
}

/* ---- host steps ---- */

int rjob_start_host(struct rjob *j, const struct stepx_spec *spec,
    const struct stepx_cbs *cbs, char *err, size_t errlen)
{
	char name[96];
	int r;

	snprintf(name, sizeof(name), "%s.%d", j->job_id, j->attempt);
	if (j->ptjob == NULL && j->rn->ptrack &&
	    (r = proctrack_job_new(j->rn->ptrack, name, &j->ptjob)) < 0) {
		snprintf(err, errlen, "cannot track the step's processes: %s",
		    strerror(-r));
		return r;
	}
	return hoststep_start(j->rn->loop, spec, j->ptjob, cbs, &j->x, err,
	    errlen);
}

/* ---- emptying a workspace the agent cannot ---- */

static void cleanup_output(void *arg, int stream, const char *d, size_t n)
{
	(void)arg;
	(void)stream;
	(void)d;
	(void)n;
}

static void cleanup_exited(void *arg, const struct stepx_result *r)
{
	struct rjob *j = arg;
	void (*done)(struct rjob *) = j->cleanup_done;
	int rr;

	if (r->code != 0)
		log_warn("the workspace clean-up container failed", "job=%s "
		    "code=%d error=%s", j->job_id, r->code, logq(r->error));
	if ((rr = fsx_remove_tree(j->dir)) < 0)
		log_warn("cannot remove the workspace", "job=%s path=%s error=%s",
		    j->job_id, logq(j->dir), logq(strerror(-rr)));
	else
		log_info("workspace removed with a container (root-owned files)",
		    "job=%s", j->job_id);
	/* Its container is being removed: the job goes once it is gone. */
	rjob_when_containers_gone(j, done);
}

static void cleanup_note(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

/*
 * A container ran as root left files the agent (not root) cannot delete:
 * let a container of one of the job's images, as root, delete them.
 */
static int cleanup_with_container(struct rjob *j)
{
	const char *image = rimages_any_ready(j->images);
	char outs[PATH_MAX + 16];
	char *argv[] = { "rm", "-rf", "--", j->ws, j->inputs, outs, NULL };
	char *env[] = { NULL };
	struct docker_mount m = { j->dir, j->dir, 0 };
	struct docker_label labels[] = { { LABEL_INSTANCE, j->rn->instance },
	    { LABEL_JOB, j->job_id } };
	struct stepx_spec spec = { argv, env, "/", "0:0", j->job_id, "cleanup",
	    -1, NULL, 0, 0, 0 };
	struct dockerstep_spec ds = { image, NULL, &m, 1, labels, 2, 0, 0, 0,
	    NULL, track, NULL };
	struct stepx_cbs cbs = { cleanup_output, cleanup_exited, cleanup_note,
	    j };
	char err[256];

	if (image == NULL || !j->rn->docker_ready)
		return -ENOENT;
	snprintf(outs, sizeof(outs), "%s/outputs", j->dir);
	return dockerstep_start(j->rn->loop, j->rn->docker, &spec, &ds, &cbs,
	    &j->cleanup, err, sizeof(err));
}

static void remove_now(struct rjob *j, void (*done)(struct rjob *j));
static void tree_removed(void *arg, int r);

static void host_gone(void *arg)
{
	struct rjob *j = arg;

	remove_now(j, j->cleanup_done);
}

static void host_steps_ended(void *arg)
{
	struct rjob *j = arg;
	void (*done)(struct rjob *) = j->hosts_done;

	j->hosts_done = NULL;
	done(j);
}

void rjob_end_host_steps(struct rjob *j, void (*done)(struct rjob *j))
{
	if (j->ptjob == NULL) {
		done(j);
		return;
	}
	j->hosts_done = done;
	proctrack_job_end(j->ptjob, j->rn->loop, host_steps_ended, j);
}

/* Whatever the host steps left dies first: nothing may write into the
 * workspace while it goes, or outlive the job. */
void rjob_remove_workspace(struct rjob *j, void (*done)(struct rjob *j))
{
	if (j->ptjob) {
		j->cleanup_done = done;
		proctrack_job_end(j->ptjob, j->rn->loop, host_gone, j);
		return;
	}
	remove_now(j, done);
}

static void remove_now(struct rjob *j, void (*done)(struct rjob *j))
{
	if (j->dir[0] == '\0' || j->rn->cfg->keep_workspace) {
		if (j->dir[0])
			log_info("keeping the workspace", "job=%s path=%s", j->job_id,
			    logq(j->dir));
		done(j);
		return;
	}
	j->cleanup_done = done;
	/* In a child: a job may leave millions of files, and the loop serves
	 * the other jobs meanwhile. */
	if (rmtree_start(j->rn->loop, j->dir, tree_removed, j, &j->rmtree) == 0)
		return;
	tree_removed(j, fsx_remove_tree(j->dir));
}

static void tree_removed(void *arg, int r)
{
	struct rjob *j = arg;
	void (*done)(struct rjob *) = j->cleanup_done;

	rmtree_free(j->rmtree);
	j->rmtree = NULL;
	if (r == 0) {
		done(j);
		return;
	}
	/* Whatever stopped us (EACCES on a root-owned directory, or the
	 * ENOTEMPTY it leaves above), root in a container can finish it. */
	if (cleanup_with_container(j) == 0)
		return;
	log_warn("cannot remove the workspace", "job=%s path=%s error=%s",
	    j->job_id, logq(j->dir), logq(strerror(-r)));
	done(j);
}

void rjob_free_extras(struct rjob *j)
{
	j->when_gone = NULL;
	warm_abandon(j->cur);
	warm_abandon(j->ahead);
	j->cur = j->ahead = NULL;
	rmtree_free(j->rmtree);
	j->rmtree = NULL;
	stepx_free(j->cleanup);
	j->cleanup = NULL;
	proctrack_job_free(j->ptjob);
	j->ptjob = NULL;
	rservices_free(j);
	rimages_free(j->images);
	j->images = NULL;
	rinputs_free(j->inputs_set);
	rcaches_free(j);
	j->inputs_set = NULL;
	/* A job freed while waiting for Docker leaves the waiters' list. */
	struct runner *rn = j->rn;
	for (size_t i = 0; i < rn->ndocker_waiters; i++) {
		if (rn->docker_waiters[i] == j) {
			rn->docker_waiters[i] = rn->docker_waiters[--rn->ndocker_waiters];
			break;
		}
	}
}

/* ---- the orphan sweep ---- */

static int is_live(struct runner *rn, const char *id)
{
	for (size_t i = 0; i < rn->nlive; i++)
		if (strcmp(rn->live[i].id, id) == 0)
			return 1;
	return 0;
}

static void on_swept(void *arg, const struct docker_res *r)
{
	struct runner *rn = arg;

	rn->sweep = NULL;
	if (r->err < 0) {
		log_warn("orphan sweep: cannot list containers", "error=%s",
		    logq(r->msg));
		return;
	}
	for (size_t i = 0; i < r->n_containers; i++) {
		const struct docker_container *c = &r->containers[i];
		if (is_live(rn, c->id))
			continue;
		log_info("orphan sweep: removing a leftover container",
		    "container=%.12s name=%s state=%s", c->id, logq(c->name),
		    logq(c->state));
		docker_container_remove(rn->docker, c->id, NULL, NULL, NULL);
	}
	rservices_sweep(rn);
	if (rn->sweep_again) {
		rn->sweep_again = 0;
		runner_sweep(rn);
	}
}

/* Containers carrying our instance label that no running step owns: a
 * crash or kill -9 left them. */
void runner_sweep(struct runner *rn)
{
	char label[160];
	const char *labels[1] = { label };

	if (rn->docker == NULL || !rn->docker_ready)
		return;
	if (rn->sweep) {
		rn->sweep_again = 1;
		return;
	}
	snprintf(label, sizeof(label), "%s=%s", LABEL_INSTANCE, rn->instance);
	docker_container_list(rn->docker, labels, 1, on_swept, rn, &rn->sweep);
}

void runner_docker_start(struct runner *rn)
{
	if (rn->docker && rn->negotiate == NULL && !rn->docker_ready &&
	    docker_negotiate(rn->docker, on_negotiated, rn, &rn->negotiate) < 0)
		log_warn("cannot reach the Docker engine", "host=%s",
		    logq(rn->cfg->docker_host));
}

void runner_docker_free(struct runner *rn)
{
	docker_op_cancel(rn->negotiate);
	docker_op_cancel(rn->sweep);
	rservices_sweep_free(rn);
	for (size_t i = 0; i < rn->nlive; i++)
		free(rn->live[i].id);
	free(rn->live);
	free(rn->docker_waiters);
}
