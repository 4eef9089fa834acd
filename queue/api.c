/*
 * The endpoints of docs/protocol.md sections 4 and 5: what each one reads
 * from the request, which queue operation it calls, and how it answers.
 */
#include "srvint.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "artname.h"
#include "config.h"
#include "jws.h"
#include "pgq.h"
#include "reqjson.h"
#include "server.h"
#include "strnum.h"
#include "token.h"

#define PLAIN_MAX (64 * 1024)

static size_t body_cap(enum route_body b)
{
	switch (b) {
	case RB_JWS: return JWS_MAX_COMPACT;
	case RB_LOG: return LOG_CHUNK_MAX;
	case RB_STREAM: return 0;
	default: return PLAIN_MAX;
	}
}

static enum MHD_Result fail(struct req *r, const struct apierr *e)
{
	return srv_reply_error(r, e);
}

/* ---- authentication ---- */

static int bearer(struct req *r, const char **tok, size_t *n,
    struct apierr *e)
{
	int rc = token_from_authorization(srv_header(r, "Authorization"), tok, n);

	if (rc == -ENOENT)
		return apierr_set(e, 401, "unauthorized", "an Authorization: Bearer "
		    "token is required");
	if (rc < 0)
		return apierr_set(e, 401, "unauthorized", "the bearer token is not "
		    "of the form [A-Za-z0-9_.-]{1,128}");
	return 0;
}

static int check_hash(const char *tok, size_t n, const unsigned char *want,
    const char *what, struct apierr *e)
{
	unsigned char h[TOKEN_HASH_BYTES];

	token_hash(tok, n, h);
	if (!token_hash_equal(h, want))
		return apierr_set(e, 401, "unauthorized", "%s token is not valid",
		    what);
	return 0;
}

static int authenticate(struct req *r, struct apierr *e)
{
	struct queue *q = r->s->q;
	const char *tok;
	size_t n;

	switch (r->rm.auth) {
	case RA_NONE:
		return 0;
	case RA_METRICS:
		if (!q->have_metrics_token)
			return 0;
		return bearer(r, &tok, &n, e) < 0 ? -1 :
		    check_hash(tok, n, q->metrics_hash, "metrics", e);
	case RA_ADMIN:
		return bearer(r, &tok, &n, e) < 0 ? -1 :
		    check_hash(tok, n, q->admin_hash, "admin", e);
	case RA_AGENT:
		if (bearer(r, &tok, &n, e) < 0)
			return -1;
		if (q->pg) {
			/* Checked by each operation, in its transaction. */
			token_hash(tok, n, r->tok_hash);
			return 0;
		}
		return agents_auth(q, tok, n, &r->agent, e);
	case RA_REGISTRATION:
		if (bearer(r, &r->token, &r->token_len, e) < 0)
			return -1;
		return 0;
	}
	return apierr_internal(e, "unknown authentication kind");
}

/* ---- query parameters ---- */

int api_query_int(struct req *r, const char *name, int64_t min,
    int64_t max, int64_t def, int64_t *out, struct apierr *e)
{
	char v[32];
	int bad;
	const char *s = srv_query(r, name, v, sizeof(v), &bad);

	if (s == NULL && !bad) {
		*out = def;
		return 0;
	}
	if (s == NULL || strnum_i64(s, min, max, out, NULL) < 0)
		return apierr_bad(e, "query parameter '%s' must be an integer from "
		    "%lld to %lld", name, (long long)min, (long long)max);
	return 0;
}

int api_query_str(struct req *r, const char *name, char *out, size_t n,
    const char **val, struct apierr *e)
{
	int bad;

	*val = srv_query(r, name, out, n, &bad);
	if (bad)
		return apierr_bad(e, "query parameter '%s' is malformed or too long",
		    name);
	return 0;
}

/* gzip, or identity (absent): anything else is refused with 415. */
static int encoding(struct req *r, struct apierr *e)
{
	const char *ce = srv_header(r, "Content-Encoding");

	if (ce == NULL || strcmp(ce, "identity") == 0) {
		r->gzip = 0;
		return 0;
	}
	if (strcmp(ce, "gzip") == 0) {
		r->gzip = 1;
		return 0;
	}
	return apierr_set(e, 415, "unsupported_media_type", "Content-Encoding "
	    "'%.32s' is not gzip or identity", ce);
}

static int content_length(struct req *r, int64_t *len, struct apierr *e)
{
	const char *cl = srv_header(r, "Content-Length");

	*len = -1;
	if (cl && strnum_i64(cl, 0, INT64_MAX, len, NULL) < 0)
		return apierr_bad(e, "Content-Length is not a number");
	return 0;
}

/* ---- before the body ---- */

static int check_param(struct req *r, struct apierr *e)
{
	switch (r->rm.id) {
	case R_TOKENS_CREATE: case R_TOKENS_LIST:
		if (!route_pool_valid(r->rm.param))
			return apierr_bad(e, "pool must match [A-Za-z0-9_.:-]{1,128}");
		return 0;
	case R_JOB_ART:
		if (!artname_valid(r->rm.name, strlen(r->rm.name)))
			return apierr_bad(e, "artifact name is not a valid name (no "
			    "empty, '.' or '..' component, no control characters)");
		/* fallthrough */
	default:
		if (r->rm.param[0] && !token_id_valid(r->rm.param))
			return apierr_notfound(e, "no such resource (ids match "
			    "[A-Za-z0-9_-]{1,64})");
		return 0;
	}
}

static int check_body_headers(struct req *r, int64_t len, struct apierr *e)
{
	size_t cap = body_cap(r->rm.body);
	const char *ct;

	if (cap && len > (int64_t)cap)
		return apierr_too_large(e, (int64_t)cap, "request body of %lld bytes "
		    "is over the cap", (long long)len);
	if (r->rm.id == R_JOB_SUBMIT) {
		ct = srv_header(r, "Content-Type");
		if (ct == NULL || strncmp(ct, "application/jose", 16) != 0 ||
		    (ct[16] != '\0' && ct[16] != ';'))
			return apierr_set(e, 415, "unsupported_media_type", "submit "
			    "takes Content-Type: application/jose (a compact JWS)");
	}
	if (r->rm.id == R_LOG_PUT || r->rm.id == R_UPLOAD_PUT) {
		if (encoding(r, e) < 0 || api_query_int(r, "offset", 0, INT64_C(1) << 53,
		    -1, &r->offset, e) < 0)
			return -1;
		if (r->offset < 0)
			return apierr_bad(e, "query parameter 'offset' is required");
	}
	return 0;
}

enum MHD_Result api_begin(struct req *r)
{
	struct queue *q = r->s->q;
	struct apierr e;
	int64_t len;

	if (q->stopping && r->rm.id != R_HEALTH && r->rm.id != R_METRICS) {
		apierr_set(&e, 503, "unavailable", "the queue is shutting down");
		e.retry_after = 5;
		return fail(r, &e);
	}
	if (check_param(r, &e) < 0 || authenticate(r, &e) < 0 ||
	    content_length(r, &len, &e) < 0 || check_body_headers(r, len, &e) < 0)
		return fail(r, &e);
	r->content_length = len;
	buf_init(&r->body, body_cap(r->rm.body));
	if (q->pg && r->rm.id == R_UPLOAD_PUT)
		return pgq_begin(r);
	if (q->pg)
		return MHD_YES;
	if (r->rm.id == R_UPLOAD_PUT && art_put_begin(q, r->agent, r->rm.param,
	    r->offset, r->gzip, len, &r->put, &e) < 0)
		return fail(r, &e);
	buf_init(&r->body, body_cap(r->rm.body));
	return MHD_YES;
}

enum MHD_Result api_body(struct req *r, const char *data, size_t n,
    size_t *used)
{
	struct srv *s = r->s;
	struct apierr e;

	*used = n;
	if (r->rm.body == RB_STREAM && s->q->pg)
		return pgq_body(r, data, n, used);
	if (r->rm.body == RB_STREAM) {
		if (art_put_data(r->put, data, n, &e) < 0)
			return srv_fail_body(r, &e);
		return MHD_YES;
	}
	if (s->buffered + n > SRV_BODY_BUDGET) {
		apierr_set(&e, 503, "unavailable", "too many request bodies in "
		    "flight; try again");
		e.retry_after = 1;
		return srv_fail_body(r, &e);
	}
	if (buf_append(&r->body, data, n) < 0)
		return srv_fail_body(r, (apierr_too_large(&e, (int64_t)r->body.max,
		    "request body is over %zu bytes", r->body.max), &e));
	s->buffered += n;
	r->counted += n;
	return MHD_YES;
}

/* ---- agent endpoints ---- */

static enum MHD_Result reply_lease(struct req *r, struct qlease *l)
{
	snprintf(r->lease_sent, sizeof(r->lease_sent), "%s", l->id);
	return srv_reply_json(r, 200, lease_json(r->s->q, l));
}

static void on_waiter(struct qwaiter *w)
{
	struct req *r = w->arg;

	if (w->status == 1)
		snprintf(r->lease_sent, sizeof(r->lease_sent), "%s", w->lease->id);
	srv_wake(r);
}

static enum MHD_Result h_lease(struct req *r)
{
	struct reqj_lease lr;
	struct qlease *l = NULL;
	struct apierr e;
	int rc;

	if (reqj_lease(r->body.data, r->body.len, &lr, &e) < 0)
		return fail(r, &e);
	r->w.wake = on_waiter;
	r->w.arg = r;
	rc = lease_request(r->s->q, r->agent, lr.wait, &r->w, &l, &e);
	if (rc < 0)
		return fail(r, &e);
	if (rc == 1) {
		r->wait = RW_LEASE;
		return srv_suspend(r);
	}
	return l ? reply_lease(r, l) : srv_reply_empty(r, 204);
}

static enum MHD_Result lease_woken(struct req *r)
{
	struct qlease *l;
	struct apierr e;

	switch (r->w.status) {
	case 1:
		/* The lease may have ended since (the agent was revoked). */
		if ((l = lease_find(r->s->q, r->lease_sent)) != NULL)
			return reply_lease(r, l);
		r->lease_sent[0] = '\0';
		return srv_reply_empty(r, 204);
	case -ESHUTDOWN:
		apierr_set(&e, 503, "unavailable", "the queue is shutting down");
		e.retry_after = 5;
		return fail(r, &e);
	case -EPERM:
		apierr_set(&e, 401, "unauthorized", "agent token was revoked or "
		    "deregistered");
		return fail(r, &e);
	default:
		return srv_reply_empty(r, 204);
	}
}

static enum MHD_Result h_register(struct req *r)
{
	struct apierr e;
	cJSON *out;

	if (agents_register(r->s->q, r->token, r->token_len, r->body.data,
	    r->body.len, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 201, out);
}

static enum MHD_Result h_deregister(struct req *r)
{
	struct reqj_text t;
	struct apierr e;

	if (reqj_text(r->body.data, r->body.len, "reason", &t, &e) < 0 ||
	    agents_deregister(r->s->q, r->agent, &e) < 0)
		return fail(r, &e);
	return srv_reply_empty(r, 204);
}

static enum MHD_Result h_heartbeat(struct req *r)
{
	struct apierr e;
	cJSON *out;

	if (reqj_heartbeat(r->body.data, r->body.len, &e) < 0 ||
	    lease_heartbeat(r->s->q, r->agent, r->rm.param, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 200, out);
}

static void on_log_put(struct logs_put *p)
{
	srv_wake(logs_put_arg(p));
}

/* The append goes to a worker: the request waits, suspended, until its
 * bytes are durable, and the loop serves others meanwhile. */
static enum MHD_Result h_log_put(struct req *r)
{
	struct apierr e;

	if (logs_put_begin(r->s->q, r->agent, r->rm.param, r->offset, &r->body,
	    r->gzip, on_log_put, r, &r->lput, &e) < 0)
		return fail(r, &e);
	r->wait = RW_LOG_PUT;
	return srv_suspend(r);
}

static enum MHD_Result log_put_woken(struct req *r)
{
	struct apierr e;
	int64_t len;
	int rc = logs_put_result(r->lput, &len, &e);
	cJSON *out;

	logs_put_free(r->lput);
	r->lput = NULL;
	if (rc < 0)
		return fail(r, &e);
	out = cJSON_CreateObject();
	cJSON_AddNumberToObject(out, "length", (double)len);
	return srv_reply_json(r, 200, out);
}

static enum MHD_Result h_art_create(struct req *r)
{
	struct reqj_artifact a;
	struct apierr e;
	cJSON *out;
	int status;

	if (reqj_artifact(r->body.data, r->body.len, &a, &e) < 0 ||
	    art_create(r->s->q, r->agent, r->rm.param, &a, &status, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, (unsigned)status, out);
}

static enum MHD_Result h_complete(struct req *r)
{
	struct reqj_complete c;
	struct apierr e;
	cJSON *out;

	if (reqj_complete(r->body.data, r->body.len, &c, &e) < 0 ||
	    lease_complete(r->s->q, r->agent, r->rm.param, &c, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 200, out);
}

static enum MHD_Result h_upload_put(struct req *r)
{
	struct apierr e;
	int64_t off;
	cJSON *out;

	if (art_put_end(r->put, &off, &e) < 0)
		return fail(r, &e);
	out = cJSON_CreateObject();
	cJSON_AddNumberToObject(out, "offset", (double)off);
	return srv_reply_json(r, 200, out);
}

static enum MHD_Result h_upload_get(struct req *r)
{
	struct apierr e;
	cJSON *out;

	if (art_status(r->s->q, r->agent, r->rm.param, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 200, out);
}

static enum MHD_Result h_upload_commit(struct req *r)
{
	struct apierr e;
	char sha[65];
	cJSON *out;

	if (reqj_commit(r->body.data, r->body.len, sha, &e) < 0 ||
	    art_commit(r->s->q, r->agent, r->rm.param, sha, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 200, out);
}

/* ---- admin endpoints ---- */

static enum MHD_Result h_submit(struct req *r)
{
	struct apierr e;
	cJSON *out;
	size_t n = r->body.len;

	/* A trailing newline (as from a file) is not part of the JWS. */
	while (n > 0 && (r->body.data[n - 1] == '\n' ||
	    r->body.data[n - 1] == '\r'))
		n--;
	if (jobs_submit(r->s->q, r->body.data ? r->body.data : "", n, &out,
	    &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 201, out);
}

static enum MHD_Result h_job_list(struct req *r)
{
	char pool[130], state[32];
	const char *p, *s;
	int64_t limit;
	struct apierr e;
	cJSON *out;

	if (api_query_str(r, "pool", pool, sizeof(pool), &p, &e) < 0 ||
	    api_query_str(r, "state", state, sizeof(state), &s, &e) < 0 ||
	    api_query_int(r, "limit", 1, 1000, 100, &limit, &e) < 0 ||
	    jobs_list(r->s->q, p, s, (int)limit, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 200, out);
}

static enum MHD_Result h_job_get(struct req *r)
{
	struct apierr e;
	cJSON *out;

	if (jobs_status(r->s->q, r->rm.param, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 200, out);
}

static enum MHD_Result reply_log(struct req *r, const struct logs_read *lr)
{
	char len[24], att[16];
	const char *h[] = { "Skiff-Log-Length", len,
	    "Skiff-Log-Complete", lr->complete ? "1" : "0",
	    "Skiff-Log-Attempt", att, NULL };

	snprintf(len, sizeof(len), "%lld", (long long)lr->length);
	snprintf(att, sizeof(att), "%d", lr->attempt);
	return srv_reply_fd(r, 200, lr->fd, lr->offset, lr->count, h);
}

static void on_follower(struct qfollower *f)
{
	srv_wake(f->arg);
}

static enum MHD_Result h_job_log(struct req *r)
{
	struct logs_read lr;
	struct apierr e;
	int64_t wait, attempt;
	int rc;

	if (api_query_int(r, "offset", 0, INT64_C(1) << 53, 0, &r->offset, &e) < 0 ||
	    api_query_int(r, "wait", 0, 60, 0, &wait, &e) < 0 ||
	    api_query_int(r, "attempt", 1, 1000, 0, &attempt, &e) < 0)
		return fail(r, &e);
	r->f.wake = on_follower;
	r->f.arg = r;
	rc = logs_read(r->s->q, r->rm.param, (int)attempt, r->offset, (int)wait,
	    &r->f, &lr, &e);
	if (rc < 0)
		return fail(r, &e);
	if (rc == 1) {
		/* Pinned: the job may move to its next attempt meanwhile. */
		r->attempt = lr.attempt;
		r->wait = RW_FOLLOW;
		return srv_suspend(r);
	}
	return reply_log(r, &lr);
}

static enum MHD_Result follow_woken(struct req *r)
{
	struct logs_read lr;
	struct apierr e;

	if (logs_read(r->s->q, r->rm.param, r->attempt, r->offset, 0, NULL, &lr,
	    &e) < 0)
		return fail(r, &e);
	return reply_log(r, &lr);
}

static enum MHD_Result h_job_arts(struct req *r)
{
	int64_t attempt;
	struct apierr e;
	cJSON *out;

	if (api_query_int(r, "attempt", 1, 1000, 0, &attempt, &e) < 0 ||
	    art_list(r->s->q, r->rm.param, (int)attempt, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 200, out);
}

static enum MHD_Result h_job_art(struct req *r)
{
	int64_t attempt, size;
	char sha[65];
	struct apierr e;
	int fd;
	const char *h[] = { "Skiff-Sha256", sha, NULL };

	if (api_query_int(r, "attempt", 1, 1000, 0, &attempt, &e) < 0 ||
	    art_open(r->s->q, r->rm.param, (int)attempt, r->rm.name, &fd, &size,
	    sha, &e) < 0)
		return fail(r, &e);
	return srv_reply_fd(r, 200, fd, 0, size, h);
}

static enum MHD_Result h_cancel(struct req *r)
{
	struct reqj_text t;
	struct apierr e;
	cJSON *out;

	if (reqj_text(r->body.data, r->body.len, "reason", &t, &e) < 0 ||
	    jobs_cancel(r->s->q, r->rm.param, t.text, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 202, out);
}

static enum MHD_Result h_agents(struct req *r)
{
	char pool[130];
	const char *p;
	struct apierr e;
	cJSON *out;

	if (api_query_str(r, "pool", pool, sizeof(pool), &p, &e) < 0 ||
	    agents_list(r->s->q, p, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 200, out);
}

static enum MHD_Result h_agent_del(struct req *r)
{
	struct apierr e;

	if (agents_revoke(r->s->q, r->rm.param, &e) < 0)
		return fail(r, &e);
	return srv_reply_empty(r, 204);
}

static enum MHD_Result h_token_create(struct req *r)
{
	struct reqj_text t;
	struct apierr e;
	cJSON *out;

	if (reqj_text(r->body.data, r->body.len, "description", &t, &e) < 0 ||
	    agents_token_create(r->s->q, r->rm.param, t.text, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 201, out);
}

static enum MHD_Result h_token_list(struct req *r)
{
	struct apierr e;
	cJSON *out;

	if (agents_token_list(r->s->q, r->rm.param, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 200, out);
}

static enum MHD_Result h_token_del(struct req *r)
{
	struct apierr e;

	if (agents_token_revoke(r->s->q, r->rm.param, &e) < 0)
		return fail(r, &e);
	return srv_reply_empty(r, 204);
}

static enum MHD_Result h_health(struct req *r)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "status", r->s->q->stopping ? "stopping" :
	    "ok");
	cJSON_AddStringToObject(o, "version", SKIFF_VERSION);
	cJSON_AddNumberToObject(o, "protocol", 1);
	return srv_reply_json(r, 200, o);
}

static enum MHD_Result h_metrics(struct req *r)
{
	struct buf b = BUF_INIT((size_t)64 << 20);

	qmetrics_render(r->s->q, &b);
	return srv_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    &b);
}

typedef enum MHD_Result (*handler)(struct req *r);

static const handler handlers[R_COUNT] = {
	[R_HEALTH] = h_health, [R_METRICS] = h_metrics,
	[R_REGISTER] = h_register, [R_LEASE] = h_lease,
	[R_DEREGISTER] = h_deregister, [R_HEARTBEAT] = h_heartbeat,
	[R_LOG_PUT] = h_log_put, [R_ART_CREATE] = h_art_create,
	[R_COMPLETE] = h_complete, [R_UPLOAD_PUT] = h_upload_put,
	[R_UPLOAD_GET] = h_upload_get, [R_UPLOAD_COMMIT] = h_upload_commit,
	[R_JOB_SUBMIT] = h_submit, [R_JOB_LIST] = h_job_list,
	[R_JOB_GET] = h_job_get, [R_JOB_LOG] = h_job_log,
	[R_JOB_ARTS] = h_job_arts, [R_JOB_ART] = h_job_art,
	[R_JOB_CANCEL] = h_cancel, [R_AGENTS] = h_agents,
	[R_AGENT_DEL] = h_agent_del, [R_TOKENS_CREATE] = h_token_create,
	[R_TOKENS_LIST] = h_token_list, [R_TOKEN_DEL] = h_token_del,
};

enum MHD_Result api_finish(struct req *r)
{
	if (r->s->q->pg && r->rm.id != R_HEALTH)
		return pgq_finish(r);
	return handlers[r->rm.id](r);
}

enum MHD_Result api_woken(struct req *r)
{
	r->woken = 0;
	switch (r->wait) {
	case RW_DB: return pgq_woken(r);
	case RW_LEASE: return lease_woken(r);
	case RW_LOG_PUT: return log_put_woken(r);
	default: return follow_woken(r);
	}
}

void api_done(struct req *r, enum MHD_RequestTerminationCode toe)
{
	struct queue *q = r->s->q;

	if (q->pg) {
		pgq_done(r, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
		return;
	}

	lease_waiter_cancel(&r->w);
	logs_follower_cancel(&r->f);
	logs_put_free(r->lput);
	r->lput = NULL;
	if (r->lease_sent[0] && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		lease_undelivered(q, r->lease_sent);
	art_put_free(r->put);
	r->put = NULL;
}
