/* Internals of the runner half, shared by its files. */
#ifndef SKIFF_AGENT_RUN_INT_H
#define SKIFF_AGENT_RUN_INT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "runner.h"
#include "hostproc.h"
#include "seam.h"

struct job;
struct job_step;
struct logpipe;
struct mask;
struct stepx;
struct rmtree;
struct stepx_cbs;
struct stepx_spec;
struct ev_timer;
struct rimages;
struct rinputs;
struct warm;
struct rjob_out;
struct seam_output;
struct svcmsg;
struct rservices;
struct svc_sweep;
struct rcaches;

enum rjob_stop {
	RSTOP_NONE,
	RSTOP_CANCEL,
	RSTOP_SHUTDOWN,
	RSTOP_STEP_TIMEOUT,
	RSTOP_JOB_TIMEOUT,
	RSTOP_SPOOL,
	RSTOP_LOST,
	RSTOP_QUIT,
};

struct runner {
	const struct agent_config *cfg;
	struct ev_loop *loop;
	const struct seam_to_net *net;
	const struct jwks *trusted;
	const struct jwk *pool_key;
	struct replay *replay;
	struct docker *docker;
	char *agent_name;
	char *instance;		/* label value on every container we make */
	struct seam_to_runner seam;
	struct rjob *jobs;
	size_t active;
	/* Docker: negotiated lazily, so an engine that comes up after the
	 * agent is found when a job needs it. */
	int docker_ready;
	struct docker_op *negotiate;
	struct rjob **docker_waiters;
	size_t ndocker_waiters;
	struct proctrack *ptrack;	/* host steps' processes (jobprep.c) */
	struct live_container *live;	/* ours, not yet removed */
	size_t nlive;
	struct docker_op *sweep;
	int sweep_again;
	struct svc_sweep *svc_sweep;	/* networks (services.c) */
	/* host steps (runner.c): their user and what they may not see */
	int step_user;
	uid_t step_uid;
	gid_t step_gid;
	char *hide_dirs[4];
	char *hide_files[8];
};

struct rjob {
	struct runner *rn;
	struct rjob *next;
	uint64_t jh;
	/* completions up the chain (runner.c gives them) */
	void (*prepared)(struct rjob *j);
	void (*settled)(struct rjob *j);
	char job_id[65];
	int attempt;
	struct job *job;
	struct mask *mask;
	struct logpipe *lp;
	char dir[PATH_MAX];	/* <work_dir>/<job>.<attempt> */
	char ws[PATH_MAX];	/* dir/workspace */
	char inputs[PATH_MAX];	/* dir/inputs */
	struct hostproc_iso iso;	/* for its host steps: dir stays */

	size_t step;
	int *exit_codes;
	size_t nexit;
	struct stepx *x;
	int exiting_step;	/* the step ended; its artifacts are going */
	int64_t started_ms, step_started_ms, deadline_ms;
	int64_t step_timeout_s;
	int64_t step_memory_mb;
	struct ev_timer *step_timer, *job_timer;
	struct ev_timer *advance;	/* after a step: artifacts, next step */
	enum rjob_stop stop;

	int have_outcome;
	enum seam_result result;
	const char *reason_code;
	char reason[1024];

	/* artifacts (stepart.c) */
	int wsfd;		/* the workspace, for opening beneath it */
	uint64_t art_next_id;
	size_t art_pending;	/* handed to the network half, not yet done */
	uint64_t art_bytes;
	size_t art_count;
	struct art_decl *decl;	/* named by service messages in this step */
	size_t ndecl;
	char **art_names;	/* names sent in this job, for duplicates */
	size_t nart_names;

	/* inputs, images and containers (jobprep.c) */
	struct rimages *images;
	struct rinputs *inputs_set;
	int prepare_pending;	/* inputs, Docker or the disk check to come */
	struct proctrack_job *ptjob;	/* its host steps' processes */
	struct stepx *cleanup;	/* a container emptying a root-owned workspace */
	void (*cleanup_done)(struct rjob *j);
	void (*hosts_done)(struct rjob *j);	/* rjob_end_host_steps */
	struct rmtree *rmtree;	/* the job directory going, in a child */
	/* containers made ahead (warm.h): the current step's (kept for the
	 * next when that one shares it) and the next one's */
	struct warm *cur, *ahead;
	size_t ahead_step;
	size_t warm_out;	/* made, not yet gone */
	/* finish() waits for the job's containers to be removed */
	void (*when_gone)(struct rjob *j);

	struct rjob_out *out;	/* output variables (stepout.c) */
	struct seam_output *final_out;	/* masked, for complete */
	size_t nfinal_out;
	struct rservices *services;	/* job.services (services.c) */
	struct rcaches *caches;	/* job.caches (caches.c) */
};

struct live_container {
	char *id;
	struct rjob *job;
};

struct art_decl {
	char *path;
	char *name;
};

/* runner.c */
struct rjob *rjob_new(struct runner *rn, uint64_t jh, const char *job_id,
    int attempt);
struct rjob *rjob_find(struct runner *rn, uint64_t jh);
void rjob_free(struct rjob *j);
void rjob_note(struct rjob *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The job fails with code unless its outcome is already decided. */
void rjob_fail(struct rjob *j, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rjob_stop(struct rjob *j, enum rjob_stop why);
/* Sets the job's outcome unless one is already set (rjob.c). */
void rjob_outcome(struct rjob *j, enum seam_result res, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* workspace.c */
int rjob_prepare_workspace(struct rjob *j, char *err, size_t errlen);

/* stepart.c: artifacts after each step */
/* Artifacts of the step that ended, then done(j) (stepart.c). */
void rjob_after_step(struct rjob *j, void (*done)(struct rjob *j));
void rjob_artifact_done(struct rjob *j, uint64_t id, int ok,
    const char *error);
void rjob_service_line(void *arg, const char *line, size_t n);
/* The job's mask_line_fn: ##skiff[add-mask] */
void rjob_add_mask(void *arg, const char *value, size_t n);
void rjob_free_artifacts(struct rjob *j);

/* stepout.c: output variables */
typedef void (*rjob_env_fn)(char ***env, size_t *n, const char *k,
    const char *v);
/* A fresh $SKIFF_OUTPUT for the step about to run. */
void rjob_outputs_begin_step(struct rjob *j);
/* SKIFF_OUTPUT and SKIFF_OUTPUT_<NAME> into a step's environment. */
void rjob_outputs_env(struct rjob *j, rjob_env_fn set, char ***env,
    size_t *n);
/* What the step that ended wrote to its $SKIFF_OUTPUT. */
void rjob_outputs_end_step(struct rjob *j);
/* The job masker's mask_msg_fn (##skiff[set-output]). */
void rjob_output_msg(void *arg, const struct svcmsg *m);
/* The outputs directory (for container mounts; made if need be), or
 * NULL. */
const char *rjob_outputs_dir(struct rjob *j);
/* The job's outputs, masked, for complete; free with ..._final_free. */
int rjob_outputs_final(struct rjob *j, struct seam_output **out, size_t *n);
void rjob_outputs_final_free(struct seam_output *v, size_t n);
void rjob_outputs_free(struct rjob *j);

/* jobprep.c: what happens before the steps (Docker, disk floor, image
 * pulls), the container steps, the orphan sweep, and emptying a workspace
 * that containers filled with files the agent cannot remove. */
/* Inputs and images, then done(j) (jobprep.c). */
void rjob_prepare(struct rjob *j, void (*done)(struct rjob *j));
void rjob_stop_pending(struct rjob *j);
int rjob_start_container(struct rjob *j, const struct job_step *s,
    const struct stepx_spec *spec, const struct stepx_cbs *cbs, char *err,
    size_t errlen);
/* After a step: its container is kept when the next step shares it,
 * otherwise removed now. */
void rjob_container_step_over(struct rjob *j);
/* A host step, under the job's process tracking. */
int rjob_start_host(struct rjob *j, const struct stepx_spec *spec,
    const struct stepx_cbs *cbs, char *err, size_t errlen);
/* Kills what the job's host steps left (at once if none), then done. */
void rjob_end_host_steps(struct rjob *j, void (*done)(struct rjob *j));
/* Removes the job directory; may need a container; calls done after. */
void rjob_remove_workspace(struct rjob *j, void (*done)(struct rjob *j));
void rjob_free_extras(struct rjob *j);
void runner_sweep(struct runner *rn);
/* Tells the runner a container of the job exists (live) or is gone. */
void rjob_track_container(struct rjob *j, const char *id, int live);
/* Calls done once no container of the job is left (at once if none). */
void rjob_when_containers_gone(struct rjob *j, void (*done)(struct rjob *j));
void runner_docker_free(struct runner *rn);

#endif
