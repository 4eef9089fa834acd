/*
 * Inside the HTTP layer: the per-request context shared by server.c (the
 * libmicrohttpd glue and the answers) and api.c (what each endpoint
 * does).
 */
#ifndef SKIFF_QUEUE_SRVINT_H
#define SKIFF_QUEUE_SRVINT_H

#include <microhttpd.h>
#include <stdint.h>

#include "apierr.h"
#include "buf.h"
#include "queue.h"
#include "route.h"

struct cJSON;

struct srv {
	struct queue *q;
	const struct qcfg *cfg;
	struct ev_loop *loop;
	struct MHD_Daemon *d;
	int listen_fd;
	int port;
	struct ev_io *io;
	struct ev_timer *timer;
	size_t nconn;
	size_t npending;	/* connections before their first request */
	uint64_t nexpired;	/* of them, closed by --handshake-timeout */
	size_t nreq;		/* requests in flight */
	size_t nsuspended;	/* of them, parked (long-polls, follows) */
	size_t buffered;	/* request body bytes held in memory */
	int kick;		/* a connection was resumed: run MHD again */
};

/* What a suspended request waits for: a job, log bytes to follow, its
 * own log append to be durable, or the PostgreSQL store's answer. */
enum req_wait { RW_NONE, RW_LEASE, RW_FOLLOW, RW_LOG_PUT, RW_DB };

struct pgr;

/* A viewer token the PostgreSQL store checks before the operation: then
 * the operation runs (VC_RUN), or the answer is 403 (VC_FORBID: a viewer
 * token on an admin endpoint). */
enum { VC_NONE, VC_RUN, VC_FORBID };

struct req {
	struct srv *s;
	struct MHD_Connection *c;
	struct route_match rm;
	struct qagent *agent;		/* RA_AGENT routes */
	const char *token;		/* RA_REGISTRATION, RA_LOGIN: the bearer token */
	int view_check;			/* on PostgreSQL: a viewer token to check (VC_) */
	unsigned char tok_hash[32];	/* RA_AGENT on PostgreSQL: its hash */
	int64_t content_length;		/* -1: not given */
	struct pgr *pg;			/* the PostgreSQL store's state */
	size_t token_len;
	struct buf body;
	size_t counted;			/* of body, in s->buffered */
	struct art_put *put;		/* R_UPLOAD_PUT */
	int gzip;
	int responded;
	unsigned status;
	int in_headers;			/* in the first call, before any body */
	int failed;			/* refused mid-body: answer at its end */
	struct apierr deferred;
	uint64_t discarded;		/* body bytes dropped since */
	int suspended;
	int parked_in_head;		/* suspended in the first call */
	int woken;
	enum req_wait wait;
	struct qwaiter w;
	struct qfollower f;
	struct logs_put *lput;		/* R_LOG_PUT, while out */
	int64_t offset;			/* R_JOB_LOG */
	int attempt;
	char lease_sent[ID_MAX + 1];	/* a lease handed out in this answer */
	int64_t start_ms;
};

/* ---- server.c: answers ---- */
enum MHD_Result srv_reply_json(struct req *r, unsigned status,
    struct cJSON *body);
enum MHD_Result srv_reply_error(struct req *r, const struct apierr *e);
enum MHD_Result srv_reply_empty(struct req *r, unsigned status);
enum MHD_Result srv_reply_text(struct req *r, unsigned status,
    const char *type, struct buf *body);
/* Bytes [offset, offset + count) of fd (which the response then owns),
 * with extra headers (NULL-terminated name, value pairs). */
enum MHD_Result srv_reply_fd(struct req *r, unsigned status, int fd,
    int64_t offset, int64_t count, const char *const *headers);
/* A refusal while the body arrives: libmicrohttpd takes an answer only
 * before the body or after all of it, so the rest is read and dropped
 * (up to SRV_DISCARD_MAX, then the connection is closed) and the error is
 * answered at the end. */
enum MHD_Result srv_fail_body(struct req *r, const struct apierr *e);
/* Parks the request until the queue wakes it (srv_wake). */
enum MHD_Result srv_suspend(struct req *r);
void srv_wake(struct req *r);
/* Resumes a parked request without waking it (an upload body goes on). */
void srv_resume(struct req *r);
/* Resumes a connection parked by a response's content reader. */
void srv_resume_conn(struct srv *s, struct MHD_Connection *c);
/* n bytes of data (copied) as application/octet-stream, with headers. */
enum MHD_Result srv_reply_bytes(struct req *r, unsigned status,
    const char *data, size_t n, const char *const *headers);
/* A response made by the caller (owned by this call from then on). */
enum MHD_Result srv_reply_response(struct req *r, unsigned status,
    struct MHD_Response *resp);
const char *srv_header(struct req *r, const char *name);
/* A query parameter, percent-decoded into out; NULL when absent;
 * *bad set when present but malformed. */
const char *srv_query(struct req *r, const char *name, char *out,
    size_t outsz, int *bad);

/* ---- api.c: endpoints ---- */
/* After the headers: authentication and checks that refuse a request
 * before its body is read. */
enum MHD_Result api_begin(struct req *r);
/* *used: bytes taken; the rest comes again once the request resumes. */
enum MHD_Result api_body(struct req *r, const char *data, size_t n,
    size_t *used);
/* After the whole body. */
enum MHD_Result api_finish(struct req *r);
/* A query parameter as an integer from min to max (def when absent), or
 * as text (NULL when absent); 400 when malformed. */
int api_query_int(struct req *r, const char *name, int64_t min,
    int64_t max, int64_t def, int64_t *out, struct apierr *e);
int api_query_str(struct req *r, const char *name, char *out, size_t n,
    const char **val, struct apierr *e);
/* The web view's own endpoints (/ui/...): the assets, login, logout. */
enum MHD_Result api_ui(struct req *r);
/* 403 for a valid viewer token on an admin endpoint. */
int api_viewer_forbidden(struct apierr *e);
/* GET /v1/jobs's query: pool, state, name (a substring), limit, offset. */
#define API_JOBS_OFFSET_MAX 10000
struct api_jobq {
	char pool_buf[130], state_buf[32], name_buf[130];
	const char *pool, *state, *name;
	int64_t limit, offset;
};
int api_job_query(struct req *r, struct api_jobq *jq, struct apierr *e);
/* A suspended request was woken. */
enum MHD_Result api_woken(struct req *r);
/* The request is over (answered, or the client went away). */
void api_done(struct req *r, enum MHD_RequestTerminationCode toe);

#endif
