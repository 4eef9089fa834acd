/*
 * The endpoints of docs/protocol.md sections 4 and 5: what each one reads
 * from the request, which queue operation it calls, and how it answers.
 */
#include "srvint.h"

#include <errno.h>
#include <sodium.h>
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
#include "ui.h"

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

/* The bearer token; with cookie_too (non-NULL), else the web view's
 * cookie, and then *cookie_too is set to 1. */
static int credential(struct req *r, int *cookie_too, const char **tok,
    size_t *n, struct apierr *e)
{
	int rc = token_from_authorization(srv_header(r, "Authorization"), tok, n);

	if (rc == -ENOENT && cookie_too) {
		rc = ui_cookie_token(srv_header(r, "Cookie"), tok, n);
		*cookie_too = 1;
	}
	if (rc == -ENOENT)
		return apierr_set(e, 401, "unauthorized", "an Authorization: Bearer "
		    "token is required%s", cookie_too ? " (or the web view's "
		    "session cookie)" : "");
	if (rc < 0)
		return apierr_set(e, 401, "unauthorized", "the %s is not of the "
		    "form [A-Za-z0-9_.-]{1,128}", cookie_too ? "token" :
		    "bearer token");
	return 0;
}

static int bearer(struct req *r, const char **tok, size_t *n,
    struct apierr *e)
{
	return credential(r, NULL, tok, n, e);
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

int api_viewer_forbidden(struct apierr *e)
{
	return apierr_set(e, 403, "forbidden", "a viewer token may only read; "
	    "this endpoint takes the admin token");
}

static int is_admin(struct queue *q, const char *tok, size_t n)
{
	unsigned char h[TOKEN_HASH_BYTES];

	token_hash(tok, n, h);
	return token_hash_equal(h, q->admin_hash);
}

/* A viewer token: looked up now on SQLite; on PostgreSQL its hash is kept
 * and checked in a query of its own before the operation (pgq.c). */
static int check_viewer(struct req *r, const char *tok, size_t n, int how,
    struct apierr *e)
{
	if (r->s->q->pg) {
		token_hash(tok, n, r->tok_hash);
		r->view_check = how;
		return 0;
	}
	if (viewers_check(r->s->q, tok, n, e) < 0)
		return -1;
	return how == VC_FORBID ? api_viewer_forbidden(e) : 0;
}

static int authenticate(struct req *r, struct apierr *e)
{
	struct queue *q = r->s->q;
	const char *tok;
	size_t n;
	int cookie = 0;

	switch (r->rm.auth) {
	case RA_NONE:
		return 0;
	case RA_METRICS:
		if (!q->have_metrics_token)
			return 0;
		return bearer(r, &tok, &n, e) < 0 ? -1 :
		    check_hash(tok, n, q->metrics_hash, "metrics", e);
	/* The cookie holds a viewer token, never the admin's: a cookie goes
	 * with requests the page did not choose to make. */
	case RA_ADMIN:
		if (credential(r, &cookie, &tok, &n, e) < 0)
			return -1;
		if (!cookie && is_admin(q, tok, n))
			return 0;
		/* A viewer's token is valid, only not here: 403, not 401. */
		if (cookie || (n > 4 && memcmp(tok, "svw_", 4) == 0))
			return check_viewer(r, tok, n, VC_FORBID, e);
		return apierr_set(e, 401, "unauthorized", "admin token is not "
		    "valid");
	case RA_VIEWER:
		if (credential(r, &cookie, &tok, &n, e) < 0)
			return -1;
		return !cookie && is_admin(q, tok, n) ? 0 :
		    check_viewer(r, tok, n, VC_RUN, e);
	case RA_LOGIN:
		if (bearer(r, &r->token, &r->token_len, e) < 0)
			return -1;
		if (is_admin(q, r->token, r->token_len))
			return apierr_set(e, 403, "forbidden", "the view takes a viewer "
			    "token (skiffctl token create --viewer), never the admin "
			    "token");
		if (!ui_same_origin(srv_header(r, "Origin"), srv_header(r, "Host"),
		    srv_header(r, "Sec-Fetch-Site")))
			return apierr_set(e, 403, "forbidden", "a login must come from "
			    "the view's own origin");
		return check_viewer(r, r->token, r->token_len, VC_RUN, e);
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
	case R_CACHES_LIST: case R_CACHE_DEL:
		if (!route_pool_valid(r->rm.param))
			return apierr_bad(e, "pool must match [A-Za-z0-9_.:-]{1,128}");
		if (r->rm.id == R_CACHE_DEL && !token_id_valid(r->rm.name))
			return apierr_notfound(e, "no such cache (ids match "
			    "[A-Za-z0-9_-]{1,64})");
		return 0;
	case R_CACHE_GET:
		if (!token_id_valid(r->rm.name))
			return apierr_set(e, 403, "forbidden", "no such cache (ids "
			    "match [A-Za-z0-9_-]{1,64})");
		if (!token_id_valid(r->rm.param))
			return apierr_notfound(e, "no such resource (ids match "
			    "[A-Za-z0-9_-]{1,64})");
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

static enum MHD_Result h_cache_create(struct req *r)
{
	struct reqj_cache c;
	struct apierr e;
	cJSON *out;
	int status;

	if (reqj_cache(r->body.data, r->body.len, 0, &c, &e) < 0 ||
	    caches_create(r->s->q, r->agent, r->rm.param, &c, &status, &out,
	    &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, (unsigned)status, out);
}

static enum MHD_Result h_cache_find(struct req *r)
{
	struct reqj_cache c;
	struct apierr e;
	cJSON *out;

	if (reqj_cache(r->body.data, r->body.len, 1, &c, &e) < 0 ||
	    caches_find(r->s->q, r->agent, r->rm.param, &c, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 200, out);
}

static enum MHD_Result h_cache_get(struct req *r)
{
	int64_t size;
	char sha[65];
	struct apierr e;
	int fd;
	const char *h[] = { "Skiff-Sha256", sha, NULL };

	if (caches_open(r->s->q, r->agent, r->rm.param, r->rm.name, &fd, &size,
	    sha, &e) < 0)
		return fail(r, &e);
	return srv_reply_fd(r, 200, fd, 0, size, h);
}

static enum MHD_Result h_caches_list(struct req *r)
{
	struct apierr e;
	cJSON *out;

	if (caches_list(r->s->q, r->rm.param, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 200, out);
}

static enum MHD_Result h_cache_del(struct req *r)
{
	struct apierr e;

	if (caches_delete(r->s->q, r->rm.param, r->rm.name, &e) < 0)
		return fail(r, &e);
	return srv_reply_empty(r, 204);
}

static enum MHD_Result h_complete(struct req *r)
{
	struct reqj_complete c;
	struct apierr e;
	cJSON *out;
	int bad;

	if (reqj_complete(r->body.data, r->body.len, &c, &e) < 0)
		return fail(r, &e);
	bad = lease_complete(r->s->q, r->agent, r->rm.param, &c, &out, &e) < 0;
	reqj_complete_clear(&c);
	if (bad)
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

int api_job_query(struct req *r, struct api_jobq *jq, struct apierr *e)
{
	if (api_query_str(r, "pool", jq->pool_buf, sizeof(jq->pool_buf),
	    &jq->pool, e) < 0 ||
	    api_query_str(r, "state", jq->state_buf, sizeof(jq->state_buf),
	    &jq->state, e) < 0 ||
	    api_query_str(r, "name", jq->name_buf, sizeof(jq->name_buf),
	    &jq->name, e) < 0 ||
	    api_query_int(r, "limit", 1, 1000, 100, &jq->limit, e) < 0 ||
	    api_query_int(r, "offset", 0, API_JOBS_OFFSET_MAX, 0, &jq->offset,
	    e) < 0)
		return -1;
	return 0;
}

static enum MHD_Result h_job_list(struct req *r)
{
	struct api_jobq jq;
	struct apierr e;
	cJSON *out;

	if (api_job_query(r, &jq, &e) < 0 ||
	    jobs_list(r->s->q, jq.pool, jq.state, jq.name, (int)jq.limit,
	    (int)jq.offset, &out, &e) < 0)
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
	char sha[65], disp[UI_DISPOSITION_MAX];
	struct apierr e;
	int fd;
	const char *h[] = { "Skiff-Sha256", sha, "Content-Disposition", disp,
	    NULL };

	if (api_query_int(r, "attempt", 1, 1000, 0, &attempt, &e) < 0 ||
	    art_open(r->s->q, r->rm.param, (int)attempt, r->rm.name, &fd, &size,
	    sha, &e) < 0)
		return fail(r, &e);
	ui_disposition(r->rm.name, disp);
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

/* A pool's registration tokens, or the viewer tokens (no pool). */
static const char *token_pool(struct req *r)
{
	return r->rm.id == R_VIEWERS_CREATE || r->rm.id == R_VIEWERS_LIST ?
	    NULL : r->rm.param;
}

static enum MHD_Result h_token_create(struct req *r)
{
	struct reqj_text t;
	struct apierr e;
	cJSON *out;

	if (reqj_text(r->body.data, r->body.len, "description", &t, &e) < 0 ||
	    agents_token_create(r->s->q, token_pool(r), t.text, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 201, out);
}

static enum MHD_Result h_token_list(struct req *r)
{
	struct apierr e;
	cJSON *out;

	if (agents_token_list(r->s->q, token_pool(r), &out, &e) < 0)
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

static enum MHD_Result h_job_steps(struct req *r)
{
	struct apierr e;
	cJSON *out;

	if (jobs_steps(r->s->q, r->rm.param, &out, &e) < 0)
		return fail(r, &e);
	return srv_reply_json(r, 200, out);
}

static enum MHD_Result h_pools(struct req *r)
{
	return srv_reply_json(r, 200, qmetrics_pools(r->s->q));
}

static enum MHD_Result ui_reply(struct req *r, unsigned status,
    const char *type, const char *data, const char *cookie,
    const char *location)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	    strlen(data), (void *)data, MHD_RESPMEM_PERSISTENT);

	if (type)
		MHD_add_response_header(resp, "Content-Type", type);
	for (const char *const *h = ui_headers; h[0]; h += 2)
		MHD_add_response_header(resp, h[0], h[1]);
	if (cookie)
		MHD_add_response_header(resp, "Set-Cookie", cookie);
	if (location)
		MHD_add_response_header(resp, "Location", location);
	return srv_reply_response(r, status, resp);
}

enum MHD_Result api_ui(struct req *r)
{
	const struct ui_asset *a;
	const char *secure = r->s->cfg->insecure_http ? "" : "; Secure";
	char cookie[TOKEN_MAX + 96];
	struct apierr e;
	enum MHD_Result ok;

	switch (r->rm.id) {
	case R_UI_ROOT:
		return ui_reply(r, 308, NULL, "", NULL, "/ui/");
	case R_UI_LOGIN:
		/* A session cookie (no Max-Age): gone with the browser. */
		snprintf(cookie, sizeof(cookie), UI_COOKIE "=%.*s; Path=/; HttpOnly; "
		    "SameSite=Strict%s", (int)r->token_len, r->token, secure);
		ok = ui_reply(r, 204, NULL, "", cookie, NULL);
		sodium_memzero(cookie, sizeof(cookie));
		return ok;
	case R_UI_LOGOUT:
		if (!ui_same_origin(srv_header(r, "Origin"), srv_header(r, "Host"),
		    srv_header(r, "Sec-Fetch-Site")))
			return fail(r, (apierr_set(&e, 403, "forbidden", "a logout "
			    "must come from the view's own origin"), &e));
		snprintf(cookie, sizeof(cookie), UI_COOKIE "=; Path=/; Max-Age=0; "
		    "HttpOnly; SameSite=Strict%s", secure);
		return ui_reply(r, 204, NULL, "", cookie, NULL);
	default:
		if ((a = ui_asset_find(r->rm.name)) == NULL)
			return fail(r, (apierr_notfound(&e, "the view has no file "
			    "'%.64s'", r->rm.name), &e));
		return ui_reply(r, 200, a->type, a->data, NULL, NULL);
	}
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
	[R_VIEWERS_CREATE] = h_token_create, [R_VIEWERS_LIST] = h_token_list,
	[R_POOLS] = h_pools, [R_JOB_STEPS] = h_job_steps, [R_UI_ROOT] = api_ui, [R_UI] = api_ui,
	[R_UI_LOGIN] = api_ui, [R_UI_LOGOUT] = api_ui,
	[R_CACHE_CREATE] = h_cache_create, [R_CACHE_FIND] = h_cache_find,
	[R_CACHE_GET] = h_cache_get, [R_CACHES_LIST] = h_caches_list,
	[R_CACHE_DEL] = h_cache_del,
};

enum MHD_Result api_finish(struct req *r)
{
	/* The view's files and its logout touch no store. */
	if (r->s->q->pg && r->rm.id != R_HEALTH && r->rm.id != R_UI &&
	    r->rm.id != R_UI_ROOT && r->rm.id != R_UI_LOGOUT)
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
