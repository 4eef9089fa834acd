/*
 * The network half of the agent: registration, the lease long-poll,
 * per-job heartbeats (which acknowledge leases and carry cancellation),
 * log upload from the spool at explicit offsets, artifact uploads,
 * completion, and leaving (idle timeout, max jobs, signals, revocation).
 * It talks to the runner half only through seam.h.
 */
#ifndef SKIFF_AGENT_NET_H
#define SKIFF_AGENT_NET_H

#include "seam.h"

struct net_config;
struct ev_loop;
struct net;

/* Exit codes of the agent (documented in --help and docs/agent.md). */
#define AGENT_EX_DONE     0	/* idle timeout or max jobs: terminate the VM */
#define AGENT_EX_FAILURE  1
#define AGENT_EX_SIGNAL   10
#define AGENT_EX_HALF     75	/* the other half died: restarted */
#define AGENT_EX_USAGE    64
#define AGENT_EX_REVOKED  77
#define AGENT_EX_CONFIG   78

struct net_params {
	const struct net_config *cfg;
	struct ev_loop *loop;
	const struct seam_to_runner *runner;
	/* Called once when the agent should exit with code. */
	void (*exit)(void *ctx, int code);
	void *exit_ctx;
};

int net_new(const struct net_params *p, struct net **out);
/* Registers (or reuses the stored agent token) and starts leasing. */
int net_start(struct net *n);
/* SIGTERM/SIGINT: the first drains, the second cancels running jobs. */
void net_drain(struct net *n);
/* SIGQUIT: stop every job now and exit. */
void net_quit(struct net *n);
/* What the runner's messages are handed to (init is not set: the
 * process's main handles INIT before net_new). */
const struct seam_net_in *net_seam(struct net *n);
void net_free(struct net *n);

#endif
