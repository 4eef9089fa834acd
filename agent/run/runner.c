#include "runner.h"

#include <errno.h>
#include <pwd.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "beneath.h"
#include "buf.h"
#include "caches.h"
#include "config.h"
#include "err.h"
#include "ev.h"
#include "inputs.h"
#include "job.h"
#include "jwk.h"
#include "log.h"
#include "logpipe.h"
#include "mask.h"
#include "oomlog.h"
#include "run_int.h"
#include "services.h"
#include "stepx.h"
#include "strv.h"
#include "xalloc.h"

static void next_step(struct rjob *j);
static void finish(struct rjob *j);
static void rjob_step_settled(struct rjob *j);
static void rjob_prepared(struct rjob *j);

/* ---- small helpers ---- */

static int64_t now_ms(struct rjob *j)
{
	return ev_now_update(j->rn->loop);
}

static void lp_sink(void *arg, const char *data, size_t n)
{
	struct rjob *j = arg;

	j->rn->net->log(j->rn->net->ctx, j->jh, data, n);
}

/* ---- environment ---- */

static void env_set(char ***env, size_t *n, const char *k, const char *v)
{
	size_t klen = strlen(k);

	for (size_t i = 0; i < *n; i++) {
		if (strncmp((*env)[i], k, klen) == 0 && (*env)[i][klen] == '=') {
			free((*env)[i]);
			(*env)[i] = xasprintf("%s=%s", k, v);
			return;
		}
	}
	*env = xreallocarray(*env, *n + 2, sizeof(char *));
	(*env)[(*n)++] = xasprintf("%s=%s", k, v);
	(*env)[*n] = NULL;
}

/* docs/protocol.md section 3.5: skiff's variables, job env, secrets,
 * step env, in increasing priority. */
static char **build_env(struct rjob *j, const struct job_step *s, int host,
    size_t *count)
{
	char **env = xcalloc(1, sizeof(char *)), idx[16];
	size_t n = 0;
	const struct job *job = j->job;

	env_set(&env, &n, "SKIFF", "true");
	env_set(&env, &n, "SKIFF_JOB_ID", job->jti);
	env_set(&env, &n, "SKIFF_JOB_NAME", job->name);
	env_set(&env, &n, "SKIFF_STEP_NAME", s->name);
	snprintf(idx, sizeof(idx), "%zu", j->step);
	env_set(&env, &n, "SKIFF_STEP_INDEX", idx);
	env_set(&env, &n, "SKIFF_WORKSPACE", j->ws);
	env_set(&env, &n, "SKIFF_INPUTS", j->inputs);
	env_set(&env, &n, "SKIFF_AGENT_NAME", j->rn->agent_name);
	env_set(&env, &n, "SKIFF_POOL", j->rn->cfg->pool);
	rjob_outputs_env(j, env_set, &env, &n);
	rservices_env(j, host, env_set, &env, &n);
	if (host) {
		env_set(&env, &n, "HOME", j->ws);
		env_set(&env, &n, "PATH",
		    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	}
	for (size_t i = 0; i < job->nenv; i++)
		env_set(&env, &n, job->env[i].name, job->env[i].value);
	for (size_t i = 0; i < job->nsecrets; i++)
		if (job->secrets[i].value)
			env_set(&env, &n, job->secrets[i].name,
			    job->secrets[i].value);
	for (size_t i = 0; i < s->nenv; i++)
		env_set(&env, &n, s->env[i].name, s->env[i].value);
	*count = n;
	return env;
}

/* ---- steps ---- */

static void step_output(void *arg, int stream, const char *d, size_t n)
{
	struct rjob *j = arg;
	enum logpipe_stream s = stream == 2 ? LP_ERR : LP_OUT;

	if (n == 0)
		logpipe_end(j->lp, s);
	else
		logpipe_write(j->lp, s, d, n);
}

static void step_note(void *arg, const char *line)
{
	rjob_note(arg, "%s", line);
}

/* The job's outcome when it was stopped for reason s. */
static void stopped_outcome(struct rjob *j)
{
	const struct job_step *s = &j->job->steps[j->step];

	switch (j->stop) {
	case RSTOP_CANCEL:
		rjob_outcome(j, SEAM_CANCELED, "canceled", "canceled by an operator");
		break;
	case RSTOP_SHUTDOWN:
		rjob_outcome(j, SEAM_CANCELED, "agent_shutdown",
		    "the agent was shut down and the drain grace ran out");
		break;
	case RSTOP_STEP_TIMEOUT:
		rjob_outcome(j, SEAM_TIMED_OUT, "step_timeout",
		    "step '%s' ran past its timeout of %llds", s->name,
		    (long long)j->step_timeout_s);
		break;
	case RSTOP_JOB_TIMEOUT:
		rjob_outcome(j, SEAM_TIMED_OUT, "job_timeout",
		    "the job ran past its timeout of %llds",
		    (long long)j->job->timeout);
		break;
	case RSTOP_SPOOL:
		rjob_outcome(j, SEAM_FAILED, "spool_failed",
		    "the agent could not keep the job's log (disk full?)");
		break;
	default:
		rjob_outcome(j, SEAM_FAILED, "lost", "the lease was lost");
	}
}

static void step_exited(void *arg, const struct stepx_result *r)
{
	struct rjob *j = arg;
	const struct job_step *s = &j->job->steps[j->step];
	double secs = (double)(now_ms(j) - j->step_started_ms) / 1000.0;

	ev_timer_stop(j->step_timer);
	j->exit_codes[j->nexit++] = r->code;
	if (r->error)
		rjob_note(j, "step %zu/%zu '%s': %s", j->step + 1, j->job->nsteps,
		    s->name, r->error);
	if (r->oom)
		rjob_note(j, "step %zu/%zu '%s' was killed: out of memory "
		    "(limit %lld MiB)", j->step + 1, j->job->nsteps, s->name,
		    (long long)j->step_memory_mb);
	rjob_note(j, "step %zu/%zu '%s' exited with %d after %.3fs",
	    j->step + 1, j->job->nsteps, s->name, r->code, secs);
	if (j->stop != RSTOP_NONE) {
		stopped_outcome(j);
	} else if (r->oom && !s->continue_on_error) {
		rjob_outcome(j, SEAM_FAILED, "oom_killed", "step '%s' was killed for "
		    "exceeding its memory limit", s->name);
	} else if (r->code == -1 && !s->continue_on_error) {
		rjob_outcome(j, SEAM_FAILED, r->reason_code ? r->reason_code : "internal",
		    "step '%s' could not start: %s", s->name,
		    r->error ? r->error : "unknown error");
	} else if (r->code != 0 && !s->continue_on_error) {
		rjob_outcome(j, SEAM_FAILED, "step_failed", "step '%s' exited with %d",
		    s->name, r->code);
	} else if (r->code != 0) {
		rjob_note(j, "step %zu/%zu '%s' failed; continue_on_error is set",
		    j->step + 1, j->job->nsteps, s->name);
	}
	j->exiting_step = 1;
	/* Not from inside the executor's callback (which may come during
	 * its own start): the job may end and be freed from here on. */
	ev_timer_start(j->advance, 0);
}

static void on_advance(struct ev_timer *t, void *arg)
{
	(void)t;
	rjob_container_step_over(arg);
	rjob_outputs_end_step(arg);
	rjob_after_step(arg, rjob_step_settled);
}

/* The step ended and its artifacts (if any) are delivered. */
static void rjob_step_settled(struct rjob *j)
{
	j->exiting_step = 0;
	stepx_free(j->x);
	j->x = NULL;
	j->step++;
	next_step(j);
}

static void on_step_timeout(struct ev_timer *t, void *arg)
{
	struct rjob *j = arg;

	(void)t;
	rjob_note(j, "step %zu/%zu timed out after %llds; stopping it",
	    j->step + 1, j->job->nsteps, (long long)j->step_timeout_s);
	rjob_stop(j, RSTOP_STEP_TIMEOUT);
}

static void on_job_timeout(struct ev_timer *t, void *arg)
{
	struct rjob *j = arg;

	(void)t;
	rjob_note(j, "job timed out after %llds; stopping it",
	    (long long)j->job->timeout);
	rjob_stop(j, RSTOP_JOB_TIMEOUT);
}

static int start_step(struct rjob *j, const struct job_step *s, char **argv,
    char **env, const char *workdir, char *err, size_t errlen)
{
	struct stepx_cbs cbs = { step_output, step_exited, step_note, j };
	struct stepx_spec spec = { argv, env, workdir, s->user, j->job->jti,
	    s->name, (int)j->step, NULL, 0, 0, 0 };

	if (j->rn->step_user) {
		j->iso.hide_dirs = (const char *const *)j->rn->hide_dirs;
		j->iso.hide_files = (const char *const *)j->rn->hide_files;
		j->iso.keep = j->dir;
		spec.iso = &j->iso;
		spec.step_user = 1;
		spec.uid = j->rn->step_uid;
		spec.gid = j->rn->step_gid;
	}

	if (s->image == NULL) {
		if (!j->rn->cfg->host_steps) {
			snprintf(err, errlen, "host steps are disabled on this agent "
			    "(SKIFF_HOST_STEPS=false)");
			return -EPERM;
		}
		return rjob_start_host(j, &spec, &cbs, err, errlen);
	}
	return rjob_start_container(j, s, &spec, &cbs, err, errlen);
}

/*
 * An earlier step (in a container, as root) may have left links in the
 * workspace: the working directory is made beneath it, so none of them
 * can make the agent create directories elsewhere on the host. Links
 * that stay inside are fine.
 */
static void make_workdir(struct rjob *j, const char *workdir, char *err,
    size_t errlen)
{
	int wfd = open(j->ws, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r = wfd < 0 ? -errno : beneath_mkdir_p(wfd, workdir, 0777, 0, NULL);

	if (wfd >= 0)
		close(wfd);
	if (r < 0)
		snprintf(err, errlen, "cannot create workdir '%s': %s", workdir,
		    r == -EXDEV ? "it leads outside the workspace (through a "
		    "symbolic link)" : beneath_strerror(r));
}

static void run_step(struct rjob *j)
{
	const struct job_step *s = &j->job->steps[j->step];
	char err[512] = "", workdir[PATH_MAX];
	size_t nenv, nargv = s->nshell + 1;
	char **env = build_env(j, s, s->image == NULL, &nenv);
	char **argv = xcalloc(nargv + 1, sizeof(char *));
	int64_t left = j->deadline_ms - now_ms(j);

	for (size_t i = 0; i < s->nshell; i++)
		argv[i] = xstrdup(s->shell[i]);
	argv[s->nshell] = xstrdup(s->script);
	if (snprintf(workdir, sizeof(workdir), "%s%s%s", j->ws,
	    *s->workdir ? "/" : "", s->workdir) >= (int)sizeof(workdir))
		snprintf(err, sizeof(err), "workdir path too long");
	j->step_timeout_s = s->timeout ? s->timeout : (left + 999) / 1000;
	if (j->step_timeout_s * 1000 > left)
		j->step_timeout_s = (left + 999) / 1000;
	rjob_note(j, "step %zu/%zu '%s' started %s%s", j->step + 1,
	    j->job->nsteps, s->name, s->image ? "in image " : "on the host",
	    s->image ? s->image : "");
	j->rn->net->step(j->rn->net->ctx, j->jh, (int)j->step);
	j->step_started_ms = now_ms(j);
	ev_timer_start(j->step_timer, j->step_timeout_s * 1000);
	if (!err[0] && *s->workdir)
		make_workdir(j, s->workdir, err, sizeof(err));
	if (err[0] || start_step(j, s, argv, env, workdir, err, sizeof(err)) < 0) {
		struct stepx_result r = { -1, 0, err, NULL };
		strv_free(argv);
		strv_free(env);
		step_exited(j, &r);
		return;
	}
	strv_free(argv);
	strv_free(env);
}

static void next_step(struct rjob *j)
{
	if (j->stop != RSTOP_NONE && !j->have_outcome)
		stopped_outcome(j);
	if (j->have_outcome || j->step >= j->job->nsteps) {
		finish(j);
		return;
	}
	rjob_outputs_begin_step(j);
	run_step(j);
}

/* ---- stopping ---- */

void rjob_stop(struct rjob *j, enum rjob_stop why)
{
	long grace = (long)j->rn->cfg->kill_grace * 1000;

	if (why == RSTOP_LOST || why == RSTOP_QUIT)
		grace = 0;
	if (j->stop != RSTOP_NONE && why != RSTOP_LOST && why != RSTOP_QUIT)
		return;	/* already stopping; a harder stop still goes through */
	if (j->stop == RSTOP_NONE || why == RSTOP_LOST || why == RSTOP_QUIT)
		j->stop = why;
	ev_timer_stop(j->job_timer);
	if (j->x && !j->exiting_step)
		stepx_stop(j->x, grace);
	else
		rjob_stop_pending(j);
}

/* ---- the job ---- */

static void emit_done(struct rjob *j)
{
	struct seam_done d = { j->result, j->reason_code, NULL, j->exit_codes,
	    j->nexit, j->final_out, j->nfinal_out };
	char *masked = j->mask ? mask_string(j->mask, j->reason) : NULL;

	d.reason = masked ? masked : j->reason;
	if (j->result == SEAM_SUCCEEDED) {
		d.reason_code = NULL;
		d.reason = NULL;
	}
	j->rn->net->done(j->rn->net->ctx, j->jh, &d);
	free(masked);
}

static void finished(struct rjob *j)
{
	struct runner *rn = j->rn;

	emit_done(j);
	rjob_free(j);
	rn->active--;
	/* Whatever a step left behind (its removal failed) goes now. */
	runner_sweep(rn);
	rinputs_trim_cache(rn->cfg);
}

static void remove_workspace(struct rjob *j)
{
	rjob_remove_workspace(j, finished);
}

static void save_caches(struct rjob *j)
{
	rcaches_before(j, remove_workspace)(j);
}

static void containers_gone(struct rjob *j)
{
	rjob_end_host_steps(j, save_caches);
}

static void finish(struct rjob *j)
{
	double secs = (double)(now_ms(j) - j->started_ms) / 1000.0;

	ev_timer_stop(j->job_timer);
	ev_timer_stop(j->step_timer);
	rjob_outputs_final(j, &j->final_out, &j->nfinal_out);
	if (!j->have_outcome)
		rjob_outcome(j, SEAM_SUCCEEDED, NULL, "%s", "");
	if (j->result == SEAM_SUCCEEDED)
		rjob_note(j, "job succeeded after %.3fs", secs);
	else
		rjob_note(j, "job %s after %.3fs: %s", seam_result_name(j->result),
		    secs, j->reason);
	if (j->lp) {
		for (int s = 0; s < LP_NSTREAMS; s++)
			logpipe_end(j->lp, (enum logpipe_stream)s);
	}
	log_info("job finished", "job=%s result=%s reason=%s seconds=%.3f",
	    j->job_id, seam_result_name(j->result),
	    logq(j->reason_code ? j->reason_code : "-"), secs);
	if (j->wsfd >= 0) {
		close(j->wsfd);
		j->wsfd = -1;
	}
	/* Step containers are removed in the background: the job completes
	 * once they are gone and what host steps left is killed (nothing
	 * writes into the caches it saves), then its workspace goes. */
	rservices_end(j, containers_gone);
}

static void reject(struct rjob *j, const struct err *e)
{
	const char *code = job_reason_code((enum job_reason)e->code);

	log_warn("job rejected", "job=%s reason=%s detail=%s", j->job_id, code,
	    logq(e->msg));
	rjob_note(j, "job rejected before running anything: %s: %s", code, e->msg);
	rjob_outcome(j, SEAM_REJECTED, code, "%s", e->msg);
	finish(j);
}

/* Verification on the raw bytes, in the order of protocol.md 3.2. */
static int verify(struct rjob *j, const char *jws, size_t n, struct err *e)
{
	struct runner *rn = j->rn;
	struct job_check chk = { rn->trusted, rn->cfg->pool, (int64_t)time(NULL),
	    rn->cfg->clock_skew, rn->replay };

	if (job_verify(jws, n, &chk, &j->job, e) < 0)
		return -EINVAL;
	if (strcmp(j->job->jti, j->job_id) != 0)
		return err_set(e, JOBR_BAD_CLAIMS, "the queue's job id '%s' is not "
		    "the signed jti '%s'", j->job_id, j->job->jti);
	if (job_open_secrets(j->job, rn->pool_key, e) < 0)
		return -EINVAL;
	size_t ns = j->job->nsecrets;
	const char **v = xcalloc(ns ? ns : 1, sizeof(*v));
	size_t *len = xcalloc(ns ? ns : 1, sizeof(*len));
	for (size_t i = 0; i < ns; i++) {
		v[i] = j->job->secrets[i].value;
		len[i] = j->job->secrets[i].value_len;
	}
	(void)mask_add_values(j->mask, v, len, ns);
	free(v);
	free(len);
	return 0;
}

static void runner_start(void *ctx, uint64_t jh, const char *job_id,
    int attempt, const char *jws, size_t n)
{
	struct runner *rn = ctx;
	struct rjob *j = rjob_new(rn, jh, job_id, attempt);
	struct err e;
	char err[512];

	rn->active++;
	j->lp = logpipe_new(rn->loop, j->mask, lp_sink, j);
	logpipe_on_line(j->lp, rjob_service_line, j);
	if (verify(j, jws, n, &e) < 0) {
		reject(j, &e);
		return;
	}
	j->exit_codes = xcalloc(j->job->nsteps, sizeof(int));
	j->deadline_ms = j->started_ms + j->job->timeout * 1000;
	rjob_note(j, "job %s '%s' attempt %d on agent %s: %zu step%s, %zu "
	    "secret%s masked", j->job->jti, j->job->name, attempt,
	    rn->agent_name, j->job->nsteps, j->job->nsteps == 1 ? "" : "s",
	    j->job->nsecrets, j->job->nsecrets == 1 ? "" : "s");
	log_info("job started", "job=%s name=%s steps=%zu", j->job_id,
	    logq(j->job->name), j->job->nsteps);
	if (rjob_prepare_workspace(j, err, sizeof(err)) < 0) {
		rjob_outcome(j, SEAM_FAILED, "internal", "%s", err);
		finish(j);
		return;
	}
	ev_timer_start(j->job_timer, j->job->timeout * 1000);
	rjob_prepare(j, rjob_prepared);
}

/* Called when inputs and images are ready (or failed). */
static void rjob_prepared(struct rjob *j)
{
	next_step(j);
}

static void runner_stop(void *ctx, uint64_t jh, enum seam_stop why)
{
	struct rjob *j = rjob_find(ctx, jh);
	static const enum rjob_stop map[] = {
		[SEAM_STOP_CANCEL] = RSTOP_CANCEL,
		[SEAM_STOP_SHUTDOWN] = RSTOP_SHUTDOWN,
		[SEAM_STOP_LOST] = RSTOP_LOST,
		[SEAM_STOP_SPOOL] = RSTOP_SPOOL,
		[SEAM_STOP_QUIT] = RSTOP_QUIT,
	};

	if (j == NULL)
		return;
	if (why == SEAM_STOP_CANCEL)
		rjob_note(j, "job canceled by an operator; stopping it");
	else if (why == SEAM_STOP_SHUTDOWN)
		rjob_note(j, "the agent is shutting down; stopping the job");
	rjob_stop(j, map[why]);
}

static void runner_artifact_done(void *ctx, uint64_t jh, uint64_t id, int ok,
    const char *error)
{
	struct rjob *j = rjob_find(ctx, jh);

	if (j)
		rjob_artifact_done(j, id, ok, error);
}

static void runner_cache_get_done(void *ctx, uint64_t jh, uint64_t id,
    int ok, uint64_t bytes, const char *sha256, const char *text)
{
	struct rjob *j = rjob_find(ctx, jh);

	if (j)
		rcaches_fetched(j, id, ok, bytes, sha256, text);
}

static void runner_cache_put_done(void *ctx, uint64_t jh, uint64_t id,
    int ok, const char *text)
{
	struct rjob *j = rjob_find(ctx, jh);

	if (j)
		rcaches_put_done(j, id, ok, text);
}

static void runner_fetch_done(void *ctx, uint64_t jh, uint64_t id, int ok,
    long status, uint64_t bytes, const char *error)
{
	struct rjob *j = rjob_find(ctx, jh);

	(void)bytes;	/* the file says how many */
	if (j && j->inputs_set)
		rinputs_fetched(j->inputs_set, id, ok, status, error);
}

/* 1 when path is dir or beneath it. */
static int beneath_dir(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static void hide_dir(struct runner *rn, const char *d)
{
	size_t i = 0;

	if (d == NULL)
		return;
	for (; i < 3 && rn->hide_dirs[i]; i++)
		if (beneath_dir(d, rn->hide_dirs[i]))
			return;
	if (i < 3)
		rn->hide_dirs[i] = xstrdup(d);
}

static void hide_file(struct runner *rn, const char *f)
{
	size_t i = 0;

	if (f == NULL)
		return;
	while (i < 7 && rn->hide_files[i])
		i++;
	if (i < 7)
		rn->hide_files[i] = xstrdup(f);
}

/* Root runs host steps as SKIFF_STEP_USER, in a mount namespace without
 * the agent's state, spool, keys and configuration (docs/agent.md). */
static int step_user_setup(struct runner *rn, const struct agent_config *c)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if ((pw = getpwnam(c->step_user)) == NULL || pw->pw_uid == 0 ||
	    pw->pw_gid == 0) {
		log_error(pw ? "SKIFF_STEP_USER must not be root" :
		    "SKIFF_STEP_USER names no user (the package creates skiff-step)",
		    "user=%s", logq(c->step_user));
		return -EINVAL;
	}
	rn->step_user = 1;
	rn->step_uid = pw->pw_uid;
	rn->step_gid = pw->pw_gid;
	hide_dir(rn, c->state_dir);
	hide_dir(rn, c->work_dir);
	hide_dir(rn, c->spool_dir);
	hide_file(rn, c->trusted_keys);
	hide_file(rn, c->pool_key);
	hide_file(rn, c->registration_token_file);
	hide_file(rn, c->config_file);
	hide_file(rn, c->ca_file);
	if (c->docker_host && strncmp(c->docker_host, "unix://", 7) == 0)
		hide_file(rn, c->docker_host + 7);
	/* The runner reads it (oomlog.c); other jobs' kills are in it. */
	hide_file(rn, "/dev/kmsg");
	return 0;
}

int runner_new(const struct runner_params *p, struct runner **out)
{
	struct runner *rn = xcalloc(1, sizeof(*rn));

	rn->cfg = p->cfg;
	rn->loop = p->loop;
	rn->net = p->net;
	rn->trusted = p->trusted;
	rn->pool_key = p->pool_key;
	rn->replay = p->replay;
	rn->docker = p->docker;
	rn->agent_name = xstrdup(p->agent_name);
	rn->instance = xstrdup(p->instance ? p->instance : "none");
	rn->ptrack = p->ptrack;
	/* release and exit are the stub's (run/netstub.c) */
	rn->seam = (struct seam_to_runner){ rn, runner_start, runner_stop,
	    runner_artifact_done, runner_fetch_done, NULL, NULL,
	    runner_cache_get_done, runner_cache_put_done };
	if (step_user_setup(rn, p->cfg) < 0) {
		runner_free(rn);
		return -EINVAL;
	}
	/* Container steps' OOM kills, told by the kernel (oomlog.h). */
	if (rn->docker)
		(void)oomlog_open();
	*out = rn;
	return 0;
}

void runner_set_net(struct runner *rn, const struct seam_to_net *net)
{
	rn->net = net;
}

const struct seam_to_runner *runner_seam(struct runner *rn)
{
	return &rn->seam;
}

size_t runner_active(const struct runner *rn)
{
	return rn->active;
}

void runner_kill_all(struct runner *rn)
{
	for (struct rjob *j = rn->jobs; j; j = j->next) {
		j->stop = RSTOP_QUIT;
		if (j->x)
			stepx_stop(j->x, 0);
	}
}

void runner_free(struct runner *rn)
{
	if (rn == NULL)
		return;
	while (rn->jobs)
		rjob_free(rn->jobs);
	runner_docker_free(rn);
	oomlog_close();
	for (size_t i = 0; i < 4; i++)
		free(rn->hide_dirs[i]);
	for (size_t i = 0; i < 8; i++)
		free(rn->hide_files[i]);
	free(rn->agent_name);
	free(rn->instance);
	free(rn);
}

/* ---- per-job objects ---- */

struct rjob *rjob_new(struct runner *rn, uint64_t jh, const char *job_id,
    int attempt)
{
	struct rjob *j = xcalloc(1, sizeof(*j));

	j->rn = rn;
	j->jh = jh;
	snprintf(j->job_id, sizeof(j->job_id), "%s", job_id);
	j->attempt = attempt;
	j->mask = mask_new();
	mask_on_add_line(j->mask, rjob_add_mask, j);
	mask_on_output_line(j->mask, rjob_output_msg, j);
	j->started_ms = ev_now_update(rn->loop);
	j->wsfd = -1;
	j->step_timer = ev_timer_new(rn->loop, on_step_timeout, j);
	j->job_timer = ev_timer_new(rn->loop, on_job_timeout, j);
	j->advance = ev_timer_new(rn->loop, on_advance, j);
	j->next = rn->jobs;
	rn->jobs = j;
	return j;
}

struct rjob *rjob_find(struct runner *rn, uint64_t jh)
{
	for (struct rjob *j = rn->jobs; j; j = j->next)
		if (j->jh == jh)
			return j;
	return NULL;
}

void rjob_free(struct rjob *j)
{
	struct rjob **pp;

	for (pp = &j->rn->jobs; *pp && *pp != j; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = j->next;
	stepx_free(j->x);
	rjob_free_extras(j);
	rjob_free_artifacts(j);
	rjob_outputs_free(j);
	rjob_outputs_final_free(j->final_out, j->nfinal_out);
	for (size_t i = 0; i < j->nart_names; i++)
		free(j->art_names[i]);
	free(j->art_names);
	if (j->wsfd >= 0)
		close(j->wsfd);
	ev_timer_free(j->step_timer);
	ev_timer_free(j->job_timer);
	ev_timer_free(j->advance);
	logpipe_free(j->lp);
	mask_free(j->mask);
	job_free(j->job);
	free(j->exit_codes);
	free(j);
}
