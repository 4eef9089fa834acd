/*
 * A running step, whatever runs it: a process on the host (hoststep.c) or
 * a container (dockerstep.c). The runner starts one, gets its output and
 * its end through the callbacks, and may stop it with a grace period.
 */
#ifndef SKIFF_AGENT_STEPX_H
#define SKIFF_AGENT_STEPX_H

#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

struct ev_loop;

struct stepx;

struct stepx_result {
	int code;		/* exit status, 128 + signal, or -1: never started */
	int oom;		/* killed for exceeding its memory limit */
	const char *error;	/* why it could not start or run, or NULL */
	const char *reason_code;	/* with code -1: e.g. "pull_failed" */
};

struct stepx_cbs {
	/* stream 1 (stdout) or 2 (stderr); n == 0: that stream ended */
	void (*output)(void *arg, int stream, const char *data, size_t n);
	/* Once, after all output; the step may be freed from here on. */
	void (*exited)(void *arg, const struct stepx_result *r);
	/* A line for the job log from the executor itself (pull progress). */
	void (*note)(void *arg, const char *line);
	void *arg;
};

struct stepx_ops {
	void (*stop)(struct stepx *x, long grace_ms);
	void (*free)(struct stepx *x);
};

struct stepx {
	const struct stepx_ops *ops;
	struct stepx_cbs cbs;
};

/* What a step needs to start, prepared by the runner. */
struct hostproc_iso;

struct stepx_spec {
	char *const *argv;	/* shell words and the script */
	char *const *envp;	/* the step's complete environment, K=V */
	const char *workdir;	/* absolute */
	const char *user;	/* NULL: default */
	const char *job_id;
	const char *step_name;
	int step_index;
	/* host steps: the namespace and the default user (runner.c) */
	const struct hostproc_iso *iso;
	int step_user;		/* run as uid/gid unless user says */
	uid_t uid;
	gid_t gid;
};

static inline void stepx_stop(struct stepx *x, long grace_ms)
{
	x->ops->stop(x, grace_ms);
}

static inline void stepx_free(struct stepx *x)
{
	if (x)
		x->ops->free(x);
}

/* dockerstep.c: what a container needs beyond stepx_spec. */
struct docker;
struct docker_mount;
struct docker_label;
struct rimage;

struct dockerstep_spec {
	const char *image;
	const char *name;		/* container name */
	const struct docker_mount *mounts;
	size_t n_mounts;
	const struct docker_label *labels;
	size_t n_labels;
	int64_t memory;			/* bytes, 0: none */
	int64_t nano_cpus;
	int64_t pids;
	struct rimage *wait_for;	/* start once this image is ready; or NULL */
	/* Told the container's id when it exists and when it is gone, so the
	 * runner knows which containers are live (the orphan sweep). */
	void (*track)(void *arg, const char *id, int live);
	const char *network;	/* the job's (services.c), or NULL; outlives
				 * the step */
};

int dockerstep_start(struct ev_loop *loop, struct docker *d,
    const struct stepx_spec *s, const struct dockerstep_spec *ds,
    const struct stepx_cbs *cbs, struct stepx **out, char *err,
    size_t errlen);

/* dockerexec.c: the step as an exec in w (warm.h), which it does not own */
struct warm;
int dockerexec_start(struct ev_loop *loop, struct docker *d,
    const struct stepx_spec *s, struct warm *w, const struct stepx_cbs *cbs,
    struct stepx **out);

/* hoststep.c; pj: the job's process tracking (proctrack.h), or NULL */
struct proctrack_job;
int hoststep_start(struct ev_loop *loop, const struct stepx_spec *s,
    struct proctrack_job *pj, const struct stepx_cbs *cbs,
    struct stepx **out, char *err, size_t errlen);

#endif
