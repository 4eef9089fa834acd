/*
 * The runner's end of the socketpair (run/netstub.c): the network half as
 * a seam_to_net table, and its messages handed to the runner's
 * seam_to_runner table once checked.
 *
 * The stub also keeps each job's log spool: the runner writes the log
 * bytes there (the runner's own directory, never the network half's) and
 * hands the network half a read-only descriptor and, as the spool grows,
 * its length. Log bytes never wait in memory for a slow network half:
 * the spool is bounded by SKIFF_MAX_SPOOL and a job past it fails. When
 * the network half dies the spools stay where they are.
 *
 * Nothing the network half says is believed beyond its type's checks: a
 * job id must be an id before it names a file, a job handle must be one
 * the stub knows, and the JWS is verified by the runner as if the queue
 * had sent it directly.
 */
#ifndef SKIFF_AGENT_NETSTUB_H
#define SKIFF_AGENT_NETSTUB_H

#include <stdint.h>

#include "seam.h"

struct ev_loop;
struct netstub;

struct netstub_params {
	struct ev_loop *loop;
	int fd;				/* the socketpair */
	const char *spool_dir;
	uint64_t max_spool;		/* bytes */
	/* The network half asked the agent to exit with code. */
	void (*exit)(void *ctx, int code);
	/* The network half is gone or broke the protocol. */
	void (*gone)(void *ctx, const char *why);
	void *ctx;
};

int netstub_new(const struct netstub_params *p, struct netstub **out);
/* The runner, once it exists (messages are not read before). */
void netstub_set_runner(struct netstub *s, const struct seam_to_runner *r);
const struct seam_to_net *netstub_table(struct netstub *s);
/* INIT: the network half's settings and state directory (fd: its own). */
int netstub_init(struct netstub *s, const char *json, int state_fd);
void netstub_drain(struct netstub *s);
void netstub_quit(struct netstub *s);
/* Jobs whose spool is still held (the network half has not released). */
size_t netstub_jobs(const struct netstub *s);
void netstub_free(struct netstub *s);

#endif
