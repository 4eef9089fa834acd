/*
 * Service containers of a job (job.services, docs/docker.md "Service
 * containers"): a bridge network for the job, each service on it under
 * its name, published on 127.0.0.1, waited for (a TCP port that accepts
 * and holds a connection, or the image's HEALTHCHECK) before the first
 * step; watched while the steps run; removed with the network at the
 * end, and swept by label after a crash.
 *
 * The runner's chain calls in here (jobprep.c, runner.c); this file calls
 * down (rjob.c, the tracking of live containers in jobprep.c, the Docker
 * client), and up only to stop the running step when a service exits
 * after the steps began (rjob_stop, from a Docker callback).
 */
#ifndef SKIFF_AGENT_SERVICES_H
#define SKIFF_AGENT_SERVICES_H

#include <stddef.h>

struct rjob;
struct runner;

/* Starts the job's services once its images are started (jobprep.c) and
 * calls done(j) once, later, when all are ready or one failed (the job's
 * outcome is then service_failed or pull_failed). A job without services:
 * done(j) at once. */
void rservices_start(struct rjob *j, void (*done)(struct rjob *j));
/* A stop during preparation: waiting ends, done comes soon. */
void rservices_stop(struct rjob *j);
/* The network container steps join, or NULL. */
const char *rservices_network(const struct rjob *j);
/* SKIFF_SERVICE_<NAME>_HOST, _PORT and _PORT_<P> for a step, through
 * set (runner.c's env_set). */
void rservices_env(const struct rjob *j, int host,
    void (*set)(char ***env, size_t *n, const char *k, const char *v),
    char ***env, size_t *n);
/* At the job's end: removes the services, waits until no container of
 * the job is left, removes the network, then done(j). */
void rservices_end(struct rjob *j, void (*done)(struct rjob *j));
/* Frees the job's part; what is still there is removed without waiting
 * (the sweep gets what that misses). NULL is fine. */
void rservices_free(struct rjob *j);
/* Networks with our instance label that no job owns (after the orphan
 * sweep of containers: a network goes once nothing is attached). */
void rservices_sweep(struct runner *rn);
void rservices_sweep_free(struct runner *rn);

#endif
