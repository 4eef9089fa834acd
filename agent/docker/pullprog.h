/*
 * Summary of the progress stream of an image pull (POST /images/create):
 * newline-separated JSON messages such as
 *
 *   {"status":"Pulling fs layer","progressDetail":{},"id":"1a2b3c4d5e6f"}
 *   {"status":"Downloading","progressDetail":{"current":1,"total":9},...}
 *   {"status":"Digest: sha256:..."}
 *   {"errorDetail":{"message":"..."},"error":"..."}
 *
 * Docker sends a "Downloading" message per chunk read, hundreds per layer;
 * the job log gets one line per layer each time its state changes
 * ("1a2b3c4d5e6f: Downloading 2.1 MB", "1a2b3c4d5e6f: Pull complete"),
 * and each message without a layer once. An error inside the stream (the
 * HTTP status is already 200 by then) is kept so the pull can fail with
 * the engine's words.
 *
 * Everything here comes from the engine and, through it, from a registry:
 * messages are capped in size and depth, lines handed on are cut to
 * PULLPROG_LINE_MAX bytes with control bytes replaced, and at most
 * PULLPROG_MAX_LAYERS layers are tracked.
 */
#ifndef SKIFF_AGENT_PULLPROG_H
#define SKIFF_AGENT_PULLPROG_H

#include <stddef.h>

#include "buf.h"

#define PULLPROG_MSG_MAX    65536	/* one JSON message */
#define PULLPROG_LINE_MAX   200		/* one summary line, without NUL */
#define PULLPROG_MAX_LAYERS 256
#define PULLPROG_ID_MAX     72
#define PULLPROG_STATE_MAX  32

/* What a failed pull's message says, for a caller that reports "bad
 * credentials" or "no such image" differently from other failures. */
enum pullprog_class {
	PULLPROG_OTHER,
	PULLPROG_AUTH,
	PULLPROG_NOTFOUND,
};

struct pullprog_layer {
	char id[PULLPROG_ID_MAX];
	char state[PULLPROG_STATE_MAX];
};

typedef void (*pullprog_line_fn)(void *arg, const char *line);

struct pullprog {
	struct buf msg;			/* a message still waiting for its newline */
	struct pullprog_layer *layers;
	size_t n_layers;
	pullprog_line_fn fn;
	void *arg;
	char *error;			/* the first error message */
	int err;			/* sticky: malformed stream */
	size_t messages, lines, untracked;
};

/* fn may be NULL to only watch for errors. */
void pullprog_init(struct pullprog *p, pullprog_line_fn fn, void *arg);
/* 0, or -EPROTO (a message is not a JSON object) or -E2BIG (a message
 * over PULLPROG_MSG_MAX); sticky. Errors reported by the engine inside the
 * stream are not failures of the stream: see pullprog_error. */
int pullprog_feed(struct pullprog *p, const char *data, size_t n);
/* At the end: handles a last message without a newline; returns the
 * sticky error or 0. */
int pullprog_finish(struct pullprog *p);
/* The engine's error message from the stream, or NULL. */
const char *pullprog_error(const struct pullprog *p);
enum pullprog_class pullprog_classify(const char *message);
void pullprog_free(struct pullprog *p);

#endif
