/*
 * The runner half of the agent: takes a leased job's raw JWS, verifies it
 * (signature, claims, replay, schema, secrets) before anything runs, makes
 * the workspace, runs the steps in order on the host or in containers,
 * feeds their output through the log pipeline (masking, framing) to the
 * network half, enforces timeouts and cancellation, and reports the
 * result. It talks to the network half only through seam.h.
 */
#ifndef SKIFF_AGENT_RUNNER_H
#define SKIFF_AGENT_RUNNER_H

#include "seam.h"

struct agent_config;
struct ev_loop;
struct jwk;
struct jwks;
struct replay;
struct runner;
struct docker;
struct proctrack;

struct runner_params {
	const struct agent_config *cfg;
	struct ev_loop *loop;
	const struct seam_to_net *net;
	const struct jwks *trusted;
	const struct jwk *pool_key;	/* NULL: jobs with secrets are rejected */
	struct replay *replay;
	struct docker *docker;		/* NULL: steps with an image fail */
	const char *agent_name;
	const char *instance;		/* labels this agent's containers */
	struct proctrack *ptrack;	/* host-step tracking (proctrack.h) */
};

int runner_new(const struct runner_params *p, struct runner **out);
const struct seam_to_runner *runner_seam(struct runner *r);
/* The network half's table, once it exists. */
void runner_set_net(struct runner *r, const struct seam_to_net *net);
size_t runner_active(const struct runner *r);
/* At start: ask the Docker engine (if one answers) and sweep the
 * containers a crashed run of this agent left. */
void runner_docker_start(struct runner *r);
/* Kills every running step at once (used when leaving without waiting). */
void runner_kill_all(struct runner *r);
void runner_free(struct runner *r);

#endif
