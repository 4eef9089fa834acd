/*
 * Request routing: method and raw path (still percent-encoded, as
 * libmicrohttpd hands it over with our identity unescaper) to one endpoint
 * of docs/protocol.md, with its path parameters decoded, and what the
 * endpoint needs: who may call it and what body it takes.
 *
 * Decoding is strict: a malformed %XX escape or an encoded NUL is a bad
 * request, never silently passed on.
 */
#ifndef SKIFF_QUEUE_ROUTE_H
#define SKIFF_QUEUE_ROUTE_H

#include <stddef.h>

enum route_id {
	R_HEALTH, R_METRICS,
	R_REGISTER, R_LEASE, R_DEREGISTER,
	R_HEARTBEAT, R_LOG_PUT, R_ART_CREATE, R_COMPLETE,
	R_UPLOAD_PUT, R_UPLOAD_GET, R_UPLOAD_COMMIT,
	R_JOB_SUBMIT, R_JOB_LIST, R_JOB_GET, R_JOB_LOG, R_JOB_ARTS, R_JOB_ART,
	R_JOB_CANCEL,
	R_AGENTS, R_AGENT_DEL,
	R_TOKENS_CREATE, R_TOKENS_LIST, R_TOKEN_DEL,
	R_VIEWERS_CREATE, R_VIEWERS_LIST, R_POOLS, R_JOB_STEPS,
	R_UI_ROOT, R_UI, R_UI_LOGIN, R_UI_LOGOUT,
	/* caches (issue 13) */
	R_CACHE_CREATE, R_CACHE_FIND, R_CACHE_GET, R_CACHES_LIST, R_CACHE_DEL,
	R_COUNT
};

enum route_auth {
	RA_NONE,		/* health */
	RA_METRICS,		/* open unless --metrics-token */
	RA_REGISTRATION,	/* pool registration token */
	RA_AGENT,		/* agent token */
	RA_ADMIN,		/* admin token */
	RA_VIEWER,		/* admin or viewer token, or the view's cookie */
	RA_LOGIN,		/* a viewer token as bearer: the view's login */
};

enum route_body {
	RB_NONE,		/* no body expected; a small one is ignored */
	RB_JSON,		/* JSON, buffered, 64 KiB */
	RB_JWS,			/* compact JWS, buffered, 256 KiB */
	RB_LOG,			/* gzip log chunk, buffered, 1 MiB */
	RB_STREAM,		/* artifact bytes, streamed to disk */
};

#define ROUTE_PARAM_MAX 128
#define ROUTE_NAME_MAX 255

struct route_match {
	enum route_id id;
	enum route_auth auth;
	enum route_body body;
	char param[ROUTE_PARAM_MAX + 1];	/* {id}: job, lease, upload, ... */
	char name[ROUTE_NAME_MAX + 1];		/* artifact name (rest of path) */
	char allow[32];				/* for 405: the methods allowed */
	char why[128];				/* for 400: what is wrong */
};

/*
 * 0: matched. -ENOENT: no such endpoint (404). -EOPNOTSUPP: the path exists
 * with other methods, listed in m->allow (405). -EINVAL: a malformed path
 * (400, m->why says what).
 */
int route_match(const char *method, const char *path, struct route_match *m);
/* Strict percent-decoding of n bytes into out (outmax includes the NUL). */
int route_pct_decode(const char *in, size_t n, char *out, size_t outmax,
    size_t *outlen);
/* Pool names: [A-Za-z0-9_.:-]{1,128}. */
int route_pool_valid(const char *s);
const char *route_name(enum route_id id);

#endif
