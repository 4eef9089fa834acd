/*
 * The seam on the wire: the typed messages the agent's two processes
 * exchange over their socketpair (docs/agent.md, "The two halves"), after
 * OpenBSD's imsg. A message is a header (type, payload length, job
 * handle) and a payload whose size is checked against its type before a
 * byte of it is read; a type that carries a file descriptor carries
 * exactly one, passed with SCM_RIGHTS alongside the header. Both ends are
 * one machine and one binary: numbers are in host order.
 *
 * seamwire_decode() is the only reader of a peer's bytes; it is fuzzed
 * (tests/fuzz/fuzz_seamwire.c) for each direction.
 */
#ifndef SKIFF_AGENT_SEAMWIRE_H
#define SKIFF_AGENT_SEAMWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "seam.h"

#define SEAMWIRE_HDR	16
/* The largest payload of any type: an INIT with two CA bundles. */
#define SEAMWIRE_MAX	(1024 * 1024 + 512)

enum seamwire_type {
	/* runner -> network half */
	SW_INIT = 1,		/* JSON settings; fd: the half's state dir */
	SW_SPOOL,		/* fd: the job's log spool, read-only */
	SW_LOGGED,		/* the spool now holds u64 bytes */
	SW_STEP,		/* u32 step index, for heartbeats */
	SW_ARTIFACT,		/* u64 id, u64 size, name; fd: the file */
	SW_FETCH,		/* u64 id, u64 max bytes, URL; fd: write here */
	SW_DONE,		/* the result */
	SW_DRAIN,		/* SIGTERM/SIGINT reached the agent */
	SW_QUIT,		/* SIGQUIT */
	SW_CACHE_GET,		/* u64 id, u64 max bytes, keys; fd: write here */
	SW_CACHE_PUT,		/* u64 id, u64 size, key; fd: the archive */
	SW_R2N_END,
	/* network half -> runner */
	SW_START = 64,		/* u32 attempt, job id, JWS */
	SW_STOP,		/* u32 why (enum seam_stop) */
	SW_ARTIFACT_DONE,	/* u64 id, u32 ok, error */
	SW_FETCH_DONE,		/* u64 id, u64 bytes, u32 HTTP status, u32 ok, error */
	SW_RELEASE,		/* nothing more of the job: its spool may go */
	SW_EXIT,		/* u32 exit code the agent leaves with */
	SW_CACHE_GET_DONE,	/* u64 id, u64 bytes, u32 ok, u32 sha length (0
				 * or 64), sha256 hex, key found or error */
	SW_CACHE_PUT_DONE,	/* u64 id, u32 ok, text */
	SW_N2R_END,
};

/* Which end a decoder accepts messages from. */
enum seamwire_from { SEAMWIRE_FROM_RUNNER, SEAMWIRE_FROM_NET };

#define SEAMWIRE_NAME_MAX	4096	/* an artifact's name */
#define SEAMWIRE_URL_MAX	8192
#define SEAMWIRE_ERR_MAX	1024
#define SEAMWIRE_ID_MAX		64	/* a job id */
#define SEAMWIRE_REASON_MAX	4096
#define SEAMWIRE_EXITS_MAX	1024
#define SEAMWIRE_INIT_MAX	(1024 * 1024)
/* A job's output variables in DONE (the runner's caps, run/outputs.h) */
#define SEAMWIRE_OUTPUTS_MAX	64
#define SEAMWIRE_OUTPUT_NAME_MAX	64
#define SEAMWIRE_OUTPUT_VALUE_MAX	4096
#define SEAMWIRE_OUTPUTS_BYTES	(16 * 1024)	/* names and values */
#define SEAMWIRE_KEYS_MAX	4096	/* a cache's keys, '\n'-separated */

struct seamwire_hdr {
	uint32_t type;
	uint32_t len;
	uint64_t jh;
};

/* A decoded message. Strings are NUL-terminated copies (freed by
 * seamwire_msg_clear); fd is the descriptor that came with it or -1. */
struct seamwire_msg {
	uint32_t type;
	uint64_t jh;
	int fd;
	uint64_t id;		/* ARTIFACT, FETCH, ARTIFACT_DONE, FETCH_DONE */
	uint64_t n;		/* LOGGED total, ARTIFACT size, FETCH max,
				 * FETCH_DONE bytes */
	uint32_t u;		/* STEP index, STOP why, EXIT code, START
				 * attempt, ARTIFACT_DONE/FETCH_DONE ok,
				 * DONE result */
	uint32_t status;	/* FETCH_DONE HTTP status */
	char *s1;		/* INIT json, ARTIFACT name, FETCH url, START job
				 * id, DONE reason code, *_DONE error */
	char *s2;		/* START jws, DONE reason */
	size_t s2len;
	int32_t *exits;		/* DONE */
	size_t nexit;
	struct seam_output *outputs;	/* DONE; strings owned */
	size_t noutputs;
};

/*
 * Checks a header as it arrives, before the payload: a type the sender may
 * send, a payload within the type's bounds. Returns 0, or -EPROTO with
 * *why set.
 */
int seamwire_check_hdr(enum seamwire_from from, const struct seamwire_hdr *h,
    const char **why);
/* Whether messages of this type carry a descriptor. */
int seamwire_has_fd(uint32_t type);
/*
 * Decodes a whole message (header checked again, payload parsed exactly:
 * every length in bounds, no NUL inside a string, nothing left over). fd
 * is the descriptor that came with it (-1: none); on success it belongs
 * to *m, on failure the caller still owns it. Returns 0 or -EPROTO with
 * *why set; *m is cleared either way.
 */
int seamwire_decode(enum seamwire_from from, const struct seamwire_hdr *h,
    const unsigned char *payload, int fd, struct seamwire_msg *m,
    const char **why);
/* Frees the strings and closes the fd, if still there. */
void seamwire_msg_clear(struct seamwire_msg *m);
const char *seamwire_type_name(uint32_t type);

/* Encoders: a header and its payload appended to out (-E2BIG past its cap). */
int seamwire_put(struct buf *out, uint32_t type, uint64_t jh,
    const void *payload, size_t n);
int seamwire_put_u32(struct buf *out, uint32_t type, uint64_t jh, uint32_t v);
int seamwire_put_u64(struct buf *out, uint32_t type, uint64_t jh, uint64_t v);
/* type with (u64 a, u64 b, str): ARTIFACT, FETCH */
int seamwire_put_u64s_str(struct buf *out, uint32_t type, uint64_t jh,
    uint64_t a, uint64_t b, const char *s);
int seamwire_put_start(struct buf *out, uint64_t jh, uint32_t attempt,
    const char *job_id, const char *jws, size_t n);
/* DONE: after the reason, when there are outputs, u32 count and for
 * each u32 name length, u32 value length, name, value. */
int seamwire_put_done(struct buf *out, uint64_t jh, uint32_t result,
    const char *code, const char *reason, const int *exits, size_t nexit,
    const struct seam_output *outputs, size_t noutputs);
int seamwire_put_artifact_done(struct buf *out, uint64_t jh, uint64_t id,
    int ok, const char *error);
int seamwire_put_fetch_done(struct buf *out, uint64_t jh, uint64_t id,
    uint64_t bytes, uint32_t status, int ok, const char *error);
/* sha256 NULL or 64 hex digits; text the key found or the error. */
int seamwire_put_cache_get_done(struct buf *out, uint64_t jh, uint64_t id,
    uint64_t bytes, int ok, const char *sha256, const char *text);
int seamwire_put_cache_put_done(struct buf *out, uint64_t jh, uint64_t id,
    int ok, const char *text);

#endif
