/*
 * The seam between the agent's two halves (docs/agent.md, "The two
 * halves"). The network half (agent/net/: HTTP, queue protocol, uploads)
 * and the runner half (agent/run/: verification, processes, Docker,
 * workspace) never call into each other: each sees the other only through
 * these message tables, wired up by agent/main.c. Every message is plain
 * data (ids, bytes, numbers, an fd), so that turning the halves into two
 * processes, the network one unprivileged, means serialising these calls
 * over a socketpair (fds with SCM_RIGHTS) and nothing else.
 *
 * Jobs are named by a handle (jh) the network half assigns per lease.
 */
#ifndef SKIFF_AGENT_SEAM_H
#define SKIFF_AGENT_SEAM_H

#include <stddef.h>
#include <stdint.h>

enum seam_result {
	SEAM_SUCCEEDED,
	SEAM_FAILED,
	SEAM_CANCELED,
	SEAM_TIMED_OUT,
	SEAM_REJECTED,
};

/* Why the network half wants a job stopped. */
enum seam_stop {
	SEAM_STOP_CANCEL,	/* an operator canceled it: grace, then kill */
	SEAM_STOP_SHUTDOWN,	/* the agent drains and the grace ran out */
	SEAM_STOP_LOST,		/* the lease is gone: kill now, no grace */
	SEAM_STOP_SPOOL,	/* the log cannot be kept: fail the job */
	SEAM_STOP_QUIT,		/* SIGQUIT: kill now */
};

struct seam_output {
	const char *name;
	const char *value;		/* masked */
};

struct seam_done {
	enum seam_result result;
	const char *reason_code;	/* NULL when succeeded */
	const char *reason;		/* masked */
	const int *exit_codes;
	size_t nexit;
	const struct seam_output *outputs;	/* the job's output variables */
	size_t noutputs;
};

/* Runner half -> network half: what the runner calls. In the runner's
 * process these are its stub of the network half (run/netstub.c), which
 * writes log bytes to the job's spool and sends the rest as messages. */
struct seam_to_net {
	void *ctx;
	/* Masked, framed log bytes (docs/protocol.md section 10). */
	void (*log)(void *ctx, uint64_t jh, const void *data, size_t n);
	/* Informative progress for heartbeats. */
	void (*step)(void *ctx, uint64_t jh, int index);
	/* Upload fd (opened read-only beneath the workspace; the network half
	 * closes it) as artifact name, then answer with artifact_done. */
	void (*artifact)(void *ctx, uint64_t jh, uint64_t id, int fd,
	    const char *name, uint64_t size);
	/* Download url (an input of the job) into fd, at most max bytes, then
	 * answer with fetch_done. The runner checks what arrived. */
	void (*fetch)(void *ctx, uint64_t jh, uint64_t id, const char *url,
	    int fd, uint64_t max);
	/* The job ended; nothing more will come for jh. */
	void (*done)(void *ctx, uint64_t jh, const struct seam_done *d);
	/* Caches (issue 13). Restore: find the pool's cache for keys (the
	 * key, then restore-key prefixes, '\n'-separated), write at most max
	 * bytes of it into fd; answer with cache_get_done. Save: upload fd
	 * (the archive, read-only) as the cache of key; cache_put_done. */
	void (*cache_get)(void *ctx, uint64_t jh, uint64_t id, const char *keys,
	    int fd, uint64_t max);
	void (*cache_put)(void *ctx, uint64_t jh, uint64_t id, int fd,
	    const char *key, uint64_t size);
};

/* What the network half is handed, in its own process (net/runstub.c
 * decodes the messages into these calls). */
struct seam_net_in {
	void *ctx;
	/* First, once: the half's settings (JSON) and its state directory. */
	int (*init)(void *ctx, const char *json, int state_dirfd);
	/* Right after start: the job's spool, read-only (the runner writes it). */
	void (*spool)(void *ctx, uint64_t jh, int fd);
	/* The spool now holds total bytes. */
	void (*logged)(void *ctx, uint64_t jh, uint64_t total);
	void (*step)(void *ctx, uint64_t jh, int index);
	void (*artifact)(void *ctx, uint64_t jh, uint64_t id, int fd,
	    const char *name, uint64_t size);
	void (*fetch)(void *ctx, uint64_t jh, uint64_t id, const char *url,
	    int fd, uint64_t max);
	void (*done)(void *ctx, uint64_t jh, const struct seam_done *d);
	void (*drain)(void *ctx);	/* SIGTERM/SIGINT */
	void (*quit)(void *ctx);	/* SIGQUIT */
	void (*cache_get)(void *ctx, uint64_t jh, uint64_t id, const char *keys,
	    int fd, uint64_t max);
	void (*cache_put)(void *ctx, uint64_t jh, uint64_t id, int fd,
	    const char *key, uint64_t size);
};

/* Network half -> runner half. */
struct seam_to_runner {
	void *ctx;
	/* A leased, acknowledged job: the raw JWS as the queue sent it. */
	void (*start)(void *ctx, uint64_t jh, const char *job_id, int attempt,
	    const char *jws, size_t n);
	void (*stop)(void *ctx, uint64_t jh, enum seam_stop why);
	/* An artifact handed over with seam_to_net.artifact is finished. */
	void (*artifact_done)(void *ctx, uint64_t jh, uint64_t id, int ok,
	    const char *error);
	/* A fetch is over: ok, the HTTP status (0: none), bytes written. */
	void (*fetch_done)(void *ctx, uint64_t jh, uint64_t id, int ok,
	    long status, uint64_t bytes, const char *error);
	/* The network half is finished with jh (completed, log uploaded or
	 * given up): its spool may go. */
	void (*release)(void *ctx, uint64_t jh);
	/* The agent should leave with this exit code. */
	void (*exit)(void *ctx, int code);
	/* A cache_get is over. ok 0: failed (text says why). ok 1 and sha256
	 * NULL: the pool has no such cache. Otherwise bytes were written,
	 * whose SHA-256 the queue says is sha256 (64 hex), of cache text. */
	void (*cache_get_done)(void *ctx, uint64_t jh, uint64_t id, int ok,
	    uint64_t bytes, const char *sha256, const char *text);
	/* A cache_put is over; ok with text "exists": the key was there. */
	void (*cache_put_done)(void *ctx, uint64_t jh, uint64_t id, int ok,
	    const char *text);
};

const char *seam_result_name(enum seam_result r);

#endif
